//! The review queue page: waiting cases by queue, filtered and counted.

use super::display::thousands;
use super::*;
use crate::cases::CaseView;
use askama::Template;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use credence_review::CaseState;
use serde::Deserialize;
use std::collections::BTreeMap;

pub(super) struct QueueCount {
    queue: String,
    waiting: usize,
    breached: usize,
    selected: bool,
}

pub(super) struct QueueRow {
    id: String,
    strategy: String,
    customer: String,
    /// The first reason the decision gave (`CODE — text`), and how many more.
    referred_for: String,
    /// Time left on the SLA, in words (`overdue 12 min` once past it).
    time_left: String,
    /// `late`, `soon` (a quarter of the SLA or less left) or empty: the time-left colour.
    urgency: &'static str,
    queue: String,
    priority: i64,
    status: String,
    due: String,
    breached: bool,
    claimed_by: String,
    requested: String,
}

#[derive(Template)]
#[template(path = "queue.html")]
pub(super) struct QueuePage {
    username: String,
    role: String,
    csrf: String,
    counts: Vec<QueueCount>,
    rows: Vec<QueueRow>,
    /// (state, selected)
    states: Vec<(String, bool)>,
    breached_only: bool,
    strategy: String,
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub(super) struct QueueFilter {
    queue: Option<String>,
    /// Only this strategy's (product's) cases.
    strategy: Option<String>,
    state: Option<String>,
    breached: Option<String>,
}

pub(super) fn counts_of(cases: &[CaseView]) -> Vec<QueueCount> {
    let mut counts: BTreeMap<String, QueueCount> = BTreeMap::new();
    for case in cases.iter().filter(|c| c.case.state != CaseState::Decided) {
        let entry = counts.entry(case.case.queue.clone()).or_insert(QueueCount {
            queue: case.case.queue.clone(),
            waiting: 0,
            breached: 0,
            selected: false,
        });
        entry.waiting += 1;
        if case.sla_breached {
            entry.breached += 1;
        }
    }
    counts.into_values().collect()
}

/// The review queue.
#[utoipa::path(get, path = "/review", tag = "workbench", params(QueueFilter),
    responses((status = 200, description = "The queue", content_type = "text/html"),
              (status = 303, description = "Not signed in: to the sign-in page")))]
pub(super) async fn queue_page(
    State(service): State<AppState>,
    headers: HeaderMap,
    Query(filter): Query<QueueFilter>,
) -> Response {
    let signed = match signed_in(&service, &headers).await {
        Ok(signed) => signed,
        Err(response) => return response,
    };
    let filter_strategy = filter.strategy.unwrap_or_default();
    let scope = match (filter_strategy.is_empty(), signed.strategy_filter()) {
        (true, scope) => scope,
        (false, _) if signed.may_use(&filter_strategy) => Some(vec![filter_strategy.clone()]),
        (false, _) => {
            return plain(
                StatusCode::FORBIDDEN,
                "you do not work this product's cases",
            )
        }
    };
    let cases = match waiting_cases(&service, scope).await {
        Ok(cases) => cases,
        Err(error) => return plain(error.status(), &error.message),
    };
    let now = service.now_ms();
    let filter_queue = filter.queue.unwrap_or_default();
    let filter_state = filter.state.unwrap_or_else(|| "waiting".into());
    let breached_only = filter.breached.as_deref() == Some("true");
    let rows = cases
        .iter()
        .filter(|c| filter_queue.is_empty() || c.case.queue == filter_queue)
        .filter(|c| match filter_state.as_str() {
            "any" => true,
            "waiting" => c.case.state != CaseState::Decided,
            state => c.status == state,
        })
        .filter(|c| !breached_only || c.sla_breached)
        .map(|c| QueueRow {
            id: c.case.id.clone(),
            strategy: c.case.strategy.clone(),
            customer: c.case.customer_id.clone().unwrap_or_default(),
            referred_for: match c.case.referred_for.as_slice() {
                [] => String::new(),
                [one] => one.clone(),
                [first, rest @ ..] => format!("{first} (+{} more)", rest.len()),
            },
            time_left: if c.case.state == CaseState::Decided {
                String::new()
            } else {
                time_left(c.case.due_at_ms - now)
            },
            urgency: urgency(c.case.created_at_ms, c.case.due_at_ms, now, c.case.state),
            queue: c.case.queue.clone(),
            priority: c.case.priority,
            status: c.status.to_string(),
            due: time(c.case.due_at_ms),
            breached: c.sla_breached,
            claimed_by: c.claimed_by.clone().unwrap_or_default(),
            requested: c.case.requested_amount.map(thousands).unwrap_or_default(),
        })
        .collect();
    page(
        StatusCode::OK,
        &QueuePage {
            username: signed.user.username.clone(),
            role: signed.user.role.clone(),
            csrf: signed.session.csrf_token.clone(),
            strategy: filter_strategy.clone(),
            counts: counts_of(&cases)
                .into_iter()
                .map(|c| QueueCount {
                    selected: c.queue == filter_queue,
                    ..c
                })
                .collect(),
            rows,
            states: [
                "waiting",
                "open",
                "claimed",
                "more_info_requested",
                "escalated",
                "awaiting_confirmation",
                "decided",
                "any",
            ]
            .into_iter()
            .map(|state| (state.to_string(), state == filter_state))
            .collect(),
            breached_only,
        },
    )
}

/// Time left in words: `1 h 20 min`, `35 min`, or `overdue 12 min` once past.
pub(super) fn time_left(left_ms: i64) -> String {
    let minutes = left_ms.abs() / 60_000;
    let words = match (minutes / 60, minutes % 60) {
        (0, m) => format!("{m} min"),
        (h, 0) => format!("{h} h"),
        (h, m) => format!("{h} h {m} min"),
    };
    if left_ms < 0 {
        format!("overdue {words}")
    } else {
        words
    }
}

/// How close a waiting case is to its deadline: `late` past it, `soon` with a quarter of its
/// SLA or less left, else nothing.
pub(super) fn urgency(created_ms: i64, due_ms: i64, now_ms: i64, state: CaseState) -> &'static str {
    if state == CaseState::Decided {
        ""
    } else if now_ms >= due_ms {
        "late"
    } else if (due_ms - now_ms) * 4 <= (due_ms - created_ms).max(1) {
        "soon"
    } else {
        ""
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_left_urgency_and_amounts_read_as_words() {
        assert_eq!(time_left(80 * 60_000), "1 h 20 min");
        assert_eq!(time_left(35 * 60_000 + 10_000), "35 min");
        assert_eq!(time_left(-12 * 60_000), "overdue 12 min");
        assert_eq!(time_left(2 * 3_600_000), "2 h");
        let (created, due) = (0, 100 * 60_000);
        assert_eq!(urgency(created, due, 10 * 60_000, CaseState::Open), "");
        assert_eq!(urgency(created, due, 80 * 60_000, CaseState::Open), "soon");
        assert_eq!(urgency(created, due, 101 * 60_000, CaseState::Open), "late");
        assert_eq!(urgency(created, due, 101 * 60_000, CaseState::Decided), "");
    }
}

//! The review queue page: waiting cases by queue, filtered and counted.

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
            queue: c.case.queue.clone(),
            priority: c.case.priority,
            status: c.status.to_string(),
            due: time(c.case.due_at_ms),
            breached: c.sla_breached,
            claimed_by: c.claimed_by.clone().unwrap_or_default(),
            requested: c
                .case
                .requested_amount
                .map(|a| a.to_string())
                .unwrap_or_default(),
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

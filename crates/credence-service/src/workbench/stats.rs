//! The workbench statistics and monitoring pages.

use super::*;
use crate::cases::CaseView;
use askama::Template;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use credence_review::{CaseState, Verdict};
use std::collections::BTreeMap;

pub(super) struct StatsRow {
    queue: String,
    waiting: usize,
    breached: usize,
    decided: usize,
    approved: usize,
    declined: usize,
    median_minutes: String,
}

pub(super) struct MonthRow {
    month: String,
    decisions: u64,
    approve: String,
    refer: String,
    decline: String,
    reviewed: u64,
    override_rate: String,
    psi: String,
    drift: String,
}

pub(super) struct GridRow {
    cohort: String,
    cells: Vec<String>,
}

pub(super) struct RollRow {
    bucket: String,
    cells: Vec<String>,
}

#[derive(Template)]
#[template(path = "monitoring.html")]
pub(super) struct MonitoringPage {
    strategy: String,
    username: String,
    role: String,
    csrf: String,
    flow: String,
    limit: u32,
    decisions: u64,
    baseline: Option<String>,
    months: Vec<MonthRow>,
    accounts: u64,
    bad_dpd: u32,
    vintage_months: Vec<u32>,
    vintages: Vec<GridRow>,
    buckets: Vec<String>,
    rolls: Vec<RollRow>,
}

pub(super) fn percent(rate: f64) -> String {
    format!("{:.1}%", rate * 100.0)
}

/// Rates, drift, vintages and roll rates of the application flow, for everyone signed in
/// (aggregates only: no customer appears on this page).
/// Monitoring: rates by month, PSI, vintages and roll rates.
/// Which product the monitoring page shows.
#[derive(serde::Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub(super) struct MonitoringFilter {
    /// Only this strategy (product) [default: all the user works].
    strategy: Option<String>,
}

#[utoipa::path(get, path = "/review/monitoring", tag = "workbench", params(MonitoringFilter),
    responses((status = 200, description = "The monitoring page", content_type = "text/html"),
              (status = 303, description = "Not signed in: to the sign-in page")))]
pub(super) async fn monitoring_page(
    State(service): State<AppState>,
    headers: HeaderMap,
    Query(filter): Query<MonitoringFilter>,
) -> Response {
    let signed = match signed_in(&service, &headers).await {
        Ok(signed) => signed,
        Err(response) => return response,
    };
    let flow = "application".to_string();
    let limit = 10_000;
    let today = service.clock.now().date_naive();
    let strategy = match (
        filter.strategy.filter(|s| !s.is_empty()),
        signed.strategy_filter(),
    ) {
        (Some(name), _) if signed.may_use(&name) => Some(name),
        (Some(_), _) => return plain(StatusCode::FORBIDDEN, "you do not work this product"),
        (None, Some(mine)) => mine.into_iter().next(),
        (None, None) => None,
    };
    let report =
        match crate::monitoring::report(&service.store, strategy.as_deref(), &flow, limit, today)
            .await
        {
            Ok(report) => report,
            Err(error) => return plain(error.code.status(), &error.message),
        };
    let months = report
        .months
        .iter()
        .map(|m| MonthRow {
            month: m.month.clone(),
            decisions: m.decisions,
            approve: percent(m.approve_rate),
            refer: percent(m.refer_rate),
            decline: percent(m.decline_rate),
            reviewed: m.reviewed,
            override_rate: m.override_rate.map(percent).unwrap_or_else(|| "–".into()),
            psi: m
                .score_psi
                .map(|p| format!("{p:.3}"))
                .unwrap_or_else(|| "–".into()),
            drift: m
                .score_drift
                .map(|d| format!("{d:?}").to_lowercase())
                .unwrap_or_else(|| "–".into()),
        })
        .collect();
    let longest = report
        .vintages
        .values()
        .map(|points| points.len())
        .max()
        .unwrap_or(0)
        .min(24);
    let vintages = report
        .vintages
        .iter()
        .map(|(cohort, points)| GridRow {
            cohort: cohort.clone(),
            cells: (0..longest)
                .map(|i| {
                    points
                        .get(i)
                        .map(|p| format!("{} ({})", percent(p.bad_rate), p.loans))
                        .unwrap_or_default()
                })
                .collect(),
        })
        .collect();
    let rolls = report
        .roll_rates
        .buckets
        .iter()
        .zip(&report.roll_rates.rates)
        .zip(&report.roll_rates.counts)
        .map(|((bucket, rates), counts)| RollRow {
            bucket: bucket.to_string(),
            cells: rates
                .iter()
                .zip(counts)
                .map(|(r, c)| format!("{} ({c})", percent(*r)))
                .collect(),
        })
        .collect();
    page(
        StatusCode::OK,
        &MonitoringPage {
            strategy: strategy.clone().unwrap_or_default(),
            username: signed.user.username.clone(),
            role: signed.user.role.clone(),
            csrf: signed.session.csrf_token.clone(),
            flow,
            limit,
            decisions: report.decisions,
            baseline: report.baseline_month.clone(),
            months,
            accounts: report.accounts,
            bad_dpd: report.bad_dpd,
            vintage_months: (1..=longest as u32).collect(),
            vintages,
            buckets: report
                .roll_rates
                .buckets
                .iter()
                .map(|b| b.to_string())
                .collect(),
            rolls,
        },
    )
}

#[derive(Template)]
#[template(path = "stats.html")]
pub(super) struct StatsPage {
    username: String,
    role: String,
    csrf: String,
    rows: Vec<StatsRow>,
}

/// Review statistics.
#[utoipa::path(get, path = "/review/stats", tag = "workbench",
    responses((status = 200, description = "The statistics page", content_type = "text/html"),
              (status = 303, description = "Not signed in: to the sign-in page")))]
pub(super) async fn stats_page(State(service): State<AppState>, headers: HeaderMap) -> Response {
    let signed = match signed_in(&service, &headers).await {
        Ok(signed) => signed,
        Err(response) => return response,
    };
    let cases = match waiting_cases(&service, signed.strategy_filter()).await {
        Ok(cases) => cases,
        Err(error) => return plain(error.code.status(), &error.message),
    };
    let mut by_queue: BTreeMap<String, Vec<&CaseView>> = BTreeMap::new();
    for case in &cases {
        by_queue
            .entry(case.case.queue.clone())
            .or_default()
            .push(case);
    }
    let rows = by_queue
        .into_iter()
        .map(|(queue, cases)| {
            let decided: Vec<_> = cases
                .iter()
                .filter_map(|c| c.case.decision.as_ref().map(|d| (c, d)))
                .collect();
            let mut minutes: Vec<i64> = decided
                .iter()
                .map(|(c, d)| (d.at_ms - c.case.created_at_ms) / 60_000)
                .collect();
            minutes.sort_unstable();
            StatsRow {
                queue,
                waiting: cases
                    .iter()
                    .filter(|c| c.case.state != CaseState::Decided)
                    .count(),
                breached: cases.iter().filter(|c| c.sla_breached).count(),
                decided: decided.len(),
                approved: decided
                    .iter()
                    .filter(|(_, d)| d.proposal.verdict != Verdict::Decline)
                    .count(),
                declined: decided
                    .iter()
                    .filter(|(_, d)| d.proposal.verdict == Verdict::Decline)
                    .count(),
                median_minutes: minutes
                    .get(minutes.len() / 2)
                    .map(|m| m.to_string())
                    .unwrap_or_else(|| "–".into()),
            }
        })
        .collect();
    page(
        StatusCode::OK,
        &StatsPage {
            username: signed.user.username.clone(),
            role: signed.user.role.clone(),
            csrf: signed.session.csrf_token.clone(),
            rows,
        },
    )
}

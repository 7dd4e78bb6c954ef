//! The shadow comparison page: a candidate version in shadow against the live version of a
//! product — outcome matrix, swap sets, limit and APR differences, reason shifts, the records
//! that differ — for the products the signed-in user works. The same report as
//! `GET /v1/strategies/{strategy}/shadow-report` and `credence shadow report`.

use super::*;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;

pub(super) struct MatrixRow {
    live: String,
    cells: Vec<u64>,
}

pub(super) struct DifferingRow {
    decision_id: String,
    live: String,
    candidate: String,
}

#[derive(Template)]
#[template(path = "shadow.html")]
pub(super) struct ShadowPage {
    username: String,
    role: String,
    csrf: String,
    strategy: String,
    /// Products the user may pick (active strategies they work).
    products: Vec<String>,
    report: Option<crate::shadow::ShadowReport>,
    message: String,
    window: String,
    outcomes: Vec<String>,
    matrix: Vec<MatrixRow>,
    differing: Vec<DifferingRow>,
}

/// Which comparison the page shows.
#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub(super) struct ShadowFilter {
    /// The strategy (product) [default: the first the user works that has a shadow rollout].
    strategy: Option<String>,
    /// The rollout [default: the product's newest shadow rollout].
    rollout: Option<String>,
}

/// One side of a record, in a line: outcome, limit, APR, reasons.
fn side(value: &serde_json::Value) -> String {
    let text = |field: &str| value[field].as_str().unwrap_or("").to_string();
    if let Some(error) = value["error"].as_str() {
        return format!("error: {error}");
    }
    let reasons: Vec<&str> = value["reasons"]
        .as_array()
        .map(|r| r.iter().filter_map(|c| c.as_str()).collect())
        .unwrap_or_default();
    format!(
        "{} · limit {} · APR {} · {}",
        text("outcome"),
        if text("limit").is_empty() {
            "—".into()
        } else {
            text("limit")
        },
        if text("apr").is_empty() {
            "—".into()
        } else {
            text("apr")
        },
        if reasons.is_empty() {
            "no reasons".into()
        } else {
            reasons.join(", ")
        }
    )
}

fn time(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|t| t.format("%Y-%m-%d %H:%M UTC").to_string())
        .unwrap_or_default()
}

/// The comparison of a product's shadow rollout.
#[utoipa::path(get, path = "/review/shadow", tag = "workbench", params(ShadowFilter),
    responses((status = 200, description = "The shadow comparison page", content_type = "text/html"),
              (status = 303, description = "Not signed in: to the sign-in page")))]
pub(super) async fn shadow_page(
    State(service): State<AppState>,
    headers: HeaderMap,
    Query(filter): Query<ShadowFilter>,
) -> Response {
    let signed = match signed_in(&service, &headers).await {
        Ok(signed) => signed,
        Err(response) => return response,
    };
    let products: Vec<String> = service
        .strategies
        .active_all()
        .iter()
        .map(|a| a.name.clone())
        .filter(|name| signed.may_use(name))
        .collect();
    let strategy = match filter.strategy.filter(|s| !s.is_empty()) {
        Some(name) if !signed.may_use(&name) => {
            return plain(StatusCode::FORBIDDEN, "you do not work this product")
        }
        Some(name) => Some(name),
        None => products.first().cloned(),
    };
    let mut view = ShadowPage {
        username: signed.user.username.clone(),
        role: signed.user.role.clone(),
        csrf: signed.session.csrf_token.clone(),
        strategy: strategy.clone().unwrap_or_default(),
        products,
        report: None,
        message: String::new(),
        window: String::new(),
        outcomes: Vec::new(),
        matrix: Vec::new(),
        differing: Vec::new(),
    };
    if let Some(strategy) = strategy {
        let query = crate::shadow::ShadowReportQuery {
            strategy,
            rollout_id: filter.rollout,
            from_ms: None,
            to_ms: None,
            differing_limit: Some(50),
        };
        match crate::shadow::shadow_report(&*service.store, &query, service.now_ms()).await {
            Ok(report) => {
                view.window = format!("{} – {}", time(report.from_ms), time(report.to_ms));
                view.outcomes = report.outcomes.clone();
                view.matrix = report
                    .outcomes
                    .iter()
                    .zip(&report.matrix)
                    .map(|(live, cells)| MatrixRow {
                        live: live.clone(),
                        cells: cells.clone(),
                    })
                    .collect();
                view.differing = report
                    .differing
                    .iter()
                    .map(|d| DifferingRow {
                        decision_id: d["decision_id"].as_str().unwrap_or("").to_string(),
                        live: side(&d["live"]),
                        candidate: side(&d["candidate"]),
                    })
                    .collect();
                view.report = Some(report);
            }
            Err(error) => view.message = error.message,
        }
    }
    page(StatusCode::OK, &view)
}

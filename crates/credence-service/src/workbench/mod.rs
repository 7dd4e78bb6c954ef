//! The review workbench: server-rendered pages under `/review` for the people who work the
//! queue all day. Sign-in with a password (argon2) gives an HttpOnly, SameSite=Strict session
//! cookie that expires; every form carries the session's CSRF token. Pages call the same
//! `Cases` service as `/v1/cases`, so the page and the API cannot disagree.
//!
//! This module holds the routes and what every page shares (the session check, cookies, the
//! page and redirect responses); `session`, `queue`, `stats`, `shadow` and `case` hold the pages.

use crate::cases::CaseView;
use crate::error::{ApiError, HttpStatus};
use crate::Service;
use askama::Template;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use credence_review::{Reviewer, ReviewerRole};
use credence_store::{CaseQuery, SessionRecord, UserRecord};
use serde::Deserialize;
use std::sync::Arc;
use subtle::ConstantTimeEq;

pub(crate) mod case;
pub(crate) mod case_view;
pub(crate) mod display;
pub(crate) mod queue;
pub(crate) mod session;
pub(crate) mod shadow;
pub(crate) mod stats;

use case::*;
use queue::*;
use session::*;
use shadow::*;
use stats::*;

type AppState = Arc<Service>;

const SESSION_COOKIE: &str = "credence_session";
const LOGIN_CSRF_COOKIE: &str = "credence_login_csrf";
const STYLESHEET: &str = include_str!("../../static/style.css");

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/review", get(queue_page))
        .route("/review/login", get(login_page).post(login))
        .route("/review/logout", post(logout))
        .route("/review/stats", get(stats_page))
        .route("/review/monitoring", get(monitoring_page))
        .route("/review/shadow", get(shadow_page))
        .route("/review/cases/{id}", get(case_page))
        .route("/review/cases/{id}/reveal", post(reveal))
        .route("/review/cases/{id}/act", post(act))
        .route("/review/static/style.css", get(stylesheet))
}

fn random_hex() -> String {
    let mut bytes = [0u8; 32];
    // Without randomness there can be no session; an empty token never matches.
    if getrandom::fill(&mut bytes).is_err() {
        return String::new();
    }
    hex::encode(bytes)
}

fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(key, _)| *key == name)
        .map(|(_, value)| value)
        .filter(|value| !value.is_empty())
}

fn redirect(to: &str) -> Response {
    let mut response = StatusCode::SEE_OTHER.into_response();
    if let Ok(location) = HeaderValue::from_str(to) {
        response.headers_mut().insert(header::LOCATION, location);
    }
    response
}

fn page(status: StatusCode, template: &impl Template) -> Response {
    match template.render() {
        Ok(html) => (status, Html(html)).into_response(),
        Err(error) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("cannot render the page: {error}"),
        )
            .into_response(),
    }
}

fn plain(status: StatusCode, message: &str) -> Response {
    (status, message.to_string()).into_response()
}

fn time(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|t| t.format("%Y-%m-%d %H:%M UTC").to_string())
        .unwrap_or_default()
}

/// The signed-in reviewer of a request.
struct SignedIn {
    session: SessionRecord,
    user: UserRecord,
}

impl SignedIn {
    /// The strategies (products) the user works; `None`: every strategy.
    fn strategy_filter(&self) -> Option<Vec<String>> {
        (!self.user.strategies.is_empty()).then(|| self.user.strategies.clone())
    }

    /// Whether the user works strategy `name`.
    fn may_use(&self, name: &str) -> bool {
        self.user.strategies.is_empty() || self.user.strategies.iter().any(|s| s == name)
    }

    fn reviewer(&self) -> Reviewer {
        Reviewer {
            user: self.user.username.clone(),
            role: if self.user.role == "senior_reviewer" {
                ReviewerRole::SeniorReviewer
            } else {
                ReviewerRole::Reviewer
            },
        }
    }

    /// Whether a form carries this session's CSRF token.
    fn csrf_ok(&self, token: Option<&str>) -> bool {
        token.is_some_and(|token| {
            bool::from(token.as_bytes().ct_eq(self.session.csrf_token.as_bytes()))
        })
    }
}

/// The answer to a form without the session's CSRF token.
fn csrf_refused() -> Response {
    plain(
        StatusCode::FORBIDDEN,
        "this form is missing its security token or it has expired; reload the page and try again",
    )
}

async fn signed_in(service: &Service, headers: &HeaderMap) -> Result<SignedIn, Response> {
    let token = cookie(headers, SESSION_COOKIE).ok_or_else(|| redirect("/review/login"))?;
    let hash = credence_store::chain::sha256_hex(token.as_bytes());
    let session = service
        .store
        .session(&hash)
        .await
        .ok()
        .flatten()
        .ok_or_else(|| redirect("/review/login"))?;
    if session.expires_at_ms <= service.now_ms() {
        let _ = service.store.delete_session(&hash).await;
        return Err(redirect("/review/login?expired=1"));
    }
    let user = service
        .store
        .user(&session.username)
        .await
        .ok()
        .flatten()
        .filter(|user| user.disabled_at_ms.is_none())
        .ok_or_else(|| redirect("/review/login"))?;
    Ok(SignedIn { session, user })
}

/// The signed-in reviewer of a form post whose CSRF token matches the session's.
async fn signed_form(
    service: &Service,
    headers: &HeaderMap,
    csrf: Option<&str>,
) -> Result<SignedIn, Response> {
    let signed = signed_in(service, headers).await?;
    if !signed.csrf_ok(csrf) {
        return Err(csrf_refused());
    }
    Ok(signed)
}

#[derive(Deserialize, utoipa::ToSchema)]
struct CsrfForm {
    csrf: Option<String>,
}

/// The workbench's one stylesheet.
#[utoipa::path(get, path = "/review/static/style.css", tag = "workbench",
    responses((status = 200, description = "CSS", content_type = "text/css")))]
async fn stylesheet() -> Response {
    let mut response = STYLESHEET.into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/css; charset=utf-8"),
    );
    response
}

async fn waiting_cases(
    service: &Service,
    strategies: Option<Vec<String>>,
) -> Result<Vec<CaseView>, ApiError> {
    let all = service
        .cases
        .list(CaseQuery {
            strategies,
            limit: 10_000,
            ..Default::default()
        })
        .await?;
    Ok(all)
}

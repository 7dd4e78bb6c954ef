//! The review workbench: server-rendered pages under `/review` for the people who work the
//! queue all day. Sign-in with a password (argon2) gives an HttpOnly, SameSite=Strict session
//! cookie that expires; every form carries the session's CSRF token. Pages call the same
//! `Cases` service as `/v1/cases`, so the page and the API cannot disagree.

use crate::cases::{policy_for, CaseView};
use crate::error::ApiError;
use crate::mask::mask_text;
use crate::Service;
use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Form, Router};
use credence_review::{CaseState, Command, Proposal, Reviewer, ReviewerRole, Verdict};
use credence_store::{CaseQuery, DecisionQuery, NewAuditEvent, SessionRecord, UserRecord};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::sync::Arc;
use subtle::ConstantTimeEq;

type AppState = Arc<Service>;

const SESSION_COOKIE: &str = "credence_session";
const LOGIN_CSRF_COOKIE: &str = "credence_login_csrf";
const STYLESHEET: &str = include_str!("../static/style.css");

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/review", get(queue_page))
        .route("/review/login", get(login_page).post(login))
        .route("/review/logout", post(logout))
        .route("/review/stats", get(stats_page))
        .route("/review/monitoring", get(monitoring_page))
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

#[derive(Template)]
#[template(path = "login.html")]
struct LoginPage {
    csrf: String,
    error: Option<String>,
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
struct LoginQuery {
    /// Set when a session expired: the page says so.
    expired: Option<String>,
}

/// The sign-in form.
#[utoipa::path(get, path = "/review/login", tag = "workbench", params(LoginQuery),
    responses((status = 200, description = "The sign-in page", content_type = "text/html")))]
async fn login_page(State(service): State<AppState>, Query(query): Query<LoginQuery>) -> Response {
    let csrf = random_hex();
    let error = query
        .expired
        .map(|_| "Your session expired; sign in again.".to_string());
    let mut response = page(
        StatusCode::OK,
        &LoginPage {
            csrf: csrf.clone(),
            error,
        },
    );
    set_cookie(&service, &mut response, LOGIN_CSRF_COOKIE, &csrf, 600);
    response
}

/// Sets a workbench cookie: HttpOnly, SameSite=Strict, and Secure when the service says so
/// (`ServiceLimits::secure_cookies`, on by default behind an `https://` public URL).
fn set_cookie(
    service: &Service,
    response: &mut Response,
    name: &str,
    value: &str,
    max_age_seconds: u64,
) {
    let secure = if service.limits.secure_cookies {
        "; Secure"
    } else {
        ""
    };
    let cookie = format!(
        "{name}={value}; HttpOnly; SameSite=Strict; Path=/review; Max-Age={max_age_seconds}{secure}"
    );
    if let Ok(value) = HeaderValue::from_str(&cookie) {
        response.headers_mut().append(header::SET_COOKIE, value);
    }
}

#[derive(Deserialize, utoipa::ToSchema)]
struct LoginForm {
    csrf: Option<String>,
    username: String,
    password: String,
}

/// The sign-in page again, with a message, a fresh form token and `status`.
fn login_again(service: &Service, status: StatusCode, message: String) -> Response {
    let csrf = random_hex();
    let mut response = page(
        status,
        &LoginPage {
            csrf: csrf.clone(),
            error: Some(message),
        },
    );
    set_cookie(service, &mut response, LOGIN_CSRF_COOKIE, &csrf, 600);
    response
}

/// Signs a reviewer in: a session cookie and a redirect to the queue.
#[utoipa::path(post, path = "/review/login", tag = "workbench",
    request_body(content = LoginForm, content_type = "application/x-www-form-urlencoded"),
    responses((status = 303, description = "Signed in: to the queue"),
              (status = 401, description = "Unknown username or wrong password", content_type = "text/html"),
              (status = 403, description = "The form's token is missing or expired", content_type = "text/plain"),
              (status = 429, description = "Too many failed sign-ins: back-off or lockout", content_type = "text/html"),
              (status = 503, description = "Sign-in is busy or the store cannot take the session", content_type = "text/html")))]
async fn login(
    State(service): State<AppState>,
    peer: Option<axum::Extension<crate::server::PeerAddress>>,
    headers: HeaderMap,
    Form(form): Form<LoginForm>,
) -> Response {
    let expected = cookie(&headers, LOGIN_CSRF_COOKIE).unwrap_or_default();
    let given = form.csrf.as_deref().unwrap_or_default();
    if expected.is_empty() || !bool::from(expected.as_bytes().ct_eq(given.as_bytes())) {
        return plain(
            StatusCode::FORBIDDEN,
            "the sign-in form is missing its security token or it has expired; reload the page",
        );
    }
    // Throttling first: an attempt too soon after failures costs no password hash.
    let address = peer.map_or_else(|| "unknown".to_string(), |p| p.0 .0.ip().to_string());
    let now = service.now_ms();
    if let Err(refusal) = service.sign_in.check(&form.username, &address, now) {
        let seconds = refusal.retry_after_ms().div_ceil(1000).max(1);
        let mut response = login_again(
            &service,
            StatusCode::TOO_MANY_REQUESTS,
            match refusal {
                crate::sign_in::Refusal::Locked { .. } => format!(
                    "Too many failed sign-ins: this sign-in is locked for {} more minute(s).",
                    seconds.div_ceil(60)
                ),
                crate::sign_in::Refusal::BackOff { .. } => format!(
                    "Too many failed sign-ins: wait {seconds} second(s) before trying again."
                ),
            },
        );
        if let Ok(value) = HeaderValue::from_str(&seconds.to_string()) {
            response.headers_mut().insert(header::RETRY_AFTER, value);
        }
        return response;
    }
    // Password hashing is bounded in concurrency so guessing cannot take the cores decisions
    // need; an attempt that cannot hash within a second is told to retry.
    let hashing = match tokio::time::timeout(
        std::time::Duration::from_secs(1),
        service.password_hashing.acquire(),
    )
    .await
    {
        Ok(Ok(permit)) => permit,
        _ => {
            return login_again(
                &service,
                StatusCode::SERVICE_UNAVAILABLE,
                "Sign-in is busy; try again in a moment.".into(),
            )
        }
    };
    let user = service.store.user(&form.username).await.ok().flatten();
    let password = form.password.clone();
    let stored = user.as_ref().map(|u| u.password_hash.clone());
    // An unknown user costs the same argon2 work as a wrong password, so that timing does
    // not tell which usernames exist.
    let verified = tokio::task::spawn_blocking(move || match stored {
        Some(hash) => crate::users::verify_password(&password, &hash),
        None => {
            let _ = crate::users::verify_password(&password, crate::users::decoy_hash());
            false
        }
    })
    .await
    .unwrap_or(false);
    drop(hashing);
    let Some(user) = user.filter(|_| verified) else {
        tracing::info!("a sign-in to the workbench failed");
        let effect = service.sign_in.failed(&form.username, &address, now);
        let locked = match effect {
            crate::sign_in::FailureEffect::Counted => None,
            crate::sign_in::FailureEffect::LockedUser => {
                Some(("user.locked_out", form.username.clone()))
            }
            crate::sign_in::FailureEffect::LockedAddress => {
                Some(("sign_in.address_locked_out", address.clone()))
            }
        };
        if let Some((action, subject)) = locked {
            tracing::warn!(action, "workbench sign-ins locked after repeated failures");
            let limits = service.sign_in.limits();
            let event = NewAuditEvent {
                at_ms: now,
                actor: "workbench".into(),
                action: action.into(),
                subject,
                detail: serde_json::json!({
                    "address": address,
                    "lockout_ms": limits.lockout_ms,
                }),
            };
            if let Err(error) = service.store.append_audit(event).await {
                tracing::error!(%error, "cannot record a sign-in lockout in the audit");
            }
        }
        return login_again(
            &service,
            StatusCode::UNAUTHORIZED,
            "Unknown username or wrong password.".into(),
        );
    };
    service.sign_in.succeeded(&form.username, &address);
    let token = random_hex();
    let now = service.now_ms();
    let ttl = service.limits.session_ttl_seconds;
    let session = SessionRecord {
        token_sha256: credence_store::chain::sha256_hex(token.as_bytes()),
        username: user.username.clone(),
        csrf_token: random_hex(),
        created_at_ms: now,
        expires_at_ms: now + (ttl as i64) * 1000,
    };
    if let Err(error) = service.store.insert_session(session).await {
        return plain(
            StatusCode::SERVICE_UNAVAILABLE,
            &format!("cannot sign in now: {error}"),
        );
    }
    let mut response = redirect("/review");
    set_cookie(&service, &mut response, SESSION_COOKIE, &token, ttl);
    set_cookie(&service, &mut response, LOGIN_CSRF_COOKIE, "", 0);
    response
}

#[derive(Deserialize, utoipa::ToSchema)]
struct CsrfForm {
    csrf: Option<String>,
}

/// Ends the session.
#[utoipa::path(post, path = "/review/logout", tag = "workbench",
    request_body(content = CsrfForm, content_type = "application/x-www-form-urlencoded"),
    responses((status = 303, description = "Signed out: to the sign-in page"),
              (status = 403, description = "The form's token does not match the session", content_type = "text/plain")))]
async fn logout(
    State(service): State<AppState>,
    headers: HeaderMap,
    Form(form): Form<CsrfForm>,
) -> Response {
    let signed = match signed_form(&service, &headers, form.csrf.as_deref()).await {
        Ok(signed) => signed,
        Err(response) => return response,
    };
    let _ = service
        .store
        .delete_session(&signed.session.token_sha256)
        .await;
    let mut response = redirect("/review/login");
    set_cookie(&service, &mut response, SESSION_COOKIE, "", 0);
    response
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

struct QueueCount {
    queue: String,
    waiting: usize,
    breached: usize,
    selected: bool,
}

struct QueueRow {
    id: String,
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
struct QueuePage {
    username: String,
    role: String,
    csrf: String,
    counts: Vec<QueueCount>,
    rows: Vec<QueueRow>,
    /// (state, selected)
    states: Vec<(String, bool)>,
    breached_only: bool,
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
struct QueueFilter {
    queue: Option<String>,
    state: Option<String>,
    breached: Option<String>,
}

async fn waiting_cases(service: &Service) -> Result<Vec<CaseView>, ApiError> {
    let all = service
        .cases
        .list(CaseQuery {
            limit: 10_000,
            ..Default::default()
        })
        .await?;
    Ok(all)
}

fn counts_of(cases: &[CaseView]) -> Vec<QueueCount> {
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
async fn queue_page(
    State(service): State<AppState>,
    headers: HeaderMap,
    Query(filter): Query<QueueFilter>,
) -> Response {
    let signed = match signed_in(&service, &headers).await {
        Ok(signed) => signed,
        Err(response) => return response,
    };
    let cases = match waiting_cases(&service).await {
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

struct StatsRow {
    queue: String,
    waiting: usize,
    breached: usize,
    decided: usize,
    approved: usize,
    declined: usize,
    median_minutes: String,
}

struct MonthRow {
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

struct GridRow {
    cohort: String,
    cells: Vec<String>,
}

struct RollRow {
    bucket: String,
    cells: Vec<String>,
}

#[derive(Template)]
#[template(path = "monitoring.html")]
struct MonitoringPage {
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

fn percent(rate: f64) -> String {
    format!("{:.1}%", rate * 100.0)
}

/// Rates, drift, vintages and roll rates of the application flow, for everyone signed in
/// (aggregates only: no customer appears on this page).
/// Monitoring: rates by month, PSI, vintages and roll rates.
#[utoipa::path(get, path = "/review/monitoring", tag = "workbench",
    responses((status = 200, description = "The monitoring page", content_type = "text/html"),
              (status = 303, description = "Not signed in: to the sign-in page")))]
async fn monitoring_page(State(service): State<AppState>, headers: HeaderMap) -> Response {
    let signed = match signed_in(&service, &headers).await {
        Ok(signed) => signed,
        Err(response) => return response,
    };
    let flow = "application".to_string();
    let limit = 10_000;
    let today = service.clock.now().date_naive();
    let report = match crate::monitoring::report(&service.store, &flow, limit, today).await {
        Ok(report) => report,
        Err(error) => return plain(error.status(), &error.message),
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
struct StatsPage {
    username: String,
    role: String,
    csrf: String,
    rows: Vec<StatsRow>,
}

/// Review statistics.
#[utoipa::path(get, path = "/review/stats", tag = "workbench",
    responses((status = 200, description = "The statistics page", content_type = "text/html"),
              (status = 303, description = "Not signed in: to the sign-in page")))]
async fn stats_page(State(service): State<AppState>, headers: HeaderMap) -> Response {
    let signed = match signed_in(&service, &headers).await {
        Ok(signed) => signed,
        Err(response) => return response,
    };
    let cases = match waiting_cases(&service).await {
        Ok(cases) => cases,
        Err(error) => return plain(error.status(), &error.message),
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

#[derive(Template)]
#[template(path = "case.html")]
struct CasePage {
    username: String,
    role: String,
    csrf: String,
    error: Option<String>,
    case_id: String,
    decision_id: String,
    status: String,
    queue: String,
    priority: i64,
    due: String,
    breached: bool,
    claimed_by: Option<String>,
    outcome: String,
    offer: String,
    reasons: Vec<(String, String)>,
    flags: String,
    strategy: String,
    steps: Vec<(String, String)>,
    /// (field, value, masked)
    fields: Vec<(String, String, bool)>,
    revealed: bool,
    history: Vec<(String, String, String)>,
    final_summary: Option<String>,
    pending_summary: Option<String>,
    can_claim: bool,
    mine: bool,
    awaiting: bool,
    limit_bounds: String,
    apr_bounds: String,
    default_limit: String,
    default_apr: String,
    four_eyes: Option<String>,
    events: Vec<(String, String, String, String)>,
    /// The credit account an in-loan decision was about, as it is now.
    account: Option<crate::accounts::AccountView>,
    /// (event time, type, detail), newest first.
    account_events: Vec<(String, String, String)>,
}

/// One account event as a line of the case page.
fn account_event_line(event: &serde_json::Value) -> (String, String, String) {
    let detail = event
        .as_object()
        .map(|fields| {
            fields
                .iter()
                .filter(|(name, _)| {
                    !matches!(name.as_str(), "id" | "time_ms" | "type" | "received_at_ms")
                })
                .map(|(name, value)| {
                    format!(
                        "{name} {}",
                        value
                            .as_str()
                            .map(str::to_string)
                            .unwrap_or_else(|| value.to_string())
                    )
                })
                .collect::<Vec<_>>()
                .join(" · ")
        })
        .unwrap_or_default();
    (
        event["time_ms"].as_i64().map(time).unwrap_or_default(),
        event["type"].as_str().unwrap_or_default().to_string(),
        detail,
    )
}

fn summary(decision: &credence_review::ReviewDecision) -> String {
    let p = &decision.proposal;
    let verdict = serde_json::to_value(p.verdict)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default();
    let mut parts = vec![verdict];
    if let Some(limit) = p.limit {
        parts.push(format!("limit {limit}"));
    }
    if let Some(apr) = p.apr {
        parts.push(format!("APR {apr}"));
    }
    if !p.reasons.is_empty() {
        parts.push(format!("reasons {}", p.reasons.join(", ")));
    }
    parts.push(format!("by {} at {}", decision.by, time(decision.at_ms)));
    parts.push(format!("note: {}", p.note));
    parts.join(" · ")
}

fn step_summary(step: &serde_json::Value) -> String {
    let kind = step["kind"].as_str().unwrap_or_default();
    match kind {
        "features" => match step["values"].as_object() {
            Some(values) if !values.is_empty() => values
                .iter()
                .map(|(name, value)| {
                    let shown = value
                        .as_str()
                        .map(str::to_string)
                        .unwrap_or_else(|| value.to_string());
                    format!("{name} = {shown}")
                })
                .collect::<Vec<_>>()
                .join(" · "),
            _ => "features".into(),
        },
        "rule_set" => {
            let hits: Vec<String> = step["hits"]
                .as_array()
                .map(|hits| {
                    hits.iter()
                        .map(|h| {
                            format!(
                                "{} → {} ({})",
                                h["rule"].as_str().unwrap_or(""),
                                h["outcome"].as_str().unwrap_or(""),
                                h["reason"].as_str().unwrap_or("")
                            )
                        })
                        .collect()
                })
                .unwrap_or_default();
            if hits.is_empty() {
                "rules: none hit".into()
            } else {
                format!("rules hit: {}", hits.join("; "))
            }
        }
        "scorecard" => format!(
            "score {}{}",
            step["score"]
                .as_str()
                .map(str::to_string)
                .unwrap_or_else(|| step["score"].to_string()),
            step["probability_of_default"]
                .as_f64()
                .map(|p| format!(", probability of default {p:.4}"))
                .unwrap_or_default()
        ),
        "model" => format!(
            "{} {}: probability {}",
            step["model"].as_str().unwrap_or(""),
            step["model_version"].as_str().unwrap_or(""),
            step["probability"]
        ),
        "table" => format!("table rows {}", step["rows"]),
        "matrix" => format!("matrix row {} column {}", step["row"], step["column"]),
        "branch" => format!("branch {}", step["case"].as_str().unwrap_or("")),
        "champion_challenger" => format!(
            "arm {} (bucket {})",
            step["arm"].as_str().unwrap_or(""),
            step["bucket"]
        ),
        other => other.to_string(),
    }
}

async fn render_case(
    service: &Service,
    signed: &SignedIn,
    id: &str,
    revealed: bool,
    error: Option<(StatusCode, String)>,
) -> Response {
    let view = match service.cases.get(id).await {
        Ok(view) => view,
        Err(error) => return plain(error.status(), &error.message),
    };
    let stored = match service.store.decision(&view.case.decision_id).await {
        Ok(Some(stored)) => stored,
        _ => return plain(StatusCode::NOT_FOUND, "the case's decision is missing"),
    };
    let decision: serde_json::Value =
        serde_json::from_str(&stored.record.decision).unwrap_or_default();
    let input: serde_json::Value = serde_json::from_str(&stored.record.input).unwrap_or_default();
    let strategy = service
        .strategies
        .compiled(&stored.record.strategy_version)
        .await
        .ok();
    let personal = |name: &str| {
        strategy
            .as_ref()
            .and_then(|s| s.flow(&stored.record.flow).ok())
            .is_some_and(|flow| {
                flow.schema
                    .fields
                    .iter()
                    .any(|(f, spec)| &**f == name && spec.personal)
            })
    };
    // The compact trace holds no intermediate values; replaying the recorded input with the
    // version and date that decided it (deterministic) shows the derived features too.
    let full_steps: Option<Vec<serde_json::Value>> = strategy.as_ref().and_then(|s| {
        let as_of = chrono::NaiveDate::parse_from_str(&stored.record.as_of, "%Y-%m-%d").ok()?;
        let options = credence_engine::EvalOptions {
            as_of,
            language: stored.record.language.clone(),
            full_trace: true,
        };
        let replayed = s.decide_json(&stored.record.flow, &input, &options).ok()?;
        serde_json::to_value(&replayed.trace.steps)
            .ok()?
            .as_array()
            .cloned()
    });
    let fields = input
        .as_object()
        .map(|map| {
            map.iter()
                .map(|(name, value)| {
                    let text = value
                        .as_str()
                        .map(str::to_string)
                        .unwrap_or_else(|| value.to_string());
                    let mask = personal(name) && !revealed;
                    (
                        name.clone(),
                        if mask { mask_text(&text) } else { text },
                        mask,
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    let history = match &stored.record.customer_id {
        Some(customer) => service
            .decisions
            .list(DecisionQuery {
                customer_id: Some(customer.clone()),
                limit: 11,
                ..Default::default()
            })
            .await
            .map(|page| {
                page.items
                    .into_iter()
                    .filter(|d| d.id != stored.record.id)
                    .take(10)
                    .map(|d| (time(d.created_at_ms), d.flow, d.outcome))
                    .collect()
            })
            .unwrap_or_default(),
        None => Vec::new(),
    };
    // A drawdown or early-warning referral is about an account: show it as it is now.
    let account = match input["account_id"].as_str() {
        Some(account_id) => service.accounts.get(account_id).await.ok(),
        None => None,
    };
    let account_events = match &account {
        Some(account) => service
            .accounts
            .events(&account.id, 10)
            .await
            .map(|events| events.iter().map(account_event_line).collect())
            .unwrap_or_default(),
        None => Vec::new(),
    };
    let policy = strategy.as_ref().map(|s| policy_for(s));
    let bounds = |min: Option<rust_decimal::Decimal>, max: Option<rust_decimal::Decimal>| {
        format!(
            "{} – {}",
            min.map(|m| m.to_string()).unwrap_or_else(|| "0".into()),
            max.map(|m| m.to_string())
                .unwrap_or_else(|| "no cap".into())
        )
    };
    let me = signed.user.username.as_str();
    let reviewer = signed.reviewer();
    let case = &view.case;
    let awaiting = case.state == CaseState::AwaitingConfirmation;
    let first_is_me = case.pending.as_ref().is_some_and(|p| p.by == me);
    let can_claim = view.claimed_by.is_none()
        && case.state != CaseState::Decided
        && !(awaiting && first_is_me)
        && !(case.state == CaseState::Escalated && reviewer.role != ReviewerRole::SeniorReviewer);
    let text = |v: &serde_json::Value| v.as_str().map(str::to_string).unwrap_or_default();
    let offer = match (decision["limit"].as_str(), decision["apr"].as_str()) {
        (Some(limit), Some(apr)) => format!(
            "limit {limit}, APR {apr}, {} months",
            decision["term_months"]
        ),
        _ => "none".into(),
    };
    let (status, error) = match error {
        Some((status, message)) => (status, Some(message)),
        None => (StatusCode::OK, None),
    };
    page(
        status,
        &CasePage {
            username: me.to_string(),
            role: signed.user.role.clone(),
            csrf: signed.session.csrf_token.clone(),
            error,
            case_id: case.id.clone(),
            decision_id: case.decision_id.clone(),
            status: view.status.to_string(),
            queue: case.queue.clone(),
            priority: case.priority,
            due: time(case.due_at_ms),
            breached: view.sla_breached,
            claimed_by: view.claimed_by.clone(),
            outcome: text(&decision["outcome"]),
            offer,
            reasons: decision["reasons"]
                .as_array()
                .map(|r| {
                    r.iter()
                        .map(|r| (text(&r["code"]), text(&r["text"])))
                        .collect()
                })
                .unwrap_or_default(),
            flags: decision["flags"]
                .as_array()
                .map(|f| f.iter().map(text).collect::<Vec<_>>().join(", "))
                .unwrap_or_default(),
            strategy: format!(
                "{} {}",
                text(&decision["strategy"]),
                &stored.record.strategy_version[..12.min(stored.record.strategy_version.len())]
            ),
            steps: full_steps
                .or_else(|| decision["trace"]["steps"].as_array().cloned())
                .map(|steps| {
                    steps
                        .iter()
                        .map(|s| (text(&s["step"]), step_summary(s)))
                        .collect()
                })
                .unwrap_or_default(),
            fields,
            revealed,
            history,
            account,
            account_events,
            final_summary: case.decision.as_ref().map(|d| {
                let mut s = summary(d);
                if let Some(by) = &case.confirmed_by {
                    s.push_str(&format!(" · confirmed by {by}"));
                }
                s
            }),
            pending_summary: case.pending.as_ref().map(summary),
            can_claim,
            mine: view.claimed_by.as_deref() == Some(me),
            awaiting,
            limit_bounds: policy
                .as_ref()
                .map(|p| bounds(p.limit_min, p.limit_max))
                .unwrap_or_default(),
            apr_bounds: policy
                .as_ref()
                .map(|p| bounds(p.apr_min, p.apr_max))
                .unwrap_or_default(),
            default_limit: decision["limit"]
                .as_str()
                .map(str::to_string)
                .or_else(|| case.requested_amount.map(|a| a.to_string()))
                .unwrap_or_default(),
            default_apr: text(&decision["apr"]),
            four_eyes: policy
                .as_ref()
                .and_then(|p| p.four_eyes_above)
                .map(|t| t.to_string()),
            events: case
                .history
                .iter()
                .map(|e| {
                    (
                        time(e.at_ms),
                        e.actor.clone(),
                        e.action.clone(),
                        e.note.clone().unwrap_or_default(),
                    )
                })
                .collect(),
        },
    )
}

/// One case: the referral, the application, the trace and the actions.
#[utoipa::path(get, path = "/review/cases/{id}", tag = "workbench", params(("id" = String, Path)),
    responses((status = 200, description = "The case page", content_type = "text/html"),
              (status = 303, description = "Not signed in: to the sign-in page"),
              (status = 404, description = "No such case", content_type = "text/plain")))]
async fn case_page(
    State(service): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    match signed_in(&service, &headers).await {
        Ok(signed) => render_case(&service, &signed, &id, false, None).await,
        Err(response) => response,
    }
}

/// Shows a case's personal identifiers unmasked; the reveal is audited.
#[utoipa::path(post, path = "/review/cases/{id}/reveal", tag = "workbench", params(("id" = String, Path)),
    request_body(content = CsrfForm, content_type = "application/x-www-form-urlencoded"),
    responses((status = 200, description = "The case page, unmasked", content_type = "text/html"),
              (status = 303, description = "Not signed in: to the sign-in page"),
              (status = 403, description = "The form's token does not match the session", content_type = "text/plain"),
              (status = 404, description = "No such case", content_type = "text/plain")))]
async fn reveal(
    State(service): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Form(form): Form<CsrfForm>,
) -> Response {
    let signed = match signed_form(&service, &headers, form.csrf.as_deref()).await {
        Ok(signed) => signed,
        Err(response) => return response,
    };
    let audit = NewAuditEvent {
        at_ms: service.now_ms(),
        actor: signed.user.username.clone(),
        action: "personal.reveal".into(),
        subject: id.clone(),
        detail: serde_json::json!({"case": id}),
    };
    if let Err(error) = service.store.append_audit(audit).await {
        return plain(
            StatusCode::SERVICE_UNAVAILABLE,
            &format!("the reveal could not be logged, so it is refused: {error}"),
        );
    }
    render_case(&service, &signed, &id, true, None).await
}

#[derive(Deserialize, utoipa::ToSchema)]
struct ActForm {
    csrf: Option<String>,
    action: String,
    verdict: Option<String>,
    limit: Option<String>,
    apr: Option<String>,
    reasons: Option<String>,
    note: Option<String>,
}

fn form_command(form: &ActForm) -> Result<Command, String> {
    let note = form.note.clone().unwrap_or_default();
    let decimal =
        |field: &str, text: &Option<String>| -> Result<Option<rust_decimal::Decimal>, String> {
            match text.as_deref().map(str::trim).filter(|t| !t.is_empty()) {
                None => Ok(None),
                Some(t) => t
                    .parse::<rust_decimal::Decimal>()
                    .map(Some)
                    .map_err(|_| format!("{field}: {t:?} is not a number")),
            }
        };
    Ok(match form.action.as_str() {
        "claim" => Command::Claim,
        "release" => Command::Release,
        "decide" => {
            let verdict = match form.verdict.as_deref() {
                Some("approve") => Verdict::Approve,
                Some("counter_offer") => Verdict::CounterOffer,
                Some("decline") => Verdict::Decline,
                _ => return Err("choose approve, counter-offer or decline".into()),
            };
            Command::Decide(Proposal {
                verdict,
                limit: if verdict == Verdict::Decline {
                    None
                } else {
                    decimal("limit", &form.limit)?
                },
                apr: if verdict == Verdict::Decline {
                    None
                } else {
                    decimal("apr", &form.apr)?
                },
                reasons: form
                    .reasons
                    .as_deref()
                    .unwrap_or_default()
                    .split(',')
                    .map(str::trim)
                    .filter(|r| !r.is_empty())
                    .map(str::to_string)
                    .collect(),
                note,
            })
        }
        "confirm" => Command::Confirm { note },
        "send_back" => Command::SendBack { note },
        "request_info" => Command::RequestInfo { note },
        "escalate" => Command::Escalate { note },
        other => return Err(format!("unknown action {other}")),
    })
}

/// A reviewer's command on a case: claim, decide, request information, escalate, confirm.
#[utoipa::path(post, path = "/review/cases/{id}/act", tag = "workbench", params(("id" = String, Path)),
    request_body(content = ActForm, content_type = "application/x-www-form-urlencoded"),
    responses((status = 303, description = "Done: back to the case"),
              (status = 403, description = "The form's token does not match the session", content_type = "text/plain"),
              (status = 404, description = "No such case", content_type = "text/plain"),
              (status = 422, description = "The command is not allowed now or is outside the strategy's bounds", content_type = "text/html")))]
async fn act(
    State(service): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Form(form): Form<ActForm>,
) -> Response {
    let signed = match signed_form(&service, &headers, form.csrf.as_deref()).await {
        Ok(signed) => signed,
        Err(response) => return response,
    };
    let command = match form_command(&form) {
        Ok(command) => command,
        Err(message) => {
            return render_case(
                &service,
                &signed,
                &id,
                false,
                Some((StatusCode::UNPROCESSABLE_ENTITY, message)),
            )
            .await
        }
    };
    match service.cases.act(&id, command, &signed.reviewer()).await {
        Ok(_) => redirect(&format!("/review/cases/{id}")),
        Err(error) => {
            render_case(
                &service,
                &signed,
                &id,
                false,
                Some((error.status(), error.message)),
            )
            .await
        }
    }
}

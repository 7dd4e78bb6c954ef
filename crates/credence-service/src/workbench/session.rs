//! Workbench sign-in and sign-out: the login page and form (CSRF cookie, back-off, argon2), session cookies.

use super::*;
use crate::Service;
use askama::Template;
use axum::extract::{Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::Response;
use axum::Form;
use credence_store::{NewAuditEvent, SessionRecord};
use serde::Deserialize;

#[derive(Template)]
#[template(path = "login.html")]
pub(super) struct LoginPage {
    csrf: String,
    error: Option<String>,
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub(super) struct LoginQuery {
    /// Set when a session expired: the page says so.
    expired: Option<String>,
}

/// The sign-in form.
#[utoipa::path(get, path = "/review/login", tag = "workbench", params(LoginQuery),
    responses((status = 200, description = "The sign-in page", content_type = "text/html")))]
pub(super) async fn login_page(
    State(service): State<AppState>,
    Query(query): Query<LoginQuery>,
) -> Response {
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
pub(super) fn set_cookie(
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
pub(super) struct LoginForm {
    csrf: Option<String>,
    username: String,
    password: String,
}

/// The sign-in page again, with a message, a fresh form token and `status`.
pub(super) fn login_again(service: &Service, status: StatusCode, message: String) -> Response {
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
pub(super) async fn login(
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
    if user.disabled_at_ms.is_some() {
        return login_again(
            &service,
            StatusCode::FORBIDDEN,
            "This account is disabled; ask an administrator to enable it.".into(),
        );
    }
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

/// Ends the session.
#[utoipa::path(post, path = "/review/logout", tag = "workbench",
    request_body(content = CsrfForm, content_type = "application/x-www-form-urlencoded"),
    responses((status = 303, description = "Signed out: to the sign-in page"),
              (status = 403, description = "The form's token does not match the session", content_type = "text/plain")))]
pub(super) async fn logout(
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

//! In-process tests of every `/v1` route × every role: no key is 401, a role the action's table does not allow is 403, an allowed role gets past the check; the operations routes need no key.
//!
//! The router is called with `tower::ServiceExt::oneshot` over a service on the in-memory store:
//! no process, no socket, no files.

use axum::body::Body;
use axum::http::{header, Method, Request, StatusCode};
use credence_service::{issue_key, router, Action, Role, Service, SystemClock};
use credence_store::{MemoryStore, NewAuditEvent, Store};
use std::sync::Arc;
use tower::ServiceExt;

/// Every `/v1` route (method, an example path) and the action its handler requires.
const ROUTES: &[(&str, &str, Action)] = &[
    ("POST", "/v1/flows/application/decisions", Action::Decide),
    ("POST", "/v1/decisions/application", Action::Decide),
    ("GET", "/v1/decisions", Action::ListDecisions),
    ("GET", "/v1/decisions/dec_0000", Action::ReadDecision),
    (
        "POST",
        "/v1/decisions/dec_0000/replay",
        Action::ReplayDecision,
    ),
    ("POST", "/v1/strategies", Action::UploadStrategy),
    ("GET", "/v1/strategies", Action::ReadStrategies),
    ("GET", "/v1/strategies/active", Action::ReadStrategies),
    ("GET", "/v1/strategies/0123abcd", Action::ReadStrategies),
    (
        "POST",
        "/v1/strategies/0123abcd/approve",
        Action::ApproveStrategy,
    ),
    (
        "POST",
        "/v1/strategies/0123abcd/activate",
        Action::ActivateStrategy,
    ),
    ("POST", "/v1/strategies/rollback", Action::ActivateStrategy),
    ("GET", "/v1/keys", Action::ManageKeys),
    ("POST", "/v1/keys", Action::ManageKeys),
    ("DELETE", "/v1/keys/000000000000", Action::ManageKeys),
    ("GET", "/v1/audit", Action::ReadAudit),
    ("GET", "/v1/webhooks", Action::ManageWebhooks),
    ("POST", "/v1/webhooks", Action::ManageWebhooks),
    ("DELETE", "/v1/webhooks/wh_0000", Action::ManageWebhooks),
    ("GET", "/v1/cases", Action::ReviewCases),
    ("GET", "/v1/cases/case_0000", Action::ReviewCases),
    ("POST", "/v1/cases/case_0000/claim", Action::ReviewCases),
    ("POST", "/v1/cases/next", Action::ReviewCases),
    ("GET", "/v1/accounts", Action::ReadAccounts),
    ("POST", "/v1/accounts", Action::OperateAccounts),
    ("GET", "/v1/accounts/acc_0000", Action::ReadAccounts),
    ("GET", "/v1/accounts/acc_0000/events", Action::ReadAccounts),
    (
        "POST",
        "/v1/accounts/acc_0000/events",
        Action::OperateAccounts,
    ),
    (
        "POST",
        "/v1/accounts/acc_0000/drawdowns",
        Action::OperateAccounts,
    ),
    (
        "POST",
        "/v1/accounts/acc_0000/review",
        Action::OperateAccounts,
    ),
    (
        "POST",
        "/v1/accounts/acc_0000/status",
        Action::ChangeAccountStatus,
    ),
    ("GET", "/v1/monitoring", Action::ReadMonitoring),
];

/// A service over a fresh store, and a key for each role.
struct Harness {
    service: Arc<Service>,
    keys: Vec<(Role, String)>,
}

async fn harness() -> Harness {
    let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
    let service = Service::new(store.clone(), Arc::new(SystemClock), Default::default());
    let mut keys = Vec::new();
    for role in Role::ALL {
        let key = issue_key(&format!("{}-user", role.as_str()), &[role], "test", 0).unwrap();
        let audit = NewAuditEvent {
            at_ms: 0,
            actor: "test".into(),
            action: "key.create".into(),
            subject: key.record.id.clone(),
            detail: serde_json::json!({}),
        };
        store.insert_key(key.record, audit).await.unwrap();
        keys.push((role, key.plaintext));
    }
    Harness { service, keys }
}

/// Calls the router once; the status and the error code of the body, if it has one.
async fn call(
    service: &Arc<Service>,
    method: &str,
    path: &str,
    key: Option<&str>,
) -> (StatusCode, String) {
    let mut request = Request::builder()
        .method(Method::from_bytes(method.as_bytes()).unwrap())
        .uri(path)
        .header(header::CONTENT_TYPE, "application/json");
    if let Some(key) = key {
        request = request.header(header::AUTHORIZATION, format!("Bearer {key}"));
    }
    let body = if method == "POST" { "{}" } else { "" };
    let response = router(service.clone())
        .oneshot(request.body(Body::from(body)).unwrap())
        .await
        .unwrap();
    let status = response.status();
    let bytes = axum::body::to_bytes(response.into_body(), 1 << 20)
        .await
        .unwrap();
    let code = serde_json::from_slice::<serde_json::Value>(&bytes)
        .ok()
        .and_then(|v| v["code"].as_str().map(str::to_string))
        .unwrap_or_default();
    (status, code)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_route_checks_its_action_for_every_role() {
    let harness = harness().await;
    let mut problems = Vec::new();
    for &(method, path, action) in ROUTES {
        let (status, code) = call(&harness.service, method, path, None).await;
        if (status, code.as_str()) != (StatusCode::UNAUTHORIZED, "unauthenticated") {
            problems.push(format!("{method} {path} without a key: {status} {code}"));
        }
        for (role, key) in &harness.keys {
            let allowed = *role == Role::Admin || action.roles().contains(role);
            let (status, code) = call(&harness.service, method, path, Some(key)).await;
            let refused = status == StatusCode::FORBIDDEN && code == "forbidden";
            if allowed == refused || status == StatusCode::UNAUTHORIZED {
                problems.push(format!(
                    "{method} {path} as {}: {status} {code} (allowed: {allowed})",
                    role.as_str()
                ));
            }
        }
    }
    assert!(problems.is_empty(), "{problems:#?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn operations_routes_need_no_key_and_unknown_routes_are_json_404() {
    let harness = harness().await;
    for path in ["/healthz", "/metrics", "/openapi.json"] {
        let (status, _) = call(&harness.service, "GET", path, None).await;
        assert_eq!(status, StatusCode::OK, "{path}");
    }
    // Not ready until a strategy version is active.
    let (status, code) = call(&harness.service, "GET", "/readyz", None).await;
    assert_eq!(
        (status, code.as_str()),
        (StatusCode::SERVICE_UNAVAILABLE, "no_active_strategy")
    );
    let (status, code) = call(&harness.service, "GET", "/v1/nothing-here", None).await;
    assert_eq!(
        (status, code.as_str()),
        (StatusCode::NOT_FOUND, "not_found")
    );
    let (status, code) = call(&harness.service, "PUT", "/v1/decisions", None).await;
    assert_eq!(
        (status, code.as_str()),
        (StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revoked_or_malformed_key_is_401() {
    let harness = harness().await;
    for key in [
        "cred_nothex_0000",
        "Basic abc",
        "cred_000000000000_0000000000000000000000000000000000000000000000000000000000000000",
    ] {
        let (status, code) = call(&harness.service, "GET", "/v1/decisions", Some(key)).await;
        assert_eq!(
            (status, code.as_str()),
            (StatusCode::UNAUTHORIZED, "unauthenticated"),
            "{key}"
        );
    }
}

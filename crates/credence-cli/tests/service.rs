//! The decision service over real HTTP: the server binary on a free port, driven like a client.

#[path = "support/server.rs"]
mod support;
#[path = "support/tls.rs"]
mod tls;

use serde_json::{json, Value};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use support::*;

fn decide(server: &Server, key: &str, body: &Value, headers: &[(&str, &str)]) -> Answer {
    post_json(
        &format!("{}/v1/decisions/application", server.url),
        key,
        body,
        headers,
    )
}

fn with_customer(customer: &str) -> Value {
    let mut input = example_input("application-approve.json");
    input["customer_id"] = json!(customer);
    input
}

#[test]
fn decide_fetch_list_and_replay_reproduces_the_decision() {
    let server = Server::start(&scratch_dir("svc-decide"), &[]);
    let key = server.key("decide,analyst", "platform");
    let answer = decide(&server, &key, &with_customer("C-list-1"), &[]);
    assert_eq!(answer.status, 200, "{}", answer.json);
    let id = answer.json["id"].as_str().unwrap().to_string();
    assert_eq!(answer.json["outcome"], "approve");
    assert_eq!(answer.json["flow"], "application");
    assert!(answer.json["trace"]["steps"].as_array().unwrap().len() > 3);

    let fetched = get(&format!("{}/v1/decisions/{id}", server.url), &key);
    assert_eq!(fetched.status, 200);
    for field in [
        "id",
        "outcome",
        "limit",
        "apr",
        "reasons",
        "trace",
        "strategy_version",
        "as_of",
    ] {
        assert_eq!(fetched.json[field], answer.json[field], "{field}");
    }
    assert_eq!(fetched.json["input"]["customer_id"], "C-list-1");
    assert_eq!(fetched.json["recorded"]["seq"], 1);

    let second = decide(&server, &key, &with_customer("C-list-1"), &[]);
    decide(&server, &key, &with_customer("C-list-other"), &[]);
    let page = get(
        &format!("{}/v1/decisions?customer_id=C-list-1&limit=1", server.url),
        &key,
    );
    assert_eq!(page.status, 200);
    assert_eq!(
        page.json["items"][0]["id"], second.json["id"],
        "newest first"
    );
    let cursor = page.json["next_cursor"].as_str().unwrap().to_string();
    let next = get(
        &format!(
            "{}/v1/decisions?customer_id=C-list-1&limit=1&cursor={cursor}",
            server.url
        ),
        &key,
    );
    assert_eq!(next.json["items"][0]["id"], id.as_str());
    assert!(
        next.json["next_cursor"].is_null(),
        "two decisions for this customer"
    );
    let window = get(
        &format!("{}/v1/decisions?from=2000-01-01&to=2000-01-02", server.url),
        &key,
    );
    assert_eq!(window.json["items"], json!([]));

    let replay = request(
        "POST",
        &format!("{}/v1/decisions/{id}/replay", server.url),
        Some(&key),
        &[],
        None,
    );
    assert_eq!(replay.status, 200, "{}", replay.json);
    assert_eq!(
        replay.json["diff"]["identical"], true,
        "{}",
        replay.json["diff"]
    );
    assert_eq!(replay.json["diff"]["changes"], json!([]));
    assert_eq!(replay.json["decision"]["trace"], answer.json["trace"]);
}

#[test]
fn idempotency_keys_make_retries_safe_also_when_concurrent() {
    let server = Server::start(&scratch_dir("svc-idem"), &[]);
    let key = server.key("decide,analyst", "platform");
    let body = with_customer("C-idem-1");
    let first = decide(&server, &key, &body, &[("Idempotency-Key", "retry-1")]);
    let again = decide(&server, &key, &body, &[("Idempotency-Key", "retry-1")]);
    assert_eq!(first.status, 200);
    assert!(!first.replayed && again.replayed);
    assert_eq!(first.json, again.json, "the stored decision, byte for byte");
    let other = decide(
        &server,
        &key,
        &with_customer("C-idem-2"),
        &[("Idempotency-Key", "retry-1")],
    );
    assert_eq!(other.status, 422);
    assert_eq!(other.json["code"], "idempotency_key_reused");

    // Twenty concurrent retries of one new key: one decision, twenty identical answers.
    let body = with_customer("C-idem-concurrent");
    let barrier = Arc::new(std::sync::Barrier::new(20));
    let handles: Vec<_> = (0..20)
        .map(|_| {
            let (url, key, body, barrier) = (
                server.url.clone(),
                key.clone(),
                body.clone(),
                barrier.clone(),
            );
            std::thread::spawn(move || {
                barrier.wait();
                post_json(
                    &format!("{url}/v1/decisions/application"),
                    &key,
                    &body,
                    &[("Idempotency-Key", "burst-1")],
                )
            })
        })
        .collect();
    let answers: Vec<Answer> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    let ids: std::collections::BTreeSet<String> = answers
        .iter()
        .map(|a| {
            assert_eq!(a.status, 200, "{}", a.json);
            a.json["id"].as_str().unwrap().to_string()
        })
        .collect();
    assert_eq!(ids.len(), 1, "every retry got the same decision");
    assert_eq!(
        answers.iter().filter(|a| !a.replayed).count(),
        1,
        "exactly one decided"
    );
    let stored = get(
        &format!("{}/v1/decisions?customer_id=C-idem-concurrent", server.url),
        &key,
    );
    assert_eq!(
        stored.json["items"].as_array().unwrap().len(),
        1,
        "one record"
    );
}

/// (name, method, URL, headers, body, expected status, expected code, field the error names)
type BadRequest<'a> = (
    &'a str,
    &'a str,
    String,
    Vec<(&'a str, &'a str)>,
    Option<Vec<u8>>,
    u16,
    &'a str,
    Option<&'a str>,
);

/// Each bad request, the status and code it must get; none may be a 500 or leave a record.
#[test]
fn bad_requests_get_a_4xx_json_error_naming_the_problem() {
    let server = Server::start(&scratch_dir("svc-bad"), &["--max-body-bytes", "4096"]);
    let key = server.key("decide,analyst", "platform");
    let good = decide(&server, &key, &with_customer("C-bad"), &[]);
    let id = good.json["id"].as_str().unwrap().to_string();
    let url = &server.url;
    let json_header = [("Content-Type", "application/json")];
    let mut wrong_type = example_input("application-approve.json");
    wrong_type["requested_amount"] = json!("lots");
    let mut out_of_range = example_input("application-approve.json");
    out_of_range["term_months"] = json!(500);
    let oversized = json!({"customer_id": "x".repeat(8000)}).to_string();
    let long_key = "k".repeat(300);
    let cases: Vec<BadRequest> = vec![
        (
            "malformed JSON",
            "POST",
            format!("{url}/v1/decisions/application"),
            json_header.to_vec(),
            Some(b"{\"a\":".to_vec()),
            400,
            "malformed_json",
            None,
        ),
        (
            "wrong type",
            "POST",
            format!("{url}/v1/decisions/application"),
            json_header.to_vec(),
            Some(wrong_type.to_string().into_bytes()),
            422,
            "invalid_input",
            Some("requested_amount"),
        ),
        (
            "out of range",
            "POST",
            format!("{url}/v1/decisions/application"),
            json_header.to_vec(),
            Some(out_of_range.to_string().into_bytes()),
            422,
            "invalid_input",
            Some("term_months"),
        ),
        (
            "not an object",
            "POST",
            format!("{url}/v1/decisions/application"),
            json_header.to_vec(),
            Some(b"[1,2]".to_vec()),
            422,
            "invalid_input",
            None,
        ),
        (
            "unknown flow",
            "POST",
            format!("{url}/v1/decisions/mortgage"),
            json_header.to_vec(),
            Some(b"{}".to_vec()),
            404,
            "unknown_flow",
            Some("flow"),
        ),
        (
            "body too large",
            "POST",
            format!("{url}/v1/decisions/application"),
            json_header.to_vec(),
            Some(oversized.into_bytes()),
            413,
            "body_too_large",
            None,
        ),
        (
            "content type",
            "POST",
            format!("{url}/v1/decisions/application"),
            vec![("Content-Type", "text/plain")],
            Some(b"{}".to_vec()),
            415,
            "unsupported_media_type",
            None,
        ),
        (
            "idempotency key",
            "POST",
            format!("{url}/v1/decisions/application"),
            vec![
                ("Content-Type", "application/json"),
                ("Idempotency-Key", long_key.as_str()),
            ],
            Some(b"{}".to_vec()),
            400,
            "invalid_parameter",
            Some("Idempotency-Key"),
        ),
        (
            "language",
            "POST",
            format!("{url}/v1/decisions/application?lang=xx"),
            json_header.to_vec(),
            Some(with_customer("C-bad").to_string().into_bytes()),
            400,
            "invalid_parameter",
            Some("lang"),
        ),
        (
            "unknown query",
            "POST",
            format!("{url}/v1/decisions/application?trace=all"),
            json_header.to_vec(),
            Some(b"{}".to_vec()),
            400,
            "invalid_parameter",
            None,
        ),
        (
            "unknown version",
            "POST",
            format!("{url}/v1/decisions/{id}/replay"),
            json_header.to_vec(),
            Some(br#"{"strategy_version":"0000"}"#.to_vec()),
            404,
            "unknown_strategy_version",
            Some("version"),
        ),
        (
            "replay body",
            "POST",
            format!("{url}/v1/decisions/{id}/replay"),
            json_header.to_vec(),
            Some(b"{\"version\":1}".to_vec()),
            400,
            "malformed_json",
            None,
        ),
        (
            "unknown decision",
            "GET",
            format!("{url}/v1/decisions/dec_missing"),
            vec![],
            None,
            404,
            "not_found",
            None,
        ),
        (
            "page size",
            "GET",
            format!("{url}/v1/decisions?limit=0"),
            vec![],
            None,
            400,
            "invalid_parameter",
            Some("limit"),
        ),
        (
            "time",
            "GET",
            format!("{url}/v1/decisions?from=yesterday"),
            vec![],
            None,
            400,
            "invalid_parameter",
            Some("from"),
        ),
        (
            "cursor",
            "GET",
            format!("{url}/v1/decisions?cursor=abc"),
            vec![],
            None,
            400,
            "invalid_parameter",
            Some("cursor"),
        ),
        (
            "no route",
            "GET",
            format!("{url}/v2/anything"),
            vec![],
            None,
            404,
            "not_found",
            None,
        ),
        (
            "method",
            "DELETE",
            format!("{url}/v1/decisions"),
            vec![],
            None,
            405,
            "method_not_allowed",
            None,
        ),
        (
            "package",
            "POST",
            format!("{url}/v1/strategies"),
            vec![],
            Some(b"not a tarball".to_vec()),
            400,
            "invalid_package",
            None,
        ),
    ];
    for (name, method, target, headers, body, status, code, field) in cases {
        let answer = request(method, &target, Some(&key), &headers, body.as_deref());
        assert_eq!(answer.status, status, "{name}: {}", answer.json);
        assert_eq!(answer.json["code"], code, "{name}: {}", answer.json);
        let message = answer.json["message"].as_str().unwrap_or_default();
        assert!(message.len() > 10, "{name}: a message that explains");
        if let Some(field) = field {
            let named = answer.json["details"]["field"] == field
                || answer.json["details"]["violations"][0]["field"] == field
                || message.contains(field);
            assert!(named, "{name}: names {field}: {}", answer.json);
        }
    }
    let all = get(&format!("{url}/v1/decisions"), &key);
    assert_eq!(
        all.json["items"].as_array().unwrap().len(),
        1,
        "no partial records"
    );
    let (code, output) = audit_verify(&server.data_dir);
    assert_eq!(code, 0, "{output}");
}

fn upload(server: &Server, key: &str, dir: &std::path::Path) -> (bool, String) {
    let output = std::process::Command::new(BIN)
        .args(["strategy", "upload"])
        .arg(dir)
        .args(["--server", &server.url, "--key", key])
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    (output.status.success(), text)
}

#[test]
fn strategy_lifecycle_maker_checker_activation_under_load_and_rollback() {
    let root = scratch_dir("svc-lifecycle");
    let server = Server::start(&root.join("data"), &[]);
    let analyst = server.key("analyst", "alice");
    let approver_alice = server.key("approver", "alice");
    let approver_bob = server.key("approver", "bob");
    let admin = server.key("admin", "root");
    let caller = server.key("decide", "platform");
    let original = get(&format!("{}/v1/strategies/active", server.url), &analyst);
    let original_version = original.json["version"].as_str().unwrap().to_string();

    // A package whose embedded case fails is refused, with the case named, and not stored.
    let failing = root.join("failing");
    copy_example(&failing);
    let cases = failing.join("tests/application.yaml");
    let text = std::fs::read_to_string(&cases).unwrap();
    std::fs::write(
        &cases,
        text.replacen(
            "expect: {outcome: \"approve\", limit: 6000",
            "expect: {outcome: \"decline\", limit: 6000",
            1,
        ),
    )
    .unwrap();
    let (ok, output) = upload(&server, &analyst, &failing);
    assert!(
        !ok && output.contains("422")
            && output.contains("package_cases_failed")
            && output.contains("approve-prime"),
        "{output}"
    );
    let listed = get(&format!("{}/v1/strategies", server.url), &analyst);
    assert_eq!(listed.json.as_array().unwrap().len(), 1, "nothing stored");

    // A changed package uploads as a draft; uploading it again changes nothing.
    let changed = root.join("changed");
    copy_example(&changed);
    let flow = changed.join("flows/application.yaml");
    let mut text = std::fs::read_to_string(&flow).unwrap();
    text.push_str("\n# revised knock-out wording\n");
    std::fs::write(&flow, text).unwrap();
    let (ok, output) = upload(&server, &analyst, &changed);
    assert!(ok, "{output}");
    let uploaded: Value = serde_json::from_str(&output).unwrap();
    assert_eq!(uploaded["created"], true);
    assert_eq!(uploaded["strategy"]["state"], "draft");
    let version = uploaded["strategy"]["version"]
        .as_str()
        .unwrap()
        .to_string();
    assert_ne!(version, original_version);
    let (_, again) = upload(&server, &analyst, &changed);
    assert_eq!(
        serde_json::from_str::<Value>(&again).unwrap()["created"],
        false
    );

    // A draft cannot be activated; its uploader cannot approve it; someone else can.
    let strategy_url = |action: &str| format!("{}/v1/strategies/{version}/{action}", server.url);
    let early = request(
        "POST",
        &strategy_url("activate"),
        Some(&approver_bob),
        &[],
        None,
    );
    assert_eq!(
        (early.status, early.json["code"].as_str()),
        (409, Some("invalid_state"))
    );
    let own = request(
        "POST",
        &strategy_url("approve"),
        Some(&approver_alice),
        &[],
        None,
    );
    assert_eq!(
        (own.status, own.json["code"].as_str()),
        (403, Some("maker_checker")),
        "{}",
        own.json
    );
    let approved = request(
        "POST",
        &strategy_url("approve"),
        Some(&approver_bob),
        &[],
        None,
    );
    assert_eq!(approved.status, 200, "{}", approved.json);
    assert_eq!(approved.json["approved_by"], "bob");

    // Activation while four clients decide continuously: no request fails, each is decided
    // wholly by one version, and decisions after the switch use the new one.
    let stop = Arc::new(AtomicBool::new(false));
    let clients: Vec<_> = (0..4)
        .map(|i| {
            let (url, key, stop) = (server.url.clone(), caller.clone(), stop.clone());
            std::thread::spawn(move || {
                let mut seen = Vec::new();
                let body = with_customer(&format!("C-load-{i}"));
                while !stop.load(Ordering::Relaxed) || seen.len() < 20 {
                    let answer =
                        post_json(&format!("{url}/v1/decisions/application"), &key, &body, &[]);
                    assert_eq!(answer.status, 200, "{}", answer.json);
                    seen.push(
                        answer.json["strategy_version"]
                            .as_str()
                            .unwrap()
                            .to_string(),
                    );
                }
                seen
            })
        })
        .collect();
    std::thread::sleep(std::time::Duration::from_millis(300));
    let activated = request(
        "POST",
        &strategy_url("activate"),
        Some(&approver_bob),
        &[],
        None,
    );
    assert_eq!(activated.status, 200, "{}", activated.json);
    assert_eq!(activated.json["active"], true);
    std::thread::sleep(std::time::Duration::from_millis(300));
    stop.store(true, Ordering::Relaxed);
    let seen: Vec<Vec<String>> = clients.into_iter().map(|c| c.join().unwrap()).collect();
    for versions in &seen {
        assert!(versions
            .iter()
            .all(|v| *v == original_version || *v == version));
        // Each client switches once, from old to new, never back.
        let switches = versions.windows(2).filter(|w| w[0] != w[1]).count();
        assert!(switches <= 1, "{versions:?}");
        assert_eq!(versions.last(), Some(&version));
    }
    assert!(
        seen.iter().any(|v| v.contains(&original_version)),
        "load ran before the switch"
    );

    // Rollback re-activates the previous version.
    let rolled = request(
        "POST",
        &format!("{}/v1/strategies/rollback", server.url),
        Some(&approver_bob),
        &[],
        None,
    );
    assert_eq!(rolled.status, 200, "{}", rolled.json);
    assert_eq!(rolled.json["version"], original_version.as_str());
    let after = decide(&server, &caller, &with_customer("C-after"), &[]);
    assert_eq!(after.json["strategy_version"], original_version.as_str());

    // Replaying a decision against the other version reports it, with a diff.
    let id = after.json["id"].as_str().unwrap();
    let replay = post_json(
        &format!("{}/v1/decisions/{id}/replay", server.url),
        &analyst,
        &json!({"strategy_version": version}),
        &[],
    );
    assert_eq!(replay.status, 200, "{}", replay.json);
    assert_eq!(replay.json["replayed_strategy_version"], version.as_str());
    assert_eq!(
        replay.json["diff"]["changes"],
        json!([]),
        "only the version differs"
    );
    assert_eq!(replay.json["diff"]["identical"], false);

    // Every change is audited: who, when, what.
    let audit = get(&format!("{}/v1/audit", server.url), &admin);
    let actions: Vec<(String, String)> = audit
        .json
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["action"].as_str().unwrap().to_string(),
                e["actor"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    for expected in [
        ("strategy.upload", "alice"),
        ("strategy.approve", "bob"),
        ("strategy.activate", "bob"),
        ("strategy.rollback", "bob"),
        ("strategy.bootstrap", "system"),
    ] {
        assert!(
            actions.contains(&(expected.0.to_string(), expected.1.to_string())),
            "{expected:?} in {actions:?}"
        );
    }
}

/// Every role against every route: allowed roles get past authorisation (whatever the
/// operation then answers), others get 403; no key or a bad key gets 401.
#[test]
fn every_role_against_every_route() {
    let server = Server::start(&scratch_dir("svc-roles"), &[]);
    let roles = ["decide", "review", "analyst", "approver", "admin"];
    let keys: Vec<(String, String)> = roles
        .iter()
        .map(|role| (role.to_string(), server.key(role, &format!("{role}-user"))))
        .collect();
    let admin_key = &keys[4].1;
    let decided = decide(&server, admin_key, &with_customer("C-roles"), &[]);
    let id = decided.json["id"].as_str().unwrap().to_string();
    let version = decided.json["strategy_version"]
        .as_str()
        .unwrap()
        .to_string();
    let sample = with_customer("C-roles").to_string();
    let routes: Vec<(&str, String, Option<String>, &[&str])> = vec![
        (
            "POST",
            "/v1/decisions/application".into(),
            Some(sample),
            &["decide"],
        ),
        (
            "GET",
            format!("/v1/decisions/{id}"),
            None,
            &["decide", "review", "analyst"],
        ),
        ("GET", "/v1/decisions".into(), None, &["review", "analyst"]),
        (
            "POST",
            format!("/v1/decisions/{id}/replay"),
            None,
            &["analyst"],
        ),
        (
            "POST",
            "/v1/strategies".into(),
            Some("garbage".into()),
            &["analyst"],
        ),
        (
            "GET",
            "/v1/strategies".into(),
            None,
            &["analyst", "approver"],
        ),
        (
            "GET",
            "/v1/strategies/active".into(),
            None,
            &["analyst", "approver"],
        ),
        (
            "GET",
            format!("/v1/strategies/{version}"),
            None,
            &["analyst", "approver"],
        ),
        (
            "POST",
            format!("/v1/strategies/{version}/approve"),
            None,
            &["approver"],
        ),
        (
            "POST",
            format!("/v1/strategies/{version}/activate"),
            None,
            &["approver"],
        ),
        (
            "POST",
            "/v1/strategies/rollback".into(),
            None,
            &["approver"],
        ),
        ("GET", "/v1/keys".into(), None, &[]),
        (
            "POST",
            "/v1/keys".into(),
            Some(r#"{"user":"new","roles":["decide"]}"#.into()),
            &[],
        ),
        ("DELETE", "/v1/keys/000000000000".into(), None, &[]),
        ("GET", "/v1/audit".into(), None, &["approver"]),
        ("GET", "/v1/webhooks".into(), None, &[]),
        (
            "POST",
            "/v1/webhooks".into(),
            Some(r#"{"url":"http://127.0.0.1:9/hook"}"#.into()),
            &[],
        ),
        ("DELETE", "/v1/webhooks/wh_missing".into(), None, &[]),
        ("GET", "/v1/cases".into(), None, &["review"]),
        ("GET", "/v1/cases/case_missing".into(), None, &["review"]),
        (
            "POST",
            "/v1/cases/case_missing/claim".into(),
            None,
            &["review"],
        ),
    ];
    let bad_key = format!("cred_000000000000_{}", "0".repeat(64));
    for (method, path, body, allowed) in &routes {
        let url = format!("{}{path}", server.url);
        let send = |key: Option<&str>| {
            let headers: &[(&str, &str)] =
                if path.starts_with("/v1/strategies") && *method == "POST" && body.is_some() {
                    &[("Content-Type", "application/gzip")]
                } else {
                    &[("Content-Type", "application/json")]
                };
            request(
                method,
                &url,
                key,
                headers,
                body.as_deref().map(str::as_bytes),
            )
        };
        for (label, key) in [
            ("no key", None),
            ("bad key", Some(bad_key.as_str())),
            ("malformed", Some("cred_x")),
        ] {
            let answer = send(key);
            assert_eq!(answer.status, 401, "{method} {path} with {label}");
            assert_eq!(answer.json["code"], "unauthenticated");
        }
        for (role, key) in &keys {
            let answer = send(Some(key));
            let may = allowed.contains(&role.as_str()) || role == "admin";
            if may {
                assert!(
                    answer.status != 401 && answer.status != 403,
                    "{role} may {method} {path}: {} {}",
                    answer.status,
                    answer.json
                );
                assert!(
                    answer.status < 500,
                    "{role} {method} {path}: {}",
                    answer.json
                );
            } else {
                assert_eq!(
                    answer.status, 403,
                    "{role} may not {method} {path}: {}",
                    answer.json
                );
                assert_eq!(answer.json["code"], "forbidden");
            }
        }
    }
    // Operations routes are open: probes and scrapers carry no keys.
    for path in ["/healthz", "/readyz", "/metrics", "/openapi.json"] {
        let answer = request("GET", &format!("{}{path}", server.url), None, &[], None);
        assert_eq!(answer.status, 200, "{path}");
    }
}

#[test]
fn operations_endpoints_report_health_metrics_and_the_api() {
    let server = Server::start(&scratch_dir("svc-ops"), &[]);
    let key = server.key("decide", "platform");
    decide(&server, &key, &with_customer("C-ops"), &[]);
    let ready = request("GET", &format!("{}/readyz", server.url), None, &[], None);
    assert_eq!(ready.json["status"], "ready");
    let metrics = server.metrics();
    for needle in [
        "credence_decisions_total{strategy=\"consumer-loan\",flow=\"application\",outcome=\"approve\",arm=\"champion\"} 1",
        "credence_decision_seconds_bucket",
        "credence_log_commit_seconds_bucket",
        "credence_http_requests_total",
    ] {
        assert!(metrics.contains(needle), "{needle} in\n{metrics}");
    }
    let api = request(
        "GET",
        &format!("{}/openapi.json", server.url),
        None,
        &[],
        None,
    );
    let paths = api.json["paths"].as_object().unwrap();
    for path in [
        "/v1/flows/{flow}/decisions",
        "/v1/decisions/{id}",
        "/v1/decisions/{id}/replay",
        "/v1/strategies/{version}/approve",
        "/v1/keys",
    ] {
        assert!(paths.contains_key(path), "{path}");
    }
    assert!(api.json["components"]["securitySchemes"]["bearer"].is_object());
}

#[test]
fn logs_hold_neither_keys_nor_personal_identifiers() {
    let dir = scratch_dir("svc-logs");
    let server = Server::start_with_env(&dir, &[], &[("RUST_LOG", "debug")]);
    let key = server.key("decide", "platform");
    let input = with_customer("C-logs");
    let answer = decide(&server, &key, &input, &[]);
    assert_eq!(answer.status, 200);
    let mut bad = input.clone();
    bad["phone"] = json!(12);
    decide(&server, &key, &bad, &[]);
    std::thread::sleep(std::time::Duration::from_millis(200));
    let log = std::fs::read_to_string(&server.log_path).unwrap();
    assert!(
        log.contains("decision input"),
        "debug logging is on:\n{log}"
    );
    let secret = key.rsplit('_').next().unwrap();
    for forbidden in [
        input["phone"].as_str().unwrap(),
        input["national_id_sha256"].as_str().unwrap(),
        secret,
    ] {
        assert!(!log.contains(forbidden), "{forbidden} leaked into the log");
    }
    assert!(
        log.contains("***01"),
        "the phone number is masked, not dropped"
    );
}

#[test]
fn referred_decisions_become_cases_decided_by_reviewers_under_four_eyes() {
    let server = Server::start(&scratch_dir("svc-review"), &[]);
    let caller = server.key("decide", "platform");
    let ann = server.key("review", "ann");
    let bob = server.key("review", "bob");
    let referred = refer_application(&server, &caller);
    let decision_id = referred["id"].as_str().unwrap().to_string();
    let queue = referred["referral"]["queue"].as_str().unwrap().to_string();

    let forbidden = get(&format!("{}/v1/cases", server.url), &caller);
    assert_eq!(forbidden.status, 403, "a decide key cannot read cases");
    let listed = get(
        &format!("{}/v1/cases?queue={queue}&state=open", server.url),
        &ann,
    );
    assert_eq!(listed.status, 200, "{}", listed.json);
    let case = &listed.json[0];
    assert_eq!(case["decision_id"], decision_id.as_str());
    assert_eq!(case["status"], "open");
    let sla_ms = case["due_at_ms"].as_i64().unwrap() - case["created_at_ms"].as_i64().unwrap();
    assert_eq!(sla_ms, 60 * 60_000, "the income_verification queue's SLA");
    let case_url = format!("{}/v1/cases/{}", server.url, case["id"].as_str().unwrap());
    let act = |key: &str, action: &str, body: Value| {
        post_json(&format!("{case_url}/{action}"), key, &body, &[])
    };

    assert_eq!(act(&ann, "claim", json!({})).json["status"], "claimed");
    let taken = act(
        &bob,
        "decide",
        json!({"verdict": "approve", "limit": "5000", "apr": "0.12", "note": "ok"}),
    );
    assert_eq!(taken.status, 409, "{}", taken.json);
    assert!(taken.json["message"].as_str().unwrap().contains("ann"));
    let too_much = act(
        &ann,
        "decide",
        json!({"verdict": "approve", "limit": "25000", "apr": "0.12", "note": "ok"}),
    );
    assert_eq!(
        (too_much.status, too_much.json["details"]["field"].as_str()),
        (422, Some("limit")),
        "{}",
        too_much.json
    );
    let no_reason = act(&ann, "decide", json!({"verdict": "decline", "note": "no"}));
    assert_eq!(
        (
            no_reason.status,
            no_reason.json["details"]["field"].as_str()
        ),
        (422, Some("reasons"))
    );
    let no_note = act(
        &ann,
        "decide",
        json!({"verdict": "approve", "limit": "5000", "apr": "0.12"}),
    );
    assert_eq!(
        (no_note.status, no_note.json["details"]["field"].as_str()),
        (422, Some("note"))
    );

    // Above four_eyes_above (10000) the first decision is not final.
    let first = act(
        &ann,
        "decide",
        json!({"verdict": "approve", "limit": "12000", "apr": "0.1199", "note": "payslips and bank statements confirm 6000 a month"}),
    );
    assert_eq!(first.status, 200, "{}", first.json);
    assert_eq!(first.json["status"], "awaiting_confirmation");
    let record = get(
        &format!("{}/v1/decisions/{decision_id}", server.url),
        &caller,
    );
    assert_eq!(record.json["review"]["status"], "awaiting_confirmation");
    assert!(record.json["review"]["final_decision"].is_null());
    let own = act(&ann, "claim", json!({}));
    assert_eq!(
        (own.status, own.json["code"].as_str()),
        (403, Some("maker_checker"))
    );
    assert_eq!(act(&bob, "claim", json!({})).status, 200);
    let confirmed = act(
        &bob,
        "confirm",
        json!({"note": "agree: the employer confirmed the salary"}),
    );
    assert_eq!(confirmed.json["status"], "decided", "{}", confirmed.json);

    // One record: the engine's referral, and the review's final decision with who and why.
    let record = get(
        &format!("{}/v1/decisions/{decision_id}", server.url),
        &caller,
    );
    assert_eq!(record.json["outcome"], "refer");
    let final_decision = &record.json["review"]["final_decision"];
    assert_eq!(final_decision["verdict"], "approve");
    assert_eq!(final_decision["limit"], "12000");
    assert_eq!(final_decision["by"], "ann");
    assert_eq!(record.json["review"]["confirmed_by"], "bob");
    let history = get(&case_url, &ann).json["history"]
        .as_array()
        .unwrap()
        .len();
    assert_eq!(history, 5, "open, claim, decide, claim, confirm");
    let metrics = server.metrics();
    assert!(
        metrics.contains(
            "credence_review_decisions_total{queue=\"income_verification\",verdict=\"approve\"} 1"
        ),
        "{metrics}"
    );
}

/// One HTTP request as a test receiver saw it.
struct Received {
    headers: Vec<(String, String)>,
    body: String,
}

/// A webhook receiver on a free port: answers 500 to the first request and 200 after.
fn start_receiver() -> (String, std::sync::Arc<std::sync::Mutex<Vec<Received>>>) {
    use std::io::{BufRead, BufReader, Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/hooks/credence", listener.local_addr().unwrap());
    let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::<Received>::new()));
    let record = seen.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut headers = Vec::new();
            let mut line = String::new();
            reader.read_line(&mut line).unwrap();
            loop {
                line.clear();
                reader.read_line(&mut line).unwrap();
                let trimmed = line.trim_end();
                if trimmed.is_empty() {
                    break;
                }
                if let Some((name, value)) = trimmed.split_once(':') {
                    headers.push((name.trim().to_ascii_lowercase(), value.trim().to_string()));
                }
            }
            let length: usize = headers
                .iter()
                .find(|(n, _)| n == "content-length")
                .map(|(_, v)| v.parse().unwrap())
                .unwrap_or(0);
            let mut body = vec![0u8; length];
            reader.read_exact(&mut body).unwrap();
            let mut seen = record.lock().unwrap();
            let status = if seen.is_empty() {
                "500 Internal Server Error"
            } else {
                "200 OK"
            };
            seen.push(Received {
                headers,
                body: String::from_utf8(body).unwrap(),
            });
            drop(seen);
            let _ = write!(
                stream,
                "HTTP/1.1 {status}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
            );
        }
    });
    (url, seen)
}

#[test]
fn decided_reviews_are_posted_to_webhooks_signed_and_retried() {
    use hmac::{Hmac, Mac};
    let (receiver, seen) = start_receiver();
    let server = Server::start(&scratch_dir("svc-webhooks"), &[]);
    let admin = server.key("admin", "ops");
    let registered = post_json(
        &format!("{}/v1/webhooks", server.url),
        &admin,
        &json!({"url": receiver}),
        &[],
    );
    assert_eq!(registered.status, 201, "{}", registered.json);
    let secret = registered.json["secret"].as_str().unwrap().to_string();
    let listed = get(&format!("{}/v1/webhooks", server.url), &admin);
    assert!(
        !listed.json.to_string().contains(&secret),
        "secrets are shown once"
    );
    let bad = post_json(
        &format!("{}/v1/webhooks", server.url),
        &admin,
        &json!({"url": "ftp://x"}),
        &[],
    );
    assert_eq!(bad.status, 400);

    let decision_id = refer_and_decline(&server);

    // The first attempt gets a 500; the retry (about a second later) is accepted.
    let started = std::time::Instant::now();
    while seen.lock().unwrap().len() < 2 {
        assert!(
            started.elapsed() < std::time::Duration::from_secs(15),
            "no retry arrived"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let seen = seen.lock().unwrap();
    let header = |r: &Received, name: &str| {
        r.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.clone())
            .unwrap()
    };
    assert_eq!(
        header(&seen[0], "x-credence-delivery"),
        header(&seen[1], "x-credence-delivery")
    );
    for request in seen.iter() {
        assert_eq!(header(request, "x-credence-event"), "review.decided");
        let signature = header(request, "x-credence-signature");
        let (t, v1) = signature.split_once(',').unwrap();
        let t = t.strip_prefix("t=").unwrap();
        let mut mac = Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()).unwrap();
        mac.update(format!("{t}.{}", request.body).as_bytes());
        let expected: String = mac
            .finalize()
            .into_bytes()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        assert_eq!(
            v1.strip_prefix("v1=").unwrap(),
            expected,
            "the signature verifies"
        );
        let event: Value = serde_json::from_str(&request.body).unwrap();
        assert_eq!(event["decision_id"], decision_id.as_str());
        assert_eq!(event["final_decision"]["verdict"], "decline");
        assert_eq!(event["final_decision"]["by"], "ann");
    }
}

/// Webhooks go out over HTTPS too, trusting the operator's CA file as provider calls do.
#[test]
fn webhooks_are_delivered_over_https() {
    let receiver = tls::start_https_provider("{}");
    let ca_file = tls::fixture("ca.pem");
    let server = Server::start(
        &scratch_dir("svc-webhooks-https"),
        &["--provider-ca-file", ca_file.to_str().unwrap()],
    );
    let admin = server.key("admin", "ops");
    let registered = post_json(
        &format!("{}/v1/webhooks", server.url),
        &admin,
        &json!({"url": receiver.url}),
        &[],
    );
    assert_eq!(registered.status, 201, "{}", registered.json);
    refer_and_decline(&server);
    let started = std::time::Instant::now();
    while receiver.answered() == 0 {
        assert!(
            started.elapsed() < std::time::Duration::from_secs(30),
            "no delivery over HTTPS"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

/// Refers the example application and has a reviewer claim and decline its case (which posts
/// the review's webhooks); the referred decision's id.
fn refer_and_decline(server: &Server) -> String {
    let caller = server.key("decide", "platform");
    let reviewer = server.key("review", "ann");
    let decision_id = refer_application(server, &caller)["id"]
        .as_str()
        .unwrap()
        .to_string();
    let case_url = format!(
        "{}/v1/cases/case_{}",
        server.url,
        decision_id.trim_start_matches("dec_")
    );
    assert_eq!(
        post_json(&format!("{case_url}/claim"), &reviewer, &json!({}), &[]).status,
        200
    );
    let decided = post_json(
        &format!("{case_url}/decide"),
        &reviewer,
        &json!({"verdict": "decline", "reasons": ["DEC_AFFORDABILITY"], "note": "income could not be verified"}),
        &[],
    );
    assert_eq!(decided.json["status"], "decided", "{}", decided.json);
    decision_id
}

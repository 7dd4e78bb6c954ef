//! Several products at once, in process: two strategies active together, each deciding with its
//! own version; an activation of one leaves the other alone; keys limited to a strategy are
//! refused every action on another (route × role × strategy); a ramp whose candidate approves
//! ten points fewer halts at its guard and falls back, and no customer switches versions.

use axum::body::Body;
use axum::http::{header, Method, Request, StatusCode};
use credence_service::{issue_key, router, Role, Service, SystemClock};
use credence_store::{MemoryStore, NewAuditEvent, Store};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tower::ServiceExt;

/// A one-flow package named `name`: approves scores at or above `cutoff`, with a line of 1,000.
fn package(name: &str, cutoff: u32) -> Vec<u8> {
    labelled_package(name, cutoff, "1")
}

/// [`package`] under another label: another version that decides the same.
fn labelled_package(name: &str, cutoff: u32, label: &str) -> Vec<u8> {
    let mut source = credence_engine::PackageSource::new();
    source.insert(
        "strategy.yaml",
        format!("name: {name}\nlabel: \"{label}\"\nlanguages: [en]\ncaps: {{apr_max: 0.3}}\nreasons:\n  LOW: {{en: low score}}\n  HIGH: {{en: checked by hand}}\nflows:\n  application: flows/a.yaml\n"),
    );
    source.insert(
        "flows/a.yaml",
        format!(
            "input:\n  customer_id: {{type: string}}\n  score: {{type: number}}\nsteps:\n  - rule_set: {{id: r, rules: [{{id: R1, when: \"score < {cutoff}\", outcome: decline, reason: LOW}}, {{id: R2, when: \"score >= 95\", outcome: refer, reason: HIGH}}]}}\noutcome: {{default: approve, limit: \"1000\", apr: \"0.1\", term_months: \"12\"}}\n"
        ),
    );
    credence_app::package_archive::pack(&source).unwrap()
}

struct Harness {
    service: Arc<Service>,
    store: Arc<dyn Store>,
    keys: HashMap<&'static str, String>,
}

/// Keys by label: `admin` for everything; `<role>-card` limited to the card strategy.
async fn harness() -> Harness {
    let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
    let service = Service::new(store.clone(), Arc::new(SystemClock), Default::default());
    let now = service.now_ms();
    service
        .strategies
        .bootstrap_product(package("loan", 40), now)
        .await
        .unwrap();
    service
        .strategies
        .bootstrap_product(package("card", 60), now)
        .await
        .unwrap();
    service.strategies.set_default(None).await.unwrap();
    let mut keys = HashMap::new();
    for (label, role, strategies) in [
        ("admin", Role::Admin, vec![]),
        ("analyst", Role::Analyst, vec![]),
        ("approver", Role::Approver, vec![]),
        ("decide-card", Role::Decide, vec!["card"]),
        ("review-card", Role::Review, vec!["card"]),
        ("analyst-card", Role::Analyst, vec!["card"]),
        ("approver-card", Role::Approver, vec!["card"]),
        ("admin-card", Role::Admin, vec!["card"]),
    ] {
        let mut key = issue_key(label, &[role], "test", 0).unwrap();
        key.record.strategies = strategies.into_iter().map(str::to_string).collect();
        let audit = NewAuditEvent {
            at_ms: 0,
            actor: "test".into(),
            action: "key.create".into(),
            subject: key.record.id.clone(),
            detail: serde_json::json!({}),
        };
        store.insert_key(key.record, audit).await.unwrap();
        keys.insert(label, key.plaintext);
    }
    Harness {
        service,
        store,
        keys,
    }
}

impl Harness {
    async fn call(
        &self,
        method: &str,
        path: &str,
        key: &str,
        body: Option<Vec<u8>>,
    ) -> (StatusCode, serde_json::Value) {
        let content_type = if path == "/v1/strategies" {
            "application/gzip"
        } else {
            "application/json"
        };
        let request = Request::builder()
            .method(Method::from_bytes(method.as_bytes()).unwrap())
            .uri(path)
            .header(header::CONTENT_TYPE, content_type)
            .header(header::AUTHORIZATION, format!("Bearer {}", self.keys[key]))
            .body(Body::from(body.unwrap_or_default()))
            .unwrap();
        let response = router(self.service.clone()).oneshot(request).await.unwrap();
        let status = response.status();
        let bytes = axum::body::to_bytes(response.into_body(), 1 << 22)
            .await
            .unwrap();
        (
            status,
            serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::Null),
        )
    }

    async fn decide(&self, strategy: &str, customer: &str, score: u32) -> serde_json::Value {
        let body = serde_json::json!({"customer_id": customer, "score": score}).to_string();
        let (status, json) = self
            .call(
                "POST",
                &format!("/v1/strategies/{strategy}/decisions/application"),
                "admin",
                Some(body.into_bytes()),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{json}");
        json
    }

    fn active_version(&self, name: &str) -> String {
        self.service
            .strategies
            .active_named(name)
            .unwrap()
            .version
            .clone()
    }

    /// Uploads, approves (another user) and returns a new version of a strategy.
    async fn approved(&self, name: &str, cutoff: u32) -> String {
        let (status, upload) = self
            .call(
                "POST",
                "/v1/strategies",
                "analyst",
                Some(package(name, cutoff)),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{upload}");
        let version = upload["strategy"]["version"].as_str().unwrap().to_string();
        let (status, approved) = self
            .call(
                "POST",
                &format!("/v1/strategies/{version}/approve"),
                "approver",
                None,
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{approved}");
        version
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_strategies_decide_each_with_its_own_version_and_activating_one_leaves_the_other() {
    let h = harness().await;
    let (loan_v1, card_v1) = (h.active_version("loan"), h.active_version("card"));
    assert_ne!(loan_v1, card_v1);
    let loan = h.decide("loan", "C-1", 50).await;
    let card = h.decide("card", "C-1", 50).await;
    assert_eq!(
        (
            loan["strategy"].as_str(),
            loan["strategy_version"].as_str(),
            loan["outcome"].as_str()
        ),
        (Some("loan"), Some(loan_v1.as_str()), Some("approve"))
    );
    assert_eq!(
        (
            card["strategy"].as_str(),
            card["strategy_version"].as_str(),
            card["outcome"].as_str()
        ),
        (Some("card"), Some(card_v1.as_str()), Some("decline")),
        "the card's cut-off is 60"
    );
    // The unnamed route decides with the default: the first strategy activated.
    let (status, default) = h
        .call(
            "POST",
            "/v1/flows/application/decisions",
            "admin",
            Some(br#"{"customer_id": "C-2", "score": 50}"#.to_vec()),
        )
        .await;
    assert_eq!(
        (status, default["strategy"].as_str()),
        (StatusCode::OK, Some("loan"))
    );

    // A new loan version goes live; the card keeps deciding with its own.
    let loan_v2 = h.approved("loan", 55).await;
    let (status, activated) = h
        .call(
            "POST",
            &format!("/v1/strategies/{loan_v2}/activate"),
            "approver",
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{activated}");
    assert_eq!(
        h.decide("loan", "C-3", 50).await["strategy_version"],
        loan_v2.as_str()
    );
    assert_eq!(h.decide("loan", "C-3", 50).await["outcome"], "decline");
    assert_eq!(
        h.decide("card", "C-3", 70).await["strategy_version"],
        card_v1.as_str()
    );
    assert_eq!(h.active_version("card"), card_v1);

    // History and listings carry the strategy.
    let (status, page) = h
        .call("GET", "/v1/decisions?strategy=card", "admin", None)
        .await;
    assert_eq!(status, StatusCode::OK);
    let items = page["items"].as_array().unwrap();
    assert_eq!(items.len(), 2);
    assert!(items.iter().all(|d| d["strategy"] == "card"), "{page}");
    let (_, products) = h.call("GET", "/v1/products", "admin", None).await;
    let names: Vec<&str> = products
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["strategy"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["card", "loan"]);
    // Rolling the loan back leaves the card alone too.
    let (status, rolled) = h
        .call("POST", "/v1/strategies/loan/rollback", "approver", None)
        .await;
    assert_eq!(
        (status, rolled["version"].as_str()),
        (StatusCode::OK, Some(loan_v1.as_str()))
    );
    assert_eq!(h.active_version("card"), card_v1);
}

/// A row of the permission table: method, path, body, the key's label, and whether it is refused.
type Case = (&'static str, String, Option<Vec<u8>>, &'static str, bool);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_limited_to_a_strategy_are_refused_every_action_on_another() {
    let h = harness().await;
    let loan_v2 = h.approved("loan", 45).await;
    let loan_v3 = {
        let (status, upload) = h
            .call(
                "POST",
                "/v1/strategies",
                "analyst",
                Some(package("loan", 46)),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED);
        upload["strategy"]["version"].as_str().unwrap().to_string()
    };
    let loan_decision = h.decide("loan", "C-9", 80).await["id"]
        .as_str()
        .unwrap()
        .to_string();
    let card_decision = h.decide("card", "C-9", 80).await["id"]
        .as_str()
        .unwrap()
        .to_string();
    let case_of = |decision: serde_json::Value| {
        assert_eq!(decision["outcome"], "refer", "{decision}");
        format!(
            "case_{}",
            decision["id"].as_str().unwrap().trim_start_matches("dec_")
        )
    };
    let loan_case = case_of(h.decide("loan", "C-10", 97).await);
    let card_case = case_of(h.decide("card", "C-10", 97).await);
    let (status, account) = h
        .call(
            "POST",
            "/v1/accounts",
            "admin",
            Some(format!(r#"{{"decision_id": "{loan_decision}"}}"#).into_bytes()),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{account}");
    assert_eq!(account["strategy"], "loan");
    let loan_account = account["id"].as_str().unwrap().to_string();
    let decide = |s: &str| Some(format!(r#"{{"customer_id": "C-{s}", "score": 70}}"#).into_bytes());
    let table: Vec<Case> = vec![
        (
            "POST",
            "/v1/strategies/loan/decisions/application".into(),
            decide("1"),
            "decide-card",
            true,
        ),
        (
            "POST",
            "/v1/strategies/card/decisions/application".into(),
            decide("2"),
            "decide-card",
            false,
        ),
        // The default strategy is the loan: a card-only key may not use the unnamed route.
        (
            "POST",
            "/v1/flows/application/decisions".into(),
            decide("3"),
            "decide-card",
            true,
        ),
        (
            "GET",
            format!("/v1/decisions/{loan_decision}"),
            None,
            "decide-card",
            true,
        ),
        (
            "GET",
            format!("/v1/decisions/{card_decision}"),
            None,
            "decide-card",
            false,
        ),
        (
            "GET",
            "/v1/decisions?strategy=loan".into(),
            None,
            "analyst-card",
            true,
        ),
        ("GET", "/v1/decisions".into(), None, "analyst-card", false),
        (
            "POST",
            format!("/v1/decisions/{loan_decision}/replay"),
            None,
            "analyst-card",
            true,
        ),
        (
            "POST",
            "/v1/strategies".into(),
            Some(package("loan", 47)),
            "analyst-card",
            true,
        ),
        (
            "POST",
            "/v1/strategies".into(),
            Some(package("card", 61)),
            "analyst-card",
            false,
        ),
        (
            "GET",
            format!("/v1/strategies/{loan_v2}"),
            None,
            "analyst-card",
            true,
        ),
        (
            "POST",
            format!("/v1/strategies/{loan_v3}/approve"),
            None,
            "approver-card",
            true,
        ),
        (
            "POST",
            format!("/v1/strategies/{loan_v2}/activate"),
            None,
            "approver-card",
            true,
        ),
        (
            "POST",
            format!("/v1/strategies/{loan_v2}/shadow"),
            None,
            "approver-card",
            true,
        ),
        (
            "POST",
            format!("/v1/strategies/{loan_v2}/ramp"),
            Some(br#"{"ramp": [100]}"#.to_vec()),
            "approver-card",
            true,
        ),
        (
            "POST",
            "/v1/strategies/loan/rollout/abort".into(),
            None,
            "approver-card",
            true,
        ),
        (
            "POST",
            "/v1/strategies/loan/rollback".into(),
            None,
            "approver-card",
            true,
        ),
        (
            "GET",
            "/v1/strategies/loan/rollouts".into(),
            None,
            "approver-card",
            true,
        ),
        (
            "GET",
            "/v1/strategies/loan/shadow-report".into(),
            None,
            "approver-card",
            true,
        ),
        (
            "GET",
            "/v1/strategies/active?strategy=loan".into(),
            None,
            "approver-card",
            true,
        ),
        (
            "GET",
            "/v1/strategies/active?strategy=card".into(),
            None,
            "approver-card",
            false,
        ),
        (
            "GET",
            "/v1/cases?strategy=loan".into(),
            None,
            "review-card",
            true,
        ),
        (
            "POST",
            "/v1/cases/next?strategy=loan".into(),
            None,
            "review-card",
            true,
        ),
        (
            "GET",
            "/v1/monitoring?strategy=loan".into(),
            None,
            "approver-card",
            true,
        ),
        ("GET", "/v1/monitoring".into(), None, "approver-card", false),
        (
            "GET",
            format!("/v1/cases/{loan_case}"),
            None,
            "review-card",
            true,
        ),
        (
            "POST",
            format!("/v1/cases/{loan_case}/claim"),
            None,
            "review-card",
            true,
        ),
        (
            "GET",
            format!("/v1/cases/{card_case}"),
            None,
            "review-card",
            false,
        ),
        (
            "POST",
            "/v1/accounts".into(),
            Some(format!(r#"{{"decision_id": "{loan_decision}"}}"#).into_bytes()),
            "decide-card",
            true,
        ),
        (
            "GET",
            format!("/v1/accounts/{loan_account}"),
            None,
            "decide-card",
            true,
        ),
        (
            "GET",
            format!("/v1/accounts/{loan_account}/events"),
            None,
            "decide-card",
            true,
        ),
        (
            "POST",
            format!("/v1/accounts/{loan_account}/drawdowns"),
            Some(br#"{"requested_amount": 10}"#.to_vec()),
            "decide-card",
            true,
        ),
        (
            "POST",
            format!("/v1/accounts/{loan_account}/review"),
            None,
            "decide-card",
            true,
        ),
        (
            "POST",
            format!("/v1/accounts/{loan_account}/status"),
            Some(br#"{"status": "frozen", "note": "x"}"#.to_vec()),
            "review-card",
            true,
        ),
        // Admin is every role, but a limited admin is still limited, also in the keys it issues.
        (
            "POST",
            format!("/v1/strategies/{loan_v2}/activate"),
            None,
            "admin-card",
            true,
        ),
        (
            "POST",
            "/v1/keys".into(),
            Some(br#"{"user": "x", "roles": ["analyst"], "strategies": ["loan"]}"#.to_vec()),
            "admin-card",
            true,
        ),
        (
            "POST",
            "/v1/keys".into(),
            Some(br#"{"user": "x", "roles": ["analyst"], "strategies": ["card"]}"#.to_vec()),
            "admin-card",
            false,
        ),
    ];
    let mut problems = Vec::new();
    for (method, path, body, key, refused) in table {
        let (status, json) = h.call(method, &path, key, body).await;
        let was_refused = status == StatusCode::FORBIDDEN && json["code"] == "forbidden";
        if was_refused != refused {
            problems.push(format!("{method} {path} as {key}: {status} {json}"));
        }
        if was_refused && !json["details"]["allowed_strategies"].is_array() {
            problems.push(format!("{method} {path} as {key}: the refusal does not name the allowed strategies: {json}"));
        }
    }
    assert!(problems.is_empty(), "{problems:#?}");
    // A listing by a limited key shows its strategies only.
    let (_, versions) = h.call("GET", "/v1/strategies", "analyst-card", None).await;
    assert!(versions
        .as_array()
        .unwrap()
        .iter()
        .all(|v| v["name"] == "card"));
    // Nothing of the loan changed.
    assert_ne!(h.active_version("loan"), loan_v2);
}

/// Customers' scores spread evenly over 0..100.
fn score_of(customer: u32) -> u32 {
    (customer * 37 + 11) % 100
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ramp_whose_candidate_approves_ten_points_fewer_halts_at_its_guard_and_falls_back() {
    let h = harness().await;
    let live = h.active_version("loan");
    // Live approves scores from 40 (60 %), the candidate from 50 (50 %): ten points apart.
    let candidate = h.approved("loan", 50).await;
    let ramp = serde_json::json!({
        "ramp": [50, 100],
        "step_min_decisions": 100_000,
        "guards": [{"metric": "approval_rate", "max_diff_points": 3, "min_decisions": 150}],
    });
    let (status, started) = h
        .call(
            "POST",
            &format!("/v1/strategies/{candidate}/ramp"),
            "approver",
            Some(ramp.to_string().into_bytes()),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{started}");
    assert_eq!(
        (started["state"].as_str(), started["percent"].as_u64()),
        (Some("running"), Some(50))
    );

    // Each customer asks twice; within a step (the rollout's revision unchanged around both
    // asks) the same version answers both times. Scores are dealt to each version's customers
    // from one even sequence, so that each version sees the same spread of scores and the ten
    // points between them are exactly what the guard measures, whichever customers the
    // rollout's salt sends where.
    let rollout_id = started["id"].as_str().unwrap().to_string();
    let revision = |h: &Harness| {
        h.service
            .strategies
            .active_named("loan")
            .and_then(|a| a.rollout.clone())
            .filter(|r| r.record.is_running())
            .map(|r| r.record.revision)
    };
    let mut version_of: HashMap<u32, String> = HashMap::new();
    let mut dealt = [0u32; 2];
    let mut customer = 0;
    while let Some(before) = revision(&h) {
        assert!(customer < 2_000, "the guard never halted the ramp");
        let name = format!("C-{customer}");
        let arm =
            credence_app::strategies::ramp::routes_to_candidate(&rollout_id, &name, 50) as usize;
        let score = score_of(dealt[arm]);
        dealt[arm] += 1;
        let first = h.decide("loan", &name, score).await;
        let second = h.decide("loan", &name, score).await;
        if revision(&h) == Some(before) {
            assert_eq!(
                first["strategy_version"], second["strategy_version"],
                "customer {name} switched versions in a step"
            );
            version_of.insert(
                customer,
                first["strategy_version"].as_str().unwrap().to_string(),
            );
        }
        customer += 1;
        if customer % 50 == 0 {
            tokio::task::yield_now().await;
        }
    }
    let on_candidate = version_of.values().filter(|v| **v == candidate).count();
    assert!(
        on_candidate >= 50 && version_of.len() - on_candidate >= 50,
        "{on_candidate} of {}",
        version_of.len()
    );

    // Halted, audited, with the breach; the live version decides for everyone again.
    let deadline = Instant::now() + Duration::from_secs(10);
    let rollout = loop {
        let (_, rollouts) = h
            .call("GET", "/v1/strategies/loan/rollouts", "approver", None)
            .await;
        let newest = rollouts[0].clone();
        if newest["state"] == "halted" || Instant::now() > deadline {
            break newest;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(rollout["state"], "halted", "{rollout}");
    assert_eq!(
        rollout["note"]["breach"]["guard"], "approval_rate",
        "{rollout}"
    );
    let diff = rollout["note"]["breach"]["live"].as_f64().unwrap()
        - rollout["note"]["breach"]["candidate"].as_f64().unwrap();
    assert!(diff > 3.0, "{rollout}");
    for c in 0..50 {
        let decision = h.decide("loan", &format!("C-{c}"), score_of(c)).await;
        assert_eq!(decision["strategy_version"], live.as_str());
    }
    let actions: Vec<String> = h
        .store
        .audit_events(20)
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.action)
        .collect();
    assert!(
        actions.contains(&"strategy.ramp.halt".to_string()),
        "{actions:?}"
    );
    assert!(
        actions.contains(&"strategy.ramp.start".to_string()),
        "{actions:?}"
    );
    assert_eq!(h.active_version("loan"), live, "a halt never promotes");

    // Resumed by hand, then promoted by hand: the candidate becomes the active version.
    let (status, resumed) = h
        .call(
            "POST",
            "/v1/strategies/loan/rollout/resume",
            "approver",
            None,
        )
        .await;
    assert_eq!(
        (status, resumed["state"].as_str()),
        (StatusCode::OK, Some("running")),
        "{resumed}"
    );
    let (status, promoted) = h
        .call(
            "POST",
            "/v1/strategies/loan/rollout/promote",
            "approver",
            Some(br#"{"reason": "reviewed the swap set"}"#.to_vec()),
        )
        .await;
    assert_eq!(
        (status, promoted["state"].as_str()),
        (StatusCode::OK, Some("promoted")),
        "{promoted}"
    );
    assert_eq!(h.active_version("loan"), candidate);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ramp_within_its_guards_walks_its_steps_and_promotes_itself() {
    let h = harness().await;
    // The same decisions under another label: the versions' approval rates differ only by
    // which customers each sees (about 3.6 standard errors short of the guard at 30 each).
    let (status, upload) = h
        .call(
            "POST",
            "/v1/strategies",
            "analyst",
            Some(labelled_package("loan", 40, "2")),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{upload}");
    let candidate = upload["strategy"]["version"].as_str().unwrap().to_string();
    let (status, _) = h
        .call(
            "POST",
            &format!("/v1/strategies/{candidate}/approve"),
            "approver",
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let ramp = serde_json::json!({"ramp": [10, 50, 100], "step_min_decisions": 40,
        "guards": [{"metric": "approval_rate", "max_diff_points": 40, "min_decisions": 30},
                   {"metric": "error_rate", "max": 0.0, "min_decisions": 10}]});
    let (status, _) = h
        .call(
            "POST",
            &format!("/v1/strategies/{candidate}/ramp"),
            "approver",
            Some(ramp.to_string().into_bytes()),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut customer = 0;
    while h.active_version("loan") != candidate {
        assert!(Instant::now() < deadline, "the ramp never finished");
        h.decide("loan", &format!("C-{customer}"), score_of(customer))
            .await;
        customer += 1;
        if customer % 20 == 0 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
    let steps = h
        .store
        .audit_events(100)
        .await
        .unwrap()
        .into_iter()
        .filter(|e| e.action == "strategy.ramp.step")
        .count();
    assert_eq!(steps, 2, "10 % → 50 % → 100 %");
    let (_, rollouts) = h
        .call("GET", "/v1/strategies/loan/rollouts", "approver", None)
        .await;
    assert_eq!(rollouts[0]["state"], "promoted");
}

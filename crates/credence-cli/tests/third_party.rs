//! Third-party data through the decision service, against two provider simulators over real
//! HTTP: a conditional bureau call skipped when not needed, success, the cache (also across a
//! restart), the waterfall after a timeout, the failure policy, and a replay with the simulators
//! switched off; and a provider over HTTPS, trusted through an operator's CA file and refused
//! without it.

#[path = "support/postgres.rs"]
mod postgres;
#[path = "support/sim.rs"]
mod sim;
#[path = "support/server.rs"]
mod support;
#[path = "support/tls.rs"]
mod tls;

use serde_json::{json, Value};
use sim::{set_failure, sim_calls, start_sim};
use std::path::{Path, PathBuf};
use support::*;
use tls::{fixture, start_https_provider};

const STRATEGY: &str = r#"name: bureau-check
languages: [en]
reasons:
  KO_DELINQUENT_ELSEWHERE: {en: A payment is past due with another lender.}
  REF_BUREAU_UNAVAILABLE: {en: We could not obtain your credit report; an underwriter will review.}
flows: {application: flows/application.yaml}
tests: [tests/cases.yaml]
data_sources:
  bureau:
    subject: customer_id
    consent: consent_reference
    cache_ttl_seconds: 3600
    circuit_breaker: {failures: 50, open_seconds: 30}
    providers:
      - {name: bureau_primary, url: "{secret:PRIMARY_URL}/bureau/v1/reports/{subject}", timeout_ms: 300, cost: 0.45}
      - {name: bureau_backup, url: "{secret:BACKUP_URL}/bureau/v1/reports/{subject}", timeout_ms: 300, cost: 0.60}
    fields:
      delinquent_now: {pointer: /report/delinquency/accounts_delinquent_now, type: integer, default: 0}
      inquiries_12m: {pointer: /report/inquiries_12m, type: integer}
    on_failure: {outcome: refer, reason: REF_BUREAU_UNAVAILABLE}
"#;

const FLOW: &str = r#"input:
  customer_id: {type: string}
  score: {type: number}
  consent_reference: {type: string, required: false}
steps:
  # Only the grey zone pays for a bureau report.
  - data: {id: bureau, source: bureau, when: "score >= 480 and score < 530"}
  - rule_set:
      id: bureau_rules
      rules:
        - {id: B-01, when: "bureau.available and bureau.delinquent_now > 0", outcome: decline, reason: KO_DELINQUENT_ELSEWHERE}
outcome: {default: approve}
"#;

const CASES: &str = r#"- name: clear-score-no-bureau
  flow: application
  as_of: 2026-11-29
  input: {customer_id: C-1, score: 700}
  expect: {outcome: approve}
- name: grey-zone-clean-report
  flow: application
  extends: clear-score-no-bureau
  input: {score: 500}
  data: {bureau: {delinquent_now: 0, inquiries_12m: 2}}
  expect: {outcome: approve}
- name: grey-zone-delinquent-elsewhere
  flow: application
  extends: grey-zone-clean-report
  data: {bureau: {delinquent_now: 1, inquiries_12m: 2}}
  expect: {outcome: decline, reasons: [KO_DELINQUENT_ELSEWHERE]}
- name: grey-zone-bureau-down
  flow: application
  extends: clear-score-no-bureau
  input: {score: 500}
  data: {bureau: unavailable}
  expect: {outcome: refer, reasons: [REF_BUREAU_UNAVAILABLE]}
"#;

fn cli(args: &[&str]) -> String {
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_credence"))
        .args(args)
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(output.status.success(), "{args:?}: {text}");
    text
}

/// Writes the bureau-check package under `root`.
fn write_package(root: &Path) -> PathBuf {
    let package = root.join("package");
    std::fs::create_dir_all(package.join("flows")).unwrap();
    std::fs::create_dir_all(package.join("tests")).unwrap();
    std::fs::write(package.join("strategy.yaml"), STRATEGY).unwrap();
    std::fs::write(package.join("flows/application.yaml"), FLOW).unwrap();
    std::fs::write(package.join("tests/cases.yaml"), CASES).unwrap();
    package
}

/// Uploads, approves (a second person) and activates `package`; returns a key that may decide
/// and replay.
fn activate(server: &Server, package: &Path) -> String {
    let analyst = server.key("analyst", "alice");
    let approver = server.key("approver", "bob");
    let caller = server.key("decide,analyst", "platform");
    let uploaded = cli(&[
        "strategy",
        "upload",
        package.to_str().unwrap(),
        "--server",
        &server.url,
        "--key",
        &analyst,
    ]);
    let version = uploaded
        .split(|c: char| !c.is_ascii_hexdigit())
        .find(|w| w.len() == 64)
        .expect("a version in the upload answer")
        .to_string();
    for step in ["approve", "activate"] {
        cli(&[
            "strategy",
            step,
            &version,
            "--server",
            &server.url,
            "--key",
            &approver,
        ]);
    }
    caller
}

/// Decides `body` with the application flow; the answer must be a decision.
fn decide_application(server: &Server, key: &str, body: &Value) -> Value {
    let answer = post_json(
        &format!(
            "{}/v1/strategies/bureau-check/decisions/application",
            server.url
        ),
        key,
        body,
        &[],
    );
    assert_eq!(answer.status, 200, "{}", answer.json);
    answer.json
}

#[test]
fn bureau_calls_are_conditional_cached_fall_back_and_replay_without_calling() {
    let root = scratch_dir("third-party");
    let package = write_package(&root);
    let primary = start_sim(&[]);
    let backup = start_sim(&[]);
    let server = Server::start_with_env(
        &root.join("data"),
        &[],
        &[
            ("PRIMARY_URL", primary.url.as_str()),
            ("BACKUP_URL", backup.url.as_str()),
        ],
    );
    let caller = activate(&server, &package);

    let decide = |customer: &str, score: i64| -> Value {
        let body = json!({"customer_id": customer, "score": score, "consent_reference": format!("consent-{customer}")});
        decide_application(&server, &caller, &body)
    };

    // A clear score: the bureau is not needed and not called.
    let clear = decide("C-100001", 700);
    assert_eq!(
        (clear["outcome"].clone(), clear["data"][0]["status"].clone()),
        (json!("approve"), json!("skipped"))
    );
    assert_eq!(sim_calls(&primary), json!({}));

    // The grey zone: the primary answers; the call is recorded with the decision.
    let first = decide("C-100001", 500);
    let used = &first["data"][0];
    assert_eq!(used["status"], "ok", "{first}");
    assert_eq!(used["meta"]["provider"], "bureau_primary");
    assert_eq!(used["meta"]["cache_hit"], false);
    assert_eq!(used["meta"]["consent"], "consent-C-100001");
    assert_eq!(used["meta"]["calls"][0]["status"], "ok");
    assert_eq!(used["meta"]["calls"][0]["cost"], "0.45");
    assert!(used["values"]["inquiries_12m"].is_u64());

    // The same customer again within the TTL: the cache answers, nobody is paid twice.
    let again = decide("C-100001", 510);
    assert_eq!(again["data"][0]["meta"]["cache_hit"], true);
    assert_eq!(sim_calls(&primary), json!({"bureau": 1}));

    // The primary hangs: after its timeout the backup answers.
    set_failure(&primary, "timeout", 1.0);
    let fallback = decide("C-200002", 500);
    let calls = &fallback["data"][0]["meta"]["calls"];
    assert_eq!(
        (calls[0]["status"].clone(), calls[1]["status"].clone()),
        (json!("timeout"), json!("ok")),
        "{fallback}"
    );
    assert_eq!(fallback["data"][0]["meta"]["provider"], "bureau_backup");

    // Operators see each provider's calls and their latency by outcome.
    let metrics = server.metrics();
    for needle in [
        "credence_provider_calls_total{provider=\"bureau_primary\",status=\"timeout\"} 1",
        "credence_provider_cache_hits_total{source=\"bureau\"} 1",
        "credence_provider_call_seconds_count{provider=\"bureau_primary\",status=\"ok\"} 1",
        "credence_provider_call_seconds_count{provider=\"bureau_backup\",status=\"ok\"} 1",
        // The timed-out call is recorded, and not before its 300 ms timeout (a timer never fires
        // early; how much later it fires depends on the machine, so no upper bound is checked).
        "credence_provider_call_seconds_count{provider=\"bureau_primary\",status=\"timeout\"} 1",
        "credence_provider_call_seconds_bucket{provider=\"bureau_primary\",status=\"timeout\",le=\"0.25\"} 0",
    ] {
        assert!(metrics.contains(needle), "{needle} in\n{metrics}");
    }

    // Both fail: the declared policy (refer) with the reason in the record.
    set_failure(&backup, "error", 1.0);
    let referred = decide("C-300003", 500);
    assert_eq!(referred["outcome"], "refer");
    assert_eq!(referred["reasons"][0]["code"], "REF_BUREAU_UNAVAILABLE");
    assert!(
        referred["data"][0]["reason"]
            .as_str()
            .unwrap()
            .contains("HTTP 500"),
        "{referred}"
    );

    // Years later, with no provider reachable, a replay reproduces the decision from its record.
    drop(primary);
    drop(backup);
    let replay = post_json(
        &format!(
            "{}/v1/decisions/{}/replay",
            server.url,
            first["id"].as_str().unwrap()
        ),
        &caller,
        &json!({}),
        &[],
    );
    assert_eq!(replay.status, 200, "{}", replay.json);
    assert_eq!(
        replay.json["diff"]["identical"],
        json!(true),
        "{}",
        replay.json
    );
    assert_eq!(
        replay.json["decision"]["data"][0]["values"],
        first["data"][0]["values"]
    );
}

/// Stops the server as an operator does (SIGTERM) and waits for it to exit.
fn stop_gracefully(server: &mut Server) {
    let status = std::process::Command::new("kill")
        .args(["-TERM", &server.child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let exit = server.child.wait().unwrap();
    assert!(
        exit.success(),
        "the server exits cleanly on SIGTERM: {exit}"
    );
}

#[test]
fn a_restart_within_the_ttl_reuses_the_paid_answer_instead_of_pulling_again() {
    let root = scratch_dir("third-party-restart");
    let package = write_package(&root);
    let primary = start_sim(&[]);
    let env = [
        ("PRIMARY_URL", primary.url.as_str()),
        ("BACKUP_URL", primary.url.as_str()),
    ];
    let mut server = Server::start_with_env(&root.join("data"), &[], &env);
    let caller = activate(&server, &package);
    let decide = |server: &Server, customer: &str| -> Value {
        decide_application(
            server,
            &caller,
            &json!({"customer_id": customer, "score": 500}),
        )
    };
    let first = decide(&server, "C-400004");
    assert_eq!(first["data"][0]["meta"]["cache_hit"], false, "{first}");
    assert_eq!(sim_calls(&primary), json!({"bureau": 1}));

    // A deploy: the server stops and starts again on the same data directory.
    stop_gracefully(&mut server);
    let server = Server::start_with_env(&root.join("data"), &[], &env);
    let again = decide(&server, "C-400004");
    let used = &again["data"][0];
    assert_eq!(used["meta"]["cache_hit"], true, "{again}");
    assert_eq!(used["meta"]["provider"], "bureau_primary");
    assert_eq!(used["values"], first["data"][0]["values"]);
    assert_eq!(
        sim_calls(&primary),
        json!({"bureau": 1}),
        "nobody is paid twice"
    );
    // Another customer is still pulled.
    let other = decide(&server, "C-500005");
    assert_eq!(other["data"][0]["meta"]["cache_hit"], false, "{other}");
    assert_eq!(sim_calls(&primary), json!({"bureau": 2}));
}

#[test]
fn a_report_one_node_bought_is_not_bought_again_by_another() {
    let Some(pg) = credence_throwaway_postgres::require("third_party_shared") else {
        return;
    };
    let url = pg.fresh_database("third_party_shared");
    let root = scratch_dir("third-party-shared");
    let package = write_package(&root);
    let primary = start_sim(&[]);
    let env = [
        ("PRIMARY_URL", primary.url.as_str()),
        ("BACKUP_URL", primary.url.as_str()),
    ];
    let first = Server::start_with_env(
        &root.join("a"),
        &["--database-url", &url, "--node-id", "a"],
        &env,
    );
    let second = Server::start_with_env(
        &root.join("b"),
        &["--database-url", &url, "--node-id", "b"],
        &env,
    );
    let caller = activate(&first, &package);
    let body = json!({"customer_id": "C-600006", "score": 500});
    let bought = decide_application(&first, &caller, &body);
    assert_eq!(bought["data"][0]["meta"]["cache_hit"], false, "{bought}");
    assert_eq!(sim_calls(&primary), json!({"bureau": 1}));
    // The paid answer reaches the shared store within a moment.
    let started = std::time::Instant::now();
    while postgres::sql(&url, "SELECT COUNT(*) FROM provider_answers") == 0 {
        assert!(
            started.elapsed() < std::time::Duration::from_secs(10),
            "never saved"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    // The other node follows the activation, then reuses the answer.
    let reused = loop {
        let answer = post_json(
            &format!(
                "{}/v1/strategies/bureau-check/decisions/application",
                second.url
            ),
            &caller,
            &body,
            &[],
        );
        assert_eq!(answer.status, 200, "{}", answer.json);
        if answer.json["strategy_version"] == bought["strategy_version"] {
            break answer.json;
        }
        assert!(
            started.elapsed() < std::time::Duration::from_secs(10),
            "never activated"
        );
    };
    assert_eq!(reused["data"][0]["meta"]["cache_hit"], true, "{reused}");
    assert_eq!(reused["data"][0]["values"], bought["data"][0]["values"]);
    assert_eq!(
        sim_calls(&primary),
        json!({"bureau": 1}),
        "nobody is paid twice"
    );
}

/// Without `--example` or a providers URL, start-up says the example's data sources are not
/// configured, and `/readyz` shows it (readiness does not depend on them).
#[test]
fn serve_says_which_data_providers_are_not_configured() {
    let server = Server::start(&scratch_dir("third-party-unconfigured"), &[]);
    let ready = request("GET", &format!("{}/readyz", server.url), None, &[], None);
    assert_eq!(ready.status, 200, "{}", ready.json);
    let providers = ready.json["data_providers"].as_array().unwrap();
    assert_eq!(providers.len(), 3, "{}", ready.json);
    for provider in providers {
        assert_eq!(provider["status"], "unconfigured", "{provider}");
        assert!(
            provider["problem"]
                .as_str()
                .unwrap()
                .contains("CREDENCE_PROVIDERS_URL"),
            "{provider}"
        );
    }
}

/// Under `serve --example`, with the simulated providers answering, every application sample
/// of both bundled products gets the outcome its name says.
#[test]
fn serve_example_samples_get_the_outcomes_their_names_say() {
    let server = Server::start(&scratch_dir("third-party-samples"), &["--example"]);
    let key = server.key("decide", "platform");
    // Start-up checked the providers: with the simulator, every one is reachable.
    let ready = request("GET", &format!("{}/readyz", server.url), None, &[], None);
    let providers = ready.json["data_providers"].as_array().unwrap().clone();
    assert_eq!(providers.len(), 3, "{}", ready.json);
    assert!(
        providers.iter().all(|p| p["status"] == "reachable"),
        "{}",
        ready.json
    );
    for (product, sample, outcome) in [
        ("consumer-loan", "application-approve", "approve"),
        ("consumer-loan", "application-decline", "decline"),
        ("consumer-loan", "application-refer", "refer"),
        ("card-line", "application-approve", "approve"),
        ("card-line", "application-decline", "decline"),
        ("card-line", "application-refer", "refer"),
    ] {
        let path = repo_root().join(format!("examples/{product}/samples/{sample}.json"));
        let input: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
        let answer = post_json(
            &format!(
                "{}/v1/strategies/{product}/decisions/application",
                server.url
            ),
            &key,
            &input,
            &[],
        );
        assert_eq!(answer.status, 200, "{}", answer.json);
        assert_eq!(
            answer.json["outcome"], outcome,
            "{product} {sample}: {}",
            answer.json
        );
    }
}

#[test]
fn serve_example_wires_the_example_strategy_to_an_in_process_simulator() {
    let server = Server::start(&scratch_dir("third-party-example"), &["--example"]);
    let key = server.key("decide", "platform");
    let mut application = example_input("application-approve.json");
    application["customer_id"] = json!("C-example-7");
    application["consent_reference"] = json!("CONSENT-7");
    application
        .as_object_mut()
        .unwrap()
        .remove("verified_monthly_income");
    let answer = post_json(
        &format!("{}/v1/decisions/application", server.url),
        &key,
        &application,
        &[],
    );
    assert_eq!(answer.status, 200, "{}", answer.json);
    let used = &answer.json["data"][0];
    assert_eq!(used["step"], "income_check");
    assert_eq!(used["status"], "ok", "{}", answer.json);
    assert_eq!(used["meta"]["provider"], "income_provider");
    assert_eq!(used["meta"]["consent"], "CONSENT-7");
    assert!(used["values"]["verified"].is_boolean());
    // The liabilities provider is asked in the same round (the steps are independent) and
    // its report feeds the income estimate and the obligations.
    let liabilities = &answer.json["data"][1];
    assert_eq!(liabilities["step"], "liabilities");
    assert_eq!(liabilities["status"], "ok", "{}", answer.json);
    assert_eq!(liabilities["meta"]["provider"], "liabilities_provider");
    assert!(
        !liabilities["values"]["revolving_limit"].is_null(),
        "{}",
        answer.json
    );
    // A clear approval pays for no bureau report: the grey-zone step is skipped.
    let bureau = &answer.json["data"][2];
    assert_eq!(
        (bureau["step"].as_str(), bureau["status"].as_str()),
        (Some("bureau_report"), Some("skipped")),
        "{}",
        answer.json
    );
    // The full trace shows the estimate the liabilities report gave.
    let id = answer.json["id"].as_str().unwrap();
    let stored = get(&format!("{}/v1/decisions/{id}", server.url), &key);
    let trace = stored.json.to_string();
    assert!(trace.contains("income_estimate"), "{trace}");
}

#[test]
fn https_providers_are_trusted_through_the_operator_ca_file_and_refused_without_it() {
    const REPORT: &str =
        r#"{"report": {"delinquency": {"accounts_delinquent_now": 0}, "inquiries_12m": 3}}"#;
    let primary = start_https_provider(REPORT);
    let backup = start_https_provider(REPORT);
    let providers = [
        ("PRIMARY_URL", primary.url.as_str()),
        ("BACKUP_URL", backup.url.as_str()),
    ];
    let ca_file = fixture("ca.pem");
    let decide = |server: &Server, caller: &str| -> Value {
        let body = json!({"customer_id": "C-TLS-1", "score": 500});
        let url = format!(
            "{}/v1/strategies/bureau-check/decisions/application",
            server.url
        );
        let answer = post_json(&url, caller, &body, &[]);
        assert_eq!(answer.status, 200, "{}", answer.json);
        answer.json
    };

    // With the test CA trusted, the report comes over TLS from the primary.
    let root = scratch_dir("third-party-tls");
    let trusting = Server::start_with_env(
        &root.join("data"),
        &["--provider-ca-file", ca_file.to_str().unwrap()],
        &providers,
    );
    let caller = activate(&trusting, &write_package(&root));
    let decided = decide(&trusting, &caller);
    let used = &decided["data"][0];
    assert_eq!(decided["outcome"], "approve", "{decided}");
    assert_eq!(used["status"], "ok", "{decided}");
    assert_eq!(used["meta"]["provider"], "bureau_primary");
    assert_eq!(used["values"]["inquiries_12m"], 3);
    assert_eq!((primary.answered(), backup.answered()), (1, 0));

    // Without it, neither certificate is trusted: no answer is read, both calls are recorded
    // as unreachable with the reason, and the source's failure policy refers.
    let root = scratch_dir("third-party-tls-untrusted");
    let untrusting = Server::start_with_env(&root.join("data"), &[], &providers);
    let caller = activate(&untrusting, &write_package(&root));
    let referred = decide(&untrusting, &caller);
    assert_eq!(referred["outcome"], "refer", "{referred}");
    assert_eq!(referred["reasons"][0]["code"], "REF_BUREAU_UNAVAILABLE");
    let calls = &referred["data"][0]["meta"]["calls"];
    for call in [&calls[0], &calls[1]] {
        assert_eq!(call["status"], "unreachable", "{referred}");
        assert!(
            call["error"]
                .as_str()
                .unwrap()
                .contains("invalid peer certificate: UnknownIssuer"),
            "{referred}"
        );
    }
    assert_eq!((primary.answered(), backup.answered()), (1, 0));

    // A CA file that is not PEM stops the server at start, naming the setting.
    let not_pem = root.join("not-a-ca.pem");
    std::fs::write(&not_pem, "not a certificate").unwrap();
    let refused = std::process::Command::new(env!("CARGO_BIN_EXE_credence"))
        .args(["serve", "--addr", "127.0.0.1:0", "--data-dir"])
        .arg(root.join("data-refused"))
        .arg("--provider-ca-file")
        .arg(&not_pem)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(!refused.status.success());
    assert!(stderr.contains("provider_ca_file"), "{stderr}");
}

/// The CLI's `--server` speaks HTTPS, trusting `--ca-file` besides Mozilla's roots.
#[test]
fn the_cli_reaches_an_https_server_trusting_its_ca_file() {
    let server = start_https_provider("[]");
    let list = |extra: &[&str]| {
        std::process::Command::new(BIN)
            .args(["strategy", "list", "--server", &server.url, "--key", "k"])
            .args(extra)
            .output()
            .unwrap()
    };
    let ca_file = fixture("ca.pem");
    let trusted = list(&["--ca-file", ca_file.to_str().unwrap()]);
    assert!(
        trusted.status.success(),
        "{}",
        String::from_utf8_lossy(&trusted.stderr)
    );
    assert_eq!(server.answered(), 1);
    // Without it, the test CA is unknown: the handshake fails and says why.
    let untrusted = list(&[]);
    let stderr = String::from_utf8_lossy(&untrusted.stderr);
    assert!(!untrusted.status.success());
    assert!(stderr.contains("UnknownIssuer"), "{stderr}");
}

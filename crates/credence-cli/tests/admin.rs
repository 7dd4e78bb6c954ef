//! The operator's side of the service: configuration precedence, key revocation, and strategy
//! lifecycle from the command line against a data directory a server is running on.

#[path = "support/server.rs"]
mod support;

use serde_json::{json, Value};
use std::process::Command;
use support::*;

fn run(args: &[&str]) -> (i32, String) {
    let output = Command::new(BIN).args(args).output().unwrap();
    (
        output.status.code().unwrap_or(-1),
        format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        ),
    )
}

fn body_of(bytes: usize) -> Value {
    let mut input = example_input("application-approve.json");
    let padding = bytes.saturating_sub(input.to_string().len() + 40);
    input["employer_name"] = json!("x".repeat(padding.min(200)));
    input["application_id"] = json!("A".repeat(64));
    input
}

/// Flags beat environment variables, which beat the config file, which beats the defaults.
#[test]
fn flags_then_environment_then_config_file() {
    let root = scratch_dir("admin-config");
    let config = root.join("credence.toml");
    std::fs::write(&config, "max_body_bytes = 300\ndefault_page_size = 2\n").unwrap();
    let input = body_of(1200);
    let size = input.to_string().len();
    assert!(size > 700 && size < 4000, "{size}");
    let config_arg = config.to_str().unwrap();

    // The file alone: 300 bytes is too small for the input.
    let server = Server::start(&root.join("a"), &["--config", config_arg]);
    let key = server.key("decide,analyst", "platform");
    let refused = post_json(
        &format!("{}/v1/decisions/application", server.url),
        &key,
        &input,
        &[],
    );
    assert_eq!(refused.status, 413, "{}", refused.json);
    drop(server);

    // The environment overrides the file; the file's page size still applies.
    let server = Server::start_with_env(
        &root.join("b"),
        &["--config", config_arg],
        &[("CREDENCE_MAX_BODY_BYTES", "5000")],
    );
    let key = server.key("decide,analyst", "platform");
    for _ in 0..3 {
        let ok = post_json(
            &format!("{}/v1/decisions/application", server.url),
            &key,
            &input,
            &[],
        );
        assert_eq!(ok.status, 200, "{}", ok.json);
    }
    let page = get(&format!("{}/v1/decisions", server.url), &key);
    assert_eq!(
        page.json["items"].as_array().unwrap().len(),
        2,
        "default_page_size from the file"
    );
    drop(server);

    // A flag overrides the environment.
    let server = Server::start_with_env(
        &root.join("c"),
        &["--config", config_arg, "--max-body-bytes", "600"],
        &[("CREDENCE_MAX_BODY_BYTES", "5000")],
    );
    let key = server.key("decide", "platform");
    let refused = post_json(
        &format!("{}/v1/decisions/application", server.url),
        &key,
        &input,
        &[],
    );
    assert_eq!(refused.status, 413);

    // A misspelt key in the file is an error that names it, not a silent default.
    std::fs::write(&config, "max_body_byte = 300\n").unwrap();
    let (code, output) = run(&[
        "serve",
        "--config",
        config_arg,
        "--data-dir",
        root.join("d").to_str().unwrap(),
    ]);
    assert_eq!(code, 2, "{output}");
    assert!(output.contains("max_body_byte"), "{output}");
}

/// The group-commit window is the operator's: 0 commits at once, any value up to 100 ms is
/// taken from the file or a flag, and a larger one is refused at start with the bound.
#[test]
fn the_log_commit_window_is_set_within_its_bound() {
    let root = scratch_dir("admin-commit-window");
    let config = root.join("credence.toml");
    std::fs::write(&config, "log_commit_window_us = 5000\n").unwrap();
    let config_arg = config.to_str().unwrap();
    for (dir, args) in [
        ("zero", vec!["--log-commit-window-us", "0"]),
        ("file", vec!["--config", config_arg]),
    ] {
        let server = Server::start(&root.join(dir), &args);
        let key = server.key("decide", "platform");
        for n in 0..3 {
            let decided = post_json(
                &format!("{}/v1/decisions/application", server.url),
                &key,
                &example_input("application-approve.json"),
                &[("Idempotency-Key", &format!("{dir}-{n}"))],
            );
            assert_eq!(decided.status, 200, "{dir}: {}", decided.json);
        }
    }
    let (code, output) = run(&[
        "serve",
        "--log-commit-window-us",
        "200000",
        "--data-dir",
        root.join("too-long").to_str().unwrap(),
    ]);
    assert_ne!(code, 0, "{output}");
    assert!(
        output.contains("log_commit_window_us is 200000") && output.contains("at most 100000"),
        "{output}"
    );
}

/// The HTTP threads are the operator's: one serves decisions, and 0 or more than 256 are
/// refused at start with the bound.
#[test]
fn the_http_threads_are_set_within_their_bound() {
    let root = scratch_dir("admin-http-threads");
    let server = Server::start(&root.join("one"), &["--http-threads", "1"]);
    let key = server.key("decide", "platform");
    let decided = post_json(
        &format!("{}/v1/decisions/application", server.url),
        &key,
        &example_input("application-approve.json"),
        &[],
    );
    assert_eq!(decided.status, 200, "{}", decided.json);
    for threads in ["0", "300"] {
        let (code, output) = run(&[
            "serve",
            "--http-threads",
            threads,
            "--data-dir",
            root.join(format!("refused-{threads}")).to_str().unwrap(),
        ]);
        assert_ne!(code, 0, "{output}");
        assert!(
            output.contains(&format!("http_threads is {threads}"))
                && output.contains("between 1 and 256"),
            "{output}"
        );
    }
}

#[test]
fn revoked_keys_are_refused_and_listed_as_revoked() {
    let server = Server::start(&scratch_dir("admin-keys"), &[]);
    let admin = server.key("admin", "ops");
    let created = post_json(
        &format!("{}/v1/keys", server.url),
        &admin,
        &json!({"user": "lender-app", "roles": ["decide"]}),
        &[],
    );
    assert_eq!(created.status, 201, "{}", created.json);
    let key = created.json["key"].as_str().unwrap().to_string();
    let id = created.json["id"].as_str().unwrap().to_string();
    let decided = post_json(
        &format!("{}/v1/decisions/application", server.url),
        &key,
        &example_input("application-approve.json"),
        &[],
    );
    assert_eq!(decided.status, 200);
    let revoked = request(
        "DELETE",
        &format!("{}/v1/keys/{id}", server.url),
        Some(&admin),
        &[],
        None,
    );
    assert_eq!(revoked.status, 204);
    let after = post_json(
        &format!("{}/v1/decisions/application", server.url),
        &key,
        &example_input("application-approve.json"),
        &[],
    );
    assert_eq!(after.status, 401);
    assert!(after.json["message"].as_str().unwrap().contains("revoked"));
    let again = request(
        "DELETE",
        &format!("{}/v1/keys/{id}", server.url),
        Some(&admin),
        &[],
        None,
    );
    assert_eq!(again.status, 409, "{}", again.json);
    let (code, listing) = run(&[
        "keys",
        "list",
        "--data-dir",
        server.data_dir.to_str().unwrap(),
    ]);
    assert_eq!(code, 0);
    let line = listing.lines().find(|l| l.starts_with(&id)).unwrap();
    assert!(
        line.contains("lender-app") && line.contains("revoked"),
        "{line}"
    );
    assert!(
        !listing.contains(key.rsplit('_').next().unwrap()),
        "no secrets in the listing"
    );
}

/// The CLI acts on the data directory while the server runs; the server follows.
#[test]
fn strategy_lifecycle_on_a_data_directory_beside_a_running_server() {
    let root = scratch_dir("admin-lifecycle");
    let server = Server::start(&root.join("data"), &[]);
    let reader = server.key("analyst", "reader");
    let data_dir = server.data_dir.to_str().unwrap().to_string();
    let changed = root.join("changed");
    copy_example(&changed);
    let flow = changed.join("flows/drawdown.yaml");
    let mut text = std::fs::read_to_string(&flow).unwrap();
    text.push_str("\n# reviewed 2026-11\n");
    std::fs::write(&flow, text).unwrap();

    let (code, output) = run(&[
        "strategy",
        "upload",
        changed.to_str().unwrap(),
        "--data-dir",
        &data_dir,
        "--user",
        "alice",
    ]);
    assert_eq!(code, 0, "{output}");
    let uploaded: Value = serde_json::from_str(&output).unwrap();
    let version = uploaded["strategy"]["version"]
        .as_str()
        .unwrap()
        .to_string();

    let (code, output) = run(&[
        "strategy",
        "approve",
        &version,
        "--data-dir",
        &data_dir,
        "--user",
        "alice",
    ]);
    assert_eq!(code, 2, "{output}");
    assert!(output.contains("cannot approve it"), "{output}");
    let (code, output) = run(&[
        "strategy",
        "approve",
        &version,
        "--data-dir",
        &data_dir,
        "--user",
        "bob",
    ]);
    assert_eq!(code, 0, "{output}");
    let (code, output) = run(&[
        "strategy",
        "activate",
        &version,
        "--data-dir",
        &data_dir,
        "--user",
        "bob",
    ]);
    assert_eq!(code, 0, "{output}");

    // The running server follows within its refresh interval (100 ms in tests).
    let mut active = String::new();
    for _ in 0..50 {
        let answer = get(&format!("{}/v1/strategies/active", server.url), &reader);
        active = answer.json["version"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        if active == version {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    assert_eq!(active, version, "the server followed the activation");

    let (code, output) = run(&[
        "strategy",
        "rollback",
        "--data-dir",
        &data_dir,
        "--user",
        "bob",
    ]);
    assert_eq!(code, 0, "{output}");
    let (code, output) = run(&["strategy", "list", "--data-dir", &data_dir, "--user", "bob"]);
    assert_eq!(code, 0);
    let versions: Value = serde_json::from_str(&output).unwrap();
    assert_eq!(versions.as_array().unwrap().len(), 2);
    let (code, output) = run(&["strategy", "list", "--data-dir", &data_dir]);
    assert_eq!(code, 2, "--user is required: {output}");
}

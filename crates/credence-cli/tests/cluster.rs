//! Credence on one PostgreSQL as real processes: three `credence serve` nodes, one killed with SIGKILL under load, lose nothing acknowledged, retries on another node return the same decisions, the log verifies and tampering fails it; an activation reaches every node under load within 2 s; a portfolio review split across two processes, one killed and restarted, reviews each account once.

#[path = "support/postgres.rs"]
mod postgres;
#[path = "support/server.rs"]
mod support;

use postgres::sql;
use serde_json::{json, Value};
use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use support::*;

struct Cluster {
    url: String,
    root: std::path::PathBuf,
    nodes: Vec<Server>,
}

fn cluster(test: &str) -> Option<Cluster> {
    let pg = credence_throwaway_postgres::require(test)?;
    let url = pg.fresh_database(test);
    let root = scratch_dir(test);
    let mut nodes = Vec::new();
    // The first node creates the schema and activates the bundled strategy; then the others.
    for name in ["node-a", "node-b", "node-c"] {
        nodes.push(Server::start(
            &root.join(name),
            &["--database-url", &url, "--node-id", name],
        ));
    }
    Some(Cluster { url, root, nodes })
}

impl Cluster {
    fn key(&self, roles: &str, user: &str) -> String {
        create_key_in(&["--database-url", &self.url], roles, user)
    }

    fn verify(&self) -> (i32, String) {
        let output = Command::new(BIN)
            .args(["audit", "verify", "--database-url", &self.url])
            .output()
            .unwrap();
        (
            output.status.code().unwrap_or(-1),
            format!(
                "{}{}",
                String::from_utf8_lossy(&output.stdout),
                String::from_utf8_lossy(&output.stderr)
            ),
        )
    }

    fn sql(&self, statement: &str) -> i64 {
        sql(&self.url, statement)
    }
}

fn application(customer: &str) -> Value {
    let mut input = example_input("application-approve.json");
    input["customer_id"] = json!(customer);
    input
}

/// Posts a decision with an idempotency key; `None` when the node could not be reached or
/// did not acknowledge (a client would retry elsewhere).
fn try_decide(
    node_url: &str,
    key: &str,
    idempotency_key: &str,
    body: &Value,
) -> Option<(u16, Value, bool)> {
    let result = ureq::post(&format!("{node_url}/v1/decisions/application"))
        .timeout(Duration::from_secs(30))
        .set("Authorization", &format!("Bearer {key}"))
        .set("Content-Type", "application/json")
        .set("Idempotency-Key", idempotency_key)
        .send_string(&body.to_string());
    match result {
        Ok(response) => {
            let replayed = response.header("idempotent-replayed") == Some("true");
            let status = response.status();
            Some((
                status,
                response.into_json().unwrap_or(Value::Null),
                replayed,
            ))
        }
        Err(ureq::Error::Status(status, response)) => {
            Some((status, response.into_json().unwrap_or(Value::Null), false))
        }
        Err(_) => None,
    }
}

#[test]
fn a_node_killed_under_load_loses_nothing_acknowledged() {
    let Some(mut cluster) = cluster("cluster_kill") else {
        return;
    };
    let key = cluster.key("decide,analyst", "platform");
    let urls: Vec<String> = cluster.nodes.iter().map(|n| n.url.clone()).collect();
    let acknowledged = Arc::new(Mutex::new(Vec::<(String, String)>::new()));
    let count = Arc::new(AtomicUsize::new(0));
    let killed = Arc::new(AtomicBool::new(false));
    let clients: Vec<_> = (0..6)
        .map(|client| {
            let (urls, key, acknowledged, count, killed) = (
                urls.clone(),
                key.clone(),
                acknowledged.clone(),
                count.clone(),
                killed.clone(),
            );
            std::thread::spawn(move || {
                let body = application(&format!("C-kill-{client}"));
                for i in 0..60 {
                    let idempotency_key = format!("kill-{client}-{i}");
                    // Spread over the nodes; a failed node's request is retried on the next.
                    let mut attempt = client + i;
                    loop {
                        let node = &urls[attempt % urls.len()];
                        match try_decide(node, &key, &idempotency_key, &body) {
                            Some((200, answer, _)) => {
                                let id = answer["id"].as_str().unwrap().to_string();
                                acknowledged
                                    .lock()
                                    .unwrap()
                                    .push((idempotency_key.clone(), id));
                                count.fetch_add(1, Ordering::Relaxed);
                                break;
                            }
                            Some((status, answer, _)) if status < 500 => {
                                panic!("{node}: {status} {answer}")
                            }
                            _ => {
                                assert!(
                                    killed.load(Ordering::Relaxed),
                                    "a failure before the kill"
                                );
                                attempt += 1;
                            }
                        }
                    }
                }
            })
        })
        .collect();
    // Kill node B with SIGKILL once a third of the load is acknowledged.
    let started = Instant::now();
    while count.load(Ordering::Relaxed) < 120 {
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "the load stalled"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    killed.store(true, Ordering::Relaxed);
    cluster.nodes[1].kill();
    for client in clients {
        client.join().unwrap();
    }
    let acknowledged = acknowledged.lock().unwrap().clone();
    assert_eq!(acknowledged.len(), 360);

    // Every acknowledged decision is on the survivors, and a retry of its key on another node
    // returns it, replayed.
    let (a, c) = (&cluster.nodes[0].url, &cluster.nodes[2].url);
    for (n, (idempotency_key, id)) in acknowledged.iter().enumerate() {
        let fetched = get(&format!("{a}/v1/decisions/{id}"), &key);
        assert_eq!(fetched.status, 200, "{id}: {}", fetched.json);
        let body = application(&format!(
            "C-kill-{}",
            idempotency_key.split('-').nth(1).unwrap()
        ));
        let node = if n % 2 == 0 { a } else { c };
        let (status, answer, replayed) = try_decide(node, &key, idempotency_key, &body).unwrap();
        assert_eq!(
            (status, answer["id"].as_str(), replayed),
            (200, Some(id.as_str()), true)
        );
    }

    // The log verifies; a changed byte, a deleted row or a node's newest records deleted fail it.
    let (code, output) = cluster.verify();
    assert_eq!(code, 0, "{output}");
    assert!(output.contains("360 record(s)"), "{output}");
    let victim_id = &acknowledged[17].1;
    cluster.sql("CREATE TABLE deleted (LIKE decisions)");
    let tamperings = [
        (
            format!("UPDATE decisions SET outcome = 'decline' WHERE id = '{victim_id}'"),
            format!("UPDATE decisions SET outcome = 'approve' WHERE id = '{victim_id}'"),
            "contents do not match",
        ),
        (
            format!("WITH gone AS (DELETE FROM decisions WHERE id = '{victim_id}' RETURNING *) INSERT INTO deleted SELECT * FROM gone"),
            "INSERT INTO decisions SELECT * FROM deleted".to_string(),
            "records were removed",
        ),
        (
            "WITH gone AS (DELETE FROM decisions WHERE node_id = 'node-b' AND node_seq > \
             (SELECT MAX(node_seq) - 3 FROM decisions WHERE node_id = 'node-b') RETURNING *) \
             INSERT INTO deleted SELECT * FROM gone"
                .to_string(),
            "INSERT INTO decisions SELECT * FROM deleted".to_string(),
            "were removed",
        ),
    ];
    for (tamper, undo, words) in tamperings {
        cluster.sql("DELETE FROM deleted");
        assert!(cluster.sql(&tamper) > 0, "{tamper}: changed nothing");
        let (code, output) = cluster.verify();
        assert_eq!(code, 1, "{tamper}: {output}");
        assert!(output.contains(words), "{tamper}: {output}");
        cluster.sql(&undo);
        let (code, output) = cluster.verify();
        assert_eq!(code, 0, "{undo}: {output}");
    }
    let _ = std::fs::remove_dir_all(&cluster.root);
}

fn upload(node_url: &str, key: &str, dir: &Path) -> String {
    let output = Command::new(BIN)
        .args(["strategy", "upload"])
        .arg(dir)
        .args(["--server", node_url, "--key", key])
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let uploaded: Value = serde_json::from_slice(&output.stdout).unwrap();
    uploaded["strategy"]["version"]
        .as_str()
        .unwrap()
        .to_string()
}

#[test]
fn an_activation_reaches_every_node_under_load_within_two_seconds() {
    let Some(cluster) = cluster("cluster_activation") else {
        return;
    };
    let caller = cluster.key("decide", "platform");
    let analyst = cluster.key("analyst", "alice");
    let approver = cluster.key("approver", "bob");
    let changed = cluster.root.join("changed");
    copy_example(&changed);
    let flow = changed.join("flows/application.yaml");
    let mut text = std::fs::read_to_string(&flow).unwrap();
    text.push_str("\n# revised for the cluster test\n");
    std::fs::write(&flow, text).unwrap();
    let (a, b) = (&cluster.nodes[0].url, &cluster.nodes[1].url);
    let version = upload(a, &analyst, &changed);
    let approved = request(
        "POST",
        &format!("{b}/v1/strategies/{version}/approve"),
        Some(&approver),
        &[],
        None,
    );
    assert_eq!(approved.status, 200, "{}", approved.json);

    // Clients decide on every node without pause while the version is activated.
    let stop = Arc::new(AtomicBool::new(false));
    let clients: Vec<_> = (0..6)
        .map(|i| {
            let node = cluster.nodes[i % 3].url.clone();
            let (key, stop) = (caller.clone(), stop.clone());
            std::thread::spawn(move || {
                let body = application(&format!("C-act-{i}"));
                let mut seen = Vec::new();
                while !stop.load(Ordering::Relaxed) {
                    let answer = post_json(
                        &format!("{node}/v1/decisions/application"),
                        &key,
                        &body,
                        &[],
                    );
                    assert_eq!(answer.status, 200, "{node}: {}", answer.json);
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
    std::thread::sleep(Duration::from_millis(300));
    let activated = request(
        "POST",
        &format!("{a}/v1/strategies/{version}/activate"),
        Some(&approver),
        &[],
        None,
    );
    assert_eq!(activated.status, 200, "{}", activated.json);
    let at = Instant::now();
    // Every node decides with the new version within 2 s: polled, node by node.
    for node in &cluster.nodes {
        loop {
            let answer = post_json(
                &format!("{}/v1/decisions/application", node.url),
                &caller,
                &application("C-poll"),
                &[],
            );
            assert_eq!(answer.status, 200, "{}", answer.json);
            if answer.json["strategy_version"] == version.as_str() {
                break;
            }
            assert!(
                at.elapsed() < Duration::from_secs(2),
                "{} still decides with the old version",
                node.url
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }
    stop.store(true, Ordering::Relaxed);
    let mut after_switch = 0;
    for client in clients {
        let seen = client.join().unwrap();
        // Each client saw at most one switch, to the new version, and no failed request.
        assert!(
            seen.windows(2).filter(|w| w[0] != w[1]).count() <= 1,
            "{seen:?}"
        );
        after_switch += seen.iter().filter(|v| **v == version).count();
    }
    assert!(after_switch > 0);
    // The records say which version decided.
    let listed = get(&format!("{b}/v1/decisions?limit=5"), &analyst);
    assert_eq!(listed.status, 200, "{}", listed.json);
    let _ = std::fs::remove_dir_all(&cluster.root);
}

fn review_process(url: &str, node: &str) -> std::process::Child {
    Command::new(BIN)
        .args([
            "portfolio",
            "review",
            "--database-url",
            url,
            "--node-id",
            node,
        ])
        .args(["--run-id", "review-2026-12", "--as-of", "2026-12-05"])
        .args([
            "--workers",
            "1",
            "--lease-seconds",
            "3",
            "--partition-accounts",
            "2000",
        ])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap()
}

#[test]
fn a_portfolio_review_split_across_processes_reviews_each_account_once() {
    let Some(pg) = credence_throwaway_postgres::require("cluster_review") else {
        return;
    };
    let url = pg.fresh_database("cluster_review");
    let simulated = Command::new(BIN)
        .args([
            "simulate",
            "portfolio",
            "--database-url",
            &url,
            "--accounts",
            "100000",
        ])
        .args(["--skip-event-log", "--seed", "7", "--as-of", "2026-12-05"])
        .output()
        .unwrap();
    assert!(
        simulated.status.success(),
        "{}",
        String::from_utf8_lossy(&simulated.stderr)
    );
    assert_eq!(
        sql(&url, "SELECT COUNT(*) FROM accounts WHERE version = 1"),
        100_000
    );

    // Two processes share the run; one is killed mid-run and started again.
    let mut first = review_process(&url, "review-a");
    let second = review_process(&url, "review-b");
    let started = Instant::now();
    while sql(
        &url,
        "SELECT COUNT(*) FROM job_partitions WHERE state = 'done'",
    ) < 10
    {
        assert!(
            started.elapsed() < Duration::from_secs(300),
            "the review stalled"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    first.kill().unwrap();
    first.wait().unwrap();
    let restarted = review_process(&url, "review-a");
    let mut lines = Vec::new();
    for child in [second, restarted] {
        let output = child.wait_with_output().unwrap();
        assert!(output.status.success());
        lines.push(serde_json::from_slice::<Value>(&output.stdout).unwrap());
    }
    // Both saw the whole run done, with the same totals.
    let run = &lines[0]["run"];
    assert_eq!(run, &lines[1]["run"], "{lines:?}");
    assert_eq!(run["accounts_reviewed"], 100_000, "{run}");
    assert_eq!(lines[0]["partitions"], 50);
    assert_eq!(
        sql(
            &url,
            "SELECT COUNT(*) FROM job_partitions WHERE state <> 'done'"
        ),
        0
    );
    // No account changed twice; every change the run reports was applied once.
    assert_eq!(
        sql(&url, "SELECT COUNT(*) FROM accounts WHERE version > 2"),
        0
    );
    let changed = sql(&url, "SELECT COUNT(*) FROM accounts WHERE version = 2");
    assert_eq!(
        changed,
        run["decisions_recorded"].as_i64().unwrap(),
        "{run}"
    );
    assert_eq!(run["skipped_changed"], 0);
    assert!(changed > 10_000, "{changed}");
    let audited = sql(
        &url,
        "SELECT COALESCE(SUM(json_array_length((detail::json)->'accounts')), 0)::bigint \
         FROM audit_events WHERE action = 'account.batch_review'",
    );
    assert_eq!(audited, changed);
}

/// Runs `credence backtest` on the example strategy; its summary JSON.
fn backtest(args: &[&str]) -> Value {
    let output = Command::new(BIN)
        .args(["backtest", "--strategy"])
        .arg(repo_root().join("examples/consumer-loan"))
        .args(["--flow", "application", "--summary-json", "-"])
        .args(args)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).unwrap()
}

#[test]
fn a_month_of_the_log_exports_to_parquet_and_back_tests_like_the_log() {
    let Some(pg) = credence_throwaway_postgres::require("cluster_export") else {
        return;
    };
    let url = pg.fresh_database("cluster_export");
    let root = scratch_dir("cluster_export");
    let node = Server::start(
        &root.join("node"),
        &["--database-url", &url, "--node-id", "solo"],
    );
    let output = Command::new(BIN)
        .args([
            "keys",
            "create",
            "--database-url",
            &url,
            "--role",
            "decide",
            "--user",
            "p",
        ])
        .output()
        .unwrap();
    let key = String::from_utf8(output.stdout)
        .unwrap()
        .lines()
        .last()
        .unwrap()
        .to_string();
    for n in 0..20 {
        let answer = post_json(
            &format!("{}/v1/decisions/application", node.url),
            &key,
            &application(&format!("C-export-{n}")),
            &[],
        );
        assert_eq!(answer.status, 200, "{}", answer.json);
    }
    let month = chrono::Utc::now().format("%Y-%m").to_string();
    let parquet = root.join("month.parquet");
    let exported = Command::new(BIN)
        .args([
            "log",
            "export",
            "--database-url",
            &url,
            "--month",
            &month,
            "--output",
        ])
        .arg(&parquet)
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&exported.stderr);
    assert!(
        exported.status.success() && said.contains("exported 20 decision(s)"),
        "{said}"
    );
    // The export back-tests exactly as the database's log does.
    let from_database = backtest(&["--database-url", &url]);
    let from_parquet = backtest(&["--input", parquet.to_str().unwrap()]);
    assert_eq!(from_database["rows"], 20, "{from_database}");
    assert_eq!(from_parquet, from_database);
    let migrated = Command::new(BIN)
        .args(["migrate", "--database-url", &url])
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&migrated.stdout).contains("schema version 3"));
    // The other commands that read or manage state take the database as well.
    let monitored = Command::new(BIN)
        .args(["monitor", "log", "--database-url", &url])
        .output()
        .unwrap();
    let report: Value = serde_json::from_slice(&monitored.stdout).unwrap();
    assert_eq!(report["decisions"], 20, "{report}");
    let listed = Command::new(BIN)
        .args(["strategy", "list", "--database-url", &url, "--user", "ops"])
        .output()
        .unwrap();
    let listed = String::from_utf8_lossy(&listed.stdout);
    assert!(listed.contains("\"state\": \"approved\""), "{listed}");
    let mut user = Command::new(BIN)
        .args([
            "users",
            "create",
            "--database-url",
            &url,
            "--username",
            "ann",
            "--role",
            "reviewer",
        ])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write as _;
    user.stdin
        .take()
        .unwrap()
        .write_all(b"a long enough passphrase\n")
        .unwrap();
    assert!(user.wait().unwrap().success());
    let (code, verified) = {
        let output = Command::new(BIN)
            .args(["audit", "verify", "--database-url", &url])
            .output()
            .unwrap();
        (
            output.status.code(),
            String::from_utf8_lossy(&output.stdout).into_owned(),
        )
    };
    assert_eq!(code, Some(0), "{verified}");
    assert!(verified.contains("20 record(s)"), "{verified}");
    let _ = std::fs::remove_dir_all(&root);
}

#[test]
fn reviewers_on_different_nodes_taking_the_next_case_get_different_cases() {
    let Some(cluster) = cluster("cluster_cases") else {
        return;
    };
    let caller = cluster.key("decide", "platform");
    let reviewers = [cluster.key("review", "ann"), cluster.key("review", "bob")];
    let mut decisions = Vec::new();
    for n in 0..6 {
        let node = &cluster.nodes[n % 3];
        let mut referred = example_input("application-refer.json");
        referred["customer_id"] = json!(format!("C-case-{n}"));
        let answer = post_json(
            &format!("{}/v1/decisions/application", node.url),
            &caller,
            &referred,
            &[],
        );
        assert_eq!(answer.json["outcome"], "refer", "{}", answer.json);
        decisions.push(answer.json["id"].as_str().unwrap().to_string());
    }
    // Cases are opened behind the answers: wait until all six are listed.
    let started = Instant::now();
    while get(
        &format!("{}/v1/cases?limit=50", cluster.nodes[0].url),
        &reviewers[0],
    )
    .json
    .as_array()
    .map_or(0, |cases| cases.len())
        < 6
    {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "the cases were never opened"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    // Ann on node a and Bob on node b take cases at the same time until none is left.
    let takers: Vec<_> = [(0usize, 0usize), (1, 1)]
        .into_iter()
        .map(|(node, reviewer)| {
            let url = format!("{}/v1/cases/next", cluster.nodes[node].url);
            let key = reviewers[reviewer].clone();
            std::thread::spawn(move || {
                let mut taken = Vec::new();
                loop {
                    let answer = request("POST", &url, Some(&key), &[], None);
                    match answer.status {
                        200 => taken.push((
                            answer.json["id"].as_str().unwrap().to_string(),
                            answer.json["claimed_by"].as_str().unwrap().to_string(),
                        )),
                        204 => return taken,
                        other => panic!("{other}: {}", answer.json),
                    }
                }
            })
        })
        .collect();
    let mut all: Vec<(String, String)> =
        takers.into_iter().flat_map(|t| t.join().unwrap()).collect();
    assert_eq!(all.len(), 6, "{all:?}");
    all.sort();
    all.dedup_by(|a, b| a.0 == b.0);
    assert_eq!(all.len(), 6, "a case went to two reviewers: {all:?}");
    assert!(all.iter().all(|(_, by)| by == "ann" || by == "bob"));
    let _ = std::fs::remove_dir_all(&cluster.root);
}

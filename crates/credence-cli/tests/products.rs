//! Two products side by side on a real server, and a candidate in shadow: every live card
//! decision gets its shadow twin (never returned, never delaying the answer), and the shadow
//! comparison's counts equal a back-test of the same logged inputs — all through the CLI
//! (`strategy upload|approve|shadow|show|promote`, `shadow report`, `backtest --log-strategy`).

#[path = "support/server.rs"]
mod support;

use serde_json::{json, Value};
use std::process::Command;
use std::time::{Duration, Instant};
use support::*;

/// Runs the CLI; (exit code, stdout, stderr).
fn cli(args: &[&str]) -> (i32, String, String) {
    let output = Command::new(BIN).args(args).output().unwrap();
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

fn cli_json(args: &[&str]) -> Value {
    let (code, stdout, stderr) = cli(args);
    assert_eq!(code, 0, "credence {args:?}: {stdout}{stderr}");
    serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("{e}: {stdout}"))
}

/// A card application that varies with `i` over every characteristic of the scorecard.
fn card_application(i: u32) -> Value {
    let pick = |values: &[&str], salt: u32| {
        values[((i * 7 + salt * 13) % values.len() as u32) as usize].to_string()
    };
    json!({
        "application_id": format!("CARD-T-{i:05}"),
        "customer_id": format!("C-T-{i:05}"),
        "birth_date": format!("{}-0{}-1{}", 1950 + (i * 7) % 55, 1 + i % 9, i % 10),
        "employment_type": pick(&["fixed", "fixed", "freelance", "part_time", "other"], 1),
        "employment_years": (i * 5) % 25,
        "housing": pick(&["owner", "rent", "parents", "private", "other"], 2),
        "public_records": if i.is_multiple_of(6) { "some" } else { "none" },
        "monthly_income": 700 + (i * 173) % 3300,
        "monthly_expenses": 300 + (i * 97) % 900,
        "assets": (i * 1_511) % 15_000,
        "debt": if i.is_multiple_of(4) { (i * 331) % 6_000 } else { 0 },
        "requested_limit": if i.is_multiple_of(3) { Value::Null } else { json!(1_000 + (i * 250) % 9_000) },
    })
}

/// The card-line example with a stricter grey zone (D from 540, not 525) and A priced lower.
fn candidate_package(dir: &std::path::Path) {
    let example = repo_root().join("examples/card-line");
    for sub in ["flows", "scorecards", "tests"] {
        std::fs::create_dir_all(dir.join(sub)).unwrap();
    }
    for file in [
        "strategy.yaml",
        "scorecards/application.yaml",
        "tests/application.yaml",
    ] {
        std::fs::copy(example.join(file), dir.join(file)).unwrap();
    }
    let flow = std::fs::read_to_string(example.join("flows/application.yaml"))
        .unwrap()
        .replace(r#"- ["[525..550)", D]"#, r#"- ["[540..550)", D]"#)
        .replace(r#"- ['"A"', 0.169, 3.0]"#, r#"- ['"A"', 0.159, 3.0]"#);
    std::fs::write(dir.join("flows/application.yaml"), flow).unwrap();
    // Its cases still pass: none sits in 525–539, and the prime cases' APR moves with grade A.
    let cases = std::fs::read_to_string(dir.join("tests/application.yaml"))
        .unwrap()
        .replace("apr: 0.169", "apr: 0.159");
    std::fs::write(dir.join("tests/application.yaml"), cases).unwrap();
}

#[test]
fn two_products_side_by_side_and_a_shadow_whose_comparison_equals_a_back_test() {
    let root = scratch_dir("products-shadow");
    let data_dir = root.join("data");
    let mut server = Server::start(&data_dir, &["--example"]);
    let admin = server.key("admin", "ops");
    let analyst = server.key("analyst", "ana");
    let approver = server.key("approver", "abe");
    let url = server.url.clone();

    // Both bundled products are active; the cash loan is the default.
    let products = get(&format!("{url}/v1/products"), &admin).json;
    let names: Vec<(&str, bool)> = products
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["strategy"].as_str().unwrap(),
                p["default"].as_bool().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        names,
        [("card-line", false), ("consumer-loan", true)],
        "{products}"
    );
    let live_card = products[0]["version"].as_str().unwrap().to_string();

    // A candidate of the card, uploaded, approved by someone else, put in shadow — by the CLI.
    let candidate_dir = root.join("candidate");
    candidate_package(&candidate_dir);
    let place = |key: &str| {
        vec![
            "--server".to_string(),
            url.clone(),
            "--key".to_string(),
            key.to_string(),
        ]
    };
    let with = |args: &[&str], key: &str| {
        let mut all: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        all.extend(place(key));
        all
    };
    let run = |args: Vec<String>| cli_json(&args.iter().map(String::as_str).collect::<Vec<_>>());
    let uploaded = run(with(
        &["strategy", "upload", candidate_dir.to_str().unwrap()],
        &analyst,
    ));
    let candidate = uploaded["strategy"]["version"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(uploaded["strategy"]["name"], "card-line");
    run(with(&["strategy", "approve", &candidate], &approver));
    let shadow = run(with(&["strategy", "shadow", &candidate], &approver));
    assert_eq!(
        (shadow["mode"].as_str(), shadow["state"].as_str()),
        (Some("shadow"), Some("running"))
    );

    // Live traffic on both products; the answers are the live version's alone.
    let applications = 300;
    for i in 0..applications {
        let answer = post_json(
            &format!("{url}/v1/strategies/card-line/decisions/application"),
            &admin,
            &card_application(i),
            &[],
        );
        assert_eq!(answer.status, 200, "{}", answer.json);
        assert_eq!(answer.json["strategy_version"], live_card.as_str());
        assert!(answer.json.get("shadow_result").is_none());
        if i % 30 == 0 {
            let loan = post_json(
                &format!("{url}/v1/decisions/application"),
                &admin,
                &example_input("application-approve.json"),
                &[],
            );
            assert_eq!(loan.json["strategy"], "consumer-loan", "{}", loan.json);
        }
    }

    // Every live card decision of the window has its twin (polled: twins are written behind
    // the answers).
    let deadline = Instant::now() + Duration::from_secs(30);
    let report = loop {
        let report = run(with(
            &[
                "shadow",
                "report",
                "--strategy",
                "card-line",
                "--differing",
                "5",
            ],
            &approver,
        ));
        if report["twins"] == applications || Instant::now() > deadline {
            break report;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(report["live_decisions"], applications, "{report}");
    assert_eq!(report["twins"], applications, "{report}");
    assert_eq!(report["live_without_twin"], 0, "{report}");
    assert_eq!(report["candidate_version"], candidate.as_str());
    let matrix = &report["matrix"];
    let changed = report["differing_total"].as_u64().unwrap();
    assert!(changed > 0, "the candidate differs somewhere: {report}");
    assert!(matrix[0][0].as_u64().unwrap() > 0, "{report}");
    assert!(
        report["apr"]["lower"].as_u64().unwrap() > 0,
        "grade A is cheaper: {report}"
    );
    assert_eq!(report["differing"].as_array().unwrap().len(), 5);
    let metrics = server.metrics();
    assert!(
        metrics.contains(r#"credence_decisions_total{strategy="card-line""#),
        "decisions are counted by strategy"
    );

    // The back-test of the same logged inputs, the live package against the candidate.
    server.kill();
    let summary_path = root.join("summary.json");
    let (code, stdout, stderr) = cli(&[
        "backtest",
        "--strategy",
        repo_root().join("examples/card-line").to_str().unwrap(),
        "--challenger",
        candidate_dir.to_str().unwrap(),
        "--flow",
        "application",
        "--input",
        data_dir.to_str().unwrap(),
        "--log-strategy",
        "card-line",
        "--summary-json",
        summary_path.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{stdout}{stderr}");
    let summary: Value =
        serde_json::from_str(&std::fs::read_to_string(&summary_path).unwrap()).unwrap();
    assert_eq!(
        summary["rows"], applications,
        "only the card's decisions: {summary}"
    );
    let outcomes = ["approve", "refer", "decline"];
    for (i, live) in outcomes.iter().enumerate() {
        for (j, candidate) in outcomes.iter().enumerate() {
            assert_eq!(
                matrix[i][j], summary["swap"]["outcomes"][live][candidate],
                "{live} → {candidate}: shadow {report} vs back-test {summary}"
            );
        }
        assert_eq!(matrix[i][3], 0, "no candidate errors");
    }
    assert_eq!(
        report["swap_in"],
        summary["swap"]["challenger_only"]["rows"]
    );
    assert_eq!(report["swap_out"], summary["swap"]["champion_only"]["rows"]);
    assert_eq!(report["both_approved"], summary["swap"]["both"]["rows"]);

    // The shadow report reads the data directory too, and promotion makes the candidate live.
    let offline = cli_json(&[
        "shadow",
        "report",
        "--strategy",
        "card-line",
        "--data-dir",
        data_dir.to_str().unwrap(),
    ]);
    assert_eq!(offline["matrix"], report["matrix"]);
    let promoted = cli_json(&[
        "strategy",
        "promote",
        "--strategy",
        "card-line",
        "--reason",
        "shadow reviewed",
        "--data-dir",
        data_dir.to_str().unwrap(),
        "--user",
        "abe",
    ]);
    assert_eq!(promoted["state"], "promoted");
    let shown = cli_json(&[
        "strategy",
        "show",
        "--strategy",
        "card-line",
        "--data-dir",
        data_dir.to_str().unwrap(),
        "--user",
        "abe",
    ]);
    assert_eq!(shown["active"]["version"], candidate.as_str());
    let loan = cli_json(&[
        "strategy",
        "show",
        "--strategy",
        "consumer-loan",
        "--data-dir",
        data_dir.to_str().unwrap(),
        "--user",
        "abe",
    ]);
    assert_eq!(
        loan["active"]["active"], true,
        "the other product is untouched: {loan}"
    );
}

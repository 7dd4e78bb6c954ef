//! `credence backtest` end to end: a hand-computable case, the example strategy against a
//! challenger on the German Credit and Lending Club rows (report, diff, determinism), JSON Lines
//! input, and a back-test over a data directory's decision log.

#[path = "support/server.rs"]
mod support;

use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::process::Command;
use support::*;

fn backtest(args: &[&str]) -> (bool, String, String) {
    let output = Command::new(BIN)
        .arg("backtest")
        .args(args)
        .output()
        .unwrap();
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

fn read_json(path: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// Arguments comparing the packages `a` and `b` in `dir` on `input`, as of 2026-11-29.
fn compare_args(dir: &Path, input: &Path) -> Vec<String> {
    [
        "--strategy",
        dir.join("a").to_str().unwrap(),
        "--challenger",
        dir.join("b").to_str().unwrap(),
        "--flow",
        "application",
        "--input",
        input.to_str().unwrap(),
        "--as-of",
        "2026-11-29",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}

fn write_package(dir: &Path, cutoff: u32) {
    std::fs::create_dir_all(dir.join("flows")).unwrap();
    std::fs::write(
        dir.join("strategy.yaml"),
        format!("name: cutoff-{cutoff}\nlanguages: [en]\nreasons: {{LOW: {{en: low score}}}}\nflows: {{application: flows/a.yaml}}\n"),
    )
    .unwrap();
    std::fs::write(
        dir.join("flows/a.yaml"),
        format!(
            r#"input:
  application_id: {{type: string}}
  score: {{type: number}}
  amount: {{type: number}}
steps:
  - rule_set: {{id: r, rules: [{{id: R1, when: "score < {cutoff}", outcome: decline, reason: LOW}}]}}
outcome: {{default: approve, limit: amount, apr: "0.1"}}
"#
        ),
    )
    .unwrap();
}

/// The example with the challenger's changes (as tools/backtest/make_challenger.sh makes it).
fn example_challenger(dir: &Path) -> PathBuf {
    let _ = std::fs::remove_dir_all(dir);
    copy_example(dir);
    let flow = dir.join("flows/application.yaml");
    let text = std::fs::read_to_string(&flow)
        .unwrap()
        .replace(
            r#"champion_cutoff, values: {score_cutoff: "495"}"#,
            r#"champion_cutoff, values: {score_cutoff: "520"}"#,
        )
        .replace(
            r#"when: "requested_amount > 15000", outcome: refer"#,
            r#"when: "requested_amount > 25000", outcome: refer"#,
        );
    assert!(text.contains(r#"score_cutoff: "520""#) && text.contains("> 25000"));
    std::fs::write(&flow, text).unwrap();
    let manifest = dir.join("strategy.yaml");
    let text = std::fs::read_to_string(&manifest)
        .unwrap()
        .replace("name: consumer-loan\n", "name: consumer-loan-challenger\n");
    std::fs::write(&manifest, text).unwrap();
    dir.to_path_buf()
}

/// Six rows small enough to work by hand (see the comments), one of them invalid.
#[test]
fn a_hand_computable_back_test() {
    let dir = scratch_dir("backtest-by-hand");
    write_package(&dir.join("a"), 600);
    write_package(&dir.join("b"), 650);
    let input = dir.join("rows.csv");
    std::fs::write(
        &input,
        "application_id,score,amount,bad,segment\n\
         r1,700,1000,0,x\n\
         r2,620,2000,1,x\n\
         r3,640,3000,0,y\n\
         r4,550,500,1,y\n\
         r5,680,4000,1,y\n\
         r6,abc,100,0,y\n",
    )
    .unwrap();
    let summary = dir.join("summary.json");
    let diff = dir.join("diff.csv");
    let mut args = compare_args(&dir, &input);
    args.extend(
        [
            "--lgd",
            "0.5",
            "--by",
            "segment",
            "--summary-json",
            summary.to_str().unwrap(),
            "--diff",
            diff.to_str().unwrap(),
        ]
        .map(String::from),
    );
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let (ok, _, stderr) = backtest(&args);
    assert!(ok, "{stderr}");
    let s = read_json(&summary);
    // r6 is rejected (score is not a number); five rows are evaluated.
    assert_eq!(
        (s["rows"].clone(), s["rejected_rows"].clone()),
        (json!(5), json!(1))
    );
    assert!(
        s["rejections"][0]["message"]
            .as_str()
            .unwrap()
            .contains("score"),
        "{s}"
    );
    let a = &s["strategies"]["champion"];
    let b = &s["strategies"]["challenger"];
    // Champion (cut-off 600) approves r1 r2 r3 r5; the challenger (650) r1 r5.
    assert_eq!(a["approve_rate"], "0.8");
    assert_eq!(a["decline_rate"], "0.2");
    assert_eq!(b["approve_rate"], "0.4");
    assert_eq!(b["decline_rate"], "0.6");
    assert_eq!(a["average_limit"], "2500");
    // Approved bads: champion r2 r5 of 4, challenger r5 of 2.
    assert_eq!(a["approved_bad_rate"], "0.5");
    assert_eq!(b["approved_bad_rate"], "0.5");
    // EL = Σ bad × limit × 0.5: champion (2000 + 4000) × 0.5; challenger 4000 × 0.5.
    assert_eq!(a["expected_loss"], "3000");
    assert_eq!(b["expected_loss"], "2000");
    assert_eq!(b["reasons"], json!([{"code": "LOW", "count": 3}]));
    let swap = &s["swap"];
    assert_eq!(swap["both"]["rows"], 2);
    assert_eq!(swap["both"]["bad_rate"], "0.5");
    assert_eq!(swap["champion_only"]["rows"], 2);
    assert_eq!(swap["champion_only"]["expected_loss_champion"], "1000");
    assert_eq!(swap["challenger_only"]["rows"], 0);
    assert_eq!(swap["neither"]["rows"], 1);
    assert_eq!(swap["outcome_changed"], 2);
    assert_eq!(s["segments"]["segment"]["x"]["champion_approve_rate"], "1");
    assert_eq!(
        s["segments"]["segment"]["y"]["champion_approve_rate"],
        "0.666667"
    );
    assert_eq!(
        s["segments"]["segment"]["y"]["challenger_approve_rate"],
        "0.333333"
    );
    // The diff lists the two rows whose outcome changed, in input order.
    let diff = std::fs::read_to_string(&diff).unwrap();
    let ids: Vec<&str> = diff
        .lines()
        .skip(1)
        .map(|l| l.split(',').nth(1).unwrap())
        .collect();
    assert_eq!(ids, ["r2", "r3"]);
    assert_eq!(s["diff_rows"], 2);

    // A file back-test without --as-of is refused: it would depend on the day it runs.
    let (ok, _, stderr) = backtest(&[
        "--strategy",
        dir.join("a").to_str().unwrap(),
        "--flow",
        "application",
        "--input",
        input.to_str().unwrap(),
    ]);
    assert!(!ok && stderr.contains("--as-of"), "{stderr}");
}

#[test]
fn the_example_against_a_challenger_on_german_credit_and_lending_club() {
    let dir = scratch_dir("backtest-example");
    let challenger = example_challenger(&dir.join("challenger"));
    let example = repo_root().join("examples/consumer-loan");
    let run = |input: &str, by: &str, threads: &str, name: &str| -> (Value, String) {
        let summary = dir.join(format!("{name}.json"));
        let report = dir.join(format!("{name}.html"));
        let (ok, _, stderr) = backtest(&[
            "--strategy",
            example.to_str().unwrap(),
            "--challenger",
            challenger.to_str().unwrap(),
            "--flow",
            "application",
            "--input",
            repo_root().join(input).to_str().unwrap(),
            "--as-of",
            "2026-11-29",
            "--by",
            by,
            "--threads",
            threads,
            "--summary-json",
            summary.to_str().unwrap(),
            "--report",
            report.to_str().unwrap(),
        ]);
        assert!(ok, "{stderr}");
        (
            read_json(&summary),
            std::fs::read_to_string(report).unwrap(),
        )
    };

    let (german, page) = run(
        "data/backtest/german_credit_applications.csv",
        "purpose",
        "2",
        "german",
    );
    assert_eq!(german["rows"], 1000);
    assert_eq!(german["rejected_rows"], 0);
    assert_eq!(german["bad_rate"], "0.3");
    let a = &german["strategies"]["champion"];
    let b = &german["strategies"]["challenger"];
    let rate = |v: &Value| v.as_str().unwrap().parse::<f64>().unwrap();
    // The stricter cut-off approves fewer, and a population with a lower bad rate.
    assert!(
        rate(&b["approve_rate"]) < rate(&a["approve_rate"]),
        "{german}"
    );
    assert!(
        rate(&a["approved_bad_rate"]) < 0.3,
        "approvals are better than the population"
    );
    let swap = &german["swap"];
    let cells: u64 = ["both", "champion_only", "challenger_only", "neither"]
        .iter()
        .map(|c| swap[c]["rows"].as_u64().unwrap())
        .sum();
    assert_eq!(cells, 1000);
    assert!(
        rate(&swap["champion_only"]["bad_rate"]) > rate(&swap["both"]["bad_rate"]),
        "the swap-outs are riskier than the rows both approve: {swap}"
    );
    // Rates add up per strategy.
    for side in [a, b] {
        let total =
            rate(&side["approve_rate"]) + rate(&side["refer_rate"]) + rate(&side["decline_rate"]);
        assert!((total - 1.0).abs() < 1e-9);
    }
    // The report is one self-contained page with the charts.
    assert!(page.starts_with("<!doctype html>"));
    assert!(!page.contains("<script") && !page.contains("src=") && !page.contains("href="));
    for section in [
        "Swap set",
        "Score distribution",
        "Approval rate by purpose",
        "Reason codes",
    ] {
        assert!(page.contains(section), "{section} missing");
    }

    // Same input and strategies → the same summary and report, whatever the thread count.
    let (again, page_again) = run(
        "data/backtest/german_credit_applications.csv",
        "purpose",
        "1",
        "german-again",
    );
    assert_eq!(again, german);
    assert_eq!(page_again, page);

    // Lending Club, with the recorded provider answers in `step.field` columns.
    let (lending, _) = run(
        "data/backtest/lending_club_applications.csv",
        "grade",
        "2",
        "lending",
    );
    assert_eq!(lending["rows"], 10000);
    let grades = lending["segments"]["grade"].as_object().unwrap();
    assert_eq!(
        grades.keys().map(String::as_str).collect::<Vec<_>>(),
        ["A", "B", "C", "D", "E", "F", "G"]
    );
    // The challenger lifts the large-amount referral: it approves some the champion does not.
    assert!(lending["swap"]["challenger_only"]["rows"].as_u64().unwrap() > 0);
    let grade_rate = |g: &str| rate(&grades[g]["champion_approve_rate"]);
    assert!(
        grade_rate("A") > grade_rate("E"),
        "better grades are approved more"
    );
    // Recorded bureau answers were used: the grey-zone bureau rules fired.
    let reasons = lending["strategies"]["champion"]["reasons"].to_string();
    assert!(
        reasons.contains("REF_BUREAU_UTILISATION") || reasons.contains("KO_DELINQUENT"),
        "{reasons}"
    );
    assert!(!reasons.contains("REF_BUREAU_UNAVAILABLE"), "{reasons}");
}

#[test]
fn json_lines_and_a_decision_log_are_back_tested_too() {
    let dir = scratch_dir("backtest-log");
    let samples = [
        "application-approve.json",
        "application-refer.json",
        "application-decline.json",
    ];
    let lines: Vec<String> = samples
        .iter()
        .map(|s| example_input(s).to_string())
        .collect();
    let jsonl = dir.join("inputs.jsonl");
    std::fs::write(&jsonl, lines.join("\n") + "\n").unwrap();
    let example = repo_root().join("examples/consumer-loan");
    let (ok, stdout, stderr) = backtest(&[
        "--strategy",
        example.to_str().unwrap(),
        "--flow",
        "application",
        "--input",
        jsonl.to_str().unwrap(),
        "--as-of",
        "2026-11-29",
    ]);
    assert!(ok, "{stderr}");
    let from_lines: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(from_lines["rows"], 3);

    // The same three applications decided by the service, then back-tested from its log.
    let data_dir = dir.join("data");
    let server = Server::start(&data_dir, &[]);
    let key = server.key("decide", "platform");
    let mut logged = Vec::new();
    for sample in samples {
        let answer = post_json(
            &format!("{}/v1/decisions/application", server.url),
            &key,
            &example_input(sample),
            &[],
        );
        assert_eq!(answer.status, 200, "{}", answer.json);
        logged.push(answer.json["outcome"].as_str().unwrap().to_string());
    }
    // Monitoring over the same log: analysts and approvers only.
    let analyst = server.key("analyst", "risk");
    let monitoring = get(
        &format!("{}/v1/monitoring?flow=application", server.url),
        &analyst,
    );
    assert_eq!(monitoring.status, 200, "{}", monitoring.json);
    assert_eq!(monitoring.json["decisions"], 3);
    let month = &monitoring.json["months"][0];
    let total = month["approve_rate"].as_f64().unwrap()
        + month["refer_rate"].as_f64().unwrap()
        + month["decline_rate"].as_f64().unwrap();
    assert!((total - 1.0).abs() < 1e-9, "{month}");
    assert_eq!(
        get(&format!("{}/v1/monitoring", server.url), &key).status,
        403,
        "the decide role may not read monitoring"
    );
    assert_eq!(
        get(&format!("{}/v1/monitoring?limit=0", server.url), &analyst).status,
        400
    );
    let mut server = server;
    server.kill();
    let output = Command::new(BIN)
        .args(["monitor", "log", "--data-dir"])
        .arg(&data_dir)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let log: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(log["decisions"], 3);
    let (ok, stdout, stderr) = backtest(&[
        "--strategy",
        example.to_str().unwrap(),
        "--flow",
        "application",
        "--input",
        data_dir.to_str().unwrap(),
    ]);
    assert!(ok, "{stderr}");
    let from_log: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(from_log["rows"], 3);
    assert_eq!(from_log["as_of"], "recorded");
    // The strategy that made the decisions reproduces them from the log.
    let champion = &from_log["strategies"]["champion"];
    let count = |o: &str| logged.iter().filter(|l| *l == o).count() as u64;
    assert_eq!(champion["approved"], count("approve"));
    assert_eq!(champion["referred"], count("refer"));
    assert_eq!(champion["declined"], count("decline"));
}

/// A Parquet file (Snappy, as pandas writes it) back-tests exactly as the same rows in CSV.
#[test]
fn parquet_input_gives_the_same_summary_as_csv() {
    use arrow_array::{ArrayRef, Float64Array, Int64Array, RecordBatch, StringArray};
    use std::sync::Arc;
    let dir = scratch_dir("backtest-parquet");
    write_package(&dir.join("a"), 600);
    write_package(&dir.join("b"), 650);
    let ids = ["r1", "r2", "r3", "r4", "r5"];
    let scores = [700.0, 620.5, 640.0, 550.0, 680.0];
    let amounts = [1000, 2000, 3000, 500, 4000];
    let bads = [0, 1, 0, 1, 1];
    let segments = ["x", "x", "y", "y", "y"];
    let mut csv = String::from("application_id,score,amount,bad,segment\n");
    for i in 0..5 {
        csv.push_str(&format!(
            "{},{},{},{},{}\n",
            ids[i], scores[i], amounts[i], bads[i], segments[i]
        ));
    }
    std::fs::write(dir.join("rows.csv"), csv).unwrap();
    let batch = RecordBatch::try_from_iter([
        (
            "application_id",
            Arc::new(StringArray::from(ids.to_vec())) as ArrayRef,
        ),
        (
            "score",
            Arc::new(Float64Array::from(scores.to_vec())) as ArrayRef,
        ),
        (
            "amount",
            Arc::new(Int64Array::from(amounts.to_vec())) as ArrayRef,
        ),
        ("bad", Arc::new(Int64Array::from(bads.to_vec())) as ArrayRef),
        (
            "segment",
            Arc::new(StringArray::from(segments.to_vec())) as ArrayRef,
        ),
    ])
    .unwrap();
    let properties = parquet::file::properties::WriterProperties::builder()
        .set_compression(parquet::basic::Compression::SNAPPY)
        .build();
    let file = std::fs::File::create(dir.join("rows.parquet")).unwrap();
    let mut writer =
        parquet::arrow::ArrowWriter::try_new(file, batch.schema(), Some(properties)).unwrap();
    writer.write(&batch).unwrap();
    writer.close().unwrap();

    let run = |input: &str| -> Value {
        let mut args = compare_args(&dir, &dir.join(input));
        args.extend(["--by", "segment"].map(String::from));
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let (ok, stdout, stderr) = backtest(&args);
        assert!(ok, "{input}: {stderr}");
        serde_json::from_str(&stdout).unwrap()
    };
    let from_parquet = run("rows.parquet");
    assert_eq!(from_parquet["rows"], 5);
    assert_eq!(
        from_parquet["strategies"]["champion"]["approve_rate"],
        "0.8"
    );
    assert_eq!(from_parquet, run("rows.csv"));
}

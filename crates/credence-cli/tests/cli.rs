//! End-to-end tests of the `credence` binary: real processes, real files, exit codes and output.

#[path = "support/server.rs"]
mod support;

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};

const EXAMPLE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../examples/consumer-loan");

fn credence(args: &[&str], stdin: Option<&str>) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_credence"))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the credence binary starts");
    {
        let mut pipe = child.stdin.take().unwrap();
        if let Some(text) = stdin {
            pipe.write_all(text.as_bytes()).unwrap();
        }
    }
    child.wait_with_output().unwrap()
}

fn decide(flow: &str, input: &str, extra: &[&str]) -> Output {
    let mut args = vec![
        "decide",
        "--strategy",
        EXAMPLE,
        "--flow",
        flow,
        "--as-of",
        "2026-11-29",
    ];
    args.extend_from_slice(extra);
    args.push(input);
    credence(&args, None)
}

fn sample(name: &str) -> String {
    format!("{EXAMPLE}/samples/{name}.json")
}

fn stdout_json(output: &Output) -> serde_json::Value {
    serde_json::from_slice(&output.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&output.stdout)))
}

#[test]
fn samples_give_the_outcome_their_name_says() {
    for (name, flow, outcome) in [
        ("application-approve", "application", "approve"),
        ("application-decline", "application", "decline"),
        ("application-refer", "application", "refer"),
        ("drawdown-approve", "drawdown", "approve"),
        ("drawdown-decline", "drawdown", "decline"),
    ] {
        let output = decide(flow, &sample(name), &[]);
        assert!(
            output.status.success(),
            "{name}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        let decision = stdout_json(&output);
        assert_eq!(decision["outcome"], outcome, "{name}");
        for field in [
            "limit",
            "apr",
            "term_months",
            "reasons",
            "strategy_version",
            "arm",
        ] {
            assert!(decision.get(field).is_some(), "{name} lacks {field}");
        }
    }
}

#[test]
fn the_same_input_twice_gives_identical_bytes() {
    let first = decide("application", &sample("application-approve"), &["--trace"]);
    let second = decide("application", &sample("application-approve"), &["--trace"]);
    assert!(first.status.success());
    assert_eq!(first.stdout, second.stdout);
    assert!(
        stdout_json(&first)["trace"]["input"].is_object(),
        "--trace adds the input"
    );
}

#[test]
fn a_decline_lists_its_reasons_with_texts() {
    let output = decide(
        "application",
        &sample("application-decline"),
        &["--lang", "zh"],
    );
    let decision = stdout_json(&output);
    let reasons = decision["reasons"].as_array().unwrap();
    assert!(!reasons.is_empty());
    for reason in reasons {
        assert!(reason["code"].as_str().is_some_and(|c| !c.is_empty()));
        assert!(reason["text"]
            .as_str()
            .is_some_and(|t| !t.is_empty() && t != reason["code"].as_str().unwrap()));
    }
}

#[test]
fn standard_input_and_json_lines() {
    let approve = std::fs::read_to_string(sample("drawdown-approve")).unwrap();
    let decline = std::fs::read_to_string(sample("drawdown-decline")).unwrap();
    let one_line = |text: &str| {
        serde_json::to_string(&serde_json::from_str::<serde_json::Value>(text).unwrap()).unwrap()
    };
    let lines = format!("{}\n{}\n", one_line(&approve), one_line(&decline));
    let output = credence(
        &[
            "decide",
            "--strategy",
            EXAMPLE,
            "--flow",
            "drawdown",
            "--as-of",
            "2026-11-29",
            "-",
        ],
        Some(&lines),
    );
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let text = String::from_utf8(output.stdout).unwrap();
    let outcomes: Vec<String> = text
        .lines()
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l).unwrap()["outcome"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    assert_eq!(outcomes, ["approve", "decline"]);
}

/// A pretty-printed document with one trailing comma is one malformed document: one error
/// naming its line and column, nothing on standard output — not a JSON Lines file of broken
/// lines. A JSON Lines file with one bad line still decides the others; `--jsonl` forces it.
#[test]
fn a_pretty_printed_document_with_a_mistake_is_one_error_at_its_line() {
    let pretty = std::fs::read_to_string(sample("application-approve")).unwrap();
    // A trailing comma after the last field: the mistake is reported where the object closes.
    let broken = pretty.replacen(
        "\"bureau_inquiries_6m\": 1\n",
        "\"bureau_inquiries_6m\": 1,\n",
        1,
    );
    assert_ne!(broken, pretty);
    let closing_line = broken.lines().count();
    let path = write_temp("trailing-comma.json", &broken);
    let output = decide("application", path.to_str().unwrap(), &[]);
    assert_eq!(output.status.code(), Some(2));
    assert!(
        output.stdout.is_empty(),
        "{}",
        String::from_utf8_lossy(&output.stdout)
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(stderr.lines().count(), 1, "one error: {stderr}");
    assert!(
        stderr.contains(&format!("malformed JSON at line {closing_line}, column 1")),
        "{stderr}"
    );

    let approve = serde_json::from_str::<serde_json::Value>(&pretty)
        .unwrap()
        .to_string();
    let lines = format!("{approve}\n{{\"customer_id\": \"C-1\",}}\n{approve}\n");
    let path = write_temp("one-bad-line.jsonl", &lines);
    let output = decide("application", path.to_str().unwrap(), &[]);
    assert_eq!(output.status.code(), Some(2));
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(stdout.lines().count(), 3, "{stdout}");
    assert!(String::from_utf8_lossy(&output.stderr).contains("line 2: malformed JSON at column"));

    // Forced: a document's lines taken one by one.
    let output = decide(
        "application",
        sample("application-approve").as_str(),
        &["--jsonl"],
    );
    assert_eq!(output.status.code(), Some(2));
}

/// A file under the system's temporary directory, removed when dropped (by a failing test
/// too), so that runs leave nothing behind.
struct TempFile(PathBuf);

impl std::ops::Deref for TempFile {
    type Target = std::path::Path;
    fn deref(&self) -> &std::path::Path {
        &self.0
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

fn write_temp(name: &str, text: &str) -> TempFile {
    let path =
        std::env::temp_dir().join(format!("credence-cli-test-{}-{name}", std::process::id()));
    std::fs::write(&path, text).unwrap();
    TempFile(path)
}

#[test]
fn bad_input_exits_2_naming_the_problem() {
    let approve: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(sample("application-approve")).unwrap())
            .unwrap();
    let with = |field: &str, value: serde_json::Value| {
        let mut input = approve.clone();
        if value.is_null() {
            input.as_object_mut().unwrap().remove(field);
        } else {
            input[field] = value;
        }
        input.to_string()
    };
    let cases = [
        (
            "malformed.json",
            "{\"customer_id\": \"C-1\",".to_string(),
            "application",
            "malformed JSON at line 1",
        ),
        (
            "missing.json",
            with("requested_amount", serde_json::Value::Null),
            "application",
            "requested_amount",
        ),
        (
            "wrong-type.json",
            with("term_months", serde_json::json!("twelve")),
            "application",
            "term_months: expected an integer",
        ),
        (
            "out-of-bounds.json",
            with("requested_amount", serde_json::json!(5)),
            "application",
            "requested_amount: expected a number from 100",
        ),
        (
            "unknown-flow.json",
            approve.to_string(),
            "renewal",
            "unknown flow \"renewal\"",
        ),
    ];
    for (name, text, flow, needle) in cases {
        let path = write_temp(name, &text);
        let output = decide(flow, path.to_str().unwrap(), &[]);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{name}: {stderr}");
        assert!(stderr.contains(needle), "{name}: {stderr}");
        assert!(
            !stderr.contains("panicked") && !stderr.contains("backtrace"),
            "{stderr}"
        );
        assert!(output.stdout.is_empty(), "{name}");
    }
    let output = decide("application", "/nonexistent/input.json", &[]);
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("cannot read /nonexistent/input.json"));
    let output = credence(
        &[
            "decide",
            "--strategy",
            "/nonexistent",
            "--flow",
            "application",
            "-",
        ],
        Some("{}"),
    );
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("not a strategy package"));
    let output = credence(&["decide", "--no-such-flag"], None);
    assert_eq!(output.status.code(), Some(2));
}

#[test]
fn validate_passes_on_the_example_and_names_a_broken_case() {
    let output = credence(&["validate", EXAMPLE], None);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{stdout}");
    assert!(stdout.contains("0 failed"), "{stdout}");

    let broken = std::env::temp_dir().join(format!("credence-broken-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&broken);
    support::copy_example(&broken);
    let cases_file = broken.join("tests/application.yaml");
    let text = std::fs::read_to_string(&cases_file).unwrap();
    let changed = text.replacen("limit: 9400", "limit: 9500", 1);
    assert_ne!(text, changed);
    std::fs::write(&cases_file, changed).unwrap();
    let output = credence(&["validate", broken.to_str().unwrap()], None);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(1), "{stdout}");
    assert!(
        stdout.contains("FAIL  counter-offer-affordability"),
        "{stdout}"
    );
    assert!(
        stdout.contains("limit: expected 9500, got 9400"),
        "{stdout}"
    );
    let _ = std::fs::remove_dir_all(&broken);
}

#[test]
fn validate_reports_compile_problems_with_their_location() {
    let broken = std::env::temp_dir().join(format!("credence-uncompilable-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&broken);
    support::copy_example(&broken);
    let flow = broken.join("flows/drawdown.yaml");
    let text = std::fs::read_to_string(&flow).unwrap().replace(
        "credit_limit - outstanding_balance",
        "credit_limt - outstanding_balance",
    );
    std::fs::write(&flow, text).unwrap();
    let output = credence(&["validate", broken.to_str().unwrap()], None);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    // The mistake at its line and column, then one line for the cases it kept from running:
    // nothing that merely follows from it.
    assert!(
        stderr.contains("flows/drawdown.yaml:31:21: steps[0] (features line).values.available: unknown name `credit_limt`"),
        "{stderr}"
    );
    assert!(stderr.contains("did you mean `credit_limit`?"), "{stderr}");
    assert!(stderr.contains("has 2 problem(s)"), "{stderr}");
    assert!(
        stderr.contains("tests/drawdown.yaml: 13 case(s) of flow drawdown not checked"),
        "{stderr}"
    );
    let _ = std::fs::remove_dir_all(&broken);
}

/// Two rows of a `unique` table that only an evaluated cell can tell apart both match a live
/// input: a defect of the strategy, exit 3 — not exit 2, which says the input was bad.
#[test]
fn a_strategy_defect_found_while_deciding_exits_3() {
    let dir = std::env::temp_dir().join(format!("credence-defect-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("flows")).unwrap();
    std::fs::write(
        dir.join("strategy.yaml"),
        "name: defect\nlanguages: [en]\nreasons: {R1: {en: one}}\nflows: {application: flows/a.yaml}\n",
    )
    .unwrap();
    std::fs::write(
        dir.join("flows/a.yaml"),
        "input:\n  x: {type: number}\nsteps:\n  - table: {id: t, hit_policy: unique, inputs: [x], outputs: [y], rows: [[\"$ > 1 and $ < 5\", 1], [\"$ > 3\", 2]]}\noutcome:\n  default: approve\n",
    )
    .unwrap();
    let decide_x = |x: u32| {
        let input = write_temp(
            &format!("defect-input-{x}.json"),
            &format!(r#"{{"x": {x}}}"#),
        );
        credence(
            &[
                "decide",
                "--strategy",
                dir.to_str().unwrap(),
                "--flow",
                "application",
            ]
            .into_iter()
            .chain([input.to_str().unwrap()])
            .collect::<Vec<_>>(),
            None,
        )
    };
    let output = decide_x(4);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(3), "{stderr}");
    assert!(
        stderr.contains("defect of the strategy package"),
        "{stderr}"
    );
    assert_eq!(decide_x(2).status.code(), Some(0));
    let _ = std::fs::remove_dir_all(&dir);
}

/// Output cut short by the reader (`… | head -1`) ends the command quietly in every family
/// that prints a lot: no panic, no backtrace.
#[test]
fn a_closed_pipe_ends_commands_quietly() {
    let lines: String = (0..2_000)
        .map(|_| {
            let text = std::fs::read_to_string(sample("drawdown-approve")).unwrap();
            serde_json::from_str::<serde_json::Value>(&text)
                .unwrap()
                .to_string()
                + "\n"
        })
        .collect();
    let input = write_temp("many.jsonl", &lines);
    let data = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../data/backtest/german_credit_applications.csv"
    );
    let families: Vec<Vec<String>> = vec![
        vec![
            "decide".into(),
            "--strategy".into(),
            EXAMPLE.into(),
            "--flow".into(),
            "drawdown".into(),
            "--as-of".into(),
            "2026-11-29".into(),
            input.to_str().unwrap().into(),
        ],
        vec![
            "monitor".into(),
            "drift".into(),
            "--baseline".into(),
            data.into(),
            "--current".into(),
            data.into(),
            "--column".into(),
            "declared_monthly_income".into(),
        ],
        vec![
            "backtest".into(),
            "--strategy".into(),
            EXAMPLE.into(),
            "--flow".into(),
            "application".into(),
            "--input".into(),
            data.into(),
            "--as-of".into(),
            "2026-11-29".into(),
        ],
        vec!["--help".into()],
    ];
    for args in families {
        let mut child = Command::new(env!("CARGO_BIN_EXE_credence"))
            .args(&args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        // Read one byte, then close the pipe, as `head -c1` would.
        let mut stdout = child.stdout.take().unwrap();
        let mut byte = [0u8; 1];
        let _ = std::io::Read::read(&mut stdout, &mut byte);
        drop(stdout);
        let output = child.wait_with_output().unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(!stderr.contains("panicked"), "credence {args:?}: {stderr}");
        assert!(
            !stderr.contains("Broken pipe"),
            "credence {args:?}: {stderr}"
        );
    }
}

/// docs/strategy-format.md lists each step kind's trace fields exactly as a real full trace of
/// the example emits them: nothing missing, nothing stale.
#[test]
fn the_documented_trace_fields_are_the_emitted_ones() {
    let doc = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../docs/strategy-format.md"
    ))
    .unwrap();
    let table = doc
        .split("<!-- trace-fields: begin -->")
        .nth(1)
        .and_then(|rest| rest.split("<!-- trace-fields: end -->").next())
        .expect("the trace field table is marked in the doc");
    let mut documented = std::collections::BTreeMap::new();
    for line in table.lines().filter(|l| l.starts_with("| `")) {
        let cells: Vec<&str> = line.split('|').map(str::trim).collect();
        let kind = cells[1].trim_matches('`').to_string();
        let fields: std::collections::BTreeSet<String> = cells[2]
            .split(',')
            .map(|f| f.trim().trim_matches('`').to_string())
            .filter(|f| !f.is_empty() && f != "—")
            .collect();
        documented.insert(kind, fields);
    }
    let mut emitted: std::collections::BTreeMap<String, std::collections::BTreeSet<String>> =
        std::collections::BTreeMap::new();
    for name in [
        "application-approve",
        "application-decline",
        "application-refer",
    ] {
        let output = decide("application", &sample(name), &["--trace"]);
        let decision = stdout_json(&output);
        let trace = decision["trace"].as_object().unwrap();
        assert_eq!(
            trace.keys().map(String::as_str).collect::<Vec<_>>(),
            ["input", "steps"]
        );
        for step in trace["steps"].as_array().unwrap() {
            let kind = step["kind"].as_str().unwrap().to_string();
            let fields = emitted.entry(kind).or_default();
            for key in step.as_object().unwrap().keys() {
                if !["step", "kind", "values"].contains(&key.as_str()) {
                    fields.insert(key.clone());
                }
            }
        }
    }
    assert_eq!(documented, emitted);
}

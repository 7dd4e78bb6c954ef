//! In-loan management end to end: accounts opened over HTTP from approved decisions, events
//! (batches, duplicates, late arrivals), live features, drawdown interception, account reviews,
//! early warning; and the portfolio simulator and batch review on a data directory.

#[path = "support/server.rs"]
mod support;

use chrono::{Months, NaiveDate, Utc};
use serde_json::{json, Value};
use std::process::Command;
use support::*;

const BIN: &str = env!("CARGO_BIN_EXE_credence");

fn today() -> NaiveDate {
    Utc::now().date_naive()
}

fn months_ago(n: u32) -> NaiveDate {
    today().checked_sub_months(Months::new(n)).unwrap()
}

fn at(date: NaiveDate, hour: u32) -> String {
    format!("{date}T{hour:02}:00:00Z")
}

/// A minute ago: an event that has just happened, whatever the hour the test runs at (the
/// service rejects events from the future, so "today at 08:00" fails before 08:00 UTC).
fn just_now() -> String {
    (Utc::now() - chrono::Duration::minutes(1))
        .format("%Y-%m-%dT%H:%M:%SZ")
        .to_string()
}

/// Approves an application for `customer` and opens an account booked `booked_months_ago`.
fn open_account(
    server: &Server,
    key: &str,
    customer: &str,
    account_id: &str,
    booked: NaiveDate,
) -> Value {
    let mut application = example_input("application-approve.json");
    application["customer_id"] = json!(customer);
    let decision = post_json(
        &format!("{}/v1/decisions/application", server.url),
        key,
        &application,
        &[],
    );
    assert_eq!(decision.json["outcome"], "approve", "{}", decision.json);
    let body = json!({"decision_id": decision.json["id"], "account_id": account_id, "opened_on": booked.to_string()});
    let opened = post_json(&format!("{}/v1/accounts", server.url), key, &body, &[]);
    assert_eq!(opened.status, 201, "{}", opened.json);
    // Opening again from the same decision returns the same account.
    let again = post_json(&format!("{}/v1/accounts", server.url), key, &body, &[]);
    assert_eq!((again.status, &again.json["id"]), (200, &opened.json["id"]));
    opened.json
}

fn events(server: &Server, key: &str, account: &str, body: &Value) -> Answer {
    post_json(
        &format!("{}/v1/accounts/{account}/events", server.url),
        key,
        body,
        &[],
    )
}

fn account(server: &Server, key: &str, id: &str) -> Value {
    let answer = get(&format!("{}/v1/accounts/{id}", server.url), key);
    assert_eq!(answer.status, 200, "{}", answer.json);
    answer.json
}

fn money(value: &Value) -> f64 {
    value
        .as_str()
        .map_or_else(|| value.as_f64().unwrap(), |s| s.parse().unwrap())
}

fn actions(result: &Value) -> Vec<String> {
    result["changes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["action"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn an_account_lives_through_events_reviews_drawdowns_and_interception() {
    let data_dir = scratch_dir("accounts-e2e");
    let server = Server::start(&data_dir, &[]);
    let platform = server.key("decide", "servicing");
    let reviewer = server.key("review", "ops-reviewer");
    let opened = months_ago(8);

    // A good customer: draws most of the line, pays every instalment in full.
    let good = open_account(&server, &platform, "C-good-1", "ACC-GOOD-1", opened);
    assert_eq!(good["credit_limit"], "6000");
    assert_eq!(good["status"], "active");
    assert_eq!(good["schedule"].as_array().unwrap().len(), 24);

    let mut batch = vec![
        json!({"id": "d0", "time": at(opened, 10), "type": "drawdown", "amount": "4800"}),
        json!({"id": "d1", "time": at(opened + chrono::Duration::days(100), 10), "type": "drawdown", "amount": 500}),
    ];
    for month in 1..=7u32 {
        let due = opened.checked_add_months(Months::new(month)).unwrap();
        batch.push(json!({"id": format!("due-{month}"), "time": at(due, 6), "type": "instalment_due", "amount": "250"}));
        if month != 2 {
            batch.push(json!({"id": format!("pay-{month}"), "time": at(due, 12), "type": "repayment", "amount": "250"}));
        }
    }
    // The same event twice in one batch is applied once.
    batch.push(json!({"id": "d0", "time": at(opened, 10), "type": "drawdown", "amount": "4800"}));
    let first = events(&server, &platform, "ACC-GOOD-1", &json!({"events": batch}));
    assert_eq!(first.status, 200, "{}", first.json);
    assert_eq!(first.json["applied"], 15);
    assert_eq!(first.json["duplicates"], json!(["d0"]));
    assert_eq!(
        first.json["account"]["features"]["outstanding_balance"],
        "3800"
    );

    // A late event (month 2's repayment, arriving now) is applied as of its event time; the
    // same id again is ignored.
    let month2 = opened.checked_add_months(Months::new(2)).unwrap();
    let late = json!({"id": "pay-2", "time": at(month2, 12), "type": "repayment", "amount": "250"});
    let applied = events(&server, &platform, "ACC-GOOD-1", &late);
    assert_eq!(
        (
            applied.json["applied"].clone(),
            applied.json["account"]["features"]["outstanding_balance"].clone()
        ),
        (json!(1), json!("3550"))
    );
    let repeated = events(&server, &platform, "ACC-GOOD-1", &late);
    assert_eq!(repeated.json["applied"], 0);
    assert_eq!(repeated.json["duplicates"], json!(["pay-2"]));
    // Income: the newest by event time wins, whatever the arrival order.
    let month6 = opened.checked_add_months(Months::new(6)).unwrap();
    let month3 = opened.checked_add_months(Months::new(3)).unwrap();
    events(
        &server,
        &platform,
        "ACC-GOOD-1",
        &json!([{"id": "inc-6", "time": at(month6, 9), "type": "income_update", "monthly_income": 5000}]),
    );
    events(
        &server,
        &platform,
        "ACC-GOOD-1",
        &json!([{"id": "inc-3", "time": at(month3, 9), "type": "income_update", "monthly_income": 4000}]),
    );

    let features = account(&server, &platform, "ACC-GOOD-1")["features"].clone();
    assert_eq!(features["outstanding_balance"], "3550");
    assert_eq!(features["monthly_income"], "5000");
    assert_eq!(features["payment_to_due_3m"], "1");
    assert_eq!(features["months_on_book"], 8);
    assert_eq!(features["days_past_due"], 0);
    assert_eq!(features["utilisation"], "0.5917");
    let history = get(
        &format!("{}/v1/accounts/ACC-GOOD-1/events?limit=100", server.url),
        &platform,
    );
    assert_eq!(history.json.as_array().unwrap().len(), 18);

    // Account review: a seasoned customer who pays as due and uses the line gets more of it.
    let review = post_json(
        &format!("{}/v1/accounts/ACC-GOOD-1/review", server.url),
        &platform,
        &json!({}),
        &[],
    );
    assert_eq!(review.status, 200, "{}", review.json);
    assert_eq!(
        actions(&review.json),
        vec!["limit_increase"],
        "{}",
        review.json
    );
    assert_eq!(review.json["changes"][0]["to"], "7200");
    assert_eq!(
        account(&server, &platform, "ACC-GOOD-1")["credit_limit"],
        "7200"
    );
    // Reviewing again right away changes nothing (increases wait six months).
    let again = post_json(
        &format!("{}/v1/accounts/ACC-GOOD-1/review", server.url),
        &platform,
        &json!({}),
        &[],
    );
    assert_eq!(actions(&again.json), Vec::<String>::new());

    // A drawdown with an Idempotency-Key is paid out once, however often it is retried.
    let draw = |amount: &str, key: &str| {
        post_json(
            &format!("{}/v1/accounts/ACC-GOOD-1/drawdowns", server.url),
            &platform,
            &json!({"amount": amount}),
            &[("Idempotency-Key", key)],
        )
    };
    let paid = draw("200", "dd-1");
    assert_eq!(paid.status, 200, "{}", paid.json);
    assert_eq!(paid.json["decision"]["outcome"], "approve");
    let retried = draw("200", "dd-1");
    assert_eq!(
        (
            retried.json["replayed"].clone(),
            retried.json["decision_id"].clone()
        ),
        (json!(true), paid.json["decision_id"].clone())
    );
    assert_eq!(
        account(&server, &platform, "ACC-GOOD-1")["features"]["outstanding_balance"],
        "3750"
    );
    let recorded = get(
        &format!(
            "{}/v1/decisions/{}",
            server.url,
            paid.json["decision_id"].as_str().unwrap()
        ),
        &platform,
    );
    assert_eq!(
        (recorded.status, recorded.json["flow"].clone()),
        (200, json!("drawdown"))
    );

    // A severe delinquency at another lender: early warning freezes the line and refers it.
    let alert = json!({"id": "bureau-1", "time": just_now(), "type": "bureau_alert", "alert": "new_delinquency", "days_past_due": 90});
    let warned = events(&server, &platform, "ACC-GOOD-1", &alert);
    let warning = &warned.json["early_warning"];
    assert_eq!(warning["decision"]["outcome"], "refer", "{}", warned.json);
    assert_eq!(actions(warning), vec!["freeze", "refer"]);
    assert_eq!(warned.json["account"]["status"], "frozen");
    let cases = get(
        &format!("{}/v1/cases?queue=account_watch", server.url),
        &reviewer,
    );
    assert_eq!(
        cases.json.as_array().map_or(0, |c| c.len()),
        1,
        "{}",
        cases.json
    );

    // The next drawdown is intercepted.
    let blocked = draw("100", "dd-2");
    assert_eq!(blocked.json["decision"]["outcome"], "decline");
    let codes: Vec<&str> = blocked.json["decision"]["reasons"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["code"].as_str().unwrap())
        .collect();
    assert_eq!(codes[0], "DD_INTERCEPT", "{codes:?}");
    assert_eq!(
        account(&server, &platform, "ACC-GOOD-1")["features"]["outstanding_balance"],
        "3750"
    );

    // Unfreezing is a reviewer's call, with a note; the servicing key may not.
    let unfreeze = json!({"status": "active", "note": "bureau record disputed and corrected"});
    let denied = post_json(
        &format!("{}/v1/accounts/ACC-GOOD-1/status", server.url),
        &platform,
        &unfreeze,
        &[],
    );
    assert_eq!(denied.status, 403);
    let done = post_json(
        &format!("{}/v1/accounts/ACC-GOOD-1/status", server.url),
        &reviewer,
        &unfreeze,
        &[],
    );
    assert_eq!(
        (done.status, done.json["status"].clone()),
        (200, json!("active"))
    );

    // A deteriorating customer: short payments and missed instalments lower the limit, with
    // customer-facing reasons.
    open_account(&server, &platform, "C-slip-1", "ACC-SLIP-1", opened);
    let mut slipping =
        vec![json!({"id": "d0", "time": at(opened, 10), "type": "drawdown", "amount": 5000})];
    for month in 1..=7u32 {
        let due = opened.checked_add_months(Months::new(month)).unwrap();
        slipping.push(json!({"id": format!("due-{month}"), "time": at(due, 6), "type": "instalment_due", "amount": 250}));
        if month <= 4 {
            slipping.push(json!({"id": format!("pay-{month}"), "time": at(due, 12), "type": "repayment", "amount": 250}));
        } else {
            slipping.push(json!({"id": format!("pay-{month}"), "time": at(due, 12), "type": "repayment", "amount": 125, "days_past_due": 3}));
            slipping.push(json!({"id": format!("miss-{month}"), "time": at(due + chrono::Duration::days(1), 2), "type": "instalment_missed", "days_past_due": 3, "amount": 125}));
        }
    }
    let posted = events(&server, &platform, "ACC-SLIP-1", &json!(slipping));
    assert_eq!(posted.status, 200, "{}", posted.json);
    assert_eq!(
        posted.json["account"]["features"]["missed_instalments_6m"],
        3
    );
    assert!(
        posted.json["early_warning"]["decision"]["flags"]
            .as_array()
            .is_some(),
        "{}",
        posted.json
    );
    let review = post_json(
        &format!("{}/v1/accounts/ACC-SLIP-1/review", server.url),
        &platform,
        &json!({}),
        &[],
    );
    let changed = actions(&review.json);
    assert!(
        changed.contains(&"limit_decrease".to_string()),
        "{}",
        review.json
    );
    let reasons: Vec<&str> = review.json["decision"]["reasons"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["code"].as_str().unwrap())
        .collect();
    assert_eq!(reasons[0], "AR_LIMIT_DECREASE", "{reasons:?}");
    assert!(reasons.contains(&"AR_PAYMENTS"), "{reasons:?}");
    assert!(money(&account(&server, &platform, "ACC-SLIP-1")["credit_limit"]) < 6000.0);

    // Every change is audited; the log verifies.
    let audit_key = server.key("approver", "auditor");
    let audit = get(&format!("{}/v1/audit?limit=200", server.url), &audit_key);
    let audited: Vec<&str> = audit.json["items"]
        .as_array()
        .or(audit.json.as_array())
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    for action in [
        "account.open",
        "account.limit_increase",
        "account.freeze",
        "account.unfreeze",
        "account.limit_decrease",
    ] {
        assert!(
            audited.contains(&action),
            "{action} not audited: {audited:?}"
        );
    }
    let (code, output) = audit_verify(&data_dir);
    assert_eq!(code, 0, "{output}");
}

#[test]
fn account_routes_check_roles_and_reject_bad_events_whole() {
    let data_dir = scratch_dir("accounts-errors");
    let server = Server::start(&data_dir, &[]);
    let platform = server.key("decide", "servicing");
    let analyst = server.key("analyst", "analyst");
    open_account(&server, &platform, "C-err-1", "ACC-ERR-1", today());

    // Roles: no key 401; an analyst may read but not post.
    let anonymous = request(
        "GET",
        &format!("{}/v1/accounts/ACC-ERR-1", server.url),
        None,
        &[],
        None,
    );
    assert_eq!(anonymous.status, 401);
    assert_eq!(
        get(&format!("{}/v1/accounts/ACC-ERR-1", server.url), &analyst).status,
        200
    );
    let forbidden = events(
        &server,
        &analyst,
        "ACC-ERR-1",
        &json!({"id": "x", "time": just_now(), "type": "drawdown", "amount": 1}),
    );
    assert_eq!(forbidden.status, 403);

    // One bad event rejects the batch, naming each field to fix; nothing is applied.
    let bad = events(
        &server,
        &platform,
        "ACC-ERR-1",
        &json!({"events": [
            {"id": "ok-1", "time": just_now(), "type": "repayment", "amount": 10},
            {"id": "bad-1", "time": "last tuesday", "type": "drawdown", "amount": -5},
            {"id": "bad-2", "time": just_now(), "type": "teleport"},
            {"id": "bad-3", "time": "2999-01-01T00:00:00Z", "type": "repayment", "amount": 1}
        ]}),
    );
    assert_eq!(bad.status, 422, "{}", bad.json);
    let paths: Vec<&str> = bad.json["details"]["violations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["path"].as_str().unwrap())
        .collect();
    assert_eq!(
        paths,
        vec![
            "events[1].time",
            "events[1].amount",
            "events[2].type",
            "events[3].time"
        ]
    );
    assert_eq!(
        account(&server, &platform, "ACC-ERR-1")["events_applied"],
        0
    );

    // Unknown account, malformed JSON, unapproved decision, future booking date.
    assert_eq!(
        get(&format!("{}/v1/accounts/NOPE", server.url), &platform).status,
        404
    );
    let malformed = request(
        "POST",
        &format!("{}/v1/accounts/ACC-ERR-1/events", server.url),
        Some(&platform),
        &[("Content-Type", "application/json")],
        Some(b"{not json"),
    );
    assert_eq!(
        (malformed.status, malformed.json["code"].clone()),
        (400, json!("malformed_json"))
    );
    let declined = post_json(
        &format!("{}/v1/decisions/application", server.url),
        &platform,
        &example_input("application-decline.json"),
        &[],
    );
    let refused = post_json(
        &format!("{}/v1/accounts", server.url),
        &platform,
        &json!({"decision_id": declined.json["id"]}),
        &[],
    );
    assert_eq!(refused.status, 409, "{}", refused.json);
    assert!(refused.json["message"]
        .as_str()
        .unwrap()
        .contains("only an approved decision opens an account"));
    let mut application = example_input("application-approve.json");
    application["customer_id"] = json!("C-err-2");
    let approved = post_json(
        &format!("{}/v1/decisions/application", server.url),
        &platform,
        &application,
        &[],
    );
    let future = post_json(
        &format!("{}/v1/accounts", server.url),
        &platform,
        &json!({"decision_id": approved.json["id"], "opened_on": "2999-01-01"}),
        &[],
    );
    assert_eq!(
        (future.status, future.json["code"].clone()),
        (400, json!("invalid_parameter"))
    );
    let no_amount = post_json(
        &format!("{}/v1/accounts/ACC-ERR-1/drawdowns", server.url),
        &platform,
        &json!({"amount": "-3"}),
        &[],
    );
    assert_eq!(no_amount.status, 422);
}

fn run(args: &[&str]) -> Value {
    let output = Command::new(BIN).args(args).output().unwrap();
    assert!(
        output.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let stdout = String::from_utf8(output.stdout).unwrap();
    serde_json::from_str(stdout.lines().last().unwrap()).unwrap()
}

#[test]
fn simulated_portfolio_reviews_in_batch_and_dry_run_changes_nothing() {
    let data_dir = scratch_dir("accounts-portfolio");
    let dir = data_dir.to_str().unwrap();
    let simulated = run(&[
        "simulate",
        "portfolio",
        "--data-dir",
        dir,
        "--accounts",
        "400",
        "--months",
        "12",
        "--seed",
        "11",
        "--as-of",
        "2026-11-29",
    ]);
    assert_eq!(simulated["accounts"], 400);
    assert!(
        simulated["events"].as_u64().unwrap() > 400 * 12 * 2,
        "{simulated}"
    );

    let review = [
        "portfolio",
        "review",
        "--data-dir",
        dir,
        "--flow",
        "account_review",
        "--as-of",
        "2026-11-29",
    ];
    let dry: Vec<&str> = review.iter().copied().chain(["--dry-run"]).collect();
    let first_dry = run(&dry);
    let second_dry = run(&dry);
    assert_eq!(
        first_dry["actions"], second_dry["actions"],
        "a dry run changes nothing"
    );
    assert_eq!(first_dry["accounts_reviewed"], 400);
    assert_eq!(first_dry["decisions_recorded"], 0);
    let counts = &first_dry["actions"];
    for action in ["limit_increase", "limit_decrease", "no_change"] {
        assert!(
            counts[action].as_u64().unwrap_or(0) > 0,
            "no {action}: {first_dry}"
        );
    }

    let applied = run(&review);
    assert_eq!(applied["actions"], first_dry["actions"]);
    let changed = 400 - counts["no_change"].as_u64().unwrap();
    assert_eq!(applied["decisions_recorded"].as_u64().unwrap(), changed);
    // Applied once, the same review finds (almost) nothing left to do.
    let after = run(&dry);
    assert!(
        after["actions"]["limit_increase"].as_u64().unwrap_or(0) == 0,
        "{after}"
    );
    assert!(
        after["actions"]["no_change"].as_u64().unwrap() >= 390,
        "{after}"
    );

    // Early warning over the portfolio finds the deteriorating customers.
    let warning = run(&[
        "portfolio",
        "review",
        "--data-dir",
        dir,
        "--flow",
        "early_warning",
        "--as-of",
        "2026-11-29",
        "--dry-run",
    ]);
    assert!(
        warning["actions"]["freeze"].as_u64().unwrap_or(0) > 0,
        "{warning}"
    );

    let (code, output) = audit_verify(&data_dir);
    assert_eq!(code, 0, "{output}");

    // The server reads the same directory: simulated accounts are served with their features.
    let server = Server::start(&data_dir, &[]);
    let key = server.key("decide", "servicing");
    let page = get(&format!("{}/v1/accounts?limit=5", server.url), &key);
    assert_eq!(page.json.as_array().unwrap().len(), 5);
    assert!(page.json[0]["features"]["months_on_book"].as_u64().unwrap() >= 12);

    // While the server owns the decision log, a batch that would append to it is refused.
    let refused = Command::new(BIN).args(review).output().unwrap();
    assert!(!refused.status.success());
    let message = String::from_utf8_lossy(&refused.stderr);
    assert!(
        message.contains("stop a server running on it first"),
        "{message}"
    );
}

#[test]
fn a_simulated_portfolio_is_fed_through_the_api_at_any_hour() {
    // No --as-of: the histories end yesterday, so the service finds no event from the future
    // whatever the hour the test runs at.
    let data_dir = scratch_dir("accounts-portfolio-api");
    let server = Server::start(&data_dir, &[]);
    let key = server.key("decide", "servicing");
    let fed = run(&[
        "simulate",
        "portfolio",
        "--server",
        &server.url,
        "--key",
        &key,
        "--accounts",
        "60",
        "--months",
        "2",
        "--connections",
        "4",
    ]);
    assert_eq!(fed["accounts"], 60);
    assert!(fed["events"].as_u64().unwrap() > 60, "{fed}");
    let page = get(&format!("{}/v1/accounts?limit=5", server.url), &key);
    assert_eq!(page.json.as_array().unwrap().len(), 5, "{}", page.json);
}

//! End to end in headless Chromium: a reviewer signs in, opens the queue, claims a referred
//! case, decides it with a note, and the decision's record shows the review.
//!
//! Needs Debian's `chromium` and `chromium-driver` (`.ci/run` installs them). Without them
//! the test says so and passes, unless `CREDENCE_REQUIRE_BROWSER` is set (as in CI).
//! `CREDENCE_SCREENSHOTS=DIR` also writes the queue and case screenshots there (docs/).

#[path = "support/server.rs"]
mod support;
#[path = "support/webdriver.rs"]
mod webdriver;

use std::io::Write;
use std::process::{Command, Stdio};
use support::*;

#[test]
fn a_reviewer_decides_a_referred_case_in_the_browser() {
    let root = scratch_dir("browser");
    let Some(driver) = webdriver::Driver::start(&root.join("profile")) else {
        assert!(
            std::env::var_os("CREDENCE_REQUIRE_BROWSER").is_none(),
            "chromium and chromedriver are required here: apt-get install chromium chromium-driver"
        );
        eprintln!("skipped: chromium / chromedriver not installed (apt-get install chromium chromium-driver)");
        return;
    };
    let server = Server::start(&root.join("data"), &[]);
    let mut child = Command::new(BIN)
        .args(["users", "create", "--data-dir"])
        .arg(&server.data_dir)
        .args(["--username", "ann", "--role", "reviewer"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    writeln!(child.stdin.take().unwrap(), "reviewing all day").unwrap();
    assert!(child.wait().unwrap().success());
    let caller = server.key("decide", "platform");
    // The decisions' month, read before they are made: the check below also accepts the month
    // at the time of the check, so a run across a month's end passes.
    let month_of_decisions = chrono::Utc::now().format("%Y-%m").to_string();
    let mut ids = Vec::new();
    // The second applicant asked in Chinese: its reason texts are Chinese on the case page.
    for (customer, amount, lang) in [
        ("C-200301", 6000, "en"),
        ("C-200302", 9500, "zh"),
        ("C-200303", 4200, "en"),
    ] {
        let mut input = example_input("application-refer.json");
        input["customer_id"] = serde_json::json!(customer);
        input["requested_amount"] = serde_json::json!(amount);
        let answer = post_json(
            &format!("{}/v1/decisions/application?lang={lang}", server.url),
            &caller,
            &input,
            &[],
        );
        assert_eq!(answer.json["outcome"], "refer", "{}", answer.json);
        ids.push(answer.json["id"].as_str().unwrap().to_string());
    }
    let decision_id = &ids[0];
    let case_id = format!("case_{}", decision_id.trim_start_matches("dec_"));
    let shots = std::env::var_os("CREDENCE_SCREENSHOTS").map(std::path::PathBuf::from);
    let shot = |name: &str| {
        driver.screenshot(&root.join(name));
        if let Some(dir) = &shots {
            std::fs::copy(root.join(name), dir.join(name)).unwrap();
        }
    };

    driver.goto(&format!("{}/review/login", server.url));
    driver.type_into("#username", "ann");
    driver.type_into("#password", "reviewing all day");
    driver.click("#sign-in");
    driver.wait_for_url(|u| u.ends_with("/review"));
    let queue = driver.text("#cases");
    assert!(queue.contains(&case_id), "{queue}");
    shot("workbench-queue.png");

    driver.click(&format!("a[href='/review/cases/{case_id}']"));
    driver.wait_for_url(|u| u.ends_with(&case_id));
    assert_eq!(driver.text("#status"), "open");
    // The case opens with why it was referred and the figures behind it.
    let summary = driver.text("#referral-summary");
    for shown in [
        "REF_INCOME_MISMATCH",
        "declared monthly income",
        "EUR 6,000",
        "EUR 3,650",
        "39.17 %",
    ] {
        assert!(summary.contains(shown), "{shown} in {summary}");
    }
    assert_eq!(driver.text("#requested"), "EUR 6,000");
    driver.click("#claim");
    driver.find("#decide-form");
    assert_eq!(driver.text("#status"), "claimed");
    let reasons = driver.text("#decline-reasons");
    assert!(reasons.contains("DEC_AFFORDABILITY"), "{reasons}");
    assert!(!reasons.contains("REF_INCOME_MISMATCH"), "{reasons}");
    shot("workbench-case.png");
    driver.type_into("#limit", "5,000");
    driver.type_into("#apr", "12.99%");
    driver.type_into(
        "#note",
        "Employer confirmed the salary by phone; lower limit for the income gap.",
    );
    driver.click("#decide");
    driver.find("#final");
    assert_eq!(driver.text("#status"), "decided");
    assert!(driver
        .text("#final")
        .contains("limit EUR 5,000 · APR 12.99 %"));

    // A case decided in Chinese reads in Chinese (a CJK font is declared and installed).
    let zh_case = format!("case_{}", ids[1].trim_start_matches("dec_"));
    driver.goto(&format!("{}/review/cases/{zh_case}", server.url));
    let summary = driver.text("#referral-summary");
    assert!(summary.contains("您申报的收入"), "{summary}");
    shot("workbench-case-zh.png");

    // The monitoring page: this month's decisions, rates and the reviewer's override.
    driver.click("a[href='/review/monitoring']");
    driver.wait_for_url(|u| u.ends_with("/review/monitoring"));
    let months = driver.text("#monitoring-months");
    let month_now = chrono::Utc::now().format("%Y-%m").to_string();
    assert!(
        months.contains(&month_of_decisions) || months.contains(&month_now),
        "{months}"
    );
    assert!(
        months.contains("100.0%"),
        "the one reviewed referral was approved: {months}"
    );
    driver.find("#vintages-empty");
    shot("workbench-monitoring.png");

    let record = get(
        &format!("{}/v1/decisions/{decision_id}", server.url),
        &caller,
    );
    let review = &record.json["review"];
    assert_eq!(review["status"], "decided", "{}", record.json);
    assert_eq!(review["final_decision"]["by"], "ann");
    assert_eq!(review["final_decision"]["limit"], "5000");
    assert_eq!(review["final_decision"]["verdict"], "approve");
}

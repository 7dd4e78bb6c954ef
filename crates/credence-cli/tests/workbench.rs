//! The review workbench over plain HTTP: sign-in, sessions, CSRF, masking and reveal.

#[path = "support/server.rs"]
mod support;

use serde_json::Value;
use std::io::Write;
use std::process::{Command, Stdio};
use support::*;

/// A browser-like client: no automatic redirects, cookies kept by hand.
struct Browser {
    agent: ureq::Agent,
    base: String,
    cookies: Vec<(String, String)>,
}

struct Page {
    status: u16,
    location: Option<String>,
    body: String,
    set_cookies: Vec<String>,
}

impl Browser {
    fn new(base: &str) -> Browser {
        Browser {
            agent: ureq::AgentBuilder::new().redirects(0).build(),
            base: base.to_string(),
            cookies: Vec::new(),
        }
    }

    fn cookie_header(&self) -> String {
        self.cookies
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("; ")
    }

    fn absorb(&mut self, response: ureq::Response) -> Page {
        let set_cookies: Vec<String> = response
            .all("set-cookie")
            .into_iter()
            .map(str::to_string)
            .collect();
        for cookie in &set_cookies {
            let pair = cookie.split(';').next().unwrap_or_default();
            if let Some((name, value)) = pair.split_once('=') {
                self.cookies.retain(|(k, _)| k != name);
                if !value.is_empty() {
                    self.cookies.push((name.to_string(), value.to_string()));
                }
            }
        }
        Page {
            status: response.status(),
            location: response.header("location").map(str::to_string),
            set_cookies,
            body: response.into_string().unwrap_or_default(),
        }
    }

    fn get(&mut self, path: &str) -> Page {
        let request = self
            .agent
            .get(&format!("{}{path}", self.base))
            .set("Cookie", &self.cookie_header());
        let response = match request.call() {
            Ok(r) | Err(ureq::Error::Status(_, r)) => r,
            Err(e) => panic!("GET {path}: {e}"),
        };
        self.absorb(response)
    }

    fn post(&mut self, path: &str, form: &[(&str, &str)]) -> Page {
        let request = self
            .agent
            .post(&format!("{}{path}", self.base))
            .set("Cookie", &self.cookie_header());
        let response = match request.send_form(form) {
            Ok(r) | Err(ureq::Error::Status(_, r)) => r,
            Err(e) => panic!("POST {path}: {e}"),
        };
        self.absorb(response)
    }
}

/// The value of the first hidden `csrf` field of a page.
fn csrf_of(html: &str) -> String {
    let marker = "name=\"csrf\" value=\"";
    let start = html.find(marker).expect("a csrf field") + marker.len();
    html[start..start + html[start..].find('"').unwrap()].to_string()
}

fn create_user(data_dir: &std::path::Path, username: &str, role: &str, password: &str) {
    let mut child = Command::new(BIN)
        .args(["users", "create", "--data-dir"])
        .arg(data_dir)
        .args(["--username", username, "--role", role])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    writeln!(child.stdin.take().unwrap(), "{password}").unwrap();
    let output = child.wait_with_output().unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

fn sign_in(server: &Server, username: &str, password: &str) -> Browser {
    let (signed, browser) = try_sign_in(server, username, password);
    assert_eq!(signed.status, 303, "{}", signed.body);
    assert_eq!(signed.location.as_deref(), Some("/review"));
    browser
}

fn refer(server: &Server) -> String {
    let key = server.key("decide", "platform");
    let answer = refer_application(server, &key);
    let id = answer["id"].as_str().unwrap();
    format!("case_{}", id.trim_start_matches("dec_"))
}

#[test]
fn sign_in_sessions_and_csrf() {
    let server = Server::start(&scratch_dir("wb-session"), &[]);
    create_user(
        &server.data_dir,
        "ann",
        "reviewer",
        "a long enough password",
    );
    let case_id = refer(&server);

    // Not signed in: every page sends you to the sign-in page.
    let mut anonymous = Browser::new(&server.url);
    let page = anonymous.get("/review");
    assert_eq!(
        (page.status, page.location.as_deref()),
        (303, Some("/review/login"))
    );

    // A sign-in form without its token, or a wrong password, is refused.
    let login = anonymous.get("/review/login");
    assert!(login
        .set_cookies
        .iter()
        .any(|c| c.contains("HttpOnly") && c.contains("SameSite=Strict")));
    let refused = anonymous.post(
        "/review/login",
        &[("username", "ann"), ("password", "a long enough password")],
    );
    assert_eq!(refused.status, 403);
    let csrf = csrf_of(&anonymous.get("/review/login").body);
    let wrong = anonymous.post(
        "/review/login",
        &[
            ("csrf", &csrf),
            ("username", "ann"),
            ("password", "not the password"),
        ],
    );
    assert_eq!(wrong.status, 401);
    assert!(wrong.body.contains("wrong password"));

    let mut ann = sign_in(&server, "ann", "a long enough password");
    let session = ann
        .cookies
        .iter()
        .find(|(k, _)| k == "credence_session")
        .unwrap()
        .1
        .clone();
    assert_eq!(session.len(), 64);
    let queue = ann.get("/review");
    assert_eq!(queue.status, 200);
    assert!(
        queue.body.contains(&case_id),
        "the referred case is in the queue"
    );
    assert!(queue.body.contains("income_verification"));

    // A form without the session's CSRF token changes nothing.
    let forged = ann.post(
        &format!("/review/cases/{case_id}/act"),
        &[("action", "claim")],
    );
    assert_eq!(forged.status, 403);
    let forged = ann.post(
        &format!("/review/cases/{case_id}/act"),
        &[("csrf", "0000"), ("action", "claim")],
    );
    assert_eq!(forged.status, 403);
    let page = ann.get(&format!("/review/cases/{case_id}"));
    assert!(page.body.contains(">open<"), "still open");

    // Personal identifiers are masked until revealed, and the reveal is audited.
    let phone = example_input("application-refer.json")["phone"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(!page.body.contains(&phone));
    let csrf = csrf_of(&page.body);
    let revealed = ann.post(
        &format!("/review/cases/{case_id}/reveal"),
        &[("csrf", &csrf)],
    );
    assert_eq!(revealed.status, 200);
    assert!(revealed.body.contains(&phone));
    let admin = server.key("admin", "ops");
    let audit: Value = get(&format!("{}/v1/audit", server.url), &admin).json;
    assert!(audit
        .as_array()
        .unwrap()
        .iter()
        .any(|e| e["action"] == "personal.reveal" && e["actor"] == "ann"));

    // Claim and decide through the forms.
    let claimed = ann.post(
        &format!("/review/cases/{case_id}/act"),
        &[("csrf", &csrf), ("action", "claim")],
    );
    assert_eq!(claimed.status, 303);
    let too_high = ann.post(
        &format!("/review/cases/{case_id}/act"),
        &[
            ("csrf", &csrf),
            ("action", "decide"),
            ("verdict", "approve"),
            ("limit", "50000"),
            ("apr", "0.12"),
            ("note", "x"),
        ],
    );
    assert_eq!(too_high.status, 422);
    assert!(
        too_high.body.contains("outside the strategy"),
        "{}",
        too_high.body
    );
    let decided = ann.post(
        &format!("/review/cases/{case_id}/act"),
        &[
            ("csrf", &csrf),
            ("action", "decide"),
            ("verdict", "approve"),
            ("limit", "5000"),
            ("apr", "0.12"),
            ("note", "verified with the employer"),
        ],
    );
    assert_eq!(decided.status, 303);
    let page = ann.get(&format!("/review/cases/{case_id}"));
    assert!(page.body.contains("id=\"status\">decided<"), "decided");
    // Who reviewed is in the audit, never in metric labels (`/metrics` needs no key).
    let metrics = server.metrics();
    assert!(
        !metrics.contains("reviewer=") && !metrics.contains("\"ann\""),
        "a user name in /metrics"
    );

    // Signing out ends the session.
    let out = ann.post("/review/logout", &[("csrf", &csrf)]);
    assert_eq!(out.status, 303);
    ann.cookies.push(("credence_session".into(), session));
    assert_eq!(ann.get("/review").status, 303, "the old session is gone");
}

/// Posts a sign-in with the login page's token; the page answered.
/// The case page opens with the referral's summary — the rule, the figures it tested in
/// money and percentages, score, grade, requested and offered terms — and the application in
/// groups; a decline picks its reasons from the strategy's decline reasons (a referral reason
/// is refused, naming the valid ones); the first reviewer of a four-eyes approval is told why
/// the case waits.
#[test]
fn a_case_opens_with_its_referral_summary_and_declines_only_for_decline_reasons() {
    let root = scratch_dir("workbench-case-page");
    let server = Server::start(&root.join("data"), &[]);
    create_user(&server.data_dir, "ann", "reviewer", "reviewing all day");
    create_user(&server.data_dir, "bob", "reviewer", "confirming all day");
    let mut ann = sign_in(&server, "ann", "reviewing all day");
    let declined_case = refer(&server);
    let page = ann.get(&format!("/review/cases/{declined_case}"));
    assert_eq!(page.status, 200);
    let body = &page.body;
    let summary = &body[body.find("id=\"referral-summary\"").expect("a summary")..];
    let summary = &summary[..summary.find("</section>").unwrap()];
    for shown in [
        "REF_INCOME_MISMATCH",
        "rule RF-01",
        "<code>income_inconsistent</code>",
        "<th>declared monthly income</th><td class=\"num\">EUR 6,000</td>",
        "<th>verified income</th><td class=\"num\">EUR 3,650</td>",
        "<th>income gap</th><td class=\"num\">39.17 %</td>",
        "id=\"requested\">EUR 6,000<",
        "at 8.99 % over 24 months",
        "id=\"grade\">A<",
        "probability of default",
    ] {
        assert!(summary.contains(shown), "{shown} in {summary}");
    }
    // The application in groups, the request first; no raw floats.
    let request = body.find("<h3>Request</h3>").expect("a request group");
    let identity = body.find("<h3>Identity</h3>").expect("an identity group");
    let bureau = body.find("<h3>Bureau</h3>").expect("a bureau group");
    assert!(request < identity && identity < bureau);
    assert!(
        !body.contains("0.39166666666666666"),
        "features are rounded"
    );
    assert!(!body.contains("null months"));
    let csrf = csrf_of(body);
    let act = |browser: &mut Browser, case: &str, form: &[(&str, &str)]| {
        let mut fields = vec![("csrf", csrf.as_str())];
        fields.extend_from_slice(form);
        browser.post(&format!("/review/cases/{case}/act"), &fields)
    };
    assert_eq!(
        act(&mut ann, &declined_case, &[("action", "claim")]).status,
        303
    );
    // The decline reasons offered are the strategy's decline reasons, with their texts.
    let page = ann.get(&format!("/review/cases/{declined_case}"));
    let reasons = &page.body[page.body.find("id=\"decline-reasons\"").unwrap()..];
    let reasons = &reasons[..reasons.find("</fieldset>").unwrap()];
    assert!(reasons.contains("value=\"DEC_SCORE\""), "{reasons}");
    assert!(reasons.contains("value=\"KO_AGE\""));
    assert!(
        !reasons.contains("REF_INCOME_MISMATCH"),
        "a referral reason is no decline reason"
    );
    assert!(!reasons.contains("FLG_"));
    let wrong = act(
        &mut ann,
        &declined_case,
        &[
            ("action", "decide"),
            ("verdict", "decline"),
            ("reasons", "REF_INCOME_MISMATCH"),
            ("note", "income not credible"),
        ],
    );
    assert_eq!(wrong.status, 422);
    assert!(
        wrong
            .body
            .contains("REF_INCOME_MISMATCH is a referral reason")
            && wrong.body.contains("DEC_SCORE"),
        "{}",
        wrong.body
    );
    // Two ticked boxes are two reasons.
    let declined = act(
        &mut ann,
        &declined_case,
        &[
            ("action", "decide"),
            ("verdict", "decline"),
            ("reasons", "DEC_AFFORDABILITY"),
            ("reasons", "KO_LOW_INCOME"),
            ("note", "verified income does not carry the loan"),
        ],
    );
    assert_eq!(declined.status, 303, "{}", declined.body);
    let page = ann.get(&format!("/review/cases/{declined_case}"));
    assert!(
        page.body
            .contains("reasons DEC_AFFORDABILITY, KO_LOW_INCOME"),
        "{}",
        page.body
    );

    // Four eyes: above EUR 10,000 the first reviewer is told the case waits for another.
    let large_case = refer(&server);
    let page = ann.get(&format!("/review/cases/{large_case}"));
    assert!(page.body.contains("Claim the case to decide it."));
    assert_eq!(
        act(&mut ann, &large_case, &[("action", "claim")]).status,
        303
    );
    let approved = act(
        &mut ann,
        &large_case,
        &[
            ("action", "decide"),
            ("verdict", "approve"),
            ("limit", "12,000"),
            ("apr", "9.99%"),
            ("note", "long tenure, payslips seen"),
        ],
    );
    assert_eq!(approved.status, 303, "{}", approved.body);
    let page = ann.get(&format!("/review/cases/{large_case}"));
    assert!(
        page.body.contains("id=\"status\">awaiting_confirmation<"),
        "{}",
        page.body
    );
    assert!(
        page.body
            .contains("You decided this case. Approvals above EUR 10,000 need a second reviewer"),
        "{}",
        page.body
    );
    assert!(
        page.body.contains("limit EUR 12,000 · APR 9.99 %"),
        "{}",
        page.body
    );
    let mut bob = sign_in(&server, "bob", "confirming all day");
    let page = bob.get(&format!("/review/cases/{large_case}"));
    assert!(
        page.body
            .contains("ann decided this case; approvals above EUR 10,000 need a second reviewer"),
        "{}",
        page.body
    );
}

/// With nothing decided yet, the monitoring page says so instead of drawing empty grids.
#[test]
fn monitoring_with_no_data_says_so() {
    let root = scratch_dir("workbench-monitoring-empty");
    let server = Server::start(&root.join("data"), &[]);
    create_user(&server.data_dir, "ann", "reviewer", "reviewing all day");
    let mut ann = sign_in(&server, "ann", "reviewing all day");
    let page = ann.get("/review/monitoring");
    assert_eq!(page.status, 200);
    assert!(
        page.body.contains("id=\"monitoring-empty\""),
        "{}",
        page.body
    );
    assert!(page.body.contains("id=\"vintages-empty\""));
    assert!(!page.body.contains("id=\"monitoring-rolls\""));
}

fn try_sign_in(server: &Server, username: &str, password: &str) -> (Page, Browser) {
    let mut browser = Browser::new(&server.url);
    let login = browser.get("/review/login");
    let csrf = csrf_of(&login.body);
    let page = browser.post(
        "/review/login",
        &[
            ("csrf", &csrf),
            ("username", username),
            ("password", password),
        ],
    );
    (page, browser)
}

fn server_with_sign_in_settings(name: &str, settings: &str) -> Server {
    let dir = scratch_dir(name);
    let config = dir.with_extension("toml");
    std::fs::write(&config, format!("[sign_in]\n{settings}")).unwrap();
    Server::start(&dir, &["--config", config.to_str().unwrap()])
}

#[test]
fn failed_sign_ins_back_off_and_then_lock_the_user_out() {
    // Back-off: after three failures the next attempt must wait, whatever its password, and
    // no password is checked meanwhile.
    let server = server_with_sign_in_settings(
        "wb-backoff",
        "free_failures = 3\nbase_delay_ms = 600000\nlockout_failures = 10\n",
    );
    create_user(
        &server.data_dir,
        "ann",
        "reviewer",
        "a long enough password",
    );
    for attempt in 0..3 {
        let (page, _) = try_sign_in(&server, "ann", "a wrong password");
        assert_eq!(page.status, 401, "attempt {attempt}");
    }
    let (page, _) = try_sign_in(&server, "ann", "a long enough password");
    assert_eq!(page.status, 429, "{}", page.body);
    assert!(page.body.contains("wait"), "{}", page.body);
    // Another user from the same address is not held back by ann's failures.
    create_user(&server.data_dir, "bob", "reviewer", "bob's long password");
    let (page, _) = try_sign_in(&server, "bob", "bob's long password");
    assert_eq!(page.status, 303, "{}", page.body);

    // Lockout: after five failures even the right password is refused, and the lockout is
    // audited.
    let server = server_with_sign_in_settings(
        "wb-lockout",
        "free_failures = 100\nlockout_failures = 5\nlockout_ms = 600000\n",
    );
    create_user(
        &server.data_dir,
        "ann",
        "reviewer",
        "a long enough password",
    );
    for attempt in 0..5 {
        let (page, _) = try_sign_in(&server, "ann", &format!("guess number {attempt}"));
        assert_eq!(page.status, 401, "attempt {attempt}");
    }
    let (page, _) = try_sign_in(&server, "ann", "a long enough password");
    assert_eq!(page.status, 429, "{}", page.body);
    assert!(page.body.contains("locked"), "{}", page.body);
    let admin = server.key("admin", "ops");
    let audit: Value = get(&format!("{}/v1/audit", server.url), &admin).json;
    assert!(
        audit
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["action"] == "user.locked_out" && e["subject"] == "ann"),
        "{audit}"
    );
}

#[test]
fn an_expired_session_is_refused() {
    let server = Server::start(&scratch_dir("wb-expiry"), &["--session-ttl-seconds", "1"]);
    create_user(
        &server.data_dir,
        "bob",
        "senior_reviewer",
        "another long password",
    );
    let mut bob = sign_in(&server, "bob", "another long password");
    assert_eq!(bob.get("/review").status, 200);
    std::thread::sleep(std::time::Duration::from_millis(1300));
    let page = bob.get("/review");
    assert_eq!(page.status, 303);
    assert_eq!(page.location.as_deref(), Some("/review/login?expired=1"));
}

#[test]
fn users_need_a_known_role_and_a_long_password() {
    let dir = scratch_dir("wb-users");
    for (role, password, needle) in [
        ("auditor", "a long enough password", "unknown role"),
        ("reviewer", "short", "at least 12"),
    ] {
        let mut child = Command::new(BIN)
            .args(["users", "create", "--data-dir"])
            .arg(&dir)
            .args(["--username", "cy", "--role", role])
            .stdin(Stdio::piped())
            .stderr(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        writeln!(child.stdin.take().unwrap(), "{password}").unwrap();
        let output = child.wait_with_output().unwrap();
        assert_eq!(output.status.code(), Some(2));
        assert!(String::from_utf8_lossy(&output.stderr).contains(needle));
    }
    // One role vocabulary: the key role's spelling works for users, and the user role's for keys.
    create_user(&dir, "rev", "review", "a long enough password");
    create_user(&dir, "senior", "senior_review", "a long enough password");
    let key = Command::new(BIN)
        .args(["keys", "create", "--data-dir"])
        .arg(&dir)
        .args(["--role", "reviewer", "--user", "rita"])
        .output()
        .unwrap();
    assert!(
        key.status.success(),
        "{}",
        String::from_utf8_lossy(&key.stderr)
    );
    assert!(String::from_utf8_lossy(&key.stdout).contains("role(s) review "));
}

#[test]
fn an_early_warning_case_shows_the_account_as_it_is_now() {
    let server = Server::start(&scratch_dir("wb-account"), &[]);
    create_user(
        &server.data_dir,
        "ann",
        "reviewer",
        "a long enough password",
    );
    let key = server.key("decide", "servicing");
    let mut application = example_input("application-approve.json");
    application["customer_id"] = serde_json::json!("C-wb-acc");
    let approved = post_json(
        &format!("{}/v1/decisions/application", server.url),
        &key,
        &application,
        &[],
    );
    let opened = post_json(
        &format!("{}/v1/accounts", server.url),
        &key,
        &serde_json::json!({"decision_id": approved.json["id"], "account_id": "ACC-WB-1"}),
        &[],
    );
    assert_eq!(opened.status, 201, "{}", opened.json);
    // Events that have just happened, whatever the hour: the service rejects future times.
    let minutes_ago = |minutes: i64| {
        (chrono::Utc::now() - chrono::Duration::minutes(minutes))
            .format("%Y-%m-%dT%H:%M:%SZ")
            .to_string()
    };
    let warned = post_json(
        &format!("{}/v1/accounts/ACC-WB-1/events", server.url),
        &key,
        &serde_json::json!([
            {"id": "d1", "time": minutes_ago(2), "type": "drawdown", "amount": 1200},
            {"id": "b1", "time": minutes_ago(1), "type": "bureau_alert", "alert": "new_delinquency", "days_past_due": 90}
        ]),
        &[],
    );
    let decision_id = warned.json["early_warning"]["decision_id"]
        .as_str()
        .unwrap()
        .to_string();
    let case_id = format!("case_{}", decision_id.trim_start_matches("dec_"));

    let mut ann = sign_in(&server, "ann", "a long enough password");
    let page = ann.get(&format!("/review/cases/{case_id}"));
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(page.body.contains("account_watch"), "the queue");
    assert!(
        page.body.contains("Account <code>ACC-WB-1</code> now"),
        "{}",
        page.body
    );
    assert!(page.body.contains("frozen"), "the line was frozen");
    assert!(
        page.body.contains("bureau_alert"),
        "recent events are listed"
    );
    assert!(page.body.contains("EW_SEVERE_BUREAU"));
}

/// A card-line package that prices grade A lower than the bundled one, written to `dir`.
fn card_candidate(dir: &std::path::Path) {
    let example = repo_root().join("examples/card-line");
    for file in [
        "strategy.yaml",
        "flows/application.yaml",
        "scorecards/application.yaml",
        "tests/application.yaml",
    ] {
        let text = std::fs::read_to_string(example.join(file))
            .unwrap()
            .replace(r#"- ['"A"', 0.169, 3.0]"#, r#"- ['"A"', 0.159, 3.0]"#)
            .replace("apr: 0.169", "apr: 0.159");
        let target = dir.join(file);
        std::fs::create_dir_all(target.parent().unwrap()).unwrap();
        std::fs::write(target, text).unwrap();
    }
}

/// A reviewer limited to the card product sees the card's cases only, cannot open the cash
/// loan's, and reads the card's shadow comparison in the workbench.
#[test]
fn a_reviewer_limited_to_a_product_sees_its_cases_and_its_shadow_comparison() {
    let root = scratch_dir("workbench-products");
    let data_dir = root.join("data");
    let server = Server::start(&data_dir, &["--example"]);
    let mut child = Command::new(BIN)
        .args(["users", "create", "--data-dir"])
        .arg(&data_dir)
        .args([
            "--username",
            "carla",
            "--role",
            "reviewer",
            "--strategy",
            "card-line",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    writeln!(child.stdin.take().unwrap(), "a long card passphrase").unwrap();
    assert!(child.wait_with_output().unwrap().status.success());

    let loan_case = refer(&server);
    let decide = server.key("decide", "platform");
    let card_input: Value = serde_json::from_str(
        &std::fs::read_to_string(
            repo_root().join("examples/card-line/samples/application-refer.json"),
        )
        .unwrap(),
    )
    .unwrap();
    let card = post_json(
        &format!(
            "{}/v1/strategies/card-line/decisions/application",
            server.url
        ),
        &decide,
        &card_input,
        &[],
    );
    assert_eq!(card.json["outcome"], "refer", "{}", card.json);
    let card_case = format!(
        "case_{}",
        card.json["id"].as_str().unwrap().trim_start_matches("dec_")
    );

    let mut carla = sign_in(&server, "carla", "a long card passphrase");
    let queue = carla.get("/review");
    assert_eq!(queue.status, 200);
    assert!(queue.body.contains(&card_case), "{}", queue.body);
    assert!(
        !queue.body.contains(&loan_case),
        "a card reviewer never sees the loan queue"
    );
    assert!(
        queue.body.contains("<td>card-line</td>"),
        "the product column"
    );
    // The customer, why the decision was referred and the time left, at a glance.
    assert!(queue.body.contains("<td>C-200002</td>"), "{}", queue.body);
    assert!(
        queue
            .body
            .contains("REF_GREY_ZONE — An underwriter reviews applications in this score range."),
        "{}",
        queue.body
    );
    assert!(
        queue.body.contains("<td class=\"left \">1 h 59 min</td>")
            || queue.body.contains("<td class=\"left \">2 h</td>"),
        "a 120-minute SLA just opened: {}",
        queue.body
    );
    assert_eq!(carla.get(&format!("/review/cases/{loan_case}")).status, 403);
    let card_page = carla.get(&format!("/review/cases/{card_case}"));
    assert_eq!(card_page.status, 200);
    // The requested line comes from the card's outcome mapping (`requested_limit`), and a
    // revolving line is offered without a term.
    assert!(
        card_page.body.contains("id=\"requested\">EUR 3,000<"),
        "{}",
        card_page.body
    );
    assert!(
        card_page.body.contains("a revolving line of EUR"),
        "{}",
        card_page.body
    );
    assert!(
        !card_page.body.contains("months"),
        "no term on a revolving line"
    );
    assert_eq!(carla.get("/review?strategy=consumer-loan").status, 403);

    // A candidate of the card in shadow; the comparison page shows its matrix.
    let candidate_dir = root.join("candidate");
    card_candidate(&candidate_dir);
    let analyst = server.key("analyst", "ana");
    let approver = server.key("approver", "abe");
    let run = |args: &[&str]| {
        let output = Command::new(BIN).args(args).output().unwrap();
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
        serde_json::from_slice::<Value>(&output.stdout).unwrap()
    };
    let uploaded = run(&[
        "strategy",
        "upload",
        candidate_dir.to_str().unwrap(),
        "--server",
        &server.url,
        "--key",
        &analyst,
    ]);
    let version = uploaded["strategy"]["version"]
        .as_str()
        .unwrap()
        .to_string();
    run(&[
        "strategy",
        "approve",
        &version,
        "--server",
        &server.url,
        "--key",
        &approver,
    ]);
    run(&[
        "strategy",
        "shadow",
        &version,
        "--server",
        &server.url,
        "--key",
        &approver,
    ]);
    let approve: Value = serde_json::from_str(
        &std::fs::read_to_string(
            repo_root().join("examples/card-line/samples/application-approve.json"),
        )
        .unwrap(),
    )
    .unwrap();
    post_json(
        &format!(
            "{}/v1/strategies/card-line/decisions/application",
            server.url
        ),
        &decide,
        &approve,
        &[],
    );
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    let page = loop {
        let page = carla.get("/review/shadow");
        if page.body.contains("1 with their shadow twin") || std::time::Instant::now() > deadline {
            break page;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    };
    assert_eq!(page.status, 200);
    assert!(
        page.body.contains("Shadow comparison: card-line"),
        "{}",
        page.body
    );
    assert!(
        page.body.contains("1 with their shadow twin"),
        "{}",
        page.body
    );
    assert!(page.body.contains("id=\"shadow-matrix\""));
    assert!(
        page.body.contains("APR higher 0, lower 1"),
        "grade A is cheaper: {}",
        page.body
    );
    assert_eq!(
        carla.get("/review/shadow?strategy=consumer-loan").status,
        403
    );
}

/// `users list|disable|enable|reset-password`: a disabled user's session ends at once and
/// their sign-in is refused; enabled again they sign in; a reset password replaces the old.
#[test]
fn users_are_listed_disabled_enabled_and_given_new_passwords() {
    let root = scratch_dir("wb-user-admin");
    let data_dir = root.join("data");
    let server = Server::start(&data_dir, &[]);
    create_user(&data_dir, "dora", "reviewer", "the first long password");
    let users = |args: &[&str], stdin: Option<&str>| {
        let mut child = Command::new(BIN)
            .args(["users"])
            .args(args)
            .args(["--data-dir", data_dir.to_str().unwrap()])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        if let Some(text) = stdin {
            writeln!(child.stdin.take().unwrap(), "{text}").unwrap();
        }
        let output = child.wait_with_output().unwrap();
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8_lossy(&output.stdout).into_owned()
    };
    let mut dora = sign_in(&server, "dora", "the first long password");
    assert_eq!(dora.get("/review").status, 200);

    users(&["disable", "--username", "dora"], None);
    assert!(users(&["list"], None).contains("disabled"));
    assert_eq!(dora.get("/review").status, 303, "the session ended");
    let (refused, _) = try_sign_in(&server, "dora", "the first long password");
    assert_eq!(refused.status, 403, "{}", refused.body);
    assert!(refused.body.contains("disabled"), "{}", refused.body);

    users(&["enable", "--username", "dora"], None);
    users(
        &["reset-password", "--username", "dora"],
        Some("the second long password"),
    );
    let (old, _) = try_sign_in(&server, "dora", "the first long password");
    assert_eq!(old.status, 401);
    sign_in(&server, "dora", "the second long password");
    assert!(users(&["list"], None).contains("active"));
}

//! Hostile input against the real server: package bombs, slow and idle connections, repeated JSON keys, media types, security headers.

#[path = "support/server.rs"]
mod support;

use credence_engine::PackageSource;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};
use support::*;

const MANIFEST: &str = "name: bombs\nlanguages: [en]\ncaps: {apr_max: 0.24}\nreasons:\n  R1: {en: one}\nflows:\n  application: flows/a.yaml\n";

/// A package with one flow whose steps are given.
fn package(steps: &str) -> PackageSource {
    let mut source = PackageSource::new();
    source.insert("strategy.yaml", MANIFEST);
    source.insert(
        "flows/a.yaml",
        format!("input:\n  x: {{type: number}}\nsteps:\n{steps}\noutcome:\n  default: approve\n"),
    );
    source
}

fn upload(server: &Server, key: &str, source: &PackageSource) -> Answer {
    let archive = credence_app::package_archive::pack(source).unwrap();
    request(
        "POST",
        &format!("{}/v1/strategies", server.url),
        Some(key),
        &[("Content-Type", "application/gzip")],
        Some(&archive),
    )
}

/// The peak resident memory of a process, in bytes (VmHWM from /proc).
fn peak_memory_bytes(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .expect("VmHWM in /proc status");
    let kb: u64 = line
        .split_whitespace()
        .nth(1)
        .and_then(|n| n.parse().ok())
        .unwrap();
    kb * 1024
}

#[test]
fn package_bombs_are_refused_at_upload_in_bounded_memory() {
    let root = scratch_dir("hardening-bombs");
    let server = Server::start(&root.join("data"), &[]);
    let analyst = server.key("analyst", "alice");

    let mut alias_bomb = package("  - features: {id: f, values: {a: \"x\"}}");
    alias_bomb.insert(
        "strategy.yaml",
        format!("{MANIFEST}tests: [tests/cases.yaml]\n"),
    );
    let items = vec!["1"; 20_000].join(",");
    let references = vec!["*a"; 20_000].join(",");
    alias_bomb.insert(
        "tests/cases.yaml",
        format!("- name: bomb\n  flow: application\n  input: {{x: 1, pad: &a [{items}], more: [{references}]}}\n  expect: {{outcome: approve}}\n"),
    );
    let mut big_table = package("  - table:\n      id: t\n      hit_policy: first\n      inputs: [x]\n      outputs: [v]\n      rows_file: tables/t.csv");
    // Cells as interval tests: "[low..high)".
    let csv: String = std::iter::once("x,v\n".to_string())
        .chain((0..150_000).map(|i| format!("\"[{}..{})\",{}\n", 2 * i, 2 * i + 1, i)))
        .collect();
    big_table.insert("tables/t.csv", csv);

    let bombs: Vec<(&str, PackageSource, &str)> = vec![
        (
            "a range of a billion values",
            package("  - features: {id: f, values: {big: \"count([0..1000000000], # > 0)\"}}"),
            "range of 1,000,000,001 values",
        ),
        (
            "nested loops",
            package("  - features: {id: f, values: {big: \"count([1..10000], count([1..10000], # > 0) > 0)\"}}"),
            "exceeds the step budget",
        ),
        ("a YAML alias bomb", alias_bomb, "limits.yaml_nodes"),
        ("150,000 table rows", big_table, "a table may have at most 100000"),
    ];
    for (what, source, expected) in &bombs {
        let started = Instant::now();
        let answer = upload(&server, &analyst, source);
        println!("{what}: {} in {:?}", answer.status, started.elapsed());
        assert_eq!(answer.status, 400, "{what}: {}", answer.json);
        assert_eq!(answer.json["code"], "invalid_package", "{what}");
        let text = answer.json.to_string();
        assert!(text.contains(expected), "{what}: {text}");
    }
    // A large but legal table compiles: 20,000 interval rows.
    let rows: String = std::iter::once("x,v\n".to_string())
        .chain((0..20_000).map(|i| format!("\"[{}..{})\",{}\n", 2 * i, 2 * i + 1, i)))
        .collect();
    let mut table = package("  - table:\n      id: t\n      hit_policy: first\n      inputs: [x]\n      outputs: [v]\n      rows_file: tables/t.csv");
    table.insert("tables/t.csv", rows);
    let started = Instant::now();
    let answer = upload(&server, &analyst, &table);
    println!(
        "20,000 interval rows: {} in {:?}",
        answer.status,
        started.elapsed()
    );
    assert_eq!(answer.status, 201, "{}", answer.json);

    let peak = peak_memory_bytes(server.child.id());
    println!("server peak memory: {} MB", peak / 1_000_000);
    assert!(peak < 300_000_000, "peak memory {peak} bytes");
    // The server still answers.
    let health = request("GET", &format!("{}/healthz", server.url), None, &[], None);
    assert_eq!(health.status, 200);
}

/// Raises this test process's open-files limit so it can hold thousands of connections.
fn raise_open_files() {
    // SAFETY: getrlimit/setrlimit read and write only the struct passed.
    unsafe {
        let mut limit = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) == 0 {
            limit.rlim_cur = limit.rlim_max;
            libc::setrlimit(libc::RLIMIT_NOFILE, &limit);
        }
    }
}

fn address(server: &Server) -> String {
    server.url.trim_start_matches("http://").to_string()
}

/// Whether the server closed `stream` (EOF or reset) within `wait`, polling.
fn closed_within(stream: &mut TcpStream, wait: Duration) -> bool {
    stream
        .set_read_timeout(Some(Duration::from_millis(100)))
        .unwrap();
    let deadline = Instant::now() + wait;
    let mut buffer = [0u8; 4096];
    while Instant::now() < deadline {
        match stream.read(&mut buffer) {
            Ok(0) => return true,
            Ok(_) => {}
            Err(e)
                if e.kind() == std::io::ErrorKind::WouldBlock
                    || e.kind() == std::io::ErrorKind::TimedOut => {}
            Err(_) => return true,
        }
    }
    false
}

#[test]
fn idle_and_slow_connections_cannot_starve_the_server() {
    raise_open_files();
    let root = scratch_dir("hardening-slow");
    let server = Server::start(
        &root.join("data"),
        &[
            "--header-read-timeout-ms",
            "1500",
            "--request-timeout-ms",
            "1500",
        ],
    );
    let address = address(&server);
    let key = server.key("decide", "platform");

    // 2,000 connections that never finish their headers.
    let mut idle = Vec::new();
    for i in 0..2_000 {
        let mut stream = TcpStream::connect(&address).unwrap();
        if i % 2 == 0 {
            stream
                .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
                .unwrap();
        }
        idle.push(stream);
    }
    let started = Instant::now();
    let health = request("GET", &format!("{}/healthz", server.url), None, &[], None);
    println!(
        "/healthz beside 2,000 half-open connections: {:?}",
        started.elapsed()
    );
    assert_eq!(health.status, 200);

    // The server closes them once the header timeout passes.
    for stream in idle.iter_mut().take(20) {
        assert!(
            closed_within(stream, Duration::from_secs(20)),
            "an idle connection stayed open"
        );
    }
    drop(idle);

    // A body that never arrives in full is answered 408 in the JSON error format.
    let mut slow = TcpStream::connect(&address).unwrap();
    slow.write_all(
        format!("POST /v1/decisions/application HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {key}\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{{\"a\":").as_bytes(),
    )
    .unwrap();
    slow.set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    let mut answer = String::new();
    let mut buffer = [0u8; 4096];
    while !answer.contains("request_timeout") {
        match slow.read(&mut buffer) {
            Ok(0) | Err(_) => break,
            Ok(n) => answer.push_str(&String::from_utf8_lossy(&buffer[..n])),
        }
    }
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.contains("\"code\":\"request_timeout\""), "{answer}");
}

#[test]
fn connections_beyond_the_cap_are_closed_on_accept() {
    raise_open_files();
    let root = scratch_dir("hardening-cap");
    let server = Server::start(&root.join("data"), &["--max-connections", "20"]);
    let address = address(&server);
    let held: Vec<TcpStream> = (0..20)
        .map(|_| TcpStream::connect(&address).unwrap())
        .collect();
    // Poll until the server has taken all twenty: a 21st is then closed at once.
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut refused = false;
    while !refused && Instant::now() < deadline {
        let mut extra = TcpStream::connect(&address).unwrap();
        refused = closed_within(&mut extra, Duration::from_millis(500));
    }
    assert!(refused, "a connection over the cap was kept");
    drop(held);
    // Once they are gone, the server answers again.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let answer = ureq::get(&format!("{}/healthz", server.url))
            .timeout(Duration::from_secs(2))
            .call();
        if answer.is_ok() {
            break;
        }
        assert!(Instant::now() < deadline, "the server did not recover");
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(server
        .metrics()
        .contains("credence_http_connections_refused_total"));
}

#[test]
fn json_bodies_are_strict_and_only_json_media_types_are_taken() {
    let root = scratch_dir("hardening-json");
    let server = Server::start(&root.join("data"), &[]);
    let key = server.key("decide,analyst", "platform");
    let url = format!("{}/v1/decisions/application", server.url);
    let sample = example_input("application-approve.json").to_string();

    // A repeated key: refused with the key and its place; nothing is logged.
    let doubled = sample.replacen('{', "{\"requested_amount\": 999999,\n", 1);
    let answer = request(
        "POST",
        &url,
        Some(&key),
        &[("Content-Type", "application/json")],
        Some(doubled.as_bytes()),
    );
    assert_eq!(answer.status, 400, "{}", answer.json);
    assert_eq!(answer.json["code"], "malformed_json");
    let message = answer.json["message"].as_str().unwrap();
    assert!(
        message.contains("duplicate key `requested_amount`") && message.contains("line 2"),
        "{message}"
    );
    let listed = get(&format!("{}/v1/decisions", server.url), &key);
    assert_eq!(listed.json["items"].as_array().unwrap().len(), 0);

    // Media types: (Content-Type, status)
    let cases = [
        ("application/json", 200),
        ("application/json; charset=utf-8", 200),
        ("application/vnd.lender+json", 200),
        ("application/jsonp", 415),
        ("text/html+json", 415),
        ("text/plain", 415),
        ("application/x-www-form-urlencoded", 415),
    ];
    for (content_type, status) in cases {
        let answer = request(
            "POST",
            &url,
            Some(&key),
            &[("Content-Type", content_type)],
            Some(sample.as_bytes()),
        );
        assert_eq!(answer.status, status, "{content_type}: {}", answer.json);
        if status == 415 {
            assert_eq!(answer.json["code"], "unsupported_media_type");
        }
    }
}

#[test]
fn answers_carry_security_headers_and_cookies_can_be_secure() {
    let root = scratch_dir("hardening-headers");
    let server = Server::start(
        &root.join("data"),
        &["--public-url", "https://credit.example.com"],
    );
    let key = server.key("decide", "platform");
    let decided = ureq::post(&format!("{}/v1/decisions/application", server.url))
        .set("Authorization", &format!("Bearer {key}"))
        .set("Content-Type", "application/json")
        .send_string(&example_input("application-approve.json").to_string())
        .unwrap();
    assert_eq!(decided.header("cache-control"), Some("no-store"));
    assert_eq!(decided.header("x-content-type-options"), Some("nosniff"));

    let page = ureq::get(&format!("{}/review/login", server.url))
        .call()
        .unwrap();
    let csp = page.header("content-security-policy").unwrap_or_default();
    assert!(
        csp.contains("script-src") || csp.contains("default-src 'none'"),
        "{csp}"
    );
    assert!(csp.contains("frame-ancestors 'none'"), "{csp}");
    assert_eq!(page.header("x-frame-options"), Some("DENY"));
    assert_eq!(page.header("cache-control"), Some("no-store"));
    assert_eq!(page.header("referrer-policy"), Some("no-referrer"));
    let cookie = page.header("set-cookie").unwrap_or_default().to_string();
    assert!(cookie.contains("; Secure"), "{cookie}");
    assert!(
        cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"),
        "{cookie}"
    );
}

/// Requests with two bodies race on one Idempotency-Key; the second body is refused by the
/// schema, so only the first can ever be committed. Every request carrying it gets the one
/// stored decision, whichever request happened to lead; none gets a spurious 422.
#[test]
fn an_idempotency_race_answers_every_request_with_the_committed_body_alike() {
    let root = scratch_dir("hardening-race");
    let server = Server::start(&root.join("data"), &[]);
    let key = server.key("decide", "platform");
    let url = format!("{}/v1/decisions/application", server.url);
    let valid = example_input("application-approve.json");
    let mut invalid = valid.clone();
    invalid
        .as_object_mut()
        .unwrap()
        .remove("declared_monthly_income");
    for round in 0..4 {
        let idempotency_key = format!("race-{round}");
        let answers: Vec<(bool, Answer)> = std::thread::scope(|scope| {
            let handles: Vec<_> = (0..40)
                .map(|i| {
                    let body = if i % 2 == 0 { &valid } else { &invalid };
                    let (url, key, idempotency_key) = (&url, &key, &idempotency_key);
                    scope.spawn(move || {
                        (
                            i % 2 == 0,
                            post_json(url, key, body, &[("Idempotency-Key", idempotency_key)]),
                        )
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        let mut ids = std::collections::BTreeSet::new();
        for (is_valid, answer) in &answers {
            if *is_valid {
                assert_eq!(answer.status, 200, "round {round}: {}", answer.json);
                ids.insert(answer.json["id"].as_str().unwrap().to_string());
            } else {
                assert_eq!(answer.status, 422, "round {round}: {}", answer.json);
            }
        }
        assert_eq!(ids.len(), 1, "round {round}: {ids:?}");
    }
}

/// Requests hyper refuses before any route sees them still get the JSON error format.
#[test]
fn requests_refused_by_the_listener_get_json_errors() {
    let root = scratch_dir("hardening-heads");
    let server = Server::start(&root.join("data"), &[]);
    let address = address(&server);
    let long_key = "a".repeat(1_000_000);
    // (request, status, code)
    let cases: Vec<(Vec<u8>, &str, &str)> = vec![
        (
            b"GET /healthz HTTP/1.1\r\nHost: x\r\nIdempotency-Key: a\0b\r\n\r\n".to_vec(),
            "400",
            "malformed_request",
        ),
        (
            format!("GET /healthz HTTP/1.1\r\nHost: x\r\nIdempotency-Key: {long_key}\r\n\r\n")
                .into_bytes(),
            "431",
            "headers_too_large",
        ),
        (
            b"NOT HTTP AT ALL\r\n\r\n".to_vec(),
            "400",
            "malformed_request",
        ),
    ];
    for (raw, status, code) in cases {
        let mut stream = TcpStream::connect(&address).unwrap();
        // The server may answer and close before it has read all of a long head.
        let _ = stream.write_all(&raw);
        stream
            .set_read_timeout(Some(Duration::from_secs(20)))
            .unwrap();
        let mut answer = Vec::new();
        let _ = stream.read_to_end(&mut answer);
        let text = String::from_utf8_lossy(&answer);
        assert!(text.starts_with(&format!("HTTP/1.1 {status}")), "{text}");
        let body = text
            .split_once("\r\n\r\n")
            .map(|(_, b)| b)
            .unwrap_or_default();
        let json: serde_json::Value = serde_json::from_str(body).unwrap_or_default();
        assert_eq!(json["code"], code, "{text}");
        assert!(
            json["message"].as_str().is_some_and(|m| !m.is_empty()),
            "{text}"
        );
    }
}

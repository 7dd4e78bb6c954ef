//! Durability: the server is killed with SIGKILL mid-load; every decision that got a 2xx must
//! be in the log after restart, and the log's hash chain must verify — and stop verifying
//! once a stored byte is changed. A referral whose case a crash kept from being stored gets it
//! at the next start.

#[path = "support/server.rs"]
mod support;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use support::*;

#[test]
fn acknowledged_decisions_survive_sigkill_and_the_chain_detects_tampering() {
    let dir = scratch_dir("crash-data");
    let mut server = Server::start(&dir, &[]);
    let key = server.key("decide", "platform");
    let acknowledged = Arc::new(Mutex::new(Vec::<String>::new()));
    let dead = Arc::new(AtomicBool::new(false));
    let clients: Vec<_> = (0..4)
        .map(|client| {
            let (url, key, acknowledged, dead) = (
                server.url.clone(),
                key.clone(),
                acknowledged.clone(),
                dead.clone(),
            );
            std::thread::spawn(move || {
                let mut input = example_input("application-approve.json");
                for n in 0.. {
                    input["customer_id"] = serde_json::json!(format!("C-crash-{client}-{n}"));
                    let result = ureq::post(&format!("{url}/v1/decisions/application"))
                        .set("Authorization", &format!("Bearer {key}"))
                        .set("Content-Type", "application/json")
                        .timeout(std::time::Duration::from_secs(10))
                        .send_string(&input.to_string());
                    match result {
                        Ok(response) => {
                            let body: serde_json::Value = response.into_json().unwrap();
                            acknowledged
                                .lock()
                                .unwrap()
                                .push(body["id"].as_str().unwrap().to_string());
                        }
                        Err(ureq::Error::Status(status, _)) => panic!("unexpected status {status}"),
                        // The server is gone: stop.
                        Err(_) => {
                            assert!(
                                dead.load(Ordering::SeqCst),
                                "the server failed before it was killed"
                            );
                            return;
                        }
                    }
                }
            })
        })
        .collect();
    while acknowledged.lock().unwrap().len() < 300 {
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    dead.store(true, Ordering::SeqCst);
    server.kill(); // SIGKILL: no shutdown, no flush beyond what was committed.
    for client in clients {
        client.join().unwrap();
    }
    let acknowledged = acknowledged.lock().unwrap().clone();
    assert!(acknowledged.len() >= 300);

    let server = Server::start(&dir, &[]);
    let reader = server.key("review", "auditor");
    for id in &acknowledged {
        let answer = get(&format!("{}/v1/decisions/{id}", server.url), &reader);
        assert_eq!(answer.status, 200, "acknowledged decision {id} was lost");
    }
    drop(server);
    let (code, output) = audit_verify(&dir);
    assert_eq!(code, 0, "{output}");
    assert!(output.contains("verified"), "{output}");

    // Change one byte of one stored record: verification fails and names the record.
    let segment = std::fs::read_dir(dir.join("log"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|x| x == "seg"))
        .expect("a log segment");
    let original = std::fs::read(&segment).unwrap();
    let frames = frame_offsets(&original);
    assert!(frames.len() >= 300, "{} frames", frames.len());
    let (start, length) = frames[41]; // record 42
    let mut changed = original.clone();
    let target = start + length - 10; // inside the stored decision's JSON
    changed[target] = if changed[target] == b'x' { b'y' } else { b'x' };
    std::fs::write(&segment, &changed).unwrap();
    let (code, output) = audit_verify(&dir);
    assert_eq!(code, 1, "{output}");
    assert!(output.contains("record 42"), "{output}");

    // Removing records is caught too.
    let (start_41, _) = frames[40];
    let (start_43, _) = frames[42];
    let mut removed = original[..start_41].to_vec();
    removed.extend_from_slice(&original[start_43..]);
    std::fs::write(&segment, &removed).unwrap();
    let (code, output) = audit_verify(&dir);
    assert_eq!(code, 1, "{output}");
    assert!(output.contains("removed or reordered"), "{output}");

    // And cutting off the newest records, which the index remembers.
    std::fs::write(&segment, &original[..frames[99].0]).unwrap();
    let (code, output) = audit_verify(&dir);
    assert_eq!(code, 1, "{output}");
    assert!(output.contains("newest records were removed"), "{output}");
}

/// (start, length) of every frame of a log segment: a `u32` little-endian length, then that
/// many bytes; a zero length is the zero fill after the last frame.
fn frame_offsets(bytes: &[u8]) -> Vec<(usize, usize)> {
    let mut frames = Vec::new();
    let mut at = 0;
    while at + 4 <= bytes.len() {
        let length = u32::from_le_bytes(bytes[at..at + 4].try_into().unwrap()) as usize;
        if length == 0 {
            break;
        }
        frames.push((at, 4 + length));
        at += 4 + length;
    }
    frames
}

#[test]
fn a_referral_whose_case_was_not_stored_gets_it_at_the_next_start() {
    let dir = scratch_dir("crash-case");
    let mut server = Server::start(&dir, &[]);
    let caller = server.key("decide", "platform");
    let reviewer = server.key("review", "ann");
    let id = refer_application(&server, &caller)["id"]
        .as_str()
        .unwrap()
        .to_string();
    let record = get(&format!("{}/v1/decisions/{id}", server.url), &caller).json;
    let case_id = record["review"]["case_id"].as_str().unwrap().to_string();
    let case_url = |server: &Server| format!("{}/v1/cases/{case_id}", server.url);
    let opened = get(&case_url(&server), &reviewer).json;
    assert_eq!(opened["decision_id"], id.as_str(), "{opened}");
    server.kill();

    // What a crash between the answer and the case's commit leaves: the decision, no case.
    let database = rusqlite::Connection::open(dir.join("credence.sqlite3")).unwrap();
    let deleted = database
        .execute("DELETE FROM review_cases WHERE decision_id = ?1", [&id])
        .unwrap();
    assert_eq!(deleted, 1);
    drop(database);

    // The next start opens it again from the decision in the log: the same case.
    let server = Server::start(&dir, &[]);
    let reopened = get(&case_url(&server), &reviewer).json;
    for field in [
        "id",
        "decision_id",
        "queue",
        "priority",
        "created_at_ms",
        "due_at_ms",
        "status",
    ] {
        assert_eq!(reopened[field], opened[field], "{field}: {reopened}");
    }
}

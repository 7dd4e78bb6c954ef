//! A full disk under the real server: decisions refused with 503 and no path, readiness false, a restart on the full disk, `audit verify` on it, and recovery without a restart once space is freed.
//!
//! The data directory is a small tmpfs mounted for the test (root only; CI runs as root). Where
//! mounting is not allowed the test says so and passes, unless `CREDENCE_REQUIRE_MOUNT` is set.

#[path = "support/server.rs"]
mod support;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};
use support::*;

/// A tmpfs mounted at a directory, unmounted when dropped.
struct Mount(PathBuf);

impl Mount {
    fn tmpfs(at: &Path, size_mb: u32) -> Option<Mount> {
        let _ = Command::new("umount").arg(at).output();
        std::fs::create_dir_all(at).unwrap();
        let status = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size_mb}m"), "tmpfs"])
            .arg(at)
            .status()
            .ok()?;
        status.success().then(|| Mount(at.to_path_buf()))
    }
}

impl Drop for Mount {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).output();
    }
}

/// Writes a file until the device refuses more; its path.
fn fill(dir: &Path) -> PathBuf {
    let path = dir.join("filler");
    let mut file = std::fs::File::create(&path).unwrap();
    let chunk = vec![7u8; 64 * 1024];
    while file.write_all(&chunk).is_ok() {}
    let _ = file.sync_all();
    path
}

fn decide(server: &Server, key: &str) -> Answer {
    post_json(
        &format!("{}/v1/decisions/application", server.url),
        key,
        &example_input("application-approve.json"),
        &[],
    )
}

fn ready(server: &Server) -> Answer {
    request("GET", &format!("{}/readyz", server.url), None, &[], None)
}

#[test]
fn a_full_disk_refuses_decisions_cleanly_and_recovers_when_space_returns() {
    let root = scratch_dir("disk-full");
    let data = root.join("data");
    let Some(_mount) = Mount::tmpfs(&data, 24) else {
        assert!(
            std::env::var_os("CREDENCE_REQUIRE_MOUNT").is_none(),
            "cannot mount a tmpfs for the disk-full test"
        );
        eprintln!("skipped: mounting a tmpfs is not allowed here");
        return;
    };
    let mut server = Server::start(&data, &[]);
    let key = server.key("decide,analyst", "platform");
    let first = decide(&server, &key);
    assert_eq!(first.status, 200, "{}", first.json);
    let mut acknowledged = vec![first.json["id"].as_str().unwrap().to_string()];

    // Fill the device, then decide until the preallocated log is used up.
    let filler = fill(&data);
    let refused = loop {
        let answer = decide(&server, &key);
        match answer.status {
            200 => acknowledged.push(answer.json["id"].as_str().unwrap().to_string()),
            _ => break answer,
        }
        assert!(acknowledged.len() < 50_000, "the log never filled");
    };
    println!(
        "{} decisions acknowledged before the device filled; then: {}",
        acknowledged.len(),
        refused.json
    );
    assert_eq!(refused.status, 503, "{}", refused.json);
    assert_eq!(refused.json["code"], "unavailable");
    let message = refused.json["message"].as_str().unwrap();
    assert!(message.contains("no space left"), "{message}");
    assert!(!message.contains('/'), "a path in the answer: {message}");
    let readiness = ready(&server);
    assert_eq!(readiness.status, 503, "{}", readiness.json);

    // A restart on the full disk: the server starts, serves reads, refuses decisions.
    server.kill();
    let server = Server::start(&data, &[]);
    let last = acknowledged.last().unwrap();
    let read = get(&format!("{}/v1/decisions/{last}", server.url), &key);
    assert_eq!(read.status, 200, "{}", read.json);
    assert_eq!(decide(&server, &key).status, 503);
    assert_eq!(ready(&server).status, 503);

    // The log verifies on the full disk.
    let verify = Command::new(BIN)
        .args(["audit", "verify", "--data-dir"])
        .arg(&data)
        .output()
        .unwrap();
    assert!(
        verify.status.success(),
        "{}{}",
        String::from_utf8_lossy(&verify.stdout),
        String::from_utf8_lossy(&verify.stderr)
    );

    // Space freed: ready again and deciding, without a restart.
    std::fs::remove_file(filler).unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while ready(&server).status != 200 {
        assert!(Instant::now() < deadline, "not ready after space was freed");
        std::thread::sleep(Duration::from_millis(50));
    }
    let after = decide(&server, &key);
    assert_eq!(after.status, 200, "{}", after.json);
    // Nothing acknowledged was lost.
    for id in acknowledged.iter().step_by(97).chain(std::iter::once(last)) {
        let read = get(&format!("{}/v1/decisions/{id}", server.url), &key);
        assert_eq!(read.status, 200, "{id}");
    }
    drop(server);
}

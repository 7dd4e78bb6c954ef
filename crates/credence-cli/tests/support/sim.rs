//! Starts `credence sim-providers` on a free port for tests, and switches its failures.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

pub struct Sim {
    child: Child,
    pub url: String,
}

impl Drop for Sim {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn start_sim(extra: &[&str]) -> Sim {
    let mut child = Command::new(env!("CARGO_BIN_EXE_credence"))
        .args(["sim-providers", "--addr", "127.0.0.1:0"])
        .args(extra)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let first = lines.next().unwrap().unwrap();
    let url = first
        .strip_prefix("credence sim-providers listening on ")
        .unwrap_or_else(|| panic!("unexpected first line: {first}"))
        .to_string();
    std::thread::spawn(move || for _ in lines.by_ref() {});
    Sim { child, url }
}

/// Sets the failure mode of every later call: `none`, `error`, `garbage`, `timeout`, `slow`.
pub fn set_failure(sim: &Sim, failure: &str, rate: f64) {
    let answer = ureq::post(&format!("{}/_sim/mode", sim.url))
        .send_json(serde_json::json!({"failure": failure, "rate": rate, "latency_ms": 0}))
        .unwrap();
    assert_eq!(answer.status(), 200);
}

/// Calls per provider so far.
pub fn sim_calls(sim: &Sim) -> serde_json::Value {
    ureq::get(&format!("{}/_sim/stats", sim.url))
        .call()
        .unwrap()
        .into_json::<serde_json::Value>()
        .unwrap()["calls"]
        .clone()
}

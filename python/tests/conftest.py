"""Shared fixtures: the repository's example strategy and data, the `credence` binary, a server."""

from __future__ import annotations

import json
import os
import subprocess
import threading
import urllib.request
from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pa_csv
import pytest

import credence

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "examples" / "consumer-loan"
CARD = REPO / "examples" / "card-line"
APPLICATIONS = REPO / "data" / "backtest" / "lending_club_applications.csv"
AS_OF = "2026-11-29"

# Identifiers are text, whatever their digits look like.
TEXT_COLUMNS = ["application_id", "customer_id", "national_id_sha256", "phone"]


def binary() -> str:
    """The `credence` command: $CREDENCE_BIN, else the workspace's debug or release build."""
    named = os.environ.get("CREDENCE_BIN")
    if named:
        return named
    for profile in ("debug", "release"):
        path = REPO / "target" / profile / "credence"
        if path.exists():
            return str(path)
    pytest.skip("no credence binary: run `cargo build` or set CREDENCE_BIN")


def run_cli(*args: str, input: str | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [binary(), *args], input=input, capture_output=True, text=True, check=False, cwd=REPO
    )


# Outcome and breakdown columns of the back-test data: not flow inputs.
OUTCOME_COLUMNS = ["bad", "exposure", "grade", "issue_month", "months_on_book"]


def read_applications(rows: int, with_recorded_answers: bool = True,
                      inputs_only: bool = False) -> pa.Table:
    """The first `rows` back-test applications (ids as text). Without recorded provider answers
    the `step.field` columns are dropped, so that every path decides offline alike; inputs only
    drops the outcome columns too (a JSON input may hold nothing the flow does not declare)."""
    options = pa_csv.ConvertOptions(column_types={c: pa.string() for c in TEXT_COLUMNS})
    table = pa_csv.read_csv(APPLICATIONS, convert_options=options).slice(0, rows)
    if not with_recorded_answers:
        table = table.select([n for n in table.column_names if "." not in n])
    if inputs_only:
        table = table.select([n for n in table.column_names if n not in OUTCOME_COLUMNS])
    return table


def json_rows(table: pa.Table) -> list:
    """Rows as flow inputs: nulls left out and dates as YYYY-MM-DD, as a caller's JSON has them."""
    def plain(value):
        return value.isoformat() if hasattr(value, "isoformat") else value
    return [{k: plain(v) for k, v in row.items() if v is not None} for row in table.to_pylist()]


@pytest.fixture(scope="session")
def example() -> credence.Strategy:
    return credence.Strategy.load(EXAMPLE)


class Server:
    """`credence serve` on a free port with a scratch data directory, and a decide key."""

    def __init__(self, data_dir: Path) -> None:
        self.process = subprocess.Popen(
            [binary(), "serve", "--addr", "127.0.0.1:0", "--data-dir", str(data_dir)],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        line = self.process.stdout.readline()
        assert line.startswith("credence listening on "), line
        self.url = line.split("credence listening on ", 1)[1].split()[0]
        # Keep draining standard output so that the server never blocks on a full pipe.
        threading.Thread(target=self.process.stdout.read, daemon=True).start()
        created = run_cli(
            "keys", "create", "--data-dir", str(data_dir), "--role", "decide", "--user", "pytest"
        )
        assert created.returncode == 0, created.stderr
        self.key = created.stdout.strip().splitlines()[-1]

    def decide(self, flow: str, application: dict) -> dict:
        request = urllib.request.Request(
            f"{self.url}/v1/decisions/{flow}",
            data=json.dumps(application).encode(),
            headers={"Authorization": f"Bearer {self.key}", "Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=60) as answer:
            return json.load(answer)

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=30)


@pytest.fixture(scope="session")
def server(tmp_path_factory):
    server = Server(tmp_path_factory.mktemp("server") / "data")
    yield server
    server.stop()

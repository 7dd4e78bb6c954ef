"""The same decisions everywhere: for the same inputs, strategy and date, `Strategy.decide`,
`Strategy.decide_batch`, `credence decide` and the server agree on every field that decides —
on the example's cases and on thousands of Lending Club applications. (Spark: test_spark.py.)"""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal

import pyarrow as pa
import pytest
from conftest import EXAMPLE, json_rows, read_applications, run_cli

ROWS = 2000


def key(decision: dict) -> tuple:
    """What a decision decides: outcome, terms, reasons, arm, version."""
    number = lambda v: None if v is None else Decimal(str(v)).normalize()
    return (
        decision["outcome"],
        number(decision.get("limit")),
        number(decision.get("apr")),
        decision.get("term_months"),
        tuple(r["code"] if isinstance(r, dict) else r for r in decision["reasons"]),
        decision.get("arm"),
        decision["strategy_version"],
    )


def batch_keys(answer) -> list:
    rows = answer.to_pylist()
    return [
        (r["outcome"], None if r["limit"] is None else r["limit"].normalize(),
         None if r["apr"] is None else r["apr"].normalize(), r["term_months"],
         tuple(r["reason_codes"]), r["arm"], r["strategy_version"])
        for r in rows
    ]


def test_python_batch_cli_and_one_by_one_agree_on_thousands_of_rows(example, tmp_path):
    table = read_applications(ROWS, with_recorded_answers=False, inputs_only=True)
    rows = json_rows(table)
    as_of = "2026-11-29"
    batch = batch_keys(example.decide_batch("application", table, as_of=as_of))
    single = [key(example.decide("application", row, as_of=as_of)) for row in rows]
    lines = tmp_path / "rows.jsonl"
    lines.write_text("".join(json.dumps(row) + "\n" for row in rows))
    printed = run_cli("decide", "--strategy", str(EXAMPLE), "--flow", "application",
                      "--as-of", as_of, "--jsonl", str(lines))
    assert printed.returncode == 0, printed.stderr[:2000]
    cli = [key(json.loads(line)) for line in printed.stdout.splitlines()]
    assert len(batch) == len(single) == len(cli) == ROWS
    assert batch == single
    assert single == cli
    assert {k[0] for k in batch} == {"approve", "refer", "decline"}


def test_the_server_decides_as_python_does(example, server):
    # The server decides as of its own clock: today.
    today = dt.datetime.now(dt.timezone.utc).date().isoformat()
    table = read_applications(500, with_recorded_answers=False, inputs_only=True)
    rows = json_rows(table)
    served = [key(server.decide("application", row)) for row in rows]
    if dt.datetime.now(dt.timezone.utc).date().isoformat() != today:
        pytest.skip("the date changed while the server decided")
    local = batch_keys(example.decide_batch("application", table, as_of=today))
    assert served == local


def test_the_example_cases_decide_alike_in_python_batch_and_cli(example, tmp_path):
    cases = [(c["input"], c["as_of"]) for c in example.cases()
             if c["flow"] == "application" and not c["with_data"]]
    assert len(cases) >= 20
    for application, as_of in cases:
        one = key(example.decide("application", application, as_of=as_of))
        path = tmp_path / "case.json"
        path.write_text(json.dumps(application))
        printed = run_cli("decide", "--strategy", str(EXAMPLE), "--flow", "application",
                          "--as-of", as_of, str(path))
        assert printed.returncode == 0, printed.stderr
        assert key(json.loads(printed.stdout)) == one
        batch = example.decide_batch("application", pa.Table.from_pylist([application]), as_of=as_of)
        assert batch_keys(batch) == [one]

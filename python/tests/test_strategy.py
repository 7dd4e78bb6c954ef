"""Strategy: loading, facts, embedded cases, one decision, batches and errors."""

from __future__ import annotations

import json
import shutil

import pyarrow as pa
import pytest

import credence
from conftest import AS_OF, CARD, EXAMPLE, read_applications, run_cli


def sample(name: str) -> dict:
    return json.loads((EXAMPLE / "samples" / f"{name}.json").read_text())


def test_a_package_loads_with_its_facts_and_its_cases_pass(example):
    assert example.name == "consumer-loan"
    assert len(example.version) == 64
    assert "application" in example.flows and "drawdown" in example.flows
    assert example.languages[0] == "en"
    results = example.validate()
    assert len(results) >= 30
    assert all(r["passed"] for r in results), [r for r in results if not r["passed"]]


def test_a_tar_gz_loads_as_its_directory(tmp_path):
    archive = shutil.make_archive(str(tmp_path / "card"), "gztar", root_dir=CARD)
    assert credence.Strategy.load(archive).version == credence.Strategy.load(CARD).version


@pytest.mark.parametrize("name,outcome", [
    ("application-approve", "approve"),
    ("application-decline", "decline"),
    ("application-refer", "refer"),
])
def test_one_decision_is_the_cli_s_decision(example, name, outcome):
    decision = example.decide("application", sample(name), as_of=AS_OF)
    assert decision["outcome"] == outcome
    printed = run_cli("decide", "--strategy", str(EXAMPLE), "--flow", "application",
                      "--as-of", AS_OF, str(EXAMPLE / "samples" / f"{name}.json"))
    assert printed.returncode == 0, printed.stderr
    assert decision == json.loads(printed.stdout)
    traced = example.decide("application", sample(name), as_of=AS_OF, trace=True)
    assert "input" in traced["trace"]


def test_errors_carry_the_cli_s_message_code_and_details(example):
    bad = dict(sample("application-approve"), requested_amount="lots")
    with pytest.raises(credence.InvalidInputError) as raised:
        example.decide("application", bad, as_of=AS_OF)
    error = raised.value
    assert error.code == "invalid_input"
    assert "requested_amount" in error.message
    assert error.details["violations"][0]["field"] == "requested_amount"
    path = EXAMPLE / "samples" / "bad.json"
    try:
        path.write_text(json.dumps(bad))
        printed = run_cli("decide", "--strategy", str(EXAMPLE), "--flow", "application",
                          "--as-of", AS_OF, str(path))
    finally:
        path.unlink()
    assert printed.returncode == 2
    assert error.message in printed.stderr

    with pytest.raises(credence.UnknownFlowError) as raised:
        example.decide("origination", {}, as_of=AS_OF)
    assert "application" in raised.value.message
    with pytest.raises(credence.InvalidInputError, match="YYYY-MM-DD"):
        example.decide("application", sample("application-approve"), as_of="29/11/2026")


def test_a_package_that_does_not_compile_lists_its_problems(tmp_path):
    package = tmp_path / "broken"
    shutil.copytree(CARD, package)
    flow = package / "flows" / "application.yaml"
    text = flow.read_text()
    assert "floor_to(" in text
    flow.write_text(text.replace("floor_to(", "floor_too(", 1))
    with pytest.raises(credence.InvalidPackageError) as raised:
        credence.Strategy.load(package)
    assert "floor_too" in raised.value.message
    assert "did you mean `floor_to`" in raised.value.message
    assert raised.value.details["problems"]


def test_decide_batch_returns_one_row_per_input_in_order(example):
    table = read_applications(3000)
    answer = example.decide_batch("application", table, as_of=AS_OF,
                                  trace_fields=["dti", "app_score.score", "grade"])
    assert answer.num_rows == table.num_rows
    for column in ["outcome", "limit", "apr", "term_months", "reason_codes", "arm",
                   "strategy_version", "error"]:
        assert column in answer.column_names
    assert answer.schema.field("limit").type == pa.decimal128(38, 10)
    assert answer.schema.field("reason_codes").type == pa.list_(pa.string())
    assert answer.schema.field("dti").type == pa.float64()
    assert answer.schema.field("grade").type == pa.string()
    assert answer.column("error").null_count == table.num_rows
    assert set(answer.column("outcome").to_pylist()) == {"approve", "refer", "decline"}
    assert set(answer.column("strategy_version").to_pylist()) == {example.version}
    # In input order: the same rows reversed give the same answers reversed.
    reversed_rows = table.take(pa.array(range(table.num_rows - 1, -1, -1)))
    again = example.decide_batch("application", reversed_rows, as_of=AS_OF, threads=1)
    assert again.column("outcome").to_pylist()[::-1] == answer.column("outcome").to_pylist()
    # pandas in, the same answers out.
    pandas = example.decide_batch("application", table.to_pandas(), as_of=AS_OF)
    assert pandas.column("outcome").equals(answer.column("outcome"))
    assert pandas.column("limit").equals(answer.column("limit"))


def test_a_row_that_cannot_be_decided_is_reported_and_the_rest_are_decided(example):
    table = read_applications(3)
    amounts = pa.array(["6000", "lots", None])
    table = table.set_column(table.schema.get_field_index("requested_amount"),
                             "requested_amount", amounts)
    answer = example.decide_batch("application", table, as_of=AS_OF)
    errors = answer.column("error").to_pylist()
    assert errors[0] is None
    assert "requested_amount" in errors[1] and "requested_amount" in errors[2]
    assert answer.column("outcome").to_pylist()[1] is None


def test_threads_may_share_a_strategy(example):
    """Batches from several Python threads at once, on one strategy: no deadlock between the
    GIL and the strategy's deciders, and every thread gets its own rows' answers."""
    from concurrent.futures import ThreadPoolExecutor

    tables = [read_applications(1500).slice(i * 300, 300) for i in range(4)]
    alone = [example.decide_batch("application", t, as_of=AS_OF).column("outcome") for t in tables]
    with ThreadPoolExecutor(max_workers=4) as pool:
        futures = [pool.submit(example.decide_batch, "application", t, AS_OF) for t in tables * 3]
        together = [f.result(timeout=120).column("outcome") for f in futures]
    assert together == alone * 3

"""docs/python.md runs: its ```python blocks, in order, in one namespace, from the repository
root (the tutorial is a test, so it stays true)."""

from __future__ import annotations

import os
import re

from conftest import REPO

DOC = REPO / "docs" / "python.md"


def test_the_tutorial_runs(tmp_path, monkeypatch):
    blocks = re.findall(r"```python\n(.*?)```", DOC.read_text(), flags=re.S)
    assert len(blocks) >= 5
    monkeypatch.chdir(REPO)
    monkeypatch.setenv("CREDENCE_TUTORIAL_SCRATCH", str(tmp_path))
    namespace: dict = {}
    for number, block in enumerate(blocks, 1):
        if "# not run in the tests" in block:
            continue
        try:
            exec(compile(block, f"{DOC.name} block {number}", "exec"), namespace)
        except Exception as error:  # pragma: no cover - the message names the block
            raise AssertionError(f"docs/python.md block {number} failed: {error!r}\n{block}") from error

"""Back-tests in the notebook: a champion and an optional challenger over a table of historical
applications — the same summary as ``credence backtest`` and the rows whose outcome changed."""

from __future__ import annotations

import io
import json
from typing import Any, Dict, Optional, Sequence, Tuple

import pyarrow as pa
import pyarrow.csv as pa_csv

from . import _credence
from ._arrow import to_arrow
from .errors import translated
from .strategy import AsOf, Strategy, as_of_text

__all__ = ["backtest"]


@translated
def backtest(
    champion: Strategy,
    challenger: Optional[Strategy],
    flow: str,
    data: Any,
    as_of: AsOf,
    by: Sequence[str] = (),
    bad_column: str = "bad",
    exposure_column: str = "exposure",
    loss_column: str = "loss",
    pd_column: str = "pd",
    id_column: str = "application_id",
    lgd: str = "0.45",
    score_step: Optional[str] = None,
    score_bin_width: float = 10.0,
    threads: Optional[int] = None,
) -> Tuple[Dict[str, Any], pa.Table]:
    """Decides every row of ``data`` with the champion (and the challenger) as of ``as_of`` and
    tallies them as ``credence backtest`` does: approval, referral and decline rates, the swap
    set, bad rates and expected loss, breakdowns ``by`` columns, reason codes, the score
    distribution. ``data``'s columns are the flow's inputs, ``step.field`` recorded provider
    answers, and the outcome columns (``bad``, ``exposure``, ``loss``, ``pd``).

    Returns ``(summary, diff)``: the summary as the command's JSON (a dict), and a table of the
    rows whose outcome differs between the two strategies (empty without a challenger)."""
    if as_of is None:
        raise ValueError("as_of is required: a back-test must not depend on the day it runs")
    summary, diff = _credence.backtest(
        champion._native,
        flow,
        to_arrow(data),
        as_of_text(as_of),
        challenger._native if challenger is not None else None,
        list(by),
        bad_column,
        exposure_column,
        loss_column,
        pd_column,
        id_column,
        str(lgd),
        score_step,
        float(score_bin_width),
        threads,
    )
    if diff.strip():
        options = pa_csv.ConvertOptions(strings_can_be_null=False)
        diff_table = pa_csv.read_csv(io.BytesIO(diff.encode()), convert_options=options)
    else:
        diff_table = pa.table({})
    return json.loads(summary), diff_table

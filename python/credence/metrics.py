"""Model and population monitoring metrics, computed as the CLI's ``credence monitor`` computes
them: KS, AUC (ties counted half, as scikit-learn's ``roc_auc_score``), Gini, and PSI against
the expected sample's quantile bins."""

from __future__ import annotations

import json
from typing import Any, Dict

import numpy as np

from . import _credence
from .errors import translated

__all__ = ["discrimination", "ks", "auc", "gini", "psi"]


def _floats(values: Any) -> list:
    return np.asarray(values, dtype=np.float64).tolist()


@translated
def discrimination(scores: Any, bads: Any) -> Dict[str, Any]:
    """``{rows, bads, auc, gini, ks, ks_score}`` of ``scores`` (higher: riskier) for the 0/1 or
    boolean outcomes ``bads``. A credit score where higher is better gives an AUC below ½: flip
    its sign first."""
    outcomes = np.asarray(bads).astype(bool).tolist()
    return json.loads(_credence.discrimination(_floats(scores), outcomes))


def ks(scores: Any, bads: Any) -> float:
    """The Kolmogorov–Smirnov statistic: the largest gap between bads' and goods' cumulative
    score distributions."""
    return discrimination(scores, bads)["ks"]


def auc(scores: Any, bads: Any) -> float:
    """The area under the ROC curve, ties counted half."""
    return discrimination(scores, bads)["auc"]


def gini(scores: Any, bads: Any) -> float:
    """2 · AUC − 1."""
    return discrimination(scores, bads)["gini"]


@translated
def psi(expected: Any, actual: Any, bins: int = 10) -> Dict[str, Any]:
    """The population stability index of ``actual`` against ``expected``, binned at the expected
    values' quantiles: ``{psi, drift, bins: [{label, baseline, current, …}]}``; ``drift`` is
    ``stable`` below 0.1, ``watch`` to 0.25, ``shift`` above. NaN is a missing value."""
    return json.loads(_credence.psi(_floats(expected), _floats(actual), int(bins)))

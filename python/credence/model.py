"""A model file scored natively — XGBoost (JSON/UBJSON), LightGBM (text) or a Credence logistic
regression — giving what the library's own ``predict()`` gives, and TreeSHAP explanations."""

from __future__ import annotations

import json
import os
from typing import Any, Dict, List, Optional, Union

import numpy as np
import pyarrow as pa

from . import _credence
from ._arrow import table_of, to_arrow
from .errors import translated

__all__ = ["Model"]


class Model:
    """A loaded model.

    >>> model = Model.load("examples/consumer-loan/models/income.json")
    >>> model.predict(features)          # numpy 2-D array, DataFrame or Arrow table
    """

    def __init__(self, native: "_credence.NativeModel") -> None:
        self._native = native
        self.metadata: Dict[str, Any] = json.loads(native.metadata())

    @classmethod
    @translated
    def load(cls, path: Union[str, "os.PathLike[str]"]) -> "Model":
        return cls(_credence.NativeModel.load(os.fspath(path)))

    @property
    def features(self) -> List[str]:
        """The features, in the order a row gives them."""
        return self.metadata["features"]

    @property
    def objective(self) -> str:
        return self.metadata["objective"]

    def __repr__(self) -> str:
        m = self.metadata
        return f"Model({m['name']!r}, {m['format']}, {m['objective']}, {len(m['features'])} features)"

    @translated
    def _score(self, data: Any, output: str, threads: Optional[int]) -> np.ndarray:
        width = None
        if isinstance(data, np.ndarray):
            if data.ndim != 2:
                raise ValueError(f"expected a 2-D array of rows × features, got {data.ndim}-D")
            rows = data.shape[0]
            width = data.shape[1]
            # A C-contiguous float64 matrix crosses as one column, without a copy.
            flat = np.ascontiguousarray(data, dtype=np.float64).reshape(-1)
            stream = pa.table({"matrix": pa.array(flat, from_pandas=False)})
        else:
            stream = to_arrow(data)
            rows = None
        values = table_of(self._native.score(stream, output, width, threads)).column(0)
        array = values.to_numpy()
        per_row = self._native.values_per_row(output)
        if rows is None:
            rows = len(array) // max(per_row, 1)
        classes = self.metadata["classes"]
        if output == "contributions" and classes > 1:
            return array.reshape(rows, classes, per_row // classes)
        return array.reshape(rows, per_row) if per_row > 1 else array

    def predict(self, data: Any, threads: Optional[int] = None) -> np.ndarray:
        """What the library's ``predict()`` returns: probabilities for classifiers (one column per
        class for multi-class models), the prediction on the target's scale for regressions.
        ``data`` is a 2-D numpy array in the order of :attr:`features`, or a DataFrame / Arrow
        table whose columns are found by feature name (else taken in order). NaN and nulls are
        missing values."""
        return self._score(data, "predict", threads)

    def predict_margin(self, data: Any, threads: Optional[int] = None) -> np.ndarray:
        """The raw score before the link function (``output_margin=True`` / ``raw_score=True``)."""
        return self._score(data, "margin", threads)

    def explain(self, data: Any, threads: Optional[int] = None) -> np.ndarray:
        """Exact TreeSHAP contributions, one column per feature and the bias last — XGBoost's
        ``pred_contribs=True`` / LightGBM's ``pred_contrib=True``; each row sums to the margin."""
        return self._score(data, "contributions", threads)

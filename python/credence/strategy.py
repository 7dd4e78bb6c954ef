"""A compiled strategy package: decide one application from a dict, or whole tables on every
core — the same decisions as ``credence decide`` and the server."""

from __future__ import annotations

import datetime as _dt
import decimal as _decimal
import json
import os
from typing import Any, Dict, List, Mapping, Optional, Sequence, Union

import pyarrow as pa

from . import _credence
from ._arrow import table_of, to_arrow
from .errors import translated

__all__ = ["Strategy", "AsOf"]

AsOf = Union[str, _dt.date, None]


def as_of_text(as_of: AsOf) -> Optional[str]:
    """``YYYY-MM-DD`` of a date or a string (None: today, UTC)."""
    if as_of is None or isinstance(as_of, str):
        return as_of
    if isinstance(as_of, _dt.datetime):
        as_of = as_of.date()
    return as_of.isoformat()


def _json_default(value: Any) -> Any:
    if isinstance(value, _decimal.Decimal):
        return str(value)
    if isinstance(value, (_dt.date, _dt.datetime)):
        return value.isoformat()[:10]
    if hasattr(value, "item"):  # numpy scalars
        return value.item()
    raise TypeError(f"{type(value).__name__} is not a JSON value")


class Strategy:
    """A strategy package, compiled once.

    >>> strategy = Strategy.load("examples/consumer-loan")
    >>> strategy.flows
    ['account_review', 'application', 'drawdown', 'early_warning']
    """

    def __init__(self, native: "_credence.NativeStrategy", path: str) -> None:
        self._native = native
        self.path = path

    @classmethod
    @translated
    def load(cls, path: Union[str, "os.PathLike[str]"]) -> "Strategy":
        """Reads and compiles a package: a directory holding ``strategy.yaml``, or a ``.tar.gz``
        of one. A package that does not compile raises :class:`InvalidPackageError` with every
        problem at its ``file:line:column`` in ``details["problems"]``."""
        path = os.fspath(path)
        return cls(_credence.NativeStrategy.load(path), path)

    @property
    def name(self) -> str:
        """The product strategy's name (``consumer-loan``)."""
        return self._native.name

    @property
    def version(self) -> str:
        """The version: the SHA-256 of the package's content."""
        return self._native.version

    @property
    def label(self) -> Optional[str]:
        """The package's human label (``2026.11``), if it has one."""
        return self._native.label

    @property
    def currency(self) -> str:
        return self._native.currency

    @property
    def languages(self) -> List[str]:
        """Languages of reason texts; the first is the default."""
        return self._native.languages

    @property
    def flows(self) -> List[str]:
        """The flows, by name."""
        return self._native.flows

    def __repr__(self) -> str:
        return f"Strategy({self.name!r}, version={self.version[:12]!r}, flows={self.flows!r})"

    @translated
    def input_fields(self, flow: str) -> List[str]:
        """The input fields ``flow`` declares, in its schema's order."""
        return self._native.input_fields(flow)

    def validate(self) -> List[Dict[str, Any]]:
        """Runs the package's embedded test cases, as ``credence validate`` does: one dict per
        case with ``name``, ``file``, ``flow``, ``passed``, ``error`` and ``mismatches``."""
        return json.loads(self._native.validate())

    def cases(self) -> List[Dict[str, Any]]:
        """The package's embedded test cases: ``name``, ``file``, ``flow``, ``as_of``, ``input``
        (with what a case extends filled in) and ``with_data`` (it gives provider answers)."""
        return json.loads(self._native.cases())

    @translated
    def decide(
        self,
        flow: str,
        application: Mapping[str, Any],
        as_of: AsOf = None,
        lang: Optional[str] = None,
        trace: bool = False,
    ) -> Dict[str, Any]:
        """Decides one input, offline (a ``data`` step uses no provider and fails by its source's
        policy), as of ``as_of`` (default today, UTC). Returns the decision as ``credence decide``
        prints it: money and rates are decimal strings. ``trace=True`` adds every intermediate
        value."""
        text = json.dumps(dict(application), default=_json_default)
        answer = self._native.decide_json(flow, text, as_of_text(as_of), lang, trace)
        return json.loads(answer)

    @translated
    def decide_batch(
        self,
        flow: str,
        data: Any,
        as_of: AsOf = None,
        lang: Optional[str] = None,
        trace_fields: Union[Sequence[str], Mapping[str, str], None] = None,
        threads: Optional[int] = None,
    ) -> pa.Table:
        """Decides every row of ``data`` — a pyarrow Table or RecordBatch, a pandas DataFrame, or
        anything with ``__arrow_c_stream__`` — on ``threads`` cores (default all), with the GIL
        released. Columns are the flow's input fields by name (extra columns are ignored;
        ``step.field`` columns are recorded provider answers, as in a back-test).

        Returns a pyarrow Table with one row per input row, in input order: ``outcome``,
        ``counter_offer``, ``limit``, ``apr``, ``term_months``, ``requested_amount`` (decimal128(38,
        10)), ``reason_codes`` (a list), ``arm``, ``strategy_version`` and ``error`` (why a row
        could not be decided; its outcome is then null), then one column per trace field:
        ``trace_fields=["dti", "app_score.score"]`` (types inferred), or a dict of name →
        ``"float64"`` / ``"bool"`` / ``"string"``."""
        if trace_fields is None:
            fields: List[tuple] = []
        elif isinstance(trace_fields, Mapping):
            fields = [(name, kind) for name, kind in trace_fields.items()]
        else:
            fields = [(name, "infer") for name in trace_fields]
        capsule = self._native.decide_batch(
            flow, to_arrow(data), as_of_text(as_of), lang, fields, threads
        )
        return table_of(capsule)

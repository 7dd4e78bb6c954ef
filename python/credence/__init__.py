"""Credence in Python: strategies, models and back-tests on Arrow batches, and on Spark.

>>> import credence
>>> strategy = credence.Strategy.load("examples/consumer-loan")
>>> strategy.decide("application", application, as_of="2026-11-29")["outcome"]
'approve'
>>> answers = strategy.decide_batch("application", table, as_of="2026-11-29")   # a pyarrow Table

The tutorial is docs/python.md.
"""

from . import metrics, spark
from .backtest import backtest
from .errors import (
    CredenceError,
    InvalidInputError,
    InvalidPackageError,
    StrategyDefectError,
    UnknownFlowError,
)
from .model import Model
from .strategy import Strategy

__all__ = [
    "Strategy",
    "Model",
    "backtest",
    "metrics",
    "spark",
    "CredenceError",
    "InvalidInputError",
    "InvalidPackageError",
    "UnknownFlowError",
    "StrategyDefectError",
]
__version__ = "0.1.0"

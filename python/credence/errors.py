"""Errors: one exception class per kind of failure, each with the stable ``code`` the CLI and the
server use, the ``message`` (naming the field and the fix) and structured ``details``."""

from __future__ import annotations

import json
from typing import Any, Callable, Dict, Type, TypeVar

from . import _credence

__all__ = [
    "CredenceError",
    "InvalidInputError",
    "InvalidPackageError",
    "UnknownFlowError",
    "StrategyDefectError",
]


class CredenceError(Exception):
    """A failed call. ``code`` is the machine code (``invalid_input``, ``invalid_package``, …),
    ``message`` says what went wrong and how to fix it, ``details`` holds structure (the input's
    violations, the package's problems)."""

    def __init__(self, code: str, message: str, details: Any = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.details = details

    def __str__(self) -> str:
        return self.message


class InvalidInputError(CredenceError, ValueError):
    """The input does not match the flow's schema, or an argument is malformed."""


class InvalidPackageError(CredenceError, ValueError):
    """The strategy package does not compile; ``details["problems"]`` lists each problem."""


class UnknownFlowError(CredenceError, KeyError):
    """The strategy has no flow of that name."""

    def __str__(self) -> str:
        return self.message


class StrategyDefectError(CredenceError):
    """The strategy failed while deciding a valid input: a defect of the package, not of the input."""


_BY_CODE: Dict[str, Type[CredenceError]] = {
    "invalid_input": InvalidInputError,
    "invalid_parameter": InvalidInputError,
    "invalid_package": InvalidPackageError,
    "unknown_flow": UnknownFlowError,
    "strategy_error": StrategyDefectError,
}


def from_native(error: "_credence.NativeError") -> CredenceError:
    code, message, details = error.args
    cls = _BY_CODE.get(code, CredenceError)
    return cls(code, message, json.loads(details))


F = TypeVar("F", bound=Callable[..., Any])


def translated(function: F) -> F:
    """Calls ``function``, raising the native module's errors as :class:`CredenceError`\\ s."""

    import functools

    @functools.wraps(function)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return function(*args, **kwargs)
        except _credence.NativeError as error:
            raise from_native(error) from None

    return wrapper  # type: ignore[return-value]

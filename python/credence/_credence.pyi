"""Type stubs of the native module (crates/credence-python). Use the wrappers in `credence`."""

from typing import Any, List, Optional, Tuple

class NativeError(Exception):
    """args: (code, message, details as JSON text)."""

class NativeStrategy:
    @staticmethod
    def load(path: str) -> NativeStrategy: ...
    @property
    def name(self) -> str: ...
    @property
    def version(self) -> str: ...
    @property
    def label(self) -> Optional[str]: ...
    @property
    def currency(self) -> str: ...
    @property
    def languages(self) -> List[str]: ...
    @property
    def flows(self) -> List[str]: ...
    def input_fields(self, flow: str) -> List[str]: ...
    def validate(self) -> str: ...
    def cases(self) -> str: ...
    def decide_json(
        self,
        flow: str,
        input_json: str,
        as_of: Optional[str] = None,
        language: Optional[str] = None,
        trace: bool = False,
    ) -> str: ...
    def decide_batch(
        self,
        flow: str,
        data: Any,
        as_of: Optional[str] = None,
        language: Optional[str] = None,
        trace_fields: List[Tuple[str, str]] = ...,
        threads: Optional[int] = None,
    ) -> Any: ...

class NativeModel:
    @staticmethod
    def load(path: str) -> NativeModel: ...
    def metadata(self) -> str: ...
    def values_per_row(self, output: str) -> int: ...
    def score(
        self,
        data: Any,
        output: str = "predict",
        width: Optional[int] = None,
        threads: Optional[int] = None,
    ) -> Any: ...

def backtest(
    champion: NativeStrategy,
    flow: str,
    data: Any,
    as_of: str,
    challenger: Optional[NativeStrategy] = None,
    by: List[str] = ...,
    bad_column: str = "bad",
    exposure_column: str = "exposure",
    loss_column: str = "loss",
    pd_column: str = "pd",
    id_column: str = "application_id",
    lgd: str = "0.45",
    score_step: Optional[str] = None,
    score_bin_width: float = 10.0,
    threads: Optional[int] = None,
) -> Tuple[str, str]: ...
def discrimination(scores: List[float], bads: List[bool]) -> str: ...
def psi(expected: List[float], actual: List[float], bins: int = 10) -> str: ...

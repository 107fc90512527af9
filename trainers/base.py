"""The one contract every ganstream model implements (in the spirit of synthcity's plugins and
scikit-learn's estimators): hyper-parameters in __init__ (a dataclass config), `fit(table)`,
`sample(n, seed=...)`, `save(dir)` / `load(dir)`. Which class serves which `kind` is a table in
trainers/kinds.py, not an import side effect."""

from __future__ import annotations

import os
from abc import ABC, abstractmethod
from typing import ClassVar

import pandas as pd

from ganstream.trainers.errors import ModelError


class GenerativeModel(ABC):
    kind: ClassVar[str]

    @abstractmethod
    def fit(self, table: pd.DataFrame) -> "GenerativeModel": ...

    @abstractmethod
    def sample(self, n: int, seed: int = 0, **options) -> pd.DataFrame: ...

    @abstractmethod
    def save(self, path: str | os.PathLike) -> None: ...

    @classmethod
    @abstractmethod
    def load(cls, path: str | os.PathLike) -> "GenerativeModel": ...

    @property
    def is_fitted(self) -> bool:
        return getattr(self, "generator", None) is not None

    def _require_fitted(self) -> None:
        if not self.is_fitted:
            raise ModelError(f"this {type(self).__name__} is not fitted: call fit(table) first, or ganstream.load(DIR)")

    def __repr__(self) -> str:
        config = getattr(self, "config", None)
        shown = ""
        if config is not None and hasattr(config, "changed"):
            shown = ", ".join(f"{k}={v!r}" for k, v in config.changed().items())
        state = "fitted" if self.is_fitted else "unfitted"
        return f"{type(self).__name__}({shown})  # {state}"

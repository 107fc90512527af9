"""Column helpers shared by the quality metrics (metrics.py, coverage.py) and their plots: which columns are
numeric, and each column as floats or as labels with one sentinel for a missing value."""

from __future__ import annotations

import numpy as np
import pandas as pd

from ganstream.trainers.errors import DataError


class _Missing:
    """The category that stands for a missing value in discrete columns (never equal to a real value)."""

    def __repr__(self) -> str:
        return "<missing>"


MISSING = _Missing()


# ---------------------------------------------------------------------------------------- helpers
def is_numeric(s: pd.Series) -> bool:
    return pd.api.types.is_numeric_dtype(s.dtype) and not pd.api.types.is_bool_dtype(s.dtype)


def as_float(s: pd.Series) -> np.ndarray:
    """A numeric column as a new float64 array; missing, unparseable and infinite values become NaN."""
    if not (pd.api.types.is_numeric_dtype(s.dtype) or pd.api.types.is_bool_dtype(s.dtype)):
        s = pd.to_numeric(s, errors="coerce")
    x = s.to_numpy(dtype=np.float64, na_value=np.nan)
    return np.where(np.isfinite(x), x, np.nan)


def as_labels(s: pd.Series) -> np.ndarray:
    """A discrete column as a new object array in which every missing value is the MISSING sentinel."""
    out = s.astype(object).to_numpy(copy=True)
    out[s.isna().to_numpy(dtype=bool)] = MISSING
    return out


def stable_key(value) -> tuple[str, str]:
    """Sort key that orders values of mixed types deterministically."""
    return (type(value).__name__, str(value))


def require_columns(df: pd.DataFrame, columns, what: str) -> pd.DataFrame:
    absent = [c for c in columns if c not in df.columns]
    if absent:
        raise DataError(f"{what} lacks column(s): {', '.join(map(str, absent))}")
    return df[list(columns)]

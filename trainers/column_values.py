"""Column values to and from their encoded form, shared by the table encoder and the time-series start copula:
category codes as Arrow strings, the quantile-normal decode, nearest support values, dtype restoration.
Every function works on whole columns (arrays), never on one value at a time."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
from scipy.special import ndtr

from ganstream.trainers import datetimes
from ganstream.trainers.schema import ColumnSpec


def arrow_string_column(spec: ColumnSpec) -> bool:
    """A text column of pandas' default string dtype ("str", Arrow-backed) whose categories are all text."""
    return spec.kind == "categorical" and spec.dtype == "str" and all(isinstance(c, str) for c in spec.categories)


def strings_from_codes(codes: np.ndarray, missing: np.ndarray | None, categories: list[str]) -> pd.Series:
    """The "str" column of category `codes` (missing where `missing`), built as an Arrow dictionary array and
    cast to plain strings in Arrow: the same Series as mapping codes to Python strings and `astype("str")`
    (what restore_dtype does), ~8x faster (0.04 vs 0.33 s for 300k rows), since no Python string object is made."""
    mask = missing if missing is not None and missing.any() else None
    arr = pa.DictionaryArray.from_arrays(pa.array(codes, mask=mask), pa.array(categories, pa.string()))
    return pd.Series(pd.array(arr.cast(pa.string()), dtype="str"))


def argmax_rows(block: np.ndarray) -> np.ndarray:
    """Row-wise argmax of a column slice of the wide encoded matrix. numpy's argmax along rows of a strided
    slice walks memory row by row with a stride of the full width: a contiguous copy first made it ~4x faster
    (0.28 -> 0.075 s per 16-wide span of 300k rows), the same answer (first maximum)."""
    return np.ascontiguousarray(block).argmax(axis=1)


def nearest(support: np.ndarray, x: np.ndarray) -> np.ndarray:
    """Nearest value of a sorted support, vectorized."""
    i = np.clip(np.searchsorted(support, x), 1, support.size - 1) if support.size > 1 else np.zeros(x.size, int)
    if support.size == 1:
        return support[i]
    left, right = support[i - 1], support[i]
    return np.where(x - left <= right - x, left, right)


def values_from_normal_scores(z: np.ndarray, quantiles: np.ndarray) -> np.ndarray:
    """Decodes a quantile-normal margin: standard-normal scores -> values, linear between the stored quantiles
    (taken at levels 0..1). Shared by the table encoder and the time-series start copula."""
    return np.interp(ndtr(z), levels(quantiles.size), quantiles)


def levels(n_q: int) -> np.ndarray:
    """CDF levels of the stored quantiles, kept inside (0, 1) so the observed min and max map to finite
    normal scores and decode back exactly."""
    eps = 0.5 / n_q
    return np.linspace(eps, 1.0 - eps, n_q)


def numeric_values(col: pd.Series, spec: ColumnSpec) -> np.ndarray:
    """A numeric or datetime column as float64 (NaN where missing): datetimes count their unit since 1970."""
    if spec.kind == "datetime":
        return datetimes.to_numbers(col, spec.time)
    return col.to_numpy(dtype=np.float64, na_value=np.nan)


def numeric_block(df: pd.DataFrame, specs: list[ColumnSpec]) -> np.ndarray:
    """Several numeric or datetime columns as one float64 matrix (rows x columns)."""
    if not any(s.kind == "datetime" for s in specs):
        return df[[s.name for s in specs]].to_numpy(dtype=np.float64, na_value=np.nan)
    return np.column_stack([numeric_values(df[s.name], s) for s in specs])


def datetimes_as_numbers(df: pd.DataFrame, schema) -> pd.DataFrame:
    """`df` with the schema's datetime columns as numbers: what quality metrics and downstream learners compare
    (a timestamp as text would look like thousands of one-row categories)."""
    specs = [s for s in schema.columns if s.kind == "datetime" and s.name in df.columns]
    if not specs:
        return df
    out = df.copy()
    for spec in specs:
        out[spec.name] = numeric_values(df[spec.name], spec)
    return out


def restore_dtype(values: pd.Series, spec: ColumnSpec) -> pd.Series:
    """Cast decoded values back to the training column's dtype. A column that had no missing values in
    training but gets some now (never in 'fill' mode) falls back to a nullable/float dtype."""
    dtype = spec.dtype
    if spec.kind == "datetime":
        return datetimes.from_numbers(values.to_numpy(dtype=np.float64, na_value=np.nan), spec.time, dtype)
    has_na = bool(values.isna().any())
    if spec.kind == "boolean":
        return values.astype("boolean" if has_na or dtype == "boolean" else "bool")
    if spec.kind in ("numeric", "integer"):
        if has_na and dtype.startswith(("int", "uint")):
            return values.astype(dtype.capitalize() if not dtype.startswith("uint") else "UInt" + dtype[4:])
        return values.astype(dtype)
    try:
        return values.astype(dtype)
    except (TypeError, ValueError):
        return values.astype(object)

"""Tables of time series -> arrays the time-series GAN trains on, and back.

Two layouts are accepted (the same two a user has on disk):
- long: one row per (series, time), an id column, an optional time column, numeric feature columns and
  optional static columns (per-series attributes, constant within a series);
- wide: one table in time order, a single series (no id column), every column a feature.

Rows must be in increasing time order within each series: a non-monotonic time column is refused rather
than silently sorted, because it usually means the wrong column was named. When the time column is on a
regular grid (numbers or datetimes whose gaps are whole multiples of the smallest step), missing
timestamps become all-missing rows, so a gap in time is a gap in the mask and not a silent jump.

Scaling is one min-max per feature over all observed values (TimeGAN's convention, so the metrics and the
model see the same geometry), mapping the training range to [0, 1]; the generator's output layer is linear
so continuations can leave that range. Windows are cut with numpy's sliding_window_view over all series
concatenated, keeping the start positions that do not cross a series boundary: no per-row Python loop.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np
import pandas as pd

from ganstream.trainers.errors import DataError

STATIC_QUANTILES = 65  # a numeric static attribute is stored as this many quantiles, never as raw values


@dataclass
class SeriesLayout:
    """How a table of series is organised. Stored in model.json so `extend` reads histories the same way."""
    features: list[str]
    id_col: str | None = None
    time_col: str | None = None
    static_cols: list[str] = field(default_factory=list)

    def to_json(self) -> dict:
        return asdict(self)

    @classmethod
    def from_json(cls, d: dict) -> "SeriesLayout":
        return cls(**d)


@dataclass
class SeriesSet:
    """All series of a table, concatenated: `values[starts[i]:starts[i+1]]` is series i (NaN = gap)."""
    ids: np.ndarray            # one original id per series
    values: np.ndarray         # [rows, features] float64, NaN where missing
    starts: np.ndarray         # [n_series + 1] row offsets
    static: pd.DataFrame | None = None  # one row per series (static columns), or None

    @property
    def lengths(self) -> np.ndarray:
        return np.diff(self.starts)

    def series(self, i: int) -> np.ndarray:
        return self.values[self.starts[i]:self.starts[i + 1]]


def infer_layout(table: pd.DataFrame, id_col: str | None = None, time_col: str | None = None,
                 static_cols: list[str] | tuple[str, ...] = ()) -> SeriesLayout:
    """Name the roles of the columns; every column that is not id, time or static is a numeric feature."""
    cols = [str(c) for c in table.columns]
    for flag, name in (("--id-col", id_col), ("--time-col", time_col), *(("--static-col", s) for s in static_cols)):
        if name is not None and name not in cols:
            raise DataError(f"{flag} '{name}' is not a column of the table (columns: {', '.join(cols)})")
    if static_cols and id_col is None:
        raise DataError("--static-col needs --id-col: static attributes are per series")
    roles = {id_col, time_col, *static_cols} - {None}
    features = [c for c in cols if c not in roles]
    if not features:
        raise DataError("the table has no feature columns besides the id/time/static columns")
    return SeriesLayout(features=features, id_col=id_col, time_col=time_col, static_cols=list(static_cols))


def parse_series(table: pd.DataFrame, layout: SeriesLayout, what: str = "table",
                 require_observed: bool = True) -> SeriesSet:
    """Validate `table` against `layout` and split it into series. Raises DataError with a readable message.
    `require_observed`: refuse a feature with no observed value (training data; a short history may lack one)."""
    table = table.rename(columns=str)
    missing = [c for c in [layout.id_col, layout.time_col, *layout.static_cols, *layout.features]
               if c is not None and c not in table.columns]
    if missing:
        raise DataError(f"{what}: missing column(s) {', '.join(missing)} (expected {', '.join(layout.features)})")
    if len(table) == 0:
        raise DataError(f"{what}: no rows")
    values = _numeric_features(table, layout.features, what, require_observed)
    if layout.id_col is not None:
        ids = table[layout.id_col]
        if ids.isna().any():
            raise DataError(f"{what}: id column '{layout.id_col}' has missing values")
        codes, uniques = pd.factorize(ids, sort=False)
        order = np.argsort(codes, kind="stable")  # rows of one series together, each keeping its own order
        codes = codes[order]
        values = values[order]
        table = table.iloc[order]
        starts = np.concatenate([[0], np.flatnonzero(np.diff(codes)) + 1, [len(codes)]])
        id_values = np.asarray(uniques, dtype=object)
    else:
        starts = np.array([0, len(values)])
        id_values = np.array([0], dtype=object)
    if layout.time_col is not None:
        values, starts = _regular_grid(table[layout.time_col], values, starts, id_values, layout.time_col, what)
    static = _static_table(table, layout, what) if layout.static_cols else None
    return SeriesSet(ids=id_values, values=values, starts=starts, static=static)


def _numeric_features(table: pd.DataFrame, features: list[str], what: str, require_observed: bool) -> np.ndarray:
    out = np.empty((len(table), len(features)))
    for j, c in enumerate(features):
        s = table[c]
        if not (pd.api.types.is_numeric_dtype(s.dtype) and not pd.api.types.is_bool_dtype(s.dtype)):
            conv = pd.to_numeric(s, errors="coerce")
            bad = conv.isna() & s.notna()
            if bad.any():
                raise DataError(f"{what}: feature column '{c}' is not numeric (e.g. {s[bad].iloc[0]!r}); time-series "
                                f"features must be numbers (name per-series attributes with --static-col)")
            s = conv
        col = s.to_numpy(dtype=float, na_value=np.nan)
        if np.isinf(col).any():
            raise DataError(f"{what}: feature column '{c}' contains infinite values")
        out[:, j] = col
    empty = [c for j, c in enumerate(features) if np.isnan(out[:, j]).all()]
    if empty and require_observed:
        raise DataError(f"{what}: feature column(s) {', '.join(empty)} have no observed value (all missing)")
    return out


def _time_numbers(t: pd.Series, col: str, what: str) -> np.ndarray:
    if t.isna().any():
        raise DataError(f"{what}: time column '{col}' has missing values")
    if pd.api.types.is_datetime64_any_dtype(t.dtype):
        return t.astype("datetime64[ns]").to_numpy().astype(np.int64).astype(float)
    if pd.api.types.is_numeric_dtype(t.dtype) and not pd.api.types.is_bool_dtype(t.dtype):
        return t.to_numpy(dtype=float)
    try:
        return pd.to_datetime(t, format="mixed").astype("datetime64[ns]").to_numpy().astype(np.int64).astype(float)
    except (ValueError, TypeError):
        raise DataError(f"{what}: time column '{col}' is neither numeric nor dates (e.g. {t.iloc[0]!r})") from None


def _regular_grid(time: pd.Series, values: np.ndarray, starts: np.ndarray, ids: np.ndarray, col: str,
                  what: str) -> tuple[np.ndarray, np.ndarray]:
    """Check time increases within each series; on a regular grid, insert all-missing rows for skipped steps."""
    t = _time_numbers(time, col, what)
    d = np.diff(t)
    inside = np.ones(len(d), dtype=bool)
    inside[starts[1:-1] - 1] = False  # a diff across two series is not a step
    bad = np.flatnonzero(inside & (d <= 0))
    if len(bad):
        r = bad[0] + 1
        s = np.searchsorted(starts, r, side="right") - 1
        raise DataError(f"{what}: time column '{col}' is not increasing within series {ids[s]!r} "
                        f"(row {r - starts[s]} of that series: {time.iloc[r - 1]} then {time.iloc[r]}); "
                        f"sort the rows by series and time")
    steps = d[inside]
    if len(steps) == 0:
        return values, starts
    step = steps.min()
    ratio = steps / step
    gaps = np.rint(ratio)
    if not np.allclose(ratio, gaps, rtol=0, atol=1e-6) or gaps.max() == 1 or gaps.sum() > 10 * len(steps):
        return values, starts  # irregular (or no skipped steps): rows are consecutive steps
    lengths = np.diff(starts)
    series_of_row = np.repeat(np.arange(len(lengths)), lengths)
    offset = np.rint((t - t[starts[:-1]][series_of_row]) / step).astype(np.int64)
    new_lengths = offset[starts[1:] - 1] + 1
    new_starts = np.concatenate([[0], np.cumsum(new_lengths)])
    out = np.full((new_starts[-1], values.shape[1]), np.nan)
    out[new_starts[:-1][series_of_row] + offset] = values
    return out, new_starts


def _static_table(table: pd.DataFrame, layout: SeriesLayout, what: str) -> pd.DataFrame:
    """One row per series; refuse a 'static' column that changes inside a series."""
    cols = layout.static_cols
    sub = table[cols].reset_index(drop=True)
    key = pd.factorize(table[layout.id_col], sort=False)[0]
    nunique = sub.groupby(key, sort=True).nunique(dropna=False)
    varying = [c for c in cols if (nunique[c] > 1).any()]
    if varying:
        raise DataError(f"{what}: static column(s) {', '.join(varying)} change within a series (a static "
                        f"attribute must be constant per series)")
    return sub.groupby(key, sort=True).first().reset_index(drop=True)


def window_starts(starts: np.ndarray, seq_len: int) -> tuple[np.ndarray, np.ndarray]:
    """First row of every window of `seq_len` consecutive rows (stride 1) that stays inside one series, and
    the series index of each window. Vectorized: no loop over series."""
    n = int(starts[-1])
    if n < seq_len:
        return np.empty(0, dtype=np.int64), np.empty(0, dtype=np.int64)
    lengths = np.diff(starts)
    series_of_row = np.repeat(np.arange(len(lengths)), lengths)
    row_end = starts[1:][series_of_row]  # one past the last row of each row's series
    first = np.arange(n - seq_len + 1)
    valid = first + seq_len <= row_end[: n - seq_len + 1]
    return first[valid], series_of_row[first[valid]]


def sliding_windows(values: np.ndarray, starts: np.ndarray, seq_len: int) -> tuple[np.ndarray, np.ndarray]:
    """All windows of `seq_len` consecutive rows, stride 1, that stay inside one series.

    Returns (windows [W, seq_len, F] with NaN for gaps, series index of each window [W]). Vectorized: one
    sliding_window_view over the concatenation, then a boolean selection of the valid start rows."""
    first, owner = window_starts(starts, seq_len)
    if len(values) < seq_len:
        return np.empty((0, seq_len, values.shape[1])), owner
    view = np.lib.stride_tricks.sliding_window_view(values, seq_len, axis=0)  # [n-L+1, F, L]
    return np.ascontiguousarray(view[first].transpose(0, 2, 1)), owner


class WindowBank:
    """The training windows without materialising them: the scaled series (float32, NaN = gap), each
    window's first row and each series' static vector. A batch is gathered on demand (`take`), so holding
    the bank costs the series' size, not seq_len times it (stride-1 windows repeat every row L times), and
    Ray workers can share one copy of the arrays through the object store and each draw from its own shard
    of window indices (`shard`). `take` gives exactly what indexing the materialised windows would."""

    def __init__(self, values: np.ndarray, first: np.ndarray, owner: np.ndarray, static: np.ndarray, seq_len: int):
        self.values, self.first, self.owner, self.static, self.seq_len = values, first, owner, static, seq_len
        self._offsets = np.arange(seq_len)

    @classmethod
    def build(cls, scaled: np.ndarray, starts: np.ndarray, static: np.ndarray, seq_len: int) -> "WindowBank":
        first, owner = window_starts(starts, seq_len)
        return cls(np.asarray(scaled, dtype=np.float32), first, owner, np.asarray(static, dtype=np.float32), seq_len)

    def __len__(self) -> int:
        return len(self.first)

    def shard(self, rank: int, world: int) -> "WindowBank":
        """Windows rank, rank + world, ... (the same arrays, a share of the window indices)."""
        return self.subset(slice(rank, None, world))

    def subset(self, idx) -> "WindowBank":
        """Windows `idx` (an index array or a slice) as a bank over the same arrays."""
        return WindowBank(self.values, self.first[idx], self.owner[idx], self.static, self.seq_len)

    def take(self, idx) -> tuple:
        """Windows `idx` as torch tensors (values with gaps as 0, mask 1 = observed, static)."""
        import torch
        idx = np.asarray(idx)
        w = self.values[self.first[idx][:, None] + self._offsets[None, :]]  # [B, L, F]
        mask = ~np.isnan(w)
        return (torch.from_numpy(np.where(mask, w, np.float32(0.0))), torch.from_numpy(mask.astype(np.float32)),
                torch.from_numpy(np.ascontiguousarray(self.static[self.owner[idx]])))

    def all(self) -> tuple:
        return self.take(np.arange(len(self)))


@dataclass
class FeatureScaler:
    """Per-feature min-max to [0, 1] over observed training values (a constant feature maps to 0)."""
    lo: list[float]
    hi: list[float]

    @classmethod
    def fit(cls, values: np.ndarray) -> "FeatureScaler":
        return cls(np.nanmin(values, axis=0).tolist(), np.nanmax(values, axis=0).tolist())

    def _span(self) -> tuple[np.ndarray, np.ndarray]:
        lo, hi = np.asarray(self.lo), np.asarray(self.hi)
        span = hi - lo
        return lo, np.where(span > 0, span, 1.0)

    def transform(self, x: np.ndarray) -> np.ndarray:
        lo, span = self._span()
        return (x - lo) / span

    def inverse(self, x: np.ndarray) -> np.ndarray:
        lo, span = self._span()
        return x * span + lo

    def to_json(self) -> dict:
        return asdict(self)


class StaticEncoder:
    """Per-series static attributes as a conditioning vector (numeric: min-max; categorical: one-hot), and
    their marginals for sampling new series: category frequencies and numeric quantiles — never the raw
    per-series rows, so a model directory carries no training records. Attributes are drawn independently
    (their mutual correlation is not kept: a documented simplification)."""

    def __init__(self, columns: list[dict]):
        self.columns = columns  # [{"name", "kind": "numeric"|"categorical", ...}]

    @classmethod
    def fit(cls, static: pd.DataFrame) -> "StaticEncoder":
        cols = []
        for c in static.columns:
            s = static[c]
            if pd.api.types.is_numeric_dtype(s.dtype) and not pd.api.types.is_bool_dtype(s.dtype) and s.notna().any():
                v = s.to_numpy(dtype=float, na_value=np.nan)
                v = v[~np.isnan(v)]
                q = np.quantile(v, np.linspace(0, 1, STATIC_QUANTILES))
                cols.append({"name": c, "kind": "numeric", "lo": float(v.min()), "hi": float(v.max()),
                             "quantiles": q.tolist(), "integer": bool(np.all(v == np.round(v)))})
            else:
                text = s.astype(object).where(s.notna(), None).map(lambda x: None if x is None else str(x))
                counts = text.value_counts(dropna=False)
                cats = [None if (isinstance(k, float) and np.isnan(k)) else k for k in counts.index]
                cols.append({"name": c, "kind": "categorical", "categories": cats,
                             "probs": (counts.to_numpy() / counts.sum()).tolist()})
        return cls(cols)

    @property
    def dim(self) -> int:
        return sum(1 if c["kind"] == "numeric" else len(c["categories"]) for c in self.columns)

    def transform(self, static: pd.DataFrame) -> np.ndarray:
        parts = []
        for c in self.columns:
            s = static[c["name"]]
            if c["kind"] == "numeric":
                span = (c["hi"] - c["lo"]) or 1.0
                v = (s.to_numpy(dtype=float, na_value=np.nan) - c["lo"]) / span
                parts.append(np.nan_to_num(v, nan=0.5)[:, None])
            else:
                text = s.astype(object).where(s.notna(), None).map(lambda x: None if x is None else str(x))
                index = {k: i for i, k in enumerate(c["categories"])}
                codes = text.map(lambda x: index.get(x, -1)).to_numpy()
                onehot = np.zeros((len(s), len(c["categories"])))
                rows = np.flatnonzero(codes >= 0)
                onehot[rows, codes[rows]] = 1.0
                parts.append(onehot)
        return np.concatenate(parts, axis=1) if parts else np.zeros((len(static), 0))

    def sample(self, n: int, rng: np.random.Generator) -> pd.DataFrame:
        out = {}
        for c in self.columns:
            if c["kind"] == "numeric":
                q = np.asarray(c["quantiles"])
                v = np.interp(rng.random(n), np.linspace(0, 1, len(q)), q)
                out[c["name"]] = np.round(v).astype(np.int64) if c["integer"] else v
            else:
                idx = rng.choice(len(c["categories"]), size=n, p=np.asarray(c["probs"]))
                out[c["name"]] = np.asarray(c["categories"], dtype=object)[idx]
        return pd.DataFrame(out)

    def to_json(self) -> list[dict]:
        return self.columns

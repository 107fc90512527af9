"""The user's own id and time columns on generated series.

Why: inside the model a series is a run of steps (series_id, step). Users trained on `store_id, date, sales` and
expect `store_id, date, sales` back: the same column names, dates as dates on the same grid (a continuation of a
history starting one step after its last date), ids of the same type. `TimeGrid` keeps what that needs from the
training table: the time column's type (datetimes.detect, or plain numbers), its step (the smallest step between
two rows of a series, the regular grid's step), the earliest series start, and the id column's dtype.
Generated series start at that earliest start; a continuation starts one step after its history's last time.
An irregular time column has no grid: its step is then the median step, and generated times are on that grid.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd

from ganstream.trainers import datetimes
from ganstream.trainers.timeseries.data import SeriesLayout


@dataclass
class TimeGrid:
    id_dtype: str | None  # the id column's dtype (None: no id column)
    time: dict | None  # datetimes.detect of the time column; None: numbers (or no time column)
    time_dtype: str | None
    step: float = 1.0  # one step, in the time's unit (datetimes: its unit; numbers: as given)
    start: float = 0.0  # the earliest series start

    @classmethod
    def learn(cls, table: pd.DataFrame, layout: SeriesLayout) -> "TimeGrid":
        id_dtype = str(table[layout.id_col].dtype) if layout.id_col else None
        if layout.time_col is None:
            return cls(id_dtype, None, None)
        col = table[layout.time_col]
        time = datetimes.detect(col)
        t = datetimes.to_numbers(col, time) if time else col.to_numpy(dtype=np.float64)
        key = pd.factorize(table[layout.id_col])[0] if layout.id_col else np.zeros(len(t), dtype=np.int64)
        order = np.lexsort((t, key))
        t, key = t[order], key[order]
        d = np.diff(t)[np.diff(key) == 0]
        d = d[d > 0]
        ratio = d / d.min() if len(d) else d
        regular = len(d) and np.allclose(ratio, np.rint(ratio), rtol=0, atol=1e-6)
        step = float(d.min() if regular else np.median(d)) if len(d) else 1.0
        return cls(id_dtype, time, str(col.dtype), step, float(np.nanmin(t)))

    def to_json(self) -> dict:
        return asdict(self)

    @classmethod
    def from_json(cls, d: dict) -> "TimeGrid":
        return cls(**d)

    def times(self, numbers: np.ndarray) -> pd.Series:
        """Time values in the column's own type from numbers in its unit."""
        if self.time is not None:
            return datetimes.from_numbers(numbers, self.time, self.time_dtype)
        values = pd.Series(numbers)
        if self.time_dtype and self.time_dtype.startswith(("int", "uint")):
            return values.round().astype(self.time_dtype)
        return values

    def numbers(self, col: pd.Series) -> np.ndarray:
        return datetimes.to_numbers(col, self.time) if self.time is not None else col.to_numpy(dtype=np.float64)

    def ids(self, values, generated: bool) -> pd.Series:
        """Series ids in the id column's type. Generated series (0..n-1) keep integers for an integer id column
        and become text ("synthetic-0", ...) otherwise, so they cannot be mistaken for real ids."""
        values = pd.Series(values)
        if self.id_dtype is None:
            return values
        if generated and not self.id_dtype.startswith(("int", "uint")):
            return "synthetic-" + values.astype(str)
        try:
            return values.astype(self.id_dtype)
        except (TypeError, ValueError):
            return values


def user_columns(frame: pd.DataFrame, layout: SeriesLayout, grid: TimeGrid | None,
                 starts: dict | None = None) -> pd.DataFrame:
    """`frame` (series_id, [draw,] step, features) with the training table's id and time columns instead of
    series_id and step. `starts`: series id -> the number of its first time (a history's first time, for
    `extend`); without it every series starts at the grid's start (generated series)."""
    if grid is None:
        return frame
    out = frame.copy()
    if layout.time_col is not None:
        first = (out["series_id"].map(starts).to_numpy(dtype=np.float64) if starts is not None
                 else np.full(len(out), grid.start))
        out["step"] = grid.times(first + out["step"].to_numpy(dtype=np.float64) * grid.step).to_numpy()
        out = out.rename(columns={"step": layout.time_col})
    if layout.id_col is not None:
        out["series_id"] = grid.ids(out["series_id"], generated=starts is None).to_numpy()
        out = out.rename(columns={"series_id": layout.id_col})
    return out

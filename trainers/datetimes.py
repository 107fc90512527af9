"""Date and datetime columns as numbers, and back in the input's own type and format.

Why: learned as a category, a date column can only ever be sampled as a date that occurred in training (a copy,
and a privacy leak for timestamps), and its hundreds of levels invent associations with other columns. As a
number (a count of the column's own unit since 1970: days for dates, seconds for second-resolution stamps) it
goes through the same quantile or mixture encoding as any numeric column, so samples fall between the training
values and keep their order and spread.

What is recognised (`detect`): pandas datetime columns (Parquet timestamps, with or without a time zone), columns
of `datetime.date` objects (Parquet `date32`), and text columns in which every value is ISO 8601
(`2026-12-07`, `2026-12-07 13:45:00`, `2026-12-07T13:45:00.250+01:00`, `...Z`). What `detect` returns is a small
JSON-able dict stored in the column's spec: the unit, the time zone and, for text, the format to write back.
The conversions are whole-column (vectorised), microsecond-based so dates far from 1970 do not overflow.
"""

from __future__ import annotations

import datetime as dt
import re

import numpy as np
import pandas as pd

_ISO = re.compile(r"^\d{4}-\d{2}-\d{2}(?:(?P<sep>[T ])\d{2}:\d{2}(?P<sec>:\d{2}(?:\.(?P<frac>\d{1,9}))?)?)?"
                  r"(?P<tz>Z|[+-]\d{2}:?\d{2})?$")
_US = {"D": 86_400_000_000, "s": 1_000_000, "ms": 1_000, "us": 1}  # microseconds per unit
_FRACTION = {"ms": 3, "us": 6}


def detect(s: pd.Series) -> dict | None:
    """The column's time description (unit, tz, text format), or None when it is not a date/datetime column."""
    observed = s.dropna()
    if observed.empty:
        return None
    if isinstance(s.dtype, pd.DatetimeTZDtype) or pd.api.types.is_datetime64_dtype(s.dtype):
        stamps, text, tz = s, None, (str(s.dt.tz) if s.dt.tz is not None else None)
        source = "datetime"
    elif s.dtype == object and observed.map(type).isin([dt.date, pd.Timestamp, dt.datetime]).all():
        if observed.map(type).eq(dt.date).all():
            source, text, tz = "date", None, None
            stamps = pd.to_datetime(s)
        else:
            return None  # datetime objects mixed in an object column: rare; left to the other rules
    elif pd.api.types.is_string_dtype(s.dtype) or s.dtype == object:
        text = _text_format(observed)
        if text is None:
            return None
        source, tz = "text", ("UTC" if text["tz"] else None)
        stamps = parse_text(s, text)
        if stamps is None:
            return None
    else:
        return None
    return {"source": source, "unit": _unit(stamps, tz), "tz": tz, "text": text}


def _text_format(observed: pd.Series) -> dict | None:
    """The ISO layout of a text column, when every value is ISO 8601 (checked on all values, vectorised)."""
    values = observed.astype(str)
    if not values.iloc[:100].str.fullmatch(_ISO.pattern).all():  # most text columns fail on their first values
        return None
    if not values.str.fullmatch(_ISO.pattern).all():
        return None
    parts = values.str.extract(_ISO)
    frac = parts["frac"].dropna()
    zones = parts["tz"].dropna()
    if 0 < len(zones) < len(values):
        return None  # offsets on some values only: the naive ones have no instant to compare with
    return {"time": bool(parts["sep"].notna().any()), "sep": parts["sep"].dropna().iloc[0] if parts["sep"].notna().any() else "T",
            "seconds": bool(parts["sec"].notna().any()), "fraction": int(frac.str.len().max()) if len(frac) else 0,
            "tz": (zones.iloc[0] if len(zones) else None)}


def parse_text(s: pd.Series, text: dict) -> pd.Series | None:
    try:
        return pd.to_datetime(s, format="ISO8601", utc=bool(text["tz"]))
    except (ValueError, TypeError, OverflowError):
        return None


def _micros(stamps: pd.Series, tz: str | None) -> np.ndarray:
    """Wall-clock microseconds since 1970 (in the column's own zone), NaN where missing."""
    if getattr(stamps.dt, "tz", None) is not None:
        stamps = stamps.dt.tz_convert(tz).dt.tz_localize(None)
    missing = stamps.isna().to_numpy()
    us = stamps.to_numpy(dtype="datetime64[us]").astype(np.int64).astype(np.float64)
    us[missing] = np.nan
    return us


def _unit(stamps: pd.Series, tz: str | None) -> str:
    """The coarsest unit every value is a whole number of: a date column is in days, a clock in seconds."""
    us = _micros(stamps, tz)
    us = us[~np.isnan(us)].astype(np.int64)
    for unit in ("D", "s", "ms"):
        if np.all(us % _US[unit] == 0):
            return unit
    return "us"


def to_numbers(s: pd.Series, time: dict) -> np.ndarray:
    """The column as float64 counts of its unit since 1970; NaN for missing (and for unparseable text)."""
    if time["source"] == "text":
        stamps = parse_text(s.astype(object).where(s.notna(), None), time["text"])
        if stamps is None:  # some value is not ISO 8601: parse value by value, unparseable -> missing
            stamps = pd.to_datetime(s, format="ISO8601", utc=bool(time["text"]["tz"]), errors="coerce")
    elif time["source"] == "date":
        stamps = pd.to_datetime(s)
    else:
        stamps = s if pd.api.types.is_datetime64_any_dtype(s.dtype) else pd.to_datetime(s, errors="coerce")
    return _micros(stamps, time["tz"]) / _US[time["unit"]]


def from_numbers(x: np.ndarray, time: dict, dtype: str) -> pd.Series:
    """Counts of the unit back to the column's own type: text in the input's ISO layout, dates as
    `datetime.date`, timestamps in the training dtype (time zone included)."""
    x = np.asarray(x, dtype=np.float64)
    missing = np.isnan(x)
    us = np.where(missing, 0, np.round(x)).astype(np.int64) * _US[time["unit"]]
    stamps = pd.Series(us.astype("datetime64[us]"))
    stamps[missing] = pd.NaT
    tz = time["tz"]
    if tz is not None:
        stamps = stamps.dt.tz_localize(tz, ambiguous="NaT", nonexistent="shift_forward")
    if time["source"] == "text":
        return _as_text(stamps, time["text"])
    if time["source"] == "date":
        return pd.Series(stamps.dt.date.to_numpy(dtype=object)).where(~missing, None)
    try:
        return stamps.astype(dtype)
    except (TypeError, ValueError):
        return stamps


def _as_text(stamps: pd.Series, text: dict) -> pd.Series:
    fmt = "%Y-%m-%d"
    if text["time"]:
        fmt += text["sep"] + "%H:%M" + (":%S" if text["seconds"] or text["fraction"] else "")
    out = stamps.dt.strftime(fmt)
    if text["fraction"]:
        out = out + "." + stamps.dt.strftime("%f").str[:text["fraction"]]
    if text["tz"]:
        out = out + ("Z" if text["tz"] == "Z" else "+00:00")
    return out.astype("str")

"""Checks on a table's column names and storage types, made where a table enters (a file's header or footer, a
DataFrame handed to the library), before any work. Why here and not later: pandas renames a CSV's duplicate
names (`age`, `age.1`) and pyarrow keeps them, so a duplicate would otherwise become a second, silently renamed
column of the model; and a list or struct column reaches Ray Data or the encoder as a deep traceback."""

from __future__ import annotations

import csv
from collections import Counter
from pathlib import Path
from typing import Iterable

import pyarrow as pa

from ganstream.trainers.errors import DataError

_SHOWN = 5  # names listed in a message


def _listed(names: list[str]) -> str:
    shown = ", ".join(f"'{n}'" for n in names[:_SHOWN])
    return shown + (f" and {len(names) - _SHOWN} more" if len(names) > _SHOWN else "")


def check_unique_names(names: Iterable, where: str) -> None:
    """DataError naming every column name that occurs more than once."""
    counts = Counter(map(str, names))
    repeated = [n for n, k in counts.items() if k > 1]
    if repeated:
        raise DataError(f"{where}: duplicate column name(s) {_listed(repeated)}: every column needs its own name")


def check_flat_types(types: dict[str, pa.DataType], where: str) -> None:
    """DataError naming the columns whose Arrow type is nested (list, struct, map, union): a GAN row is flat."""
    nested = [n for n, t in types.items() if pa.types.is_nested(t)]
    if nested:
        kinds = sorted({str(types[n]).split("<")[0] for n in nested})
        raise DataError(f"{where}: column(s) {_listed(nested)} hold nested values ({', '.join(kinds)}); ganstream "
                        f"reads flat columns (numbers, text, categories, booleans, dates): flatten or drop them")


def check_parquet_schema(schema: pa.Schema, where: str) -> None:
    check_unique_names(schema.names, where)
    check_flat_types({f.name: f.type for f in schema}, where)


def check_csv_header(path: Path) -> None:
    """The header row of a CSV file, as written (pandas would already have renamed duplicates)."""
    with open(path, newline="", encoding="utf-8", errors="replace") as f:
        header = next(csv.reader(f), [])
    check_unique_names(header, str(path))

"""Which columns a generator must not learn: identifiers and free text.

Why: a GAN learns a text column as a category, and a category can only be sampled as one of its training
values. For a column that is (nearly) unique per row, such as a customer id, an e-mail address or a note, every
sampled value is then a copied training value: a privacy leak that carries no distribution worth learning, and
hundreds of one-row categories that swamp the columns that matter. Such columns are dropped before the fit with
a note naming them; `categorical=[...]` (`train --categorical COL`) keeps one as a category when the user knows
better.

The rules, applied to the observed (non-missing) values of a column, after dates were recognised (so an ISO
date column is not mistaken for an identifier):
- text where some value is longer than LONG_TEXT characters, or the median value is at least FREE_TEXT
  characters: free text;
- text with at least MIN_ROWS values of which at least NEARLY_UNIQUE are distinct: an identifier;
- integers with at least MIN_ROWS values, all distinct, that count rows (their range spans less than twice
  their number) or whose name says id/uuid/key: an identifier. Other unique integers (an amount in cents, a
  measurement) are quantities and stay numeric.
"""

from __future__ import annotations

import re

import pandas as pd

LONG_TEXT = 1_000
FREE_TEXT = 50
NEARLY_UNIQUE = 0.9
MIN_ROWS = 20
_ID_NAME = re.compile(r"(?:^|[_\-\s.])(?:id|uuid|guid|key)$|^(?:id|uuid|guid)(?:$|[_\-\s.])|[a-z](?:Id|ID|Uuid|UUID|Key)$",
                      re.IGNORECASE)


def is_text(s: pd.Series) -> bool:
    return (pd.api.types.is_string_dtype(s.dtype) or s.dtype == object) and not pd.api.types.is_bool_dtype(s.dtype)


def unlearnable_reason(name: str, s: pd.Series) -> str | None:
    """Why column `name` (values `s`) should not be learned, or None when it should."""
    observed = s.dropna()
    n = len(observed)
    if n == 0:
        return None
    if is_text(s):
        if observed.map(type).eq(bool).all():
            return None
        lengths = observed.astype(str).str.len()
        if lengths.max() > LONG_TEXT:
            return f"free text (a value of {int(lengths.max()):,} characters)"
        if lengths.median() >= FREE_TEXT:
            return f"free text (median length {int(lengths.median())} characters)"
        distinct = observed.nunique()
        if n >= MIN_ROWS and distinct >= NEARLY_UNIQUE * n:
            return f"identifier ({distinct:,} distinct values in {n:,} rows)"
        return None
    if pd.api.types.is_numeric_dtype(s.dtype) and not pd.api.types.is_bool_dtype(s.dtype) and n >= MIN_ROWS:
        values = observed.to_numpy(dtype="float64")
        if (values == values.round()).all() and observed.nunique() == n:
            counts_rows = int(observed.max()) - int(observed.min()) + 1 < 2 * n
            if counts_rows or _ID_NAME.search(str(name)):
                return f"identifier ({n:,} distinct integers in {n:,} rows)"
    return None

"""Where sampled rows have holes: the training table's hole patterns, placed where the generator expects them.

Why: the generator learns each column's missing indicator like any other output, and its indicator rates drift
with the fit (a held-out table with 10% holes per column came out with up to 18% in a column), and which holes
go together is only as good as the rest of the joint. For users who keep holes (`sample --missing keep`, the
default), the rate of holes in each column and which holes occur together are what matters first, and both
can be exact: the training rows' joint hole patterns (which columns are missing together) and their frequencies
are stored with the model, and every sampled batch gets those patterns in those proportions (rounded to whole
rows). Which row gets which pattern still comes from the generator: a row gets a pattern in proportion to how
likely the generator's own indicators make it, so holes stay where the values say they belong (a hole in
`income` where the generator puts it, not at random).

Only the pattern's frequencies are stored, never a row; the MAX_PATTERNS most frequent patterns are kept (the
rest, rare combinations, are left out and the kept frequencies renormalised).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

MAX_PATTERNS = 1024


@dataclass
class HolePatterns:
    columns: list[str]
    patterns: np.ndarray  # patterns x columns, True where the column is missing
    freqs: np.ndarray  # share of each pattern among the training rows (kept patterns only, renormalised)

    @classmethod
    def learn(cls, table: pd.DataFrame, columns: list[str], max_patterns: int = MAX_PATTERNS) -> "HolePatterns | None":
        """The patterns of `columns` (those with holes) in `table`; None when no column has holes."""
        if not columns:
            return None
        mask = table[columns].isna().to_numpy()
        patterns, counts = np.unique(mask, axis=0, return_counts=True)
        keep = np.lexsort((np.arange(len(counts)), -counts))[:max_patterns]  # most frequent first, ties by pattern
        kept = counts[keep].astype(np.float64)
        return cls(list(columns), patterns[keep], kept / kept.sum())

    def to_json(self) -> dict:
        return {"columns": self.columns, "patterns": self.patterns.astype(int).tolist(), "freqs": self.freqs.tolist()}

    @classmethod
    def from_json(cls, d: dict) -> "HolePatterns":
        return cls(list(d["columns"]), np.asarray(d["patterns"], dtype=bool).reshape(-1, len(d["columns"])),
                   np.asarray(d["freqs"], dtype=np.float64))

    def quotas(self, m: int, rng: np.random.Generator) -> np.ndarray:
        """Rows per pattern in a batch of m: floor(m x freq), the remainder drawn by the fractions."""
        exact = m * self.freqs
        base = np.floor(exact).astype(np.int64)
        left = int(m - base.sum())
        if left:
            frac = exact - base
            extra = rng.choice(len(base), size=left, replace=False, p=frac / frac.sum())
            base[extra] += 1
        return base

    def assign(self, p_missing: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """A (rows x columns) hole mask with the patterns' frequencies, each row's pattern chosen by its
        posterior under the generator's indicator probabilities `p_missing` (rows x columns). Rare patterns pick
        their rows first; the commonest takes the rest. A few passes over patterns, never over rows."""
        m = len(p_missing)
        p = np.clip(p_missing, 1e-6, 1.0 - 1e-6)
        log_miss, log_obs = np.log(p).astype(np.float32), np.log1p(-p).astype(np.float32)
        loglik = log_obs.sum(axis=1, keepdims=True) + (log_miss - log_obs) @ self.patterns.T.astype(np.float32)
        post = loglik + np.log(self.freqs).astype(np.float32)
        post -= post.max(axis=1, keepdims=True)
        post -= np.log(np.exp(post).sum(axis=1, keepdims=True))  # log posterior of each pattern, per row
        quotas = self.quotas(m, rng)
        post = np.ascontiguousarray(post.T)  # one pattern's scores contiguous: read once per pattern
        chosen = np.full(m, -1, dtype=np.int64)
        free = np.ones(m, dtype=bool)
        for k in np.argsort(quotas, kind="stable"):
            q = int(quotas[k])
            if q == 0:
                continue
            score = np.where(free, post[k], -np.inf)
            take = np.argpartition(-score, q - 1)[:q] if q < m else np.arange(m)
            chosen[take], free[take] = k, False
        return self.patterns[chosen]


def indicator_slots(encoder, columns: list[str]) -> list[tuple[int, int, int]]:
    """Per column with holes: (span start, span stop, index of its "missing" slot) in the encoded row. A numeric
    column has a 2-wide indicator span (observed, missing); a category span has its missing slot last."""
    slots = []
    for name in columns:
        spans = {s.role: s for s in encoder.column_spans(name)}
        span = spans.get("missing") or spans["category"]
        slots.append((span.start, span.stop, span.stop - 1))
    return slots


def impose(block: np.ndarray, raw: np.ndarray, holes: HolePatterns, slots: list[tuple[int, int, int]],
           rng: np.random.Generator) -> np.ndarray:
    """Rewrite the indicators of a discretised batch `block` to the patterns `holes.assign` gives, from the
    generator's logits `raw`. A category cell that becomes observed after the generator drew "missing" draws
    its value from the generator's own logits over the real categories (Gumbel-max, seeded)."""
    p = np.empty((len(block), len(slots)))
    for j, (start, stop, miss) in enumerate(slots):
        logits = raw[:, start:stop].astype(np.float64)
        logits -= logits.max(axis=1, keepdims=True)
        e = np.exp(logits)
        p[:, j] = e[:, miss - start] / e.sum(axis=1)
    mask = holes.assign(p, rng)
    for j, (start, stop, miss) in enumerate(slots):
        hole = mask[:, j]
        if stop - start == 2:  # a numeric column's (observed, missing), or a one-category column: same thing
            block[:, start] = ~hole
            block[:, miss] = hole
            continue
        redraw = ~hole & (block[:, miss] == 1.0)
        block[hole, start:stop] = 0.0
        block[hole, miss] = 1.0
        if redraw.any():
            g = raw[redraw, start:miss] - np.log(-np.log(rng.uniform(1e-10, 1.0, (int(redraw.sum()), miss - start))))
            block[redraw, start:stop] = 0.0
            block[np.flatnonzero(redraw), start + g.argmax(axis=1)] = 1.0
    return block


def hot_deck(table: pd.DataFrame, rng: np.random.Generator) -> pd.DataFrame:
    """Fill each hole with a random observed value of the same column (keeps marginals, ignores the row)."""
    out = table.copy()
    for col in table.columns[table.isna().any()]:
        s = table[col]
        miss = s.isna().to_numpy()
        donors = s[~miss].to_numpy()
        filled = s.to_numpy(copy=True).astype(object) if s.dtype == object else s.to_numpy(copy=True)
        filled[miss] = donors[rng.integers(0, len(donors), size=int(miss.sum()))]
        out[col] = pd.Series(filled, index=s.index).astype(s.dtype)
    return out

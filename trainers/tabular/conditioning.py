"""Conditional vectors and training-by-sampling (the mode-collapse cure for tables, after CTGAN).

Each training step picks a discrete span (a categorical column, or a missing-value indicator) uniformly,
a category of it with probability proportional to log(1 + count), and a real row having that category.
Rare categories are therefore seen far more often than their frequency, and the generator is taught
(through a cross-entropy term) to honour the condition. Everything is array arithmetic: choosing 10k
conditions and rows costs the same handful of numpy calls as choosing one.
"""

from __future__ import annotations

import numpy as np

from ganstream.trainers.encoding import Span
from ganstream.trainers.errors import ConfigError

MODE_ROLES = ("mode", "joint")  # a column's modes, and the joint modes of a block of columns


class ConditionSampler:
    def __init__(self, spans: list[Span], probs: list[np.ndarray], codes: np.ndarray | None = None):
        """`spans`: the encoder's softmax spans; `probs[j]`: category frequencies of span j;
        `codes` (n_rows, n_spans): category index of every training row, needed only for training."""
        self.spans = [s for s in spans if s.kind == "softmax"]
        self.widths = np.array([s.width for s in self.spans], dtype=np.int64)
        self.offsets = np.concatenate([[0], np.cumsum(self.widths)[:-1]]).astype(np.int64)
        self.dim = int(self.widths.sum())
        width_max = int(self.widths.max()) if self.spans else 0
        self.freq = np.zeros((len(self.spans), width_max))
        for j, p in enumerate(probs):
            self.freq[j, : len(p)] = p
        logf = np.log1p(self.freq * (len(codes) if codes is not None else 1e6))
        self.log_freq = logf / logf.sum(axis=1, keepdims=True)
        self._pools = None
        self._rows = len(codes) if codes is not None else 0  # an all-numeric table has no spans: rows drawn uniformly
        if codes is not None and self.spans:
            self._build_pools(codes)

    @staticmethod
    def width(spans: list[Span]) -> int:
        """Width of the condition vector built from `spans` (its softmax spans, one-hot)."""
        return int(sum(s.width for s in spans if s.kind == "softmax"))

    @classmethod
    def from_data(cls, X: np.ndarray, spans: list[Span]) -> "ConditionSampler":
        soft = [s for s in spans if s.kind == "softmax"]
        codes = np.stack([X[:, s.start:s.stop].argmax(axis=1) for s in soft], axis=1) if soft else np.zeros((len(X), 0), np.int64)
        probs = [np.bincount(codes[:, j], minlength=s.width) / len(X) for j, s in enumerate(soft)]
        return cls(spans, probs, codes)

    def _build_pools(self, codes: np.ndarray) -> None:
        """Row indices grouped by (span, category): pool of global category g is
        order[start[g] : start[g] + count[g]]."""
        starts, counts, orders = [], [], []
        base = 0
        for j in range(len(self.spans)):
            order = np.argsort(codes[:, j], kind="stable")
            cnt = np.bincount(codes[:, j], minlength=self.widths[j])
            starts.append(base + np.concatenate([[0], np.cumsum(cnt)[:-1]]))
            counts.append(cnt)
            orders.append(order)
            base += len(order)
        self._pools = (np.concatenate(orders), np.concatenate(starts), np.concatenate(counts))

    def _draw(self, probs: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
        span = rng.integers(0, len(self.spans), size=n)
        cum = np.cumsum(probs[span], axis=1)
        cat = (rng.random(n)[:, None] * cum[:, -1:] > cum).sum(axis=1)
        cat = np.minimum(cat, self.widths[span] - 1)
        return span, self.offsets[span] + cat

    def one_hot(self, g: np.ndarray) -> np.ndarray:
        cond = np.zeros((len(g), self.dim), dtype=np.float32)
        cond[np.arange(len(g)), g] = 1.0
        return cond

    def sample_train(self, n: int, rng: np.random.Generator):
        """Conditions by log-frequency, plus one real row matching each. Returns (cond, span, g, rows)."""
        if not self.spans:  # nothing to condition on: empty conditions, uniformly drawn rows
            empty = np.zeros(0, dtype=np.int64)
            return np.zeros((n, 0), dtype=np.float32), empty, empty, rng.integers(0, self._rows, size=n)
        span, g = self._draw(self.log_freq, n, rng)
        order, start, count = self._pools
        rows = order[start[g] + (rng.random(n) * count[g]).astype(np.int64)]
        return self.one_hot(g), span, g, rows

    def sample_original(self, n: int, rng: np.random.Generator) -> np.ndarray:
        """Conditions by true frequency, for unconditional generation."""
        if not self.spans:
            return np.zeros((n, 0), dtype=np.float32)
        return self.one_hot(self._draw(self.freq, n, rng)[1])

    def pin(self, encoded: np.ndarray, cond: np.ndarray) -> np.ndarray:
        """Write each row's condition into its span of a discretized generator output, in place: the drawn
        category replaces whatever the generator emitted there. Sampling with conditions drawn by true
        frequency then gets each conditioned column's marginal exactly, however well the generator learned
        to honour the condition (one assignment per span: loops over columns, never rows)."""
        if not self.spans:
            return encoded
        g = cond.argmax(axis=1)
        span = np.searchsorted(self.offsets, g, side="right") - 1
        for j, s in enumerate(self.spans):
            rows = np.flatnonzero(span == j)
            encoded[rows, s.start:s.stop] = 0.0
            encoded[rows, s.start + g[rows] - self.offsets[j]] = 1.0
        return encoded

    def fixed(self, span_index: int, category: int, n: int) -> np.ndarray:
        return self.one_hot(np.full(n, self.offsets[span_index] + category, dtype=np.int64))

    def span_index(self, column: str, role: str = "category") -> int:
        for j, s in enumerate(self.spans):
            if s.column == column and s.role == role:
                return j
        raise KeyError(column)


def resolve_condition(encoder, sampler, condition: dict) -> tuple[int, int, str]:
    """Map {column: value} to (span index, category index, column); values given as text (from the CLI)
    match a category by its text, also ignoring surrounding whitespace when that is unambiguous."""
    if len(condition) != 1:
        raise ConfigError(f"give exactly one condition column (got {len(condition)})")
    (col, value), = condition.items()
    schema = encoder.schema
    if col not in schema.names:
        raise ConfigError(f"unknown condition column '{col}' (columns: {', '.join(schema.names)})")
    spec = schema[col]
    if not encoder.as_category(spec):
        raise ConfigError(f"condition column '{col}' is {spec.kind} with many levels; conditions need a "
                          f"categorical, boolean or few-level integer column")
    cats = spec.categories
    idx = [i for i, c in enumerate(cats) if c == value or str(c) == str(value)]
    if not idx:
        idx = [i for i, c in enumerate(cats) if str(c).strip().lower() == str(value).strip().lower()]
    if len(idx) != 1:
        shown = ", ".join(repr(str(c).strip()) for c in cats[:10]) + (" ..." if len(cats) > 10 else "")
        raise ConfigError(f"value {value!r} is not a known category of '{col}' (known: {shown})")
    return sampler.span_index(col), idx[0], col

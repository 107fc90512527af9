"""Detection AUC: a classifier two-sample test of joint fidelity. Gradient boosting tries to tell real rows (0)
from synthetic rows (1); its cross-validated ROC AUC is the score (0.5 = indistinguishable, 1.0 = trivially
separable). It sees every column at once, so it catches wrong combinations that per-column checks miss.

Why gradient boosting with native categorical splits and 3 folds: it runs in every tracked fit, every gate and
every `evaluate`, so its cost is paid on every use of the product. One-hot columns (107 on Adult) and 5 folds
gave the same AUC within 0.001 on Adult at four times the cost (3,000 rows: 5.5 s against 1.2-1.7 s;
benchmarks/RESULTS.md, "First fits and suite time"). Numeric holes stay NaN (the trees route them), a missing
category is a category of its own.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.model_selection import StratifiedKFold, cross_val_score

from ganstream.augment.columns import as_float, as_labels, is_numeric, require_columns, stable_key
from ganstream.trainers.errors import DataError

FOLDS = 3
MAX_CATEGORIES = 250  # native categorical splits take codes below max_bins (255): the rarest share one code


def _codes(real: np.ndarray, synthetic: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Category codes shared by both tables, most frequent real category first; categories past
    MAX_CATEGORIES, and synthetic ones the real rows never had, share the last code."""
    counts = pd.Series(real).value_counts(sort=False)
    order = sorted(zip(counts.index, counts.to_numpy()), key=lambda kv: (-kv[1], stable_key(kv[0])))
    index = pd.Index([v for v, _ in order][:MAX_CATEGORIES], dtype=object)

    def encode(labels: np.ndarray) -> np.ndarray:
        codes = index.get_indexer(labels)
        return np.where(codes >= 0, codes, len(index)).astype(float)

    return encode(real), encode(synthetic)


def detection_features(real: pd.DataFrame, synthetic: pd.DataFrame) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(real matrix, synthetic matrix, categorical-column mask): numeric columns as floats with NaN holes,
    discrete columns (kinds from `real`) as shared integer codes, missing as its own code."""
    real_cols, syn_cols, categorical = [], [], []
    for col in real.columns:
        if is_numeric(real[col]):
            real_cols.append(as_float(real[col]))
            syn_cols.append(as_float(synthetic[col]))
            categorical.append(False)
        else:
            labels = as_labels(real[col])
            r, s = _codes(labels, as_labels(synthetic[col]))
            real_cols.append(r)
            syn_cols.append(s)
            categorical.append(True)
    width = len(real_cols)
    stack = lambda cols, n: np.column_stack(cols) if cols else np.zeros((n, width))  # noqa: E731
    return stack(real_cols, len(real)), stack(syn_cols, len(synthetic)), np.array(categorical, dtype=bool)


def detection_auc(real: pd.DataFrame, synthetic: pd.DataFrame, seed: int = 0, max_rows: int = 10000) -> float:
    """Mean 3-fold ROC AUC of gradient boosting separating `real` (0) from `synthetic` (1), both subsampled
    (seeded) to the same size, at most `max_rows` each. 0.5 = indistinguishable, 1.0 = trivially separable."""
    synthetic = require_columns(synthetic, real.columns, "synthetic table")
    n = min(len(real), len(synthetic), max_rows)
    if n < 5:
        raise DataError(f"detection needs at least 5 rows in each table, got {n}")
    rng = np.random.default_rng(seed)
    real_s, syn_s = sample_rows(real, n, rng), sample_rows(synthetic, n, rng)
    x_real, x_syn, categorical = detection_features(real_s, syn_s)
    x = np.vstack([x_real, x_syn])
    y = np.r_[np.zeros(n, dtype=int), np.ones(n, dtype=int)]
    s = seed_int(seed)
    model = HistGradientBoostingClassifier(random_state=s, categorical_features=categorical if categorical.any()
                                           else None)
    folds = StratifiedKFold(n_splits=FOLDS, shuffle=True, random_state=s)
    return float(np.mean(cross_val_score(model, x, y, cv=folds, scoring="roc_auc", n_jobs=1)))


def sample_rows(df: pd.DataFrame, n: int, rng: np.random.Generator) -> pd.DataFrame:
    """`n` rows drawn without replacement, in their original order (all of `df` when it has no more)."""
    if n >= len(df):
        return df
    return df.iloc[np.sort(rng.choice(len(df), size=n, replace=False))]


def seed_int(seed: int) -> int:
    """A seed as scikit-learn's `random_state` takes it."""
    return int(seed) % (2**32)


__all__ = ["detection_auc", "detection_features", "sample_rows", "seed_int"]

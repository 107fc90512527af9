"""Coverage diagnostics: does the generator produce *all* of the data, or only its common part?

Mode collapse hurts augmentation most where users need it: rare classes and rare regimes. Marginal
distances and detection AUC average over the table and barely move when a few rare categories or one
cluster of the numeric space go missing, so coverage is measured directly:

* categorical columns: the share of real categories that appear in the samples, over the categories a
  faithful generator is *expected* to produce (real share x synthetic rows >= `min_expected`, default 10:
  a faithful generator then misses one with probability < e^-10), and the frequency ratio of the rarest
  ones (synthetic mass / real mass of the rarest 10% of those categories; 1 = right, 0 = dropped);
* numeric subspace: k-means on the real rows (standardized numeric columns, k-means++ start, vectorized
  Lloyd iterations), then every real and synthetic row goes to its nearest centre. Reported: the fraction
  of expected clusters (same rule) that receive synthetic rows, and KL divergences between the two
  cluster-assignment histograms with additive smoothing of 0.5 count per cluster (Jeffreys), so both are
  finite: reverse KL(synthetic || real) punishes mass where the data has little (mode seeking fails
  this one softly), KL(real || synthetic) punishes dropped clusters (what collapse does).

All of it is a handful of numpy calls per column; k-means loops over iterations and centres, never rows.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ganstream.augment.columns import as_labels, is_numeric, require_columns

MIN_EXPECTED = 10  # a category / cluster is "expected" when real share x synthetic rows >= this
RARE_FRACTION = 0.1  # "the rarest ones": the rarest 10% of the expected categories (at least one)
SMOOTHING = 0.5  # counts added to every cluster before the KL divergences
CLUSTERS = 20
MAX_FIT_ROWS = 10_000  # real rows used to fit k-means (all rows are assigned)


# ----------------------------------------------------------------------------------- categorical
def category_coverage(real: pd.Series, synthetic: pd.Series, min_expected: float = MIN_EXPECTED) -> dict:
    """Coverage of one discrete column (missing values count as one more category)."""
    r = pd.Series(as_labels(real)).value_counts()
    s = pd.Series(as_labels(synthetic)).value_counts().reindex(r.index, fill_value=0)
    n_syn = max(len(synthetic), 1)
    real_share = (r / r.sum()).to_numpy()
    syn_count = s.to_numpy()
    expected = real_share * n_syn >= min_expected
    out = {"categories": int(len(r)), "covered": int((syn_count > 0).sum()),
           "expected": int(expected.sum()), "expected_covered": int((syn_count[expected] > 0).sum())}
    out["coverage"] = out["covered"] / out["categories"] if out["categories"] else None
    out["expected_coverage"] = out["expected_covered"] / out["expected"] if out["expected"] else None
    if expected.sum() >= 2:
        idx = np.flatnonzero(expected)
        rare = idx[np.argsort(real_share[idx], kind="stable")[:max(1, int(np.ceil(RARE_FRACTION * idx.size)))]]
        out["rare_categories"] = [str(v) for v in r.index[rare]][:20]
        out["rare_ratio"] = float((syn_count[rare].sum() / n_syn) / real_share[rare].sum())
        fold = np.maximum(np.maximum(syn_count[idx], SMOOTHING) / n_syn / real_share[idx],
                          real_share[idx] * n_syn / np.maximum(syn_count[idx], SMOOTHING))
        out["worst_fold"] = float(fold.max())
        out["worst_fold_category"] = str(r.index[idx[fold.argmax()]])
    else:  # a constant column has no "rarest ones"
        out.update(rare_categories=[], rare_ratio=None, worst_fold=None, worst_fold_category=None)
    return out


# --------------------------------------------------------------------------------------- k-means
def kmeans(x: np.ndarray, k: int, seed: int = 0, iterations: int = 100) -> np.ndarray:
    """k-means++ start and Lloyd iterations; returns (k', d) centres, k' <= k distinct points."""
    rng = np.random.default_rng(seed)
    k = int(min(k, len(np.unique(x, axis=0))))
    centres = [x[rng.integers(len(x))]]
    d2 = ((x - centres[0]) ** 2).sum(axis=1)
    for _ in range(1, k):
        total = d2.sum()
        i = rng.choice(len(x), p=d2 / total) if total > 0 else rng.integers(len(x))
        centres.append(x[i])
        d2 = np.minimum(d2, ((x - x[i]) ** 2).sum(axis=1))
    c = np.array(centres)
    assign = None
    for _ in range(iterations):
        new = nearest(x, c)
        if assign is not None and np.array_equal(new, assign):
            break
        assign = new
        counts = np.bincount(assign, minlength=len(c))
        sums = np.zeros_like(c)
        np.add.at(sums, assign, x)
        empty = counts == 0
        c = np.where(empty[:, None], c, sums / np.maximum(counts, 1)[:, None])
        if empty.any():  # re-seed an empty cluster at the point farthest from its centre
            far = ((x - c[assign]) ** 2).sum(axis=1).argsort()[::-1][: int(empty.sum())]
            c[empty] = x[far]
    return c


def nearest(x: np.ndarray, centres: np.ndarray, chunk: int = 65536) -> np.ndarray:
    """Index of the nearest centre for every row (squared distances via one matrix product per chunk)."""
    cc = (centres ** 2).sum(axis=1)
    out = np.empty(len(x), dtype=np.int64)
    for start in range(0, len(x), chunk):
        block = x[start:start + chunk]
        out[start:start + chunk] = (cc[None, :] - 2.0 * block @ centres.T).argmin(axis=1)
    return out


def _kl(p: np.ndarray, q: np.ndarray) -> float:
    return float(np.sum(p * np.log(p / q)))


def mode_coverage(real: pd.DataFrame, synthetic: pd.DataFrame, clusters: int = CLUSTERS, seed: int = 0,
                  min_expected: float = MIN_EXPECTED) -> dict | None:
    """Cluster coverage of the numeric columns taken together (rows with a hole in them are left out);
    None when the table has no numeric column or too few complete rows."""
    cols = [c for c in real.columns if is_numeric(real[c])]
    if not cols:
        return None
    xr = real[cols].to_numpy(dtype=np.float64, na_value=np.nan)
    xs = synthetic[cols].apply(pd.to_numeric, errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
    xr, xs = xr[np.isfinite(xr).all(axis=1)], xs[np.isfinite(xs).all(axis=1)]
    if len(xr) < 2 or len(xs) == 0:
        return None
    mean, std = xr.mean(axis=0), xr.std(axis=0)
    std[std == 0] = 1.0
    zr, zs = (xr - mean) / std, (xs - mean) / std
    rng = np.random.default_rng(seed)
    fit_rows = zr if len(zr) <= MAX_FIT_ROWS else zr[rng.choice(len(zr), MAX_FIT_ROWS, replace=False)]
    centres = kmeans(fit_rows, clusters, seed=seed)
    k = len(centres)
    real_counts = np.bincount(nearest(zr, centres), minlength=k)
    syn_counts = np.bincount(nearest(zs, centres), minlength=k)
    expected = real_counts / real_counts.sum() * len(xs) >= min_expected
    p = (real_counts + SMOOTHING) / (real_counts.sum() + SMOOTHING * k)
    q = (syn_counts + SMOOTHING) / (syn_counts.sum() + SMOOTHING * k)
    return {"columns": cols, "clusters": int(k), "rows_real": int(len(xr)), "rows_synthetic": int(len(xs)),
            "covered": int((syn_counts > 0).sum()), "expected": int(expected.sum()),
            "expected_covered": int((syn_counts[expected] > 0).sum()),
            "coverage": float((syn_counts[expected] > 0).mean()) if expected.any() else None,
            "reverse_kl": _kl(q, p), "kl": _kl(p, q), "smoothing": SMOOTHING,
            "real_histogram": real_counts.tolist(), "synthetic_histogram": syn_counts.tolist()}


# ----------------------------------------------------------------------------------------- report
def coverage_report(real: pd.DataFrame, synthetic: pd.DataFrame, seed: int = 0, clusters: int = CLUSTERS,
                    min_expected: float = MIN_EXPECTED) -> dict:
    """Per-column category coverage, numeric mode coverage and the flat summary figures the gate reads."""
    synthetic = require_columns(synthetic, real.columns, "synthetic table")
    cats = {str(c): category_coverage(real[c], synthetic[c], min_expected) for c in real.columns
            if not is_numeric(real[c])}
    modes = mode_coverage(real, synthetic, clusters=clusters, seed=seed, min_expected=min_expected)
    return {"categorical": cats, "modes": modes, "summary": _summary(cats, modes)}


def _summary(cats: dict, modes: dict | None) -> dict:
    def worst(key, pick):
        vals = {c: d[key] for c, d in cats.items() if d.get(key) is not None}
        if not vals:
            return None, None
        col = pick(vals, key=vals.get)
        return vals[col], col

    cov, cov_col = worst("expected_coverage", min)
    rare, rare_col = worst("rare_ratio", min)
    fold, fold_col = worst("worst_fold", max)
    return {"category_coverage": cov, "category_coverage_column": cov_col,
            "rare_category_ratio": rare, "rare_category_ratio_column": rare_col,
            "category_worst_fold": fold, "category_worst_fold_column": fold_col,
            "mode_coverage": modes["coverage"] if modes else None,
            "mode_reverse_kl": modes["reverse_kl"] if modes else None,
            "mode_kl": modes["kl"] if modes else None}


def format_coverage(report: dict) -> list[tuple[str, str]]:
    """(name, value) rows for augment.metrics.format_report."""
    s, rows = report["summary"], []
    if s["category_coverage"] is not None:
        rows.append(("category coverage, worst", f"{s['category_coverage']:.3f}  ({s['category_coverage_column']}; "
                     f"share of categories expected >= {MIN_EXPECTED:g} times that appear)"))
    if s["rare_category_ratio"] is not None:
        rows.append(("rarest categories, share ratio", f"{s['rare_category_ratio']:.3f}  ({s['rare_category_ratio_column']}; "
                     f"synthetic / real share of the rarest 10%, 1 = right)"))
    m = report.get("modes")
    if m:
        cov = "n/a" if m["coverage"] is None else f"{m['coverage']:.3f}"
        rows.append(("numeric modes covered", f"{cov}  ({m['expected_covered']}/{m['expected']} of {m['clusters']} "
                     f"k-means clusters on {len(m['columns'])} numeric columns)"))
        rows.append(("mode histogram KL", f"reverse {m['reverse_kl']:.3f}  forward {m['kl']:.3f}  (0 = same cluster shares)"))
    return rows

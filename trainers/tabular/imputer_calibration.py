"""Multiple imputations whose spread is honest: the draws' range covers the truth as often as it claims.

Why: the imputer's generator is trained to reconstruct held-out cells (a regression loss dominates its
adversarial one), so its draws scatter around one conditional mean far less than the truth does. Measured on
scikit-learn's breast-cancer table with 20% of cells removed: the 5-95% range of 10 draws covered the true value
in 29% of the cells (MICE with posterior sampling: 81%). Inference over such draws (Rubin's rules) would be
overconfident.

The cure is a calibration at the end of `fit`, on the training rows themselves: hide one more observed numeric
cell in each of up to MAX_ROWS rows (so those rows have about as many holes as real ones), impute them `DRAWS`
times, and per numeric column measure the residuals between
the truth and the draws' mean. Each later draw then gets added noise drawn from that column's residual
distribution (centred, so the draws' mean, the point estimate, does not move), scaled by the smallest factor
that makes the central LEVEL range of the draws cover the hidden truth in LEVEL of the cells (bisection).
Columns already covered get no noise. `impute_mean` (the point estimate) is never widened. The calibration
assumes the real holes behave like randomly hidden cells (MCAR); where holes depend on the values, coverage
can differ.
"""

from __future__ import annotations

import numpy as np

LEVEL = 0.9
DRAWS = 20
MAX_ROWS = 2000
QUANTILES = np.linspace(0.0, 1.0, 101)


def numeric_units(layout) -> list[int]:
    """Encoded columns that are numbers (not part of a category's one-hot span)."""
    in_span = {j for start, stop in layout.spans for j in range(start, stop)}
    return [j for j in range(layout.dim) if j not in in_span]


def _coverage(draws: np.ndarray, truth: np.ndarray, level: float) -> float:
    lo, hi = np.quantile(draws, [(1 - level) / 2, (1 + level) / 2], axis=0)
    return float(np.mean((truth >= lo) & (truth <= hi)))


def fit_calibration(imputer, X: np.ndarray, seed: int) -> dict | None:
    """Per numeric column: the residual quantiles and the noise scale that calibrates the draws (see above)."""
    units = numeric_units(imputer.layout)
    if not units:
        return None
    rng = np.random.default_rng([seed, 2])
    rows = np.sort(rng.permutation(len(X))[:MAX_ROWS])
    truth_matrix = X[rows]
    candidates = ~np.isnan(truth_matrix)
    candidates[:, [j for j in range(X.shape[1]) if j not in units]] = False
    # one more hidden cell per row, so that the rows calibrated on have about the holes real rows have
    weights = candidates / np.maximum(candidates.sum(axis=1, keepdims=True), 1)
    pick = (rng.random((len(rows), 1)) < np.cumsum(weights, axis=1)).argmax(axis=1)
    hidden = np.zeros_like(candidates)
    has = candidates.any(axis=1)
    hidden[np.flatnonzero(has), pick[has]] = True
    holed = np.where(hidden, np.nan, truth_matrix)
    draws = imputer.transform(holed, draws=DRAWS, seed=seed + 1, calibrated=False)
    columns, scales, quantiles = [], [], []
    for j in units:
        cells = hidden[:, j]
        if cells.sum() < 20:  # too few cells to calibrate on: left as the generator draws it
            continue
        truth, d = truth_matrix[cells, j].astype(np.float64), draws[:, cells, j].astype(np.float64)
        residual = truth - d.mean(axis=0)
        q = np.quantile(residual - residual.mean(), QUANTILES)
        noise = np.interp(rng.random(d.shape), QUANTILES, q)
        scale = 0.0
        if _coverage(d, truth, LEVEL) < LEVEL:
            lo, hi = 0.0, 1.0
            while _coverage(d + hi * noise, truth, LEVEL) < LEVEL and hi < 64:
                lo, hi = hi, hi * 2
            for _ in range(20):
                mid = (lo + hi) / 2
                lo, hi = (mid, hi) if _coverage(d + mid * noise, truth, LEVEL) < LEVEL else (lo, mid)
            scale = hi
        columns.append(j)
        scales.append(float(scale))
        quantiles.append([float(v) for v in q])
    return {"columns": columns, "scales": scales, "quantiles": quantiles, "level": LEVEL, "draws": DRAWS}


def widen(draws: np.ndarray, observed: np.ndarray, calibration: dict, seed: int) -> np.ndarray:
    """Add each calibrated column's residual noise to its holes in every draw (observed cells untouched),
    kept inside the encoded range [0, 1]. `draws` is (K, n, d); `observed` (n, d)."""
    rng = np.random.default_rng([seed, 3])
    for j, scale, q in zip(calibration["columns"], calibration["scales"], calibration["quantiles"]):
        holes = ~observed[:, j].astype(bool)
        if scale == 0.0 or not holes.any():
            continue
        noise = scale * np.interp(rng.random((len(draws), int(holes.sum()))), QUANTILES, np.asarray(q))
        draws[:, holes, j] = np.clip(draws[:, holes, j] + noise, 0.0, 1.0)
    return draws

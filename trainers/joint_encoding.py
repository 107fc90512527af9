"""Joint modes of several numeric columns: one full-covariance Gaussian mixture over the columns together.

Why: the per-column encoders (quantile, or mode-specific normalisation) each see one column alone. A cluster
that is not aligned with the axes (a rotated grid, a cloud elongated at an angle) has marginals in which the
modes overlap, so every column's code spreads the cluster along its own axis, and the generator has to put
the mass back by getting all the columns right together. On a 5x5 grid rotated away from the axes the
per-column model put 6-15% of its samples near a mode (benchmarks/RESULTS.md). Here the chosen columns are
standardised and a mixture with full covariances is fitted to them jointly; a row becomes
  * its joint mode k: one one-hot span (role "joint"), emitted like a category and conditioned on like a
    column's modes, so the mode frequencies are learnt exactly; and
  * its whitened coordinates inside that mode, u = L_k^-1 (z - mu_k), with L_k the Cholesky factor of the
    mode's covariance. Each u_j is close to N(0, 1) and the u_j are uncorrelated inside a mode, so the
    rotation and the elongation live in (mu_k, L_k) and decode exactly: z = mu_k + L_k u.
The column encoder then quantile-encodes each u_j in place of the column's value.

When: only where the evidence says the columns are jointly structured. On a held-out half of the rows the
joint mixture must beat the columns' own one-dimensional mixtures (taken as independent) by at least
MIN_GAIN_NATS per column of mean log-likelihood; otherwise every column keeps its own encoding and nothing
changes. Independent columns gain ~0; two Gaussians with correlation 0.8 gain 0.26 nats per column; the
rotated grid gains several. Columns that are mostly point masses or have few distinct values (hours-per-week,
capital-gain, small integer codes) stay out: a mixture over ties would "explain" them with spikes. Integer
columns are dequantised (uniform noise of one step) before the fit and rounded after decoding.

Everything after the fit is array arithmetic over all rows at once; the parameters are plain lists (JSON).
"""

from __future__ import annotations

import warnings

import numpy as np

JOINT_COLUMN = "__joint_modes__"  # the span's column name: not a column of the table
MAX_JOINT_MODES = 32
MAX_BLOCK_COLUMNS = 12  # a wider numeric block is not modelled jointly (the fit grows with d^2 per mode)
MIN_ROWS = 200  # fewer complete rows: no joint fit
ROWS_PER_MODE = 20  # at most rows/20 modes
CHECK_ROWS = 2_500  # each half of the acceptance check uses at most this many rows
FIT_SAMPLE_ROWS = 10_000  # the final fit (only once accepted) at most this many
MIN_GAIN_NATS = 0.25  # held-out log-likelihood gain per column over independent columns to accept
MIN_DISTINCT = 20  # a column with fewer distinct values stays out of the block
MAX_VALUE_SHARE = 0.05  # ... as does one where a single value holds more than this share of the rows
MIN_MODE_WEIGHT = 0.002
REG = 1e-4  # added to every covariance diagonal, in standardised units


def eligible(values: np.ndarray) -> bool:
    """A column may join the block: many distinct values and no point mass (hours-per-week's 40 holds 47%)."""
    values = values[~np.isnan(values)]
    if values.size == 0:
        return False
    _, counts = np.unique(values, return_counts=True)
    return counts.size >= MIN_DISTINCT and counts.max() <= MAX_VALUE_SHARE * values.size


def fit_joint(columns: list[str], values: np.ndarray, integer: list[bool], seed: int = 0) -> tuple[dict | None, dict]:
    """(params or None, evidence) for the (n, d) `values` of `columns` (rows with a hole are left out)."""
    values = np.asarray(values, dtype=np.float64)
    complete = values[~np.isnan(values).any(axis=1)]
    d = len(columns)
    evidence: dict = {"columns": list(columns), "rows": int(len(complete))}
    if d < 2 or d > MAX_BLOCK_COLUMNS or len(complete) < MIN_ROWS:
        return None, {**evidence, "reason": "needs 2-12 eligible columns and 200 complete rows"}
    rng = np.random.default_rng(seed)
    step = np.array([1.0 if i else 0.0 for i in integer])
    centre, scale = complete.mean(axis=0), complete.std(axis=0)
    scale = np.where(scale > 0, scale, 1.0)
    z = (dequantise(complete, step, rng) - centre) / scale
    order = rng.permutation(len(z))
    half = len(z) // 2
    train, held = z[order[:half][:CHECK_ROWS]], z[order[half:][:CHECK_ROWS]]
    joint = _mixture(train, seed)
    joint_ll = float(np.mean(log_density(joint, held)))
    alone_ll = float(sum(np.mean(log_density(_mixture(train[:, [j]], seed, max_modes=10), held[:, [j]]))
                         for j in range(d)))
    gain = (joint_ll - alone_ll) / d
    evidence.update(gain_nats_per_column=round(gain, 4), modes=len(joint["weights"]))
    if gain < MIN_GAIN_NATS:
        return None, {**evidence, "reason": f"held-out gain {gain:.3f} < {MIN_GAIN_NATS} nats per column"}
    fit_on = z[order[:FIT_SAMPLE_ROWS]] if len(z) > FIT_SAMPLE_ROWS else z
    final = _mixture(fit_on, seed)
    params = {"columns": list(columns), "centre": centre.tolist(), "scale": scale.tolist(), "step": step.tolist(),
              "min": complete.min(axis=0).tolist(), "max": complete.max(axis=0).tolist(),
              "weights": final["weights"], "means": final["means"], "chol": final["chol"]}
    return params, {**evidence, "modes": len(final["weights"])}


def dequantise(x: np.ndarray, step: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Integer columns: add uniform noise of one step, so ties do not look like infinitely narrow modes."""
    return x + (rng.random(x.shape) - 0.5) * step


def _mixture(z: np.ndarray, seed: int, max_modes: int = MAX_JOINT_MODES) -> dict:
    """Maximum-likelihood mixtures of 1, 2, 4, ... max_modes modes (k-means initialised, full covariances),
    doubling while the BIC falls; the last that lowered it wins. Why not a Dirichlet-process mixture (what mode_encoding uses per
    column): with full covariances its fit took ~10x longer and merged the rotated grid's 25 modes into 10."""
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.mixture import GaussianMixture
    best, best_bic = None, np.inf
    k, top = 1, int(max(1, min(max_modes, len(z) // ROWS_PER_MODE)))
    while True:
        mixture = GaussianMixture(n_components=k, covariance_type="full", reg_covar=REG, max_iter=100, tol=1e-3,
                                  init_params="k-means++", random_state=seed)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            mixture.fit(z)
        bic = mixture.bic(z)
        if bic >= best_bic:  # doubling the modes stopped paying: more would only split them
            break
        best, best_bic = mixture, bic
        if k >= top:
            break
        k = min(2 * k, top)
    keep = best.weights_ > MIN_MODE_WEIGHT
    w = best.weights_[keep] / best.weights_[keep].sum()
    return {"weights": w.tolist(), "means": best.means_[keep].tolist(),
            "chol": np.linalg.cholesky(best.covariances_[keep]).tolist()}


def _log_joint(z: np.ndarray, w, mu, chol) -> np.ndarray:
    """(n, K): log w_k + log N(z | mu_k, L_k L_k^T)."""
    w, mu, chol = (np.asarray(a, dtype=np.float64) for a in (w, mu, chol))
    u = whiten(z, mu, chol)  # (n, K, d)
    log_det = np.log(np.diagonal(chol, axis1=1, axis2=2)).sum(axis=1)
    d = z.shape[1]
    return np.log(w) - log_det - 0.5 * (u ** 2).sum(axis=2) - 0.5 * d * np.log(2 * np.pi)


def whiten(z: np.ndarray, mu: np.ndarray, chol: np.ndarray) -> np.ndarray:
    """(n, K, d) coordinates of every row inside every mode: L_k^-1 (z - mu_k), one batched solve."""
    diff = z[None, :, :] - mu[:, None, :]  # (K, n, d)
    inv = np.linalg.inv(chol)  # (K, d, d): lower-triangular, small
    return np.einsum("kij,knj->nki", inv, diff)


def _responsibilities(z, w, mu, chol) -> np.ndarray:
    logp = _log_joint(z, w, mu, chol)
    logp -= logp.max(axis=1, keepdims=True)
    r = np.exp(logp)
    return r / r.sum(axis=1, keepdims=True)


def log_density(params: dict, z: np.ndarray) -> np.ndarray:
    logp = _log_joint(z, params["weights"], params["means"], params["chol"])
    top = logp.max(axis=1, keepdims=True)
    return (top + np.log(np.exp(logp - top).sum(axis=1, keepdims=True)))[:, 0]


def encode(params: dict, x: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """(n, d) values -> (mode index (n,), u (n, d)). The mode is drawn from each row's posterior (Gumbel-max),
    so overlapping modes share rows as the mixture says; u is the row's whitened position inside the drawn
    mode. A row with holes draws its mode from its observed columns alone and has each hole set to the
    mode's conditional mean given them: its u stays inside the range the encoder saw, so the block's other
    columns still decode exactly through it."""
    centre, scale, step = (np.asarray(params[k]) for k in ("centre", "scale", "step"))
    hole = np.isnan(x)
    z = (dequantise(np.where(hole, centre, x), step, rng) - centre) / scale
    w, mu, chol = (np.asarray(params[k], dtype=np.float64) for k in ("weights", "means", "chol"))
    logp = _log_joint(z, w, mu, chol)
    for pattern in np.unique(hole[hole.any(axis=1)], axis=0):  # one pass per pattern of holes, not per row
        rows = (hole == pattern).all(axis=1)
        logp[rows] = _log_observed(z[rows], w, mu, chol, ~pattern)
    gumbel = -np.log(-np.log(rng.random(logp.shape).clip(1e-12, 1.0 - 1e-12)))
    mode = (logp + gumbel).argmax(axis=1)
    for pattern in np.unique(hole[hole.any(axis=1)], axis=0):
        rows = np.flatnonzero((hole == pattern).all(axis=1))
        z[rows] = _fill_holes(z[rows], mode[rows], mu, chol, pattern)
    inv = np.linalg.inv(chol)[mode]  # (n, d, d)
    u = np.einsum("nij,nj->ni", inv, z - mu[mode])
    return mode, u


def _log_observed(z, w, mu, chol, seen) -> np.ndarray:
    """(rows, K) log w_k + log N(z_seen | mu_k,seen, Sigma_k,seen): the mixture marginalised over the holes."""
    cov = np.einsum("kij,klj->kil", chol, chol)[:, seen][:, :, seen]
    if not seen.any():
        return np.broadcast_to(np.log(w), (len(z), len(w))).copy()
    return _log_joint(z[:, seen], w, mu[:, seen], np.linalg.cholesky(cov))


def _fill_holes(z, mode, mu, chol, hole) -> np.ndarray:
    """Each hole set to its drawn mode's conditional mean given the row's observed columns."""
    cov = np.einsum("kij,klj->kil", chol, chol)
    seen = ~hole
    out = z.copy()
    for k in np.unique(mode):  # modes, not rows
        r = mode == k
        c_ms, c_ss = cov[k][np.ix_(hole, seen)], cov[k][np.ix_(seen, seen)]
        delta = z[np.ix_(r, seen)] - mu[k, seen]
        out[np.ix_(r, hole)] = mu[k, hole] + (np.linalg.solve(c_ss, delta.T).T @ c_ms.T if seen.any() else 0.0)
    return out


def decode(params: dict, mode: np.ndarray, u: np.ndarray) -> np.ndarray:
    """(mode index, u) -> (n, d) values inside each column's observed range (integers rounded)."""
    centre, scale, step = (np.asarray(params[k]) for k in ("centre", "scale", "step"))
    mu, chol = np.asarray(params["means"]), np.asarray(params["chol"])
    z = mu[mode] + np.einsum("nij,nj->ni", chol[mode], u)
    x = np.clip(centre + scale * z, params["min"], params["max"])
    return np.where(step > 0, np.round(x), x)


def mode_count(params: dict) -> int:
    return len(params["weights"])

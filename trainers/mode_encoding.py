"""Mode-specific normalisation of one numeric column (the idea of CTGAN's transformer, written anew).

Why: the per-column quantile transform keeps each marginal but hides *which mode* a value belongs to
inside one continuous number, so a dependence between the modes of two columns (the 8-Gaussian ring:
x's mode decides y's) becomes a fine detail the discriminator hardly sees. Here a Gaussian mixture is
fitted per column and a value x becomes
    * its mode k — a one-hot span (the generator emits it through a Gumbel-softmax, like a category), and
    * its offset (x - mu_k) / (4 sigma_k) — a bounded scalar (tanh output). CTGAN clips it at +-0.99, which
      loses every value beyond 4 sigma of its mode (Adult's fnlwgt tail); here the offset stays linear up to
      0.9 and is then compressed smoothly towards 1 (same slope at the joint), so tails stay representable
      and decode back to themselves.
Mode combinations across columns are then categorical patterns, which the discriminator separates easily.

Everything after the fit is array arithmetic over all rows at once (the posterior of every row, the mode
draw by Gumbel-max, the decode by fancy indexing); only the mixture fit calls scikit-learn, on a bounded
seeded sample. The fitted parameters are plain lists (JSON, no pickle).
"""

from __future__ import annotations

import warnings

import numpy as np

MAX_MODES = 10
MIN_MODE_WEIGHT = 0.005  # components the Dirichlet-process prior shrinks below this are dropped
FIT_SAMPLE_ROWS = 20_000  # the mixture is fitted on at most this many values (seeded sample)
OFFSET_SCALE = 4.0  # offsets are (x - mu) / (4 sigma): +-4 sigma spans the bounded output
KNEE = 0.9  # |offset| beyond this is compressed: 0.9 + 0.1 t / (0.1 + t), t = |d| - 0.9
MIN_STD = 1e-3  # relative to the column's standard deviation: a point mass keeps a finite width
# numeric_encoding="auto" (choose_encoding below): which columns get this encoding
POINT_MASS_SHARE = 0.01  # a value held by at least this share of a column's values is a point mass
MAX_POINT_MASS_TOTAL = 0.5  # ... and a column whose point masses hold more than this stays quantile-encoded
ATOM_STD = 2 * MIN_STD  # relative to the column's std: a fitted mode this narrow is a point mass (EM's floor)
VALLEY_RATIO = 0.1  # modes are separated where the density between them falls below this share of the lower peak
MIN_GROUP_WEIGHT = 0.05  # ... and each side carries at least this share of the values


def fit_modes(values: np.ndarray, seed: int = 0, max_modes: int = MAX_MODES,
              sample_rows: int = FIT_SAMPLE_ROWS) -> dict:
    """Fit a Dirichlet-process Gaussian mixture to the (non-missing) values; returns JSON-ready params:
    weights, means, stds of the kept modes and the observed range (decoding never leaves it)."""
    values = np.asarray(values, dtype=np.float64)
    lo, hi = float(values.min()), float(values.max())
    centre, scale = float(values.mean()), float(values.std())
    if scale == 0.0 or not np.isfinite(scale):
        return {"weights": [1.0], "means": [centre], "stds": [1.0], "min": lo, "max": hi}
    rng = np.random.default_rng(seed)
    fit_on = values if values.size <= sample_rows else rng.choice(values, size=sample_rows, replace=False)
    z = ((fit_on - centre) / scale)[:, None]
    n_components = int(min(max_modes, np.unique(fit_on).size))
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.mixture import BayesianGaussianMixture

    mixture = BayesianGaussianMixture(
        n_components=n_components, weight_concentration_prior_type="dirichlet_process",
        weight_concentration_prior=1e-3, max_iter=200, n_init=1, random_state=seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        mixture.fit(z)
    keep = mixture.weights_ > MIN_MODE_WEIGHT
    if not keep.any():
        keep = mixture.weights_ == mixture.weights_.max()
    weights, means, stds = _refine(z[:, 0], mixture.weights_[keep] / mixture.weights_[keep].sum(),
                                   mixture.means_[keep, 0], np.sqrt(mixture.covariances_[keep].reshape(-1)))
    means, stds = centre + scale * means, scale * stds
    order = np.argsort(means, kind="stable")  # modes left to right: stable, readable params
    return {"weights": weights[order].tolist(), "means": means[order].tolist(), "stds": stds[order].tolist(),
            "min": lo, "max": hi}


def _refine(z: np.ndarray, w: np.ndarray, mu: np.ndarray, sd: np.ndarray, steps: int = 5):
    """A few plain EM steps on the kept modes. The Bayesian fit chooses how many modes there are, but its
    covariance prior (the data's variance) widens narrow modes several-fold (the ring's sigma 0.02 came out
    as 0.05-0.11), which would squeeze every offset into a sliver of (-1, 1)."""
    for _ in range(steps):
        logp = np.log(w) - np.log(sd) - 0.5 * ((z[:, None] - mu) / sd) ** 2
        r = np.exp(logp - logp.max(axis=1, keepdims=True))
        r /= r.sum(axis=1, keepdims=True)
        mass = r.sum(axis=0)
        alive = mass > 1e-9 * len(z)
        w, mu, sd, r, mass = w[alive], mu[alive], sd[alive], r[:, alive], mass[alive]
        w = mass / mass.sum()
        mu = (r * z[:, None]).sum(axis=0) / mass
        sd = np.maximum(np.sqrt((r * (z[:, None] - mu) ** 2).sum(axis=0) / mass), MIN_STD)
    return w, mu, sd


def point_mass_share(values: np.ndarray) -> float:
    """Share of the values that sit on a point mass: a single value held by >= POINT_MASS_SHARE of them
    (hours-per-week's 40 holds 47%; a continuous column has none)."""
    _, counts = np.unique(values, return_counts=True)
    share = counts / max(values.size, 1)
    return float(share[share >= POINT_MASS_SHARE].sum())


def separated_modes(params: dict, scale: float, resolution: float = 0.0) -> int:
    """How many groups of the fitted mixture's modes, separated from their neighbours by low density and
    each holding >= MIN_GROUP_WEIGHT of the values, there are. Point-mass modes (narrower than EM's floor
    or than half the column's `resolution`, 1 for integers) are left out; `scale` is the column's std.

    Neighbouring modes (by mean) stay in one group unless the mixture density somewhere between them falls
    below VALLEY_RATIO of the lower of their two peaks: for two equal Gaussians that means means about 5
    standard deviations apart (2 exp(-k^2 / 8) = 0.1 at k = 4.9), past Ashman's D = 2 for a clean
    separation. Why low density rather than a distance: a Gaussian mixture fitted to a skewed unimodal
    column (Adult's age, fnlwgt) uses several overlapping modes with no valley between them.
    All arrays: one (points x modes) density matrix, no loop over values."""
    w, mu, sd = (np.asarray(params[k], dtype=np.float64) for k in ("weights", "means", "stds"))
    broad = sd > max(ATOM_STD * scale, 0.5 * resolution)
    w, mu, sd = w[broad], mu[broad], sd[broad]
    if mu.size < 2:
        return int(mu.size > 0 and w.sum() >= MIN_GROUP_WEIGHT)
    order = np.argsort(mu)
    w, mu, sd = w[order], mu[order], sd[order]
    t = np.linspace(0.0, 1.0, 65)
    points = np.concatenate([mu, (mu[:-1, None] + t * np.diff(mu)[:, None]).ravel()])  # peaks, then each gap
    dens = (w / sd * np.exp(-0.5 * ((points[:, None] - mu) / sd) ** 2)).sum(axis=1)
    peaks, valleys = dens[:mu.size], dens[mu.size:].reshape(mu.size - 1, t.size).min(axis=1)
    group = np.concatenate([[0], np.cumsum(valleys < VALLEY_RATIO * np.minimum(peaks[:-1], peaks[1:]))])
    return int((np.bincount(group, weights=w) >= MIN_GROUP_WEIGHT).sum())


def choose_encoding(values: np.ndarray, integer: bool = False, seed: int = 0) -> tuple[str, dict, dict | None]:
    """numeric_encoding="auto" for one column: ("mode" | "quantile", the evidence, the mixture if fitted).

    Mode-specific normalisation pays off when a column's values fall into clusters with (almost) nothing
    between them: the quantile transform squeezes each cluster into a band touching its neighbours, and a
    dependence on *which* cluster (the 8-Gaussian ring) is all but invisible to the critic
    (docs/mode_collapse.md). It costs where a column is mostly point masses (hours-per-week's 40, the zeros
    of capital-gain): the quantile inverse decodes a point mass exactly, a mixture mode only approximately,
    and that gave Adult's mode-encoded fits away to the detector (benchmarks/RESULTS.md). So:
      1. point masses hold more than MAX_POINT_MASS_TOTAL of the values -> quantile (no mixture is fitted);
      2. otherwise the mixture `mode` would use is fitted, and >= 2 separated groups of modes
         (`separated_modes`) -> mode, with exactly that mixture; else quantile."""
    values = np.asarray(values, dtype=np.float64)
    evidence = {"point_mass_share": round(point_mass_share(values), 4)}
    if evidence["point_mass_share"] > MAX_POINT_MASS_TOTAL:
        return "quantile", evidence, None
    params = fit_modes(values, seed=seed)
    evidence["separated_modes"] = separated_modes(params, float(values.std()), 1.0 if integer else 0.0)
    return ("mode" if evidence["separated_modes"] >= 2 else "quantile"), evidence, params


def mode_count(params: dict) -> int:
    return len(params["means"])


def log_posterior(params: dict, x: np.ndarray) -> np.ndarray:
    """(n, K) unnormalised log posterior of each mode for each value."""
    w, mu, sd = (np.asarray(params[k]) for k in ("weights", "means", "stds"))
    return np.log(w) - np.log(sd) - 0.5 * ((x[:, None] - mu) / sd) ** 2


def encode_modes(params: dict, x: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Values (no NaN) -> (offset in [-0.99, 0.99], mode index). The mode is drawn from the posterior
    (Gumbel-max over all rows at once), so overlapping modes share their values as the mixture says.
    The offset is in (-1, 1)."""
    logp = log_posterior(params, x)
    gumbel = -np.log(-np.log(rng.random(logp.shape).clip(1e-12, 1.0 - 1e-12)))
    mode = (logp + gumbel).argmax(axis=1)
    mu, sd = np.asarray(params["means"])[mode], np.asarray(params["stds"])[mode]
    return _squash((x - mu) / (OFFSET_SCALE * sd)), mode


def decode_modes(params: dict, offset: np.ndarray, mode: np.ndarray) -> np.ndarray:
    """(offset, mode index) -> value inside the observed range."""
    mu, sd = np.asarray(params["means"])[mode], np.asarray(params["stds"])[mode]
    x = mu + _unsquash(offset) * OFFSET_SCALE * sd
    return np.clip(x, params["min"], params["max"])


def heaviest_mode(params: dict) -> int:
    return int(np.argmax(params["weights"]))


def _squash(d: np.ndarray) -> np.ndarray:
    """Identity on [-KNEE, KNEE], then 1 - (1 - KNEE) * ... towards +-1: continuous with slope 1 at the knee."""
    a, tail = np.abs(d), 1.0 - KNEE
    t = np.maximum(a - KNEE, 0.0)
    return np.sign(d) * np.where(a <= KNEE, a, KNEE + tail * t / (tail + t))


def _unsquash(u: np.ndarray) -> np.ndarray:
    a, tail = np.minimum(np.abs(u), 1.0 - 1e-7), 1.0 - KNEE
    v = np.maximum(a - KNEE, 0.0)
    return np.sign(u) * np.where(a <= KNEE, a, KNEE + tail * v / (tail - v))

"""Time-series quality: TimeGAN's discriminative and predictive scores (Yoon et al. 2019, their protocol and
network sizes), a VAR(1) baseline generator, and continuation scores (coverage of the K draws' band, CRPS).

Protocol (as in TimeGAN's metrics code): both data sets are min-max scaled per column with the *real*
data's range; windows of 24 steps, stride 1; as many synthetic windows as real ones.
- discriminative: a 1-layer GRU (hidden = features/2) with a linear read-out of its last state classifies
  real vs synthetic; trained on 80% of each (2000 Adam steps, batch 128), scored on the other 20%:
  |accuracy - 0.5| (0 = indistinguishable).
- predictive: a 1-layer GRU (hidden = features/2) reads features[:-1] at steps 0..T-2 and predicts the
  last feature at steps 1..T-1 (sigmoid read-out, L1 loss, 5000 Adam steps, batch 128); trained on
  synthetic windows, tested on all real windows: mean absolute error (train-on-synthetic, test-on-real).
Both are repeated with different seeds and reported as mean ± std; the repeats train side by side as one
block-diagonal GRU (ParallelGRUs), exactly independent, in about the time of one.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from ganstream.trainers.timeseries.parallel_gru import ParallelGRUs, held_out_accuracies
from ganstream.trainers.timeseries.backbone import chol_cov, least_squares_var1


# ----------------------------------------------------------------------------------------- scaling, windows
def minmax_by_real(real: np.ndarray, *others: np.ndarray) -> list[np.ndarray]:
    """Scale arrays [..., F] per feature with the min and max of `real` (NaN ignored)."""
    flat = real.reshape(-1, real.shape[-1])
    lo, hi = np.nanmin(flat, axis=0), np.nanmax(flat, axis=0)
    span = np.where(hi - lo > 0, hi - lo, 1.0)
    return [(a - lo) / span for a in (real, *others)]


def windows_of(series: np.ndarray, seq_len: int = 24) -> np.ndarray:
    """Windows [W, seq_len, F] of one series [T, F], stride 1 (a view copied once)."""
    view = np.lib.stride_tricks.sliding_window_view(series, seq_len, axis=0)
    return np.ascontiguousarray(view.transpose(0, 2, 1))


# ------------------------------------------------------------------------------------------- TimeGAN scores
def discriminative_scores(real: np.ndarray, fake: np.ndarray, repeats: int = 5, seed: int = 0,
                          iterations: int = 2000, batch_size: int = 128) -> list[float]:
    """|accuracy - 0.5| of a post-hoc GRU classifier on a held-out 20%, once per repeat (each repeat has its
    own subsample, split, initialisation and batches). real/fake [n, T, F], already scaled."""
    rng = np.random.default_rng(seed)
    n = min(len(real), len(fake))
    pool = torch.from_numpy(np.concatenate([real, fake])).float()
    labels = torch.cat([torch.ones(len(real)), torch.zeros(len(fake))])
    cut = int(0.8 * n)
    train, test = [], []
    for _ in range(repeats):  # per repeat: n real and n fake windows, 80/20 split of each
        r_idx, f_idx = rng.permutation(len(real))[:n], len(real) + rng.permutation(len(fake))[:n]
        train.append(np.concatenate([r_idx[:cut], f_idx[:cut]]))
        test.append(np.concatenate([r_idx[cut:], f_idx[cut:]]))
    train, test = torch.from_numpy(np.stack(train)), torch.from_numpy(np.stack(test))
    F = real.shape[2]
    accuracies = held_out_accuracies(pool, labels, train, test, max(1, F // 2), iterations, batch_size, rng, seed)
    return [abs(a - 0.5) for a in accuracies]


def predictive_scores(real: np.ndarray, fake: np.ndarray, repeats: int = 5, seed: int = 0,
                      iterations: int = 5000, batch_size: int = 128) -> list[float]:
    """MAE on all real windows of a GRU trained on synthetic ones to predict the last feature one step ahead
    from the other features (train on synthetic, test on real), once per repeat."""
    rng = np.random.default_rng(seed)
    torch.manual_seed(seed)
    F = real.shape[2]
    if F < 2:
        raise ValueError("the predictive score needs at least 2 features (it predicts the last from the others)")
    fake_t, real_t = torch.from_numpy(fake).float(), torch.from_numpy(real).float()
    model = ParallelGRUs(repeats, F - 1, max(1, F // 2))
    opt = torch.optim.Adam(model.parameters())
    for _ in range(iterations):
        xb = fake_t[torch.from_numpy(rng.integers(len(fake_t), size=(repeats, batch_size)))]  # [R, B, T, F]
        pred = torch.sigmoid(model(xb[:, :, :-1, :-1], per_step=True))
        model.optimise(opt, (pred - xb[:, :, 1:, -1]).abs().mean(dim=(1, 2)).sum())
    errors = torch.zeros(repeats)
    with torch.inference_mode():
        for start in range(0, len(real_t), 4096):
            xb = real_t[start:start + 4096].unsqueeze(0).expand(repeats, -1, -1, -1)
            pred = torch.sigmoid(model(xb[:, :, :-1, :-1], per_step=True))
            errors += (pred - xb[:, :, 1:, -1]).abs().mean(2).sum(1)
    return [float(e) / len(real_t) for e in errors]


@dataclass
class Repeated:
    mean: float
    std: float
    values: list[float]

    @classmethod
    def of(cls, values: list[float]) -> "Repeated":
        return cls(float(np.mean(values)), float(np.std(values)), [float(v) for v in values])

    def __str__(self) -> str:
        return f"{self.mean:.3f} ± {self.std:.3f}"

    def to_json(self) -> dict:
        return {"mean": self.mean, "std": self.std, "values": self.values}


# ------------------------------------------------------------------------------------------- VAR(1) baseline
class VAR1:
    """x_t = c + A x_{t-1} + e_t, e ~ N(0, Sigma), least squares on consecutive observed pairs of windows
    [W, T, F] (AR(1) when F = 1). The floor any time-series generator has to beat; x_0 ~ N(mean, cov) of
    the observed values, so the baseline stores no training rows either."""

    def fit(self, windows: np.ndarray) -> "VAR1":
        fit = least_squares_var1(windows)
        if fit is None:
            raise ValueError("VAR(1) baseline: too few pairs of consecutive fully observed steps to fit")
        self.c, self.A, self.noise_chol = fit
        flat = windows.reshape(-1, windows.shape[2])
        flat = flat[~np.isnan(flat).any(1)]
        self.mean0 = flat.mean(0)
        self.chol0 = chol_cov(flat)
        return self

    def sample(self, n: int, seq_len: int, seed: int = 0) -> np.ndarray:
        rng = np.random.default_rng(seed)
        F = len(self.c)
        x0 = self.mean0 + rng.standard_normal((n, F)) @ self.chol0.T
        return self.continue_from(x0, seq_len - 1, rng, include_start=True)

    def extend(self, last: np.ndarray, horizon: int, draws: int, seed: int = 0) -> np.ndarray:
        """Draws [n, draws, horizon, F] continuing from the last observed values [n, F]."""
        rng = np.random.default_rng(seed)
        n, F = last.shape
        out = self.continue_from(np.repeat(last, draws, axis=0), horizon, rng, include_start=False)
        return out.reshape(n, draws, horizon, F)

    def continue_from(self, x: np.ndarray, steps: int, rng: np.random.Generator, include_start: bool) -> np.ndarray:
        out = [x] if include_start else []
        for _ in range(steps):  # a loop over time steps, vectorized over all series
            x = self.c + x @ self.A.T + rng.standard_normal(x.shape) @ self.noise_chol.T
            out.append(x)
        return np.stack(out, 1)


# ------------------------------------------------------------------------------------ continuation scores
def band_coverage(real_future: np.ndarray, draws: np.ndarray, level: float = 0.8) -> dict:
    """Share of real future points inside the draws' central `level` band, and the band's mean width.
    real_future [n, k, F]; draws [n, K, k, F]. NaN real points are ignored."""
    lo_q, hi_q = (1 - level) / 2, 1 - (1 - level) / 2
    lo, hi = np.quantile(draws, lo_q, axis=1), np.quantile(draws, hi_q, axis=1)
    ok = ~np.isnan(real_future)
    inside = (real_future >= lo) & (real_future <= hi)
    return {"level": level, "coverage": float(inside[ok].mean()), "mean_width": float((hi - lo)[ok].mean())}


def crps(real_future: np.ndarray, draws: np.ndarray) -> float:
    """Sample CRPS, E|X - y| - E|X - X'|/2, averaged over points (vectorized with sorted draws)."""
    K = draws.shape[1]
    term1 = np.abs(draws - real_future[:, None]).mean(1)
    s = np.sort(draws, axis=1)
    weights = (2 * np.arange(1, K + 1) - K - 1).reshape(1, K, *([1] * (draws.ndim - 2)))
    term2 = (weights * s).sum(1) / (K * K)  # = E|X - X'| / 2
    ok = ~np.isnan(real_future)
    return float((term1 - term2)[ok].mean())


class VAR2(VAR1):
    """x_t = c + A1 x_{t-1} + A2 x_{t-2} + e_t by least squares on consecutive observed triples; the first two
    steps from a Gaussian of the windows' (x_0, x_1) pairs. The linear model whose fit is the time-series GAN's
    start (trainers/timeseries/backbone.py, `var2`): a sine is exactly linear in its last two values."""

    def fit(self, windows: np.ndarray) -> "VAR2":
        W, T, F = windows.shape
        x = np.concatenate([windows[:, 2:], windows[:, 1:-1], windows[:, :-2]], axis=2).reshape(-1, 3 * F)
        x = x[~np.isnan(x).any(1)]
        if len(x) <= 2 * F + 1:
            raise ValueError("VAR(2) baseline: too few triples of consecutive fully observed steps to fit")
        design = np.concatenate([np.ones((len(x), 1)), x[:, F:]], axis=1)
        coef, *_ = np.linalg.lstsq(design, x[:, :F], rcond=None)
        self.c, self.A = coef[0], coef[1:].T  # A: [F, 2F] acting on [x_{t-1}, x_{t-2}]
        self.noise_chol = chol_cov(x[:, :F] - design @ coef)
        pairs = windows[:, :2].reshape(W, 2 * F)
        pairs = pairs[~np.isnan(pairs).any(1)]
        self.mean0, self.chol0 = pairs.mean(0), chol_cov(pairs)
        return self

    def sample(self, n: int, seq_len: int, seed: int = 0) -> np.ndarray:
        rng = np.random.default_rng(seed)
        F = len(self.c)
        first = (self.mean0 + rng.standard_normal((n, 2 * F)) @ self.chol0.T).reshape(n, 2, F)
        out = [first[:, 0], first[:, 1]]
        for _ in range(seq_len - 2):
            x = self.c + np.concatenate([out[-1], out[-2]], 1) @ self.A.T + rng.standard_normal((n, F)) @ self.noise_chol.T
            out.append(x)
        return np.stack(out[:seq_len], 1)

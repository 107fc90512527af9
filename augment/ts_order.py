"""Time-order-aware scores: does a generator get the dynamics right, not only the values?

TimeGAN's discriminative score (ts_metrics.py) reads whole windows with a GRU, yet on Stocks it cannot tell real
windows from the same windows with their time steps shuffled (0.010, benchmarks/RESULTS.md): a slowly moving
level dominates each window, and any path near the right levels passes. These scores make the order visible:
- the same classifier on first differences (x_t - x_{t-1}, min-max scaled by the real differences' range): the
  step-to-step moves, where a shuffled or reversed path differs from a real one;
- controls: the score of time-reversed and time-shuffled real windows (what a generator that gets the order
  wrong would score), and a real-vs-real floor (two disjoint halves of the real windows: what a perfect
  generator scores with this classifier and sample size).
A generator is judged against the floor: "at most twice the real-vs-real floor" on differences.
"""

from __future__ import annotations

import numpy as np

from ganstream.augment.ts_metrics import Repeated, discriminative_scores


def first_differences(real: np.ndarray, *others: np.ndarray) -> list[np.ndarray]:
    """First differences [n, T-1, F] of each array, min-max scaled per feature by the real differences' range."""
    diffs = [np.diff(a, axis=1) for a in (real, *others)]
    flat = diffs[0].reshape(-1, diffs[0].shape[-1])
    lo, hi = np.nanmin(flat, axis=0), np.nanmax(flat, axis=0)
    span = np.where(hi - lo > 0, hi - lo, 1.0)
    return [(d - lo) / span for d in diffs]


def time_reversed(windows: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(windows[:, ::-1])


def time_shuffled(windows: np.ndarray, seed: int = 0) -> np.ndarray:
    """Each window's steps in its own random order (the values of every step kept whole)."""
    rng = np.random.default_rng(seed)
    order = np.argsort(rng.random(windows.shape[:2]), axis=1)
    return np.take_along_axis(windows, order[:, :, None], axis=1)


def order_scores(real: np.ndarray, fake: np.ndarray, repeats: int = 3, seed: int = 0,
                 iterations: int = 2000) -> dict:
    """Discriminative score on levels and on first differences (scaled windows [n, T, F])."""
    d_real, d_fake = first_differences(real, fake)
    return {"levels": Repeated.of(discriminative_scores(real, fake, repeats, seed, iterations)).to_json(),
            "differences": Repeated.of(discriminative_scores(d_real, d_fake, repeats, seed, iterations)).to_json()}


def order_controls(real: np.ndarray, repeats: int = 3, seed: int = 0, iterations: int = 2000) -> dict:
    """The floor (two disjoint random halves of the real windows) and the reversed and shuffled controls."""
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(real))
    half_a, half_b = real[order[: len(real) // 2]], real[order[len(real) // 2:]]
    return {"real_vs_real": order_scores(half_a, half_b, repeats, seed, iterations),
            "time_reversed": order_scores(real, time_reversed(real), repeats, seed, iterations),
            "time_shuffled": order_scores(real, time_shuffled(real, seed), repeats, seed, iterations)}

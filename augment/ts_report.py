"""Quality report of a fitted time-series generator against its training table, for tracking and the gate.

The TimeGAN protocol of augment/ts_metrics.py (per-feature min-max over the real series, windows of the
model's --seq-len with stride 1, as many synthetic windows as real ones), at a budget that fits inside a
`train`: fewer classifier iterations and repeats than the benchmark (benchmarks/timeseries_timegan.py runs
the full protocol). Besides the two TimeGAN scores:

* predictive_ratio = predictive score of synthetic / predictive score of real (the same GRU trained on real
  windows, TimeGAN's "original data" row): 1 means synthetic windows teach a forecaster as much as real ones.
* marginal_mean_distance: mean KS statistic between real and synthetic values per feature.

Windows with a gap are left out of the scores (the classifiers take complete windows)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from ganstream.trainers.timeseries.data import parse_series, sliding_windows

from ganstream.augment.metrics import ks_statistic
from ganstream.augment.ts_metrics import discriminative_scores, minmax_by_real, predictive_scores

MAX_WINDOWS = 4000  # windows scored at most (a seeded subsample beyond that): bounds the report's time


def real_windows(model, table: pd.DataFrame, seed: int = 0) -> np.ndarray:
    """Complete training windows [W, seq_len, F] in original units, at most MAX_WINDOWS of them."""
    data = parse_series(table, model.layout, what="training data")
    windows, _ = sliding_windows(data.values, data.starts, model.config.seq_len)
    windows = windows[~np.isnan(windows).any(axis=(1, 2))]
    if len(windows) > MAX_WINDOWS:
        windows = windows[np.sort(np.random.default_rng(seed).permutation(len(windows))[:MAX_WINDOWS])]
    return windows


def synthetic_windows(model, n: int, seed: int = 0) -> np.ndarray:
    frame = model.sample(n, seed=seed)
    return frame[model.layout.features].to_numpy(np.float64).reshape(n, model.config.seq_len, -1)


def _iterations(n_windows: int, cap: int, passes: int = 30, batch_size: int = 128) -> int:
    """Classifier steps: `passes` passes over the windows, between 200 and `cap` (small data, short report)."""
    return int(np.clip(passes * n_windows / batch_size, 200, cap))


def timeseries_quality_report(model, table: pd.DataFrame, seed: int = 0, repeats: int = 2,
                              disc_iterations: int = 1000, pred_iterations: int = 1500) -> dict:
    real = real_windows(model, table, seed)
    if len(real) < 10:
        return {"windows_real": int(len(real)), "note": "fewer than 10 complete windows: no scores"}
    disc_iterations = _iterations(2 * len(real), disc_iterations)
    pred_iterations = _iterations(len(real), pred_iterations)
    fake = synthetic_windows(model, len(real), seed)
    real_s, fake_s = minmax_by_real(real, fake)
    disc = discriminative_scores(real_s, fake_s, repeats=repeats, seed=seed, iterations=disc_iterations)
    report = {"windows_real": int(len(real)), "windows_synthetic": int(len(fake)), "repeats": repeats,
              "iterations": {"discriminative": disc_iterations, "predictive": pred_iterations},
              "discriminative_score": float(np.mean(disc)), "discriminative_scores": disc}
    F = real.shape[2]
    ks = {f: ks_statistic(real[:, :, j].ravel(), fake[:, :, j].ravel()) for j, f in enumerate(model.layout.features)}
    report["marginals"] = {f: {"ks": float(v)} for f, v in ks.items()}
    report["marginal_mean_distance"] = float(np.mean(list(ks.values())))
    if F >= 2:
        pred = predictive_scores(real_s, fake_s, repeats=repeats, seed=seed, iterations=pred_iterations)
        base = predictive_scores(real_s, real_s, repeats=repeats, seed=seed, iterations=pred_iterations)
        report.update(predictive_score=float(np.mean(pred)), predictive_scores=pred,
                      predictive_score_real=float(np.mean(base)),
                      predictive_ratio=float(np.mean(pred) / max(np.mean(base), 1e-12)))
    return report


def plot_series(model, table: pd.DataFrame, seed: int = 0, n: int = 6, max_features: int = 4):
    """Real windows (grey) and synthetic sequences (colour) per feature, in original units."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    real = real_windows(model, table, seed)
    fake = synthetic_windows(model, n, seed)
    pick = np.random.default_rng(seed).permutation(len(real))[:n] if len(real) else []
    feats = model.layout.features[:max_features]
    fig, axes = plt.subplots(1, len(feats), figsize=(4 * len(feats), 3), squeeze=False)
    for j, (ax, f) in enumerate(zip(axes[0], feats)):
        for i in pick:
            ax.plot(real[i, :, j], color="0.6", lw=1)
        for i in range(n):
            ax.plot(fake[i, :, j], lw=1)
        ax.set_title(f"{f}: real (grey) vs synthetic")
        ax.set_xlabel("step")
    fig.tight_layout()
    return fig

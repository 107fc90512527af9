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
    report.update(continuation_coverage(model, table, seed))
    if F >= 2:
        pred = predictive_scores(real_s, fake_s, repeats=repeats, seed=seed, iterations=pred_iterations)
        base = predictive_scores(real_s, real_s, repeats=repeats, seed=seed, iterations=pred_iterations)
        report.update(predictive_score=float(np.mean(pred)), predictive_scores=pred,
                      predictive_score_real=float(np.mean(base)),
                      predictive_ratio=float(np.mean(pred) / max(np.mean(base), 1e-12)))
    return report


def continuation_coverage(model, table: pd.DataFrame, seed: int = 0, draws: int = 50, max_cuts: int = 200) -> dict:
    """How often real values fall inside the central 80% band of `extend`'s continuations (0.8 is right; lower
    means overconfident futures). Real series are cut at up to `max_cuts` points (spread evenly over the series
    long enough, seeded), each cut keeps the seq_len - 1 steps before it as the history `extend` continues
    `draws` times, and the h = seq_len / 4 steps after it are the truth."""
    lay, L = model.layout, model.config.seq_len
    h = max(1, L // 4)
    cols = [c for c in (lay.id_col, lay.time_col, *lay.static_cols, *lay.features) if c]
    frame = table[cols].reset_index(drop=True)
    key = pd.factorize(frame[lay.id_col])[0] if lay.id_col else np.zeros(len(frame), dtype=np.int64)
    order = np.argsort(key, kind="stable")  # the rows of a series together, each in its own order
    frame, key = frame.iloc[order].reset_index(drop=True), key[order]
    starts = np.flatnonzero(np.r_[True, np.diff(key) != 0])
    sizes = np.diff(np.r_[starts, len(key)])
    ok = np.flatnonzero(sizes >= L - 1 + h)
    if len(ok) == 0:
        return {"continuation_note": f"no series has {L - 1 + h} steps: no continuation scored"}
    per = max(1, max_cuts // len(ok))
    cuts = [(starts[s], c) for s in ok for c in np.unique(np.linspace(L - 1, sizes[s] - h, per).astype(int))]
    pick = np.sort(np.random.default_rng(seed).permutation(len(cuts))[:max_cuts])
    histories, truth = [], []
    for n, k in enumerate(pick):  # one slice per cut (a few hundred), not per row
        first, cut = cuts[k]
        hist = frame.iloc[first + cut - (L - 1):first + cut].copy()
        if lay.id_col:
            hist[lay.id_col] = f"cut-{n}"
        histories.append(hist)
        truth.append(frame[lay.features].iloc[first + cut:first + cut + h].to_numpy(np.float64))
    if lay.id_col:
        futures = model.extend(pd.concat(histories, ignore_index=True), horizon=h, draws=draws, seed=seed)
        paths = futures[lay.features].to_numpy(np.float64).reshape(len(pick), draws, h, -1)
    else:
        paths = np.stack([model.extend(hist, horizon=h, draws=draws, seed=seed + n)[lay.features]
                          .to_numpy(np.float64).reshape(draws, h, -1) for n, hist in enumerate(histories)])
    real = np.stack(truth)
    lo, hi = np.quantile(paths, [0.1, 0.9], axis=1)
    observed = ~np.isnan(real)
    inside = (real >= lo) & (real <= hi)
    return {"continuation_coverage80": float(inside[observed].mean()), "continuation_horizon": h,
            "continuation_cuts": int(len(pick)), "continuation_draws": draws}


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

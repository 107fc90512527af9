"""Calibrated continuations: one gain per horizon on the spread the generator's Gaussian innovations make, fitted on held-out
real windows run the way `extend` runs them (teacher-forced over a prefix, free-running after it).

Why: the innovations' scale is estimated from teacher-forced ONE-step residuals (timeseries/backbone.py
`recalibrate`). A continuation is a multi-step free run, and its error also holds the model's own multi-step
error (a slightly wrong mean compounds, the GRU's correction drifts on inputs it made itself), which one-step
residuals never show. Measured before this module: the 80% band of 100 draws covered 0.28-0.55 of held-out
future points (benchmarks/RESULTS.md, run 3). So after training the spread is set where it is used.

How: each held-out window gets a random prefix length c in 1..T-1 (every context `extend` can use) and is
continued K times from it with fixed, seeded noise, twice: with the innovations (the draws) and without them
(the centre: same series and step noise, innovations zero). At horizon k a calibrated draw is
centre + g_k * (draw - centre): the part of the draw's spread that the innovations made, up to and including
step k, is scaled. Scaling that deviation in the output (not the innovation fed back into the next step) keeps
the horizons independent, so each g_k is fitted on its own: the grid value whose central 80% band holds its
nominal level best (coverage read from the rank of each real value among the draws, so the criterion does not
depend on K) over observed points of every window whose prefix leaves room for horizon k. Matching the 50%,
80% and 90% bands together (least squares) was the first criterion: on the benchmark's test futures it left
each of the three bands further from nominal than the 80% band alone does (same models, 2026-12-03:
Energy 0.49/0.73/0.81 -> 0.53/0.77/0.85, Sines 0.40/0.77/0.88 -> 0.42/0.80/0.90); the calibration windows'
50% band pulled the compromise narrow. (Scaling each step's innovation greedily, earliest first, was tried first: on a near-unit-root VAR(2)
(Sines) an innovation matters mostly for later steps, and the gains jumped between the grid's ends. Minimising
the ensemble CRPS instead of matching coverage was tried too: on Sines it widened the 80% band only from 0.49
to 0.49-0.73 coverage on the calibration windows, because the real errors there are a few large misses of the
frequency among many small ones, and CRPS prefers the bands narrow for the many.)

Which mean continues (`choose_continuation`): the gains are fitted twice, for the whole generator and for its
linear backbone alone (the network's correction off), and the one whose calibrated draws score the lower CRPS
on the held-out windows (fresh prefixes and noise) is what `extend` runs. A correction fitted on one trending
series can carry the training period's drift into every continuation (Stocks, 2026-12-03).

Limits (measured in RESULTS.md): one gain per horizon for every feature and every prefix length; horizons
past T-1 reuse the last gain; a held-out period unlike the training data (a trend leaving the range) is not
covered by a spread fitted on the past.
"""

from __future__ import annotations

import numpy as np
import torch

GRID = np.exp(np.linspace(np.log(1 / 8), np.log(16), 97))  # candidate gains, ~5.5% apart


LEVELS = (0.8,)  # the central bands whose coverage the gains match (see the module docstring)


def band_miss(draws: np.ndarray, real: np.ndarray, observed: np.ndarray) -> float:
    """Sum over LEVELS of (coverage of the central band - level)^2, coverage from the randomised PIT of each
    real value among the K draws: (draws below + u (ties + 1)) / (K + 1), u ~ U(0, 1) (seeded). Why randomised:
    it is exactly uniform when the real value is exchangeable with the draws, so a calibrated ensemble scores
    its nominal coverage; the plain share of draws below is not (with K = 32 a calibrated ensemble's 80% band
    reads 0.76, and matching 0.80 would widen it ~10%). draws [N, K, F], real/observed [N, F]."""
    K = draws.shape[1]
    ties = (draws == real[:, None]).sum(1)
    u = np.random.default_rng(0).random(ties.shape)
    pit = ((draws < real[:, None]).sum(1) + u * (ties + 1)) / (K + 1)
    off = np.abs(pit[observed] - 0.5)
    return float(sum(((off <= lv / 2).mean() - lv) ** 2 for lv in LEVELS))


def best_gain(mean: np.ndarray, deviation: np.ndarray, real: np.ndarray, observed: np.ndarray) -> float:
    """The grid gain g for which mean + g * deviation has the best calibrated central bands (band_miss); the
    smallest such g on ties (a flat stretch: no evidence for more spread)."""
    scores = [band_miss(mean + g * deviation, real, observed) for g in GRID]
    return float(GRID[int(np.argmin(scores))])


def band_hits(draws: np.ndarray, real: np.ndarray, observed: np.ndarray, level: float = 0.8) -> float:
    lo, hi = np.quantile(draws, (1 - level) / 2, axis=1), np.quantile(draws, 1 - (1 - level) / 2, axis=1)
    return float(((real >= lo) & (real <= hi))[observed].mean())


@torch.no_grad()
def _continue_held_out(run, noise_fn, X: torch.Tensor, M: torch.Tensor, S: torch.Tensor, seed: int, draws: int,
                       max_windows: int):
    """Up to `max_windows` held-out windows, each continued `draws` times by `run` (the generator's forward)
    from a random prefix (1..T-1 steps), with the innovations and without them (the centre).
    Returns (prefix lengths [n], draws [n, K, T, F], centres [n, K, T, F], real [n, T, F], observed [n, T, F])."""
    rng = np.random.default_rng([int(seed), 0xCA1B])
    N, T, F = X.shape
    n = min(N, max_windows)
    pick = torch.from_numpy(np.sort(rng.permutation(N)[:n]))
    ctx = rng.integers(1, T, size=n)  # prefix lengths 1..T-1, as extend uses
    rows = torch.arange(n).repeat_interleave(draws)
    x, m, s = X[pick], M[pick], S[pick]
    c = torch.from_numpy(ctx)[rows]
    gen = torch.Generator().manual_seed(int(seed))
    z0, z, e = noise_fn(len(rows), T, gen)
    draw = run(z0, z, s[rows], x[rows], m[rows], c, e).double().numpy().reshape(n, draws, T, F)
    centre = run(z0, z, s[rows], x[rows], m[rows], c, torch.zeros_like(e)).double().numpy().reshape(n, draws, T, F)
    return ctx, draw, centre, x.double().numpy(), m.bool().numpy()


PREFIX_GROUPS = 4  # prefix-length groups with gains of their own (quarters of 1..T-1)


def prefix_edges(T: int) -> list[int]:
    """Lower edges of the prefix-length groups over 1..T-1 (the first group starts at 1)."""
    groups = min(PREFIX_GROUPS, T - 1)
    return sorted({int(e) for e in np.floor(1 + np.arange(groups) * (T - 1) / groups)})


def _gains_per_horizon(ctx, draw, centre, xs, ms, windows: np.ndarray, T: int, min_windows: int,
                       fallback: np.ndarray | None):
    """One gain per horizon from the given windows; a horizon with fewer than `min_windows` windows takes the
    fallback's gain (or, without one, the previous horizon's). Returns (gains [T-1], coverage before, after)."""
    gains = np.ones(T - 1)
    before, after = [], []
    for k in range(1, T):
        w = windows[ctx[windows] + k <= T]  # windows whose prefix leaves room for horizon k
        at = ctx[w] + k - 1
        obs = ms[w, at]
        if len(w) < min_windows or not obs.any():
            gains[k - 1] = fallback[k - 1] if fallback is not None else (gains[k - 2] if k > 1 else 1.0)
            continue
        mu, dev, real = centre[w, :, at], draw[w, :, at] - centre[w, :, at], xs[w, at]
        before.append(band_hits(mu + dev, real, obs))
        gains[k - 1] = best_gain(mu, dev, real, obs)
        after.append(band_hits(mu + gains[k - 1] * dev, real, obs))
    return gains, before, after


def fit_horizon_gains(generator, noise_fn, X: torch.Tensor, M: torch.Tensor, S: torch.Tensor, seed: int,
                      draws: int = 32, max_windows: int = 512, min_windows: int = 8) -> dict:
    """Spread gains per horizon from held-out windows X [N, T, F] (masks M, statics S): pooled over every prefix
    length ("gains" [T-1], horizon k = index k-1) and per prefix-length group ("prefix_gains" [G, T-1] for the
    groups starting at "prefix_edges"; a horizon a group has too few windows for takes the pooled gain).
    `generator(z0, z, static, teacher, mask, n_teacher, e)` runs the model's generator; `noise_fn(B, T, gen) ->
    (z0, z, e)` is the model's noise draw. The coverages returned are the pooled ones on the calibration
    windows themselves (a sanity check, not a test).

    Why per prefix length: how far the draws' spread is from the real errors depends on how much history the
    generator was given. Measured on Sines (2026-12-03, one model, pooled gains): the 80% band covered 0.87 of
    fresh futures after 2-step histories and 0.72 after 12-16 steps."""
    ctx, draw, centre, xs, ms = _continue_held_out(generator, noise_fn, X, M, S, seed, draws, max_windows)
    n, T = len(ctx), X.shape[1]
    pooled, before, after = _gains_per_horizon(ctx, draw, centre, xs, ms, np.arange(n), T, min_windows, None)
    edges = prefix_edges(T)
    group = np.searchsorted(edges, ctx, side="right") - 1
    per_group = [_gains_per_horizon(ctx, draw, centre, xs, ms, np.flatnonzero(group == g), T, min_windows, pooled)[0]
                 for g in range(len(edges))]
    return {"gains": pooled.tolist(), "prefix_edges": edges, "prefix_gains": [g.tolist() for g in per_group],
            "windows": int(n), "draws": int(draws), "coverage80_before": before, "coverage80_after": after}


def continuation_crps(generator, noise_fn, X: torch.Tensor, M: torch.Tensor, S: torch.Tensor, calibration: dict,
                      seed: int, draws: int = 32, max_windows: int = 512) -> float:
    """Mean CRPS of the calibrated draws over every observed future point of the held-out windows (prefixes
    and noise drawn from `seed`: give another seed than the gains were fitted with). The ensemble CRPS:
    mean |draw - real| - mean |draw - draw'| / 2, from the sorted draws."""
    ctx, draw, centre, xs, ms = _continue_held_out(generator, noise_fn, X, M, S, seed, draws, max_windows)
    T, K = X.shape[1], draws
    g = horizon_gain_factors(calibration, T, ctx)  # [n, T]
    calibrated = np.sort(centre + g[:, None, :, None] * (draw - centre), axis=1)
    weights = (2 * np.arange(1, K + 1) - K - 1).reshape(1, K, 1, 1) / K ** 2
    crps = np.abs(calibrated - xs[:, None]).mean(1) - (calibrated * weights).sum(1)  # [n, T, F]
    future = (np.arange(T)[None, :] >= ctx[:, None])[:, :, None] & ms
    return float(crps[future].mean())


def choose_continuation(generator, noise_fn, X: torch.Tensor, M: torch.Tensor, S: torch.Tensor, seed: int) -> dict:
    """Calibrate `extend` for the whole generator and for its backbone alone (the network's correction off),
    and keep the one whose calibrated continuations score the lower CRPS on the held-out windows (fresh
    prefixes and noise): {"mean": "generator" | "backbone", "crps": {both}, "backbone_skipped": bool,
    **its fit_horizon_gains}. A correction that is exactly zero skips the backbone's runs (they would be the
    same to the float) and copies the generator's fit: "backbone_skipped" is then True.

    Why: the correction is a nonlinear function fitted on the training period; on Stocks (one trending price
    series) it carried the training period's drift into continuations: held-out CRPS 0.025 with it, 0.016
    without, and on the benchmark's later test period the 80% band covered 0.56 with it and 0.79 without
    (benchmarks/RESULTS.md, run 6). Where the correction helps continuations, it is kept. Ties keep it."""
    fits, skipped = {}, _correction_is_zero(generator)
    for name, correction in (("generator", True), ("backbone", False)):
        if not correction and skipped:
            fits[name] = dict(fits["generator"])  # the same runs to the float: a tie, the generator is kept
            continue

        def run(*args, correction=correction):
            return generator(*args, correction=correction)
        fit = fit_horizon_gains(run, noise_fn, X, M, S, seed)
        fit["crps"] = continuation_crps(run, noise_fn, X, M, S, fit, seed=seed + 1)
        fits[name] = fit
    best = "backbone" if fits["backbone"]["crps"] < fits["generator"]["crps"] else "generator"
    return {**fits[best], "mean": best, "crps": {name: fit["crps"] for name, fit in fits.items()},
            "backbone_skipped": skipped}


def _correction_is_zero(generator) -> bool:
    """True when the network's correction adds exactly zero (its output layer is all zero, as the VAR(2) start
    that keep-best often keeps): then the backbone alone runs the very same continuations."""
    last = generator.head[-1]
    return not last.weight.any() and not last.bias.any()


def horizon_gain_factors(calibration: dict, T: int, context) -> np.ndarray:
    """The gain at each of T window positions for a run teacher-forced over `context` steps (an int, or one
    per row), from a calibration ({"gains"} and, since 2026-12-03, {"prefix_edges", "prefix_gains"}): gain_k at
    horizon k (position context + k - 1) of the row's prefix-length group, the last gain past the calibrated
    ones, and the first over the prefix (where draw and centre agree, so it changes nothing). [rows, T]."""
    ctx = np.atleast_1d(np.asarray(context))
    if calibration.get("prefix_gains"):
        table = np.asarray(calibration["prefix_gains"], dtype=np.float64)
        rows = table[np.searchsorted(calibration["prefix_edges"], ctx, side="right") - 1]  # [n, T-1]
    else:  # models saved before: one gain per horizon for every prefix
        rows = np.broadcast_to(np.asarray(calibration["gains"], dtype=np.float64), (len(ctx), len(calibration["gains"])))
    horizon = np.clip(np.arange(T)[None, :] - ctx[:, None], 0, rows.shape[1] - 1)
    return np.take_along_axis(rows, horizon, axis=1)


def apply_horizon_gains(draw: torch.Tensor, centre: torch.Tensor, calibration: dict, context: int) -> torch.Tensor:
    """draws [B, T, F] of a run teacher-forced over `context` steps, and their centres (the same run without
    innovations): centre + gain_k * (draw - centre) at horizon k (the last gain past the calibrated ones)."""
    g = torch.from_numpy(horizon_gain_factors(calibration, draw.shape[1], context)).to(draw.dtype)
    return centre + g.unsqueeze(2) * (draw - centre)

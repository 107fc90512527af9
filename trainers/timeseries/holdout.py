"""Held-out real windows for the time-series GAN (which windows to hold out), and a cheap check during
training that keeps the best generator state seen.

Why hold windows out: the spread of continuations is set on real data the generator was not fitted to
(timeseries/calibration.py): the free-running error of the trained generator on windows it was fitted to is
smaller than on new ones.

Why a check that keeps the best state: on Energy the generator starts as a least-squares VAR(1) that a
post-hoc classifier can hardly tell from real windows (TimeGAN discriminative score 0.11), and the
adversarial phase then drifts away from it (0.40 after 10 CPU-min, benchmarks/RESULTS.md run 3); nothing in
the training losses sees that. The check compares generated windows with (a subsample of) the training
windows, like TimeGAN's score: held-out blocks of one long series were tried and failed (below).

How the split is made: with many series (>= `MIN_SERIES_FOR_SERIES_SPLIT`) whole series are held out (a seeded
choice), so no held-out point was seen in training. With few series (a single long series such as Stocks or
Energy) the latest `share` of each series' windows is held out, and the training windows within seq_len-1 steps
of it, which would share rows with it, are dropped. The latest period because continuations are asked of the
end of a series: the spread must cover the regime next to where forecasts start. Blocks spread through the
series were used in between (one in every 1/share, blocked cross-validation) while the keep-best check also
scored against the held-out windows: on Stocks (prices, not stationary) the tail's level alone let that check's
classifier tell it from anything generated, so blocks were taken; the check now compares with training windows,
and blocks calibrated Stocks' 80% band to 0.44 on the benchmark's held-out future against 0.81 with the tail
(benchmarks/RESULTS.md, run 4 and its diagnostics).

How a state is scored (`HeldOutCheck`): a fixed, seeded draw of generated windows (same noise every check, so
two checks differ only by the generator) against a seeded subsample of real windows, by a small post-hoc GRU classifier of
the kind TimeGAN's discriminative score uses (hidden = features/2, last state read out), trained for a fixed
number of seeded steps (2,000, as the score's own) (same initialisation and batches every check) and scored on a held-out third:
|accuracy - 0.5|. It runs inside `torch.random.fork_rng`, so checking does not change the training's random
stream: with and without checks the trajectory is the same, the check only chooses which state is kept.
A first version scored window summary statistics (level, spread, step sizes, curvature, lag-1
autocorrelation) with a ridge classifier: ~0.1 s, but it separated every state on Sines (0.45, its curvature
statistic sees noise of 0.0006 that TimeGAN's 2-unit GRU does not), so it could not rank states. Checking
against the held-out blocks of Energy (~18 blocks) failed too: the classifier learnt the blocks' levels (its
own train/test split shares blocks) and scored the plain VAR(2) start 0.33 where TimeGAN's score says 0.08.
"""

from __future__ import annotations

import copy

import numpy as np
import torch

from ganstream.trainers.timeseries.parallel_gru import held_out_accuracies

MIN_SERIES_FOR_SERIES_SPLIT = 10
CHECK_WINDOWS = 4000  # real (and generated) windows a keep-best check compares


def holdout_split(series_of_window: np.ndarray, seq_len: int, share: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(training window indices, held-out window indices) for windows listed series by series in time order
    (sliding_windows' order). share = 0: everything trains. Seeded by `seed` alone (its own stream, so the
    training stream is the same whatever the split)."""
    W = len(series_of_window)
    everything = np.arange(W)
    if share <= 0 or W == 0:
        return everything, everything[:0]
    series, first, counts = np.unique(series_of_window, return_index=True, return_counts=True)
    if len(series) >= MIN_SERIES_FOR_SERIES_SPLIT:
        rng = np.random.default_rng([int(seed), 0x401D])
        n_held = max(1, int(round(share * len(series))))
        held_series = rng.choice(series, n_held, replace=False)
        held = np.isin(series_of_window, held_series)
        return everything[~held], everything[held]
    slot = np.searchsorted(series, series_of_window)
    pos = everything - first[slot]  # window position inside its series
    n_windows = counts[slot]
    held = pos >= n_windows - np.maximum(1, np.round(share * n_windows)).astype(int)  # each series' latest share
    near = np.zeros(W, dtype=bool)  # training windows that share a row with a held-out one
    for shift in range(1, seq_len):
        near[:-shift] |= held[shift:] & (series_of_window[:-shift] == series_of_window[shift:])
    return everything[~held & ~near], everything[held]


def detection_scores(real: torch.Tensor, fake: torch.Tensor, mask: torch.Tensor, seed: int, steps: int = 2000,
                     batch_size: int = 128, repeats: int = 1) -> list[float]:
    """|accuracy - 0.5| on a held-out third, once per repeat, of GRU classifiers (hidden = features/2, last
    state read out, as TimeGAN's score) trained `steps` Adam steps on the other two thirds of real vs fake
    windows [n, T, F], both seen through `mask` (input: values x mask, mask). Each repeat has its own split,
    initialisation and batches; the repeats train side by side (ParallelGRUs) in about the time of one.
    Seeded: the same for the same n and seed; the global torch RNG is left as it was."""
    n, F = real.shape[0], real.shape[2]
    rng = np.random.default_rng([int(seed), 0xD7EC])
    cut = (2 * n) // 3
    pool = torch.cat([torch.cat([real * mask, mask], 2), torch.cat([fake * mask, mask], 2)])
    labels = torch.cat([torch.ones(n), torch.zeros(n)])
    orders = [rng.permutation(n) for _ in range(repeats)]
    train = torch.from_numpy(np.stack([np.r_[o[:cut], n + o[:cut]] for o in orders]))  # [R, 2 cut]
    test = torch.from_numpy(np.stack([np.r_[o[cut:], n + o[cut:]] for o in orders]))
    accuracies = held_out_accuracies(pool, labels, train, test, max(1, F // 2), steps, batch_size, rng, seed)
    return [abs(a - 0.5) for a in accuracies]


def detection_score(real: torch.Tensor, fake: torch.Tensor, mask: torch.Tensor, seed: int, steps: int = 2000,
                    batch_size: int = 128, repeats: int = 1) -> float:
    """The mean of `detection_scores`."""
    return float(np.mean(detection_scores(real, fake, mask, seed, steps, batch_size, repeats)))


class HeldOutCheck:
    """Scores generator states against real windows (a seeded subsample of up to `max_windows`) and keeps a
    copy of the best state. Each check costs `steps` steps of `repeats` classifiers trained side by side
    (~20 CPU-s for 3, ~28 for 9 at 2,000 steps on 4,000 windows of Sines); the score is their mean.

    A later state replaces the best only when it scores lower by more than `margin`: states closer than that
    are within the check's noise, and the earlier one (first of all the least-squares backbone) is the simpler
    model. Why these defaults (4,000 windows, 3 classifiers, margin 0.01): four checks of one Sines state with
    different seeds spread 0.010-0.034 (sd 0.009) with 3 classifiers and 0.010-0.016 (sd 0.002) with 9 (2026-12-03;
    9 cost 28 CPU-s per check against 20 on Sines and much more on Energy's 28 features, see
    TimeSeriesGAN's `check_classifiers`); a margin near the noise of a difference of two checks. Earlier, with
    1,000 windows and one
    classifier the check scored Sines' VAR(2) start 0.060 and a trained state 0.040 and kept the trained one,
    which TimeGAN's score puts at 0.088 against the start's 0.024 (benchmarks/RESULTS.md, run 4); two
    classifier seeds on the same 1,000 windows scored one state 0.184 and 0.114.

    `generate(generator, noise) -> windows [n, T, F]` runs the checked generator as the model samples (scaled units); the noise is drawn once
    (seeded), so every check compares the same draw through a different generator. Ties (within the margin) keep the earlier
    state (the backbone, checked first, wins over a later state that is no better)."""

    def __init__(self, real: torch.Tensor, real_mask: torch.Tensor, noise: tuple, generate, max_windows: int = CHECK_WINDOWS,
                 seed: int = 0, steps: int = 2000, repeats: int = 3, margin: float = 0.01):
        rng = np.random.default_rng([int(seed), 0xC4EC])
        n = min(len(real), max_windows)
        pick = torch.from_numpy(np.sort(rng.permutation(len(real))[:n]))
        self.real, self.mask = real[pick], real_mask[pick]
        self.noise, self.generate, self.seed, self.steps = noise, generate, seed, steps
        self.repeats, self.margin = repeats, margin
        self.scores: list[dict] = []
        self.best_score, self.best_state, self.best_at = float("inf"), None, None

    def check(self, generator: torch.nn.Module, at: dict) -> float:
        with torch.inference_mode():
            fake = self.generate(generator, self.noise)[: len(self.real)]
        score = detection_score(self.real, fake.clone(), self.mask, self.seed, self.steps, repeats=self.repeats)
        self.scores.append({**at, "score": score})
        if score < self.best_score - (self.margin if self.best_state is not None else 0.0):
            self.best_score, self.best_at = score, dict(at)
            self.best_state = copy.deepcopy(generator.state_dict())
        return score

    def to_state(self) -> dict:
        """The check's record (scores, best) as JSON; the best state's weights travel beside it."""
        return {"scores": self.scores, "best_score": None if self.best_state is None else self.best_score,
                "best_at": self.best_at}

    def load_state(self, state: dict, best_state: dict | None) -> None:
        """Continue a check from its record (`to_state`) and the best state's weights (a resumed fit)."""
        self.scores = list(state["scores"])
        self.best_at = state["best_at"]
        self.best_score = float("inf") if state["best_score"] is None else float(state["best_score"])
        self.best_state = best_state

    def restore_best(self, generator: torch.nn.Module) -> bool:
        """Load the best state into the generator; True if it was not the last one checked."""
        if self.best_state is None:
            return False
        generator.load_state_dict(self.best_state)
        return self.best_at != {k: v for k, v in self.scores[-1].items() if k != "score"}

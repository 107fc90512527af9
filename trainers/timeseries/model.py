"""The time-series GAN: an autoregressive recurrent generator trained adversarially on whole windows, with
masks for gaps and conditional continuation built in.

Why this design (and not TimeGAN's four networks):
- Continuation is the product, so the generator is autoregressive: a GRU whose input at step t is per-step
  noise, the previous value and the static attributes, with a per-series noise vector setting its initial
  state (series-level variety such as a frequency or a level). Given a history, the same network is run
  teacher-forced over it and then free-runs: `extend` is one batched forward pass, K draws at once.
- A linear backbone (timeseries/backbone.py): the generator's mean is a least-squares VAR(2) (`backbone="var2"`,
  the default for new fits; "var1" is the VAR(1) of run 3) fitted before training, frozen, plus the GRU's
  correction (which starts at zero), plus Gaussian innovations whose scale is re-estimated from the
  teacher-forced residuals after the warm-up. Why VAR(2): a sine is linear in its last two values; on Sines the
  least-squares VAR(2) alone scores 0.024 on TimeGAN's discriminative score (VAR(1) 0.40, TimeGAN 0.011), on
  Stocks and Energy it is no worse than the VAR(1) (0.14 vs 0.13, 0.08 vs 0.10; benchmarks/RESULTS.md run 4).
  Measured at 10-13 CPU-min with the start and warm-up below (runs 7-8, TimeGAN's units; RESULTS.md): Stocks
  0.031-0.042 / 0.032, Energy 0.060-0.064 / 0.251, at or below TimeGAN's (0.102 / 0.038, 0.236 / 0.273); Sines
  0.008 on one seeded fit of seven and 0.014-0.028 on the others (TimeGAN 0.011), predictive 0.093-0.096 (the real
  Sines' own is 0.093).
  Weak (run 3): the adversarial phase drifts away from the backbone on Energy (0.11 -> 0.40 at 10 CPU-min;
  letting the game move the VAR itself was worse still, hence frozen). Weak (run 7): on Stocks and Energy the
  state kept is the start (VAR(2) + the copula start below): no trained state beat it on the check (Energy's
  warm-up and game states check 0.24-0.34 against the start's 0.016); only on Sines does training win, and
  rarely (run 8: with the 9-classifier check the start was kept on all three Sines seeds; with keep-best off
  the game's final Sines state scored 0.070-0.075 on seeds 1-2: the game ends worse than it starts).
- Where a series starts (`start="copula"`, timeseries/start.py): `sample` draws the first steps (two for a
  VAR(2)) from a Gaussian copula of the real windows' first values and first changes (empirical margins), then
  runs the generator teacher-forced over them, as `extend` runs a history; the game's from-scratch windows and
  the keep-best check start the same way. The backbone's Gaussian start sent ~4% of Sines' series down at
  first (no real sine goes down first), and the plain VAR(2) start of Stocks checks 0.012 with the copula start
  against 0.138 with its Gaussian one (run 7 vs run 6, same check). Models with static attributes keep the
  Gaussian start: the copula does not condition on them.
- A multi-step warm-up (`free_run_share`): half the warm-up's rows are teacher-forced over a random prefix only
  and run free after it, so the supervised loss holds the error that free runs compound, not only the one-step
  error. On Sines the one-step-trained GRU's free runs were 0.06 off (scaled units) by step 23; 2 CPU-min of
  free-run training took that to 0.018 and the model's TimeGAN score from 0.020 to 0.015, and to 0.0065 when
  its series start from real windows' first two steps (2026-12-03 prototype, 5 classifiers each).
- Keep the best state (`keep_best`, timeseries/holdout.py): before the first step and every
  `check_every_steps` generator steps a seeded post-hoc GRU classifier of TimeGAN's kind scores a fixed draw of
  samples against real windows; the state it tells least from real is the one kept, so a game that only makes
  things worse ends at its start. The check runs in a forked torch RNG: it never changes the trajectory.
  Its score is the mean of `check_classifiers` classifiers (default 3). More are steadier: on one Sines state,
  four checks with different seeds spread 0.010-0.034 (sd 0.009) with 3 and 0.010-0.016 (sd 0.002) with 9, at
  28 instead of 20 CPU-s per check. Why 3 stays the default: on wide data a check costs much more, and the
  first and last checks run outside the CPU budget — Energy (28 features) with 9 took 18.6 CPU-min in all
  for a 13-min budget (run 8; 11.9 for 10 with 3, run 7), over the 15 minutes the product promises; and in
  run 8 the 9-classifier check kept the start on every dataset and seed, as the 3-classifier check did on
  Stocks and Energy (run 7) and on Sines seeds 1-2 (the 2026-12-03 14-min side runs).
- Calibrated continuations (`calibrate_continuations`, timeseries/calibration.py): a share of the real windows
  (`holdout_share`: whole series, or the latest share of a few long ones) is kept out of training; after it, each is
  continued from a random prefix, and the innovations' contribution to the draws is scaled per horizon so
  that their 80% band holds its nominal level on them. One-step calibration alone left the 80% band covering 0.28-0.55 of
  held-out futures (run 3): a multi-step free run also carries the model's compounding error. The same
  held-out windows choose whether `extend` runs the whole generator or the backbone alone (lower held-out
  CRPS wins): on Stocks the GRU's correction carried the training period's upward drift into continuations
  (80% band 0.56 with it, 0.79 with the backbone alone, same model; benchmarks/RESULTS.md 2026-12-03).
- Training is WGAN-GP against a small temporal-convolution critic over whole windows (a conv critic makes the
  gradient penalty's double backward cheap on a CPU, unlike a recurrent critic). Half of the windows in a
  batch are generated from scratch (what `sample` does); the other half keep a real prefix of random length
  h and the generator continues it, so the critic also judges "does this future fit this past" — that is
  what calibrates the spread of continuations, not only their mean.
- Smoothness: a diagnosis on Sines (benchmarks/timeseries_ablation.py) found generated paths with the right
  values and step sizes but ~2x the real curvature (second differences) and 7% of points past the range,
  which a post-hoc GRU classifier can pick up and a Lipschitz-held critic barely sees. Default answer: the
  critic also reads the first and second differences standardised by their real spread (`critic_diff_order`,
  timeseries/critic.py). Measured at 2 CPU-min, 2 seeds each (RESULTS.md): discriminative 0.177 -> 0.164
  (within seed noise) and the 80% continuation band's coverage 0.58 -> 0.68. Matching the curvature in the
  moment term too (`moment_diff_order=2`) fixes the curvature (ratio 2.0 -> 1.2, out-of-range 7% -> 3-5%)
  and gives 0.151, but the continuation bands collapse (coverage 0.27): it stays an option, not the default.
  Models saved before these options load with the values they were trained with (LEGACY_CONFIG).
- Budget: training can stop on process CPU time (`cpu_budget_s`, checked every step; the warm-up then
  ends at `warmup_share` of that budget), which a contended machine does not distort as it does wall time.
- A TimeGAN-style supervised loss (teacher-forced one-step-ahead error on observed points) is how the
  dynamics are learnt fast: the first `warmup_share` of the epochs train only that (no critic, a third of
  the cost of an adversarial step, like TimeGAN's supervisor pre-training); afterwards it stays in the
  generator loss on the real prefixes, next to the adversarial term that restores the spread.
- Gaps: the critic sees every window as (values x mask, mask), and a fake window is shown through the mask of
  the real window it is paired with, so the critic can only compare observed points and the generator learns
  the complete series (the AmbientGAN/MisGAN idea). When teacher-forcing over a gap the generator feeds its
  own prediction instead of the missing value; the supervised loss counts observed points only.
- Scaling: one min-max per feature over the training data (TimeGAN's convention, timeseries/data.py), with a
  linear output so continuations may leave the training range (trending series).
Everything runs on 1 CPU thread in minutes: the GRU is small, the loop over time steps is the only loop.

Contract used by downstream code (Gym env, Beam `--format episodes`), keep it stable:
- `sample(n_sequences, seed=0, length=None, clip=None)` -> long DataFrame: `series_id` (0..n-1), `step` (0..length-1),
  the feature columns in original units, then the static columns if the model has any.
- `extend(history_df, horizon, draws, seed=0)` -> long DataFrame: `series_id` (the history's ids), `draw`
  (0..draws-1), `step` (continuing the history's steps: a history of h steps is continued at h..h+horizon-1),
  the feature columns.
"""

from __future__ import annotations

import math
import os
import time

import numpy as np
import pandas as pd
import torch
import torch.nn as nn

from ganstream.trainers.base import GenerativeModel
from ganstream.trainers.errors import ConfigError, DataError, ModelError
from ganstream.trainers.persistence import load_network, read_meta, save_model_dir
from ganstream.trainers.progress import ProgressFn
from ganstream.trainers.runtime import Budget, epoch_rng, seed_everything
from ganstream.trainers.timeseries.backbone import LinearBackbone
from ganstream.trainers.timeseries.config import LEGACY_CONFIG, TimeSeriesGANConfig  # noqa: F401
from ganstream.trainers.timeseries.generator import ARGenerator
from ganstream.trainers.timeseries.calibration import apply_horizon_gains, choose_continuation
from ganstream.trainers.timeseries.critic import ConvCritic
from ganstream.trainers.timeseries.timegrid import TimeGrid, user_columns
from ganstream.trainers.timeseries.data import FeatureScaler, SeriesLayout, StaticEncoder, WindowBank, infer_layout, parse_series
from ganstream.trainers.timeseries.holdout import CHECK_WINDOWS, HeldOutCheck, holdout_split
from ganstream.trainers.timeseries.start import StartCopula


class TimeSeriesGAN(GenerativeModel):
    """A GAN for multivariate time series with gaps (scikit-learn conventions: parameters in __init__, then
    `fit`, `sample`, `extend`, `save`; `ganstream.load(dir)` reads a saved one back).

        gan = TimeSeriesGAN(seq_len=24, id_col="ticker", time_col="date").fit(prices)   # long or wide table
        paths = gan.sample(100, seed=0)                     # 100 sequences: series_id, step, features
        futures = gan.extend(history, horizon=10, draws=20) # 20 continuations of every series in `history`
        gan.save("runs/prices")

    `TimeSeriesGAN(config)` also takes a TimeSeriesGANConfig; keywords override its fields.
    """

    kind = "timeseries"

    def __init__(self, config: TimeSeriesGANConfig | None = None, **params):
        base = config.to_json() if config is not None else {}
        self.config = TimeSeriesGANConfig.from_options(**{**base, **params})
        self.layout: SeriesLayout | None = None
        self.time_grid: TimeGrid | None = None  # the id and time columns of the training table (timegrid.py)
        self.scaler: FeatureScaler | None = None
        self.static: StaticEncoder | None = None
        self.generator: ARGenerator | None = None
        self.critic: ConvCritic | None = None
        self.history: list[dict] = []
        self.training: dict = {}
        self.continuation: dict | None = None  # per-horizon innovation gains of extend (None: models saved before)
        self._held_out = self._check = self._check_ref = None  # held-out / reference windows and the check, during fit only

    # ---------------------------------------------------------------- fit
    def fit(self, table: pd.DataFrame, progress: ProgressFn | None = None, checkpoints=None,
            info=None) -> "TimeSeriesGAN":
        """Fit on a long or wide table (see timeseries/data.py) in this process; gaps (NaN) are trained through
        masks. The Ray backend (backends/ray_timeseries.py) runs the same `prepare`, `run_epoch` and
        `_finish_held_out`. `checkpoints` (the local backend's backends/checkpoint.LocalCheckpoints) writes one per
        epoch and, with one to resume from, continues from it exactly (weights, optimiser states, the warm-up's
        state, the spent CPU budget and the keep-best check's best state)."""
        cfg = self.config.validate()
        t0, cpu0 = time.perf_counter(), time.process_time()
        bank = self.prepare(table)
        if len(bank) < cfg.batch_size and info:
            info(f"batch size {cfg.batch_size} -> {len(bank)}: the data has {len(bank):,} training windows")
        self._train(bank, progress, checkpoints)
        held_out = self._finish_held_out()
        self.training.update(held_out=held_out, seconds=time.perf_counter() - t0, cpu_seconds=time.process_time() - cpu0,
                             epochs_run=len(self.history), final=self.history[-1] if self.history else {})
        return self

    def prepare(self, table: pd.DataFrame) -> WindowBank:
        """Everything before the first training step, from the whole table: layout, scaling, windows (as a
        WindowBank), networks (seeded: the same config gives the same initial weights), the critic's difference
        scales and the least-squares backbone. Raises DataError on a table the model cannot learn from."""
        cfg = self.config.validate()
        seed_everything(cfg.seed)
        self.layout = infer_layout(table, cfg.id_col, cfg.time_col, cfg.static_cols)
        data = parse_series(table, self.layout, what="training data")
        self.time_grid = TimeGrid.learn(table, self.layout)
        L = cfg.seq_len
        long_enough = data.lengths >= L
        if not long_enough.any():
            raise DataError(f"training data: no series has at least --seq-len {L} steps (longest: "
                            f"{data.lengths.max()}); lower --seq-len or give longer series")
        self.scaler = FeatureScaler.fit(data.values)
        self.static = StaticEncoder.fit(data.static) if data.static is not None else StaticEncoder([])
        static = self.static.transform(data.static) if data.static is not None else np.zeros((len(data.ids), 0))
        bank = WindowBank.build(self.scaler.transform(data.values), data.starts, static, L)
        train, held = holdout_split(bank.owner, L, cfg.holdout_share, cfg.seed)
        self._held_out = bank.subset(held).all() if len(held) else None
        bank_all, bank = bank, bank.subset(train)
        self._check_ref = bank  # what the keep-best check compares samples with
        self._build_networks()
        X, M, _ = bank.all()
        if cfg.critic_diff_order:
            self.critic.fit_scales(X, M)
        if self.generator.backbone is not None:
            self.generator.backbone.fit(X, M)
        if self.generator.start is not None:
            self.generator.start.fit(X, M)
        self.training = {"series": len(data.ids), "series_used": int(long_enough.sum()),
                         "series_too_short": int((~long_enough).sum()), "windows": len(bank_all),
                         "windows_trained": len(bank), "features": len(self.layout.features),
                         "missing_share": float(1 - M.mean().item()), "epochs": cfg.epochs}
        return bank

    def _build_networks(self) -> None:
        cfg, F = self.config, len(self.layout.features)
        self.generator = ARGenerator(F, self.static.dim, cfg.series_noise_dim, cfg.step_noise_dim, cfg.hidden, cfg.layers,
                                     backbone=cfg.backbone != "none", seq_len=cfg.seq_len,
                                     order=2 if cfg.backbone == "var2" else 1, start_steps=self._start_steps_for(cfg))
        self.critic = ConvCritic(F, self.static.dim, cfg.seq_len, cfg.critic_hidden, cfg.critic_diff_order)

    def _start_steps_for(self, cfg: TimeSeriesGANConfig) -> int:
        """Steps drawn from the start copula: the backbone's own start steps (2 for a VAR(2), else 1); 0 (the
        generator's Gaussian start) for start="gaussian" and for models with static attributes, whose start
        the copula would not condition on them."""
        if cfg.start != "copula" or self.static.dim:
            return 0
        return min(2 if cfg.backbone == "var2" else 1, cfg.seq_len)

    def _draw_start(self, B: int, gen: torch.Generator | None = None) -> torch.Tensor | None:
        """B series starts [B, k, F] from the start copula, or None when the model starts from its Gaussian."""
        start = self._plain_generator().start
        return start.sample(B, gen) if start is not None and bool(start.fitted) else None

    @staticmethod
    def _from_scratch(G: nn.Module, z0, z, s, e, start: torch.Tensor | None) -> torch.Tensor:
        """Generated windows [B, T, F]: the drawn start's k steps, then the generator teacher-forced over them
        and free-running after (as `extend` continues a history); without a start, the generator alone."""
        if start is None:
            return G(z0, z, s, e=e)
        B, T, F = z.shape[0], z.shape[1], start.shape[2]
        k = min(start.shape[1], T)
        teacher = torch.cat([start[:, :k], start.new_zeros(B, T - k, F)], 1)
        mask = torch.cat([torch.ones(B, k, F), torch.zeros(B, T - k, F)], 1)
        out = G(z0, z, s, teacher, mask, torch.full((B,), k), e)
        return torch.cat([start[:, :k], out[:, k:]], 1)

    @property
    def backbone(self) -> LinearBackbone | None:
        """The generator's backbone, also when the generator is wrapped for DDP (Ray Train workers)."""
        return getattr(self.generator, "module", self.generator).backbone

    def _noise(self, B: int, T: int, gen: torch.Generator | None = None):
        """(series noise, step noise, innovations or None): the innovations are drawn last and only with a
        backbone, so models without one keep their random streams."""
        cfg = self.config
        z0, z = torch.randn(B, cfg.series_noise_dim, generator=gen), torch.randn(B, T, cfg.step_noise_dim, generator=gen)
        e = torch.randn(B, T, len(self.layout.features), generator=gen) if self.backbone is not None else None
        return z0, z, e

    def optimizers(self) -> dict[str, torch.optim.Optimizer]:
        """The three optimisers of a fit: the warm-up's (generator), then the game's generator and critic."""
        cfg = self.config
        return {"warmup": self._generator_optimizer(cfg.warmup_lr),
                "generator": self._generator_optimizer(cfg.lr, betas=(0.5, 0.9)),
                "critic": torch.optim.Adam(self.critic.parameters(), lr=cfg.critic_lr, betas=(0.5, 0.9))}

    def _generator_optimizer(self, lr: float, **kw) -> torch.optim.Optimizer:
        """Adam over the network at `lr` and over the (already fitted) backbone at lr x backbone_lr_scale.
        Frozen by default: on Energy, letting the adversarial game move the least-squares VAR(1) (scale 0.1)
        took the discriminative score from 0.18 (frozen) to 0.31 at 2 CPU-min (benchmarks/RESULTS.md)."""
        G = self.generator
        backbone = list(G.backbone.parameters()) if G.backbone is not None else []
        in_backbone = {id(p) for p in backbone}
        groups = [{"params": [p for p in G.parameters() if id(p) not in in_backbone]}]
        if backbone and self.config.backbone_lr_scale > 0:
            groups.append({"params": backbone, "lr": lr * self.config.backbone_lr_scale})
        for p in backbone:
            p.requires_grad_(self.config.backbone_lr_scale > 0)
        return torch.optim.Adam(groups, lr=lr, **kw)

    @torch.no_grad()
    def recalibrate_innovations(self, bank: WindowBank, rng: np.random.Generator, n: int = 4096) -> None:
        """Re-estimate the innovation scales from the teacher-forced one-step residuals of the whole generator
        on (up to) n real windows: after the warm-up the network explains part of what the VAR(1) left over."""
        idx = rng.permutation(len(bank))[:n]
        x, m, s = bank.take(idx)
        z0, z, _ = self._noise(len(idx), x.shape[1])
        G = getattr(self.generator, "module", self.generator)  # plain: a DDP forward on one rank would wait for the others
        mean = G(z0, z, s, x, m, torch.full((len(idx),), x.shape[1]))  # e=None: the mean path
        self.backbone.recalibrate(x - mean, m.bool().all(2))

    def warmup_epochs(self) -> int:
        return int(self.config.warmup_share * self.config.epochs)

    def steps_per_epoch(self, windows: int, workers: int = 1) -> int:
        """Steps of one epoch: together the workers' batches visit about every window once."""
        B = min(self.config.batch_size, windows)
        return max(1, math.ceil(windows / (B * workers)))

    def _train(self, bank: WindowBank, progress: ProgressFn | None, checkpoints=None) -> None:
        cfg = self.config
        opts = self.optimizers()
        resumed = checkpoints.latest() if checkpoints is not None else None
        state = {"epoch": 0, "adversarial": False, "calibrated": self.backbone is None, "cpu_s": 0.0}
        if resumed is not None:
            state.update(self._resume(resumed, opts))
        else:  # before the budget's clock: the first check must not eat the warm-up's share
            self._held_out_start()
        self.generator.train(); self.critic.train()
        budget = Budget(cfg.cpu_budget_s, cfg.time_budget_s)
        budget.cpu0 -= state["cpu_s"]  # a resumed fit has spent part of its budget already
        cpu_before = time.process_time()
        for epoch in range(state["epoch"] + 1, cfg.epochs + 1):
            rng = epoch_rng(cfg.seed, 0, epoch)
            # warm-up ends after its share of the planned epochs or of the CPU budget, whichever comes first
            in_warmup = (not state["adversarial"] and epoch <= self.warmup_epochs()
                         and not budget.cpu_share_past(cfg.warmup_share))
            if not in_warmup and not state["calibrated"]:
                self.recalibrate_innovations(bank, rng)
                state["calibrated"] = True
            metrics = self.run_epoch(bank, rng, opts, epoch, in_warmup, self.steps_per_epoch(len(bank)),
                                     budget.cpu_spent)
            if metrics is None:
                break
            state.update(epoch=epoch, adversarial=state["adversarial"] or not in_warmup,
                         cpu_s=state["cpu_s"] + time.process_time() - cpu_before)
            cpu_before = time.process_time()
            self.history.append(metrics)
            self._held_out_tick()
            done = budget.cpu_spent() or budget.wall_spent() or epoch == cfg.epochs
            if checkpoints is not None:
                self._save_checkpoint(checkpoints, epoch, opts, state, last=done)
            if progress:
                progress(metrics)
            if done:
                break
        self.generator.eval(); self.critic.eval()

    def _save_checkpoint(self, checkpoints, epoch: int, opts: dict, state: dict, last: bool) -> None:
        check = self._check.to_state() if self._check is not None else None
        best = {"best_generator": self._check.best_state} if self._check is not None and self._check.best_state else {}
        checkpoints.save(epoch, self, opts, best, state={**state, "check": check}, last=last)

    def _resume(self, resumed, opts: dict) -> dict:
        """Continue from a local checkpoint: the weights, optimiser states, history and keep-best check it holds
        (the check's reference windows and noise come back from `prepare`'s seeded data, without re-running its
        first check). Returns the training state to continue from."""
        saved = type(self).load(resumed.model_dir)
        self.generator.load_state_dict(saved.generator.state_dict())
        self.critic.load_state_dict(saved.critic.state_dict())
        self.history = list(saved.history)
        resumed.restore(opts, {})
        state = resumed.state()
        if state.get("check") is not None:
            self._held_out_start(first_check=False)
            if self._check is not None:
                self._check.load_state(state["check"], resumed.networks().get("best_generator"))
        return {k: state[k] for k in ("epoch", "adversarial", "calibrated", "cpu_s")}

    def run_epoch(self, bank: WindowBank, rng: np.random.Generator, opts: dict, epoch: int, in_warmup: bool,
                  steps: int, stop=lambda: False, workers: int = 1) -> dict | None:
        """One epoch of `steps` steps on windows drawn from `bank` (supervised in the warm-up, adversarial
        after), stopping early when `stop()` turns true before a step. The in-process fit and every Ray Train
        worker run this same function. Returns the epoch's metrics, or None when no step was taken."""
        cfg = self.config
        B = min(cfg.batch_size, len(bank))
        t_epoch, cpu_epoch = time.perf_counter(), time.process_time()
        sums = {"d_loss": 0.0, "g_loss": 0.0, "sup_loss": 0.0, "wdist": 0.0}
        done = 0
        for _ in range(steps):
            if stop():
                break
            if in_warmup:
                sums["sup_loss"] += self._supervised_step(bank, rng, opts["warmup"], B)
            else:
                for k, v in self._adversarial_step(bank, rng, opts["generator"], opts["critic"], B).items():
                    sums[k] += v
            done += 1
        if done == 0:
            return None
        seconds = time.perf_counter() - t_epoch
        return {"epoch": epoch, "epochs": cfg.epochs, "warmup": in_warmup,
                **{k: v / done for k, v in sums.items()}, "steps": done,
                "windows_per_s": done * B * workers / seconds, "epoch_s": seconds,
                "epoch_cpu_s": time.process_time() - cpu_epoch}

    # ------------------------------------------------- held-out windows: keep the best state, calibrate
    def _held_out_start(self, first_check: bool = True) -> None:
        """Hook at the start of training (backbone fitted, no step taken): score the starting state, so a game
        that only makes things worse ends where it started (timeseries/holdout.py). The check compares samples
        with a seeded subsample of the TRAINING windows, as TimeGAN's score does: against the held-out blocks of
        one long series (Energy: ~18 blocks of ~5 days) its classifier learnt those blocks' levels and called
        even the plain VAR(2) start 0.33 distinguishable (its TimeGAN score: 0.08)."""
        cfg = self.config
        self._check = None
        if not (cfg.keep_best and self._check_ref is not None and len(self._check_ref) >= 12):
            return  # (a handful of windows cannot train and test a classifier)
        X, M, S = self._check_ref.all()
        n = min(len(X), CHECK_WINDOWS)
        gen = torch.Generator().manual_seed(int(cfg.seed) + 7919)
        noise = (*self._noise(n, cfg.seq_len, gen), self._draw_start(n, gen))
        s = S[torch.from_numpy(np.random.default_rng([int(cfg.seed), 0x57A7]).integers(len(S), size=n))]
        self._check = HeldOutCheck(X, M, noise, lambda g, nz: self._from_scratch(g, nz[0], nz[1], s, nz[2], nz[3]),
                                   seed=cfg.seed, steps=cfg.check_classifier_steps,
                                   repeats=cfg.check_classifiers)
        if first_check:
            self._check.check(self._plain_generator(), {"epoch": 0, "steps": 0})

    def _held_out_tick(self) -> None:
        """Hook at the end of an epoch: a check once `check_every_steps` generator steps passed since the last."""
        if self._check is None:
            return
        steps = sum(h["steps"] for h in self.history)
        if steps - self._check.scores[-1]["steps"] >= self.config.check_every_steps:
            self._check.check(self._plain_generator(), {"epoch": len(self.history), "steps": steps})

    def _finish_held_out(self) -> dict:
        """After training: check the final state, restore the best one, then fit the continuation gains on
        the held-out windows (timeseries/calibration.py). Returns what happened, for `training`."""
        cfg, G = self.config, self._plain_generator()
        info: dict = {"windows": 0 if self._held_out is None else len(self._held_out[0])}
        if self._check is not None:
            steps = sum(h["steps"] for h in self.history)
            if self._check.scores[-1]["steps"] != steps:
                self._check.check(G, {"epoch": len(self.history), "steps": steps})
            info.update(restored_earlier_state=self._check.restore_best(G), best=self._check.best_at,
                        best_score=self._check.best_score, checks=self._check.scores)
        if cfg.calibrate_continuations and self._held_out is not None and G.backbone is not None:
            self.continuation = choose_continuation(G, self._noise, *self._held_out, seed=cfg.seed)
        self._held_out = self._check = self._check_ref = None
        return info

    def _plain_generator(self) -> nn.Module:
        """The generator without a DDP wrapper (a wrapped forward on one rank alone would wait for the others)."""
        return getattr(self.generator, "module", self.generator)

    def _adversarial_step(self, bank: WindowBank, rng, opt_g, opt_d, B) -> dict:
        """`critic_steps` critic updates, then one generator update (adversarial + supervised + moments)."""
        cfg, G, D = self.config, self.generator, self.critic
        L = cfg.seq_len
        steps_t = torch.arange(L)
        for i in range(cfg.critic_steps):
            x, m, s = bank.take(rng.integers(len(bank), size=B))
            keep = rng.random(B) < cfg.continuation_share
            last = i == cfg.critic_steps - 1
            with torch.set_grad_enabled(last):
                z0, z, e = self._noise(B, L)
                # windows from scratch start as `sample` starts them: a drawn start (if any) teacher-forced
                start = self._draw_start(B)
                k = 0 if start is None else min(start.shape[1], L)
                x_in, m_in = x, m
                if k:
                    scratch = torch.from_numpy(~keep).view(B, 1, 1)
                    head = torch.cat([start[:, :k], x.new_zeros(B, L - k, x.shape[2])], 1)
                    on_head = scratch & (steps_t < k).view(1, L, 1)
                    x_in, m_in = torch.where(on_head, head, x), torch.where(on_head, torch.ones_like(m), m)
                n_teacher = torch.from_numpy(np.where(keep, rng.integers(1, L, size=B), k))
                out, mean = G(z0, z, s, x_in, m_in, n_teacher, e, return_mean=True)
                prefix = (steps_t.unsqueeze(0) < n_teacher.unsqueeze(1)).unsqueeze(2).float()  # [B, L, 1]
                fake = prefix * x_in + (1 - prefix) * out
            d_real, d_fake = D(x, m, s), D(fake.detach(), m, s)
            wdist = d_real.mean() - d_fake.mean()
            loss_d = -wdist + self._gradient_penalty(x, fake.detach(), m, s)
            opt_d.zero_grad(set_to_none=True)
            loss_d.backward()
            opt_d.step()
        for p in D.parameters():
            p.requires_grad_(False)
        observed = prefix * m * torch.from_numpy(keep).float().view(B, 1, 1)  # real prefixes only
        sup = ((mean - x) ** 2 * observed).sum() / observed.sum().clamp_min(1.0)  # innovations excluded
        moments = _moment_gap(fake, x, m, cfg.moment_diff_order)
        loss_g = (-D(fake, m, s).mean() + cfg.supervised_weight * (sup + 1e-8).sqrt()
                  + cfg.moment_weight * moments)
        opt_g.zero_grad(set_to_none=True)
        loss_g.backward()
        opt_g.step()
        for p in D.parameters():
            p.requires_grad_(True)
        return {"d_loss": loss_d.item(), "g_loss": loss_g.item(), "sup_loss": sup.item(), "wdist": wdist.item()}

    def _supervised_step(self, bank: WindowBank, rng, opt_g, B) -> float:
        """Teacher-forced next-step prediction on a batch (observed points only)."""
        x, m, s = bank.take(rng.integers(len(bank), size=B))
        L = x.shape[1]
        z0, z, _ = self._noise(B, L)
        # a share of the rows is teacher-forced over a random prefix only and runs free after it, so the loss also
        # holds the multi-step error that sampling and extend compound (one-step error alone left Sines' free runs
        # 0.06 off by step 23, 2026-12-03); the others are teacher-forced throughout (one-step prediction)
        free = rng.random(B) < self.config.free_run_share
        n_teacher = torch.from_numpy(np.where(free, rng.integers(1, L, size=B), L))
        out = self.generator(z0, z, s, x, m, n_teacher)  # e=None: the mean path
        sup = ((out - x) ** 2 * m).sum() / m.sum().clamp_min(1.0)
        opt_g.zero_grad(set_to_none=True)
        sup.backward()
        opt_g.step()
        return sup.item()

    def _gradient_penalty(self, real, fake, mask, static) -> torch.Tensor:
        alpha = torch.rand(real.shape[0], 1, 1)
        x_hat = (alpha * real + (1 - alpha) * fake).requires_grad_(True)
        grad = torch.autograd.grad(self.critic(x_hat, mask, static).sum(), x_hat, create_graph=True)[0]
        return self.config.gp_weight * ((grad.flatten(1).norm(2, dim=1) - 1) ** 2).mean()

    # ------------------------------------------------------------- sample
    def sample(self, n_sequences: int, seed: int = 0, length: int | None = None, clip: bool | None = None,
               chunk_size: int = 4096) -> pd.DataFrame:
        """`n_sequences` synthetic series of `length` steps (default --seq-len), long format: series_id, step,
        features (original units), static columns. Same seed -> same frame. clip=True keeps every feature in
        its training range (what TimeGAN's sigmoid output does). clip=None (default) clips only models without
        a backbone, whose network could overshoot a bound such as a sine's peak: a backbone model draws Gaussian
        innovations, and clipping their tails piles them onto the bounds as point masses the real data does not
        have (Energy: a post-hoc classifier's discriminative score 0.44 clipped vs 0.11 unclipped, same model).
        `extend` never clips, so continuations can follow a trend out of the range."""
        self._require_fitted()
        n = _positive(n_sequences, "number of sequences")
        T = self.config.seq_len if length is None else _positive(length, "length")
        gen = torch.Generator().manual_seed(int(seed))
        rng = np.random.default_rng(seed)
        static_df = self.static.sample(n, rng) if self.static.columns else None
        static = torch.from_numpy(self.static.transform(static_df) if static_df is not None
                                  else np.zeros((n, 0))).float()
        parts = []
        with torch.inference_mode():
            for start in range(0, n, chunk_size):
                m = min(chunk_size, n - start)
                z0, z, e = self._noise(m, T, gen)
                first = self._draw_start(m, gen)
                parts.append(self._from_scratch(self.generator, z0, z, static[start:start + m], e, first).numpy())
        values = np.concatenate(parts).astype(np.float64)  # [n, T, F], scaled
        if clip is None:
            clip = self.backbone is None
        values = self.scaler.inverse(np.clip(values, 0.0, 1.0) if clip else values)
        out = self._long_frame(values, {"series_id": np.repeat(np.arange(n), T), "step": np.tile(np.arange(T), n)})
        if static_df is not None:
            for c in static_df.columns:
                out[c] = np.repeat(static_df[c].to_numpy(), T)
        return out

    def extend(self, history: pd.DataFrame, horizon: int, draws: int, seed: int = 0) -> pd.DataFrame:
        """Continue every series of `history` (same layout as the training table: id/time/static columns if
        the model was trained with them) by `horizon` steps, `draws` times. Returns series_id, draw, step,
        features; steps continue the history (h history steps -> h..h+horizon-1). The generator is teacher-
        forced over the last seq_len-1 history steps (its training context; gaps are filled by its own
        predictions) and then free-runs all draws of all series of one context length in one batch."""
        self._require_fitted()
        horizon, draws = _positive(horizon, "horizon"), _positive(draws, "draws")
        lay = self.layout
        known = {*lay.features, *lay.static_cols, *(c for c in (lay.id_col, lay.time_col) if c)}
        unknown = [str(c) for c in history.columns if str(c) not in known]
        if unknown:
            raise DataError(f"history: column(s) {', '.join(unknown)} are not known to the model "
                            f"(it knows {', '.join(sorted(known))})")
        data = parse_series(history, lay, what="history", require_observed=False)
        observed_any = np.array([not np.isnan(data.series(i)).all() for i in range(len(data.ids))])
        if not observed_any.all():
            raise DataError(f"history: series {data.ids[~observed_any][0]!r} has no observed value")
        scaled = self.scaler.transform(data.values)
        static_all = (self.static.transform(data.static) if data.static is not None else np.zeros((len(data.ids), 0)))
        ctx = np.minimum(data.lengths, self.config.seq_len - 1)
        gen = torch.Generator().manual_seed(int(seed))
        calibrated = bool((self.continuation or {}).get("gains"))
        correction = (self.continuation or {}).get("mean", "generator") == "generator"  # chosen on held-out windows
        result = np.empty((len(data.ids), draws, horizon, len(lay.features)))
        with torch.inference_mode():
            for c in np.unique(ctx):  # one batch per context length (a handful), never per row
                members = np.flatnonzero(ctx == c)
                rows = data.starts[members + 1][:, None] - c + np.arange(c)[None, :]  # last c rows of each series
                hist = np.repeat(scaled[rows], draws, axis=0)  # [n*K, c, F]
                T = c + horizon
                teacher = np.zeros((len(hist), T, hist.shape[2]))
                teacher[:, :c] = np.nan_to_num(hist, nan=0.0)
                mask = np.zeros_like(teacher)
                mask[:, :c] = ~np.isnan(hist)
                s = torch.from_numpy(np.repeat(static_all[members], draws, axis=0)).float()
                z0, z, e = self._noise(len(hist), T, gen)
                args = (z0, z, s, torch.from_numpy(teacher).float(), torch.from_numpy(mask).float(),
                        torch.full((len(hist),), int(c)))
                out = self.generator(*args, e, correction=correction)
                if calibrated and e is not None:  # calibrated spread per horizon (timeseries/calibration.py)
                    centre = self.generator(*args, torch.zeros_like(e), correction=correction)
                    out = apply_horizon_gains(out, centre, self.continuation, int(c))
                result[members] = out[:, c:].numpy().astype(np.float64).reshape(len(members), draws, horizon, -1)
        values = self.scaler.inverse(result).reshape(-1, horizon, len(lay.features))
        n = len(data.ids)
        step = (data.lengths[:, None, None] + np.arange(horizon)[None, None, :]).repeat(draws, axis=1)
        return self._long_frame(values, {"series_id": np.repeat(data.ids, draws * horizon),
                                         "draw": np.tile(np.repeat(np.arange(draws), horizon), n),
                                         "step": step.reshape(-1)})

    def user_frame(self, frame: pd.DataFrame, history: pd.DataFrame | None = None) -> pd.DataFrame:
        """`sample`'s or `extend`'s frame with the training table's id and time columns (names, types, time
        grid; timeseries/timegrid.py) instead of series_id and step. `history`: what `extend` continued."""
        lay, grid = self.layout, self.time_grid
        if grid is None or (lay.id_col is None and lay.time_col is None):
            return frame
        starts = None
        if history is not None and lay.time_col is not None:
            t = grid.numbers(history[lay.time_col])
            key = history[lay.id_col] if lay.id_col else pd.Series(0, index=history.index)
            starts = pd.Series(t, index=history.index).groupby(key.to_numpy()).min().to_dict()
        elif history is not None:
            starts = {}
        return user_columns(frame, lay, grid, starts)

    def _long_frame(self, values: np.ndarray, index_cols: dict) -> pd.DataFrame:
        flat = values.reshape(-1, values.shape[-1])
        return pd.DataFrame({**index_cols, **{c: flat[:, j] for j, c in enumerate(self.layout.features)}})

    # -------------------------------------------------------- persistence
    def save(self, path: str | os.PathLike) -> None:
        meta, networks = self.to_state()
        save_model_dir(path, meta, networks)

    def to_state(self) -> tuple[dict, dict[str, dict[str, torch.Tensor]]]:
        """(metadata as JSON-able dict, {network: state_dict}): what a model directory holds, in memory (Ray
        workers are handed a prepared model this way)."""
        self._require_fitted()
        meta = {"kind": self.kind, "config": self.config.to_json(), "layout": self.layout.to_json(),
                "scaler": self.scaler.to_json(), "static": self.static.to_json(),
                "training": self.training, "history": self.history, "continuation": self.continuation,
                **({"time_grid": self.time_grid.to_json()} if self.time_grid else {})}
        plain = lambda net: getattr(net, "module", net)  # noqa: E731 (a DDP wrapper prefixes every weight name)
        return meta, {"generator": plain(self.generator).state_dict(), "critic": plain(self.critic).state_dict()}

    @classmethod
    def load(cls, path: str | os.PathLike) -> "TimeSeriesGAN":
        meta = read_meta(path, kind=cls.kind)
        return cls.from_state(meta, lambda name: load_network(path, name), where=str(path))

    @classmethod
    def from_state(cls, meta: dict, networks, where: str = "model") -> "TimeSeriesGAN":
        """The inverse of `to_state`; `networks` maps a network name to its state_dict (a dict or a function)."""
        get = networks if callable(networks) else networks.__getitem__
        try:
            self = cls(TimeSeriesGANConfig.from_json(meta["config"]))
            self.layout = SeriesLayout.from_json(meta["layout"])
            self.scaler = FeatureScaler(**meta["scaler"])
            self.static = StaticEncoder(meta["static"])
            self._build_networks()
            self.generator.load_state_dict(get("generator"))
            critic_state = dict(get("critic"))
            critic_state.setdefault("diff_scale", self.critic.diff_scale)  # saved before the critic had one
            self.critic.load_state_dict(critic_state)
        except (KeyError, TypeError, ValueError, AttributeError, IndexError, RuntimeError) as e:
            raise ModelError(f"{where}: model files do not match its metadata ({type(e).__name__}: "
                             f"{str(e).splitlines()[0][:200] if str(e) else ''})") from None
        self.training, self.history = meta.get("training", {}), meta.get("history", [])
        self.continuation = meta.get("continuation")  # absent in models saved before: extend as trained
        self.time_grid = TimeGrid.from_json(meta["time_grid"]) if "time_grid" in meta else None
        self.generator.eval(); self.critic.eval()
        return self


def _moment_gap(fake: torch.Tensor, real: torch.Tensor, mask: torch.Tensor, diff_order: int = 1) -> torch.Tensor:
    """Mean absolute gap between per-(step, feature) batch means and stds of fake and real windows, for the
    values and their differences up to `diff_order` (1: step changes; 2: also the changes of changes, the
    curvature that a too-rough generator gets wrong), counting observed real points only. Each order's gap
    of order 2 is relative (divided by the real curvature's mean spread): in value units it is ~0.001 and would
    not count at all; orders 0 and 1 stay in value units as they always were."""
    def stats(x, w):
        n = w.sum(0).clamp_min(1.0)
        mean = (x * w).sum(0) / n
        std = (((x - mean) ** 2 * w).sum(0) / n + 1e-6).sqrt()
        return mean, std
    gap, f, r, w = 0.0, fake, real, mask
    for order in range(diff_order + 1):
        if order:
            f, r, w = f.diff(dim=1), r.diff(dim=1), w[:, 1:] * w[:, :-1]
        (mf, sf), (mr, sr) = stats(f, w), stats(r, w)
        term = (mf - mr).abs().mean() + (sf - sr).abs().mean()
        gap = gap + (term if order < 2 else term / sr.mean().detach().clamp_min(1e-6))
    return gap


def _positive(value, name: str) -> int:
    if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value < 1:
        raise ConfigError(f"{name} must be a positive integer (got {value!r})")
    return int(value)


TimeSeriesGAN.__doc__ += "\n" + "\n".join(line[4:] if line.startswith("    ") else line
                                           for line in TimeSeriesGANConfig.__doc__.splitlines())

"""Differentially private training of the tabular GAN (`dp_epsilon`): what changes against a normal fit, and why.

Every network that reads real rows trains with DP-SGD: the critic and the auxiliary `target` classifier, clipped
together (one Gaussian mechanism per step, so one entry in the accountant). The generator only ever sees the
critic and its own draws, so it is post-processing. What else reads the rows is either noised and accounted, or
stated as outside the guarantee (`GUARANTEE`), because a guarantee that silently skips the preprocessing misleads
(smartnoise-sdk#484):
- Rows are Poisson-sampled (each row in a step with probability q), the sampling the accountant assumes;
  training-by-sampling, which picks real rows *by* their category, is off.
- A real row's condition is one of its own categories, chosen at random: it is part of the row. The fakes'
  conditions come from the noised category frequencies (dp_accounting.py), the same distribution.
- PacGAN packing is off (pac = 1): a pack mixes rows, and clipping is per row.
- The frequency-matching term (it reads real rows in the generator's loss), the training rows' stored hole
  patterns and the hole-filling imputer (trained on all rows, its fills depend on other rows) are off. Holes are
  filled with the column's median or most frequent value, and the generator learns where holes are from the
  missing indicators it is trained on, through the critic.
- The guarantee is conditional on the column statistics (`GUARANTEE_EXCLUDES`): the encoder's quantiles and
  modes, the category lists and the fill values come from the rows without noise, and every row is encoded
  with them. Treating them as public is the usual convention of DP synthesizers, and it is stated, not hidden.
- The batch noise and the Poisson draws come from the operating system's entropy, not from `seed`: an attacker who
  knows the seed could regenerate the noise and subtract it, so a DP fit is not reproducible from its seed (its
  samples are, from the fitted model).
- Per-step losses that read real rows (the critic's) are not reported; the generator's are.
"""

from __future__ import annotations

import secrets

import numpy as np
import pandas as pd
import torch

from ganstream.trainers.tabular.conditioning import ConditionSampler
from ganstream.trainers.tabular.dp_accounting import DPPlan, default_delta
from ganstream.trainers.tabular.dp_gradients import MLP, RowGradients, clipped_noisy_step, forward, penalty_terms
from ganstream.trainers.tabular.losses import generator_loss
from ganstream.trainers.tabular.networks import activate, condition_loss

GUARANTEE_COVERS = "the critic's and the target classifier's training steps, and the category frequencies"
GUARANTEE_EXCLUDES = ("the column statistics, which come from the rows without noise and which every row is "
                      "encoded with: the number of rows, the column list and types, each numeric column's range, "
                      "quantiles and modes, "
                      "each categorical column's list of categories, and the medians and most frequent values that "
                      "fill holes. A rare category or an extreme value can therefore show that some row had it")


def guarantee(plan: DPPlan) -> str:
    """The one statement `train` prints and the README repeats: true as written."""
    return (f"differential privacy: ({plan.spent():.3g}, {plan.delta:.2g})-DP with respect to adding or removing "
            f"one row, given the column statistics ({plan.accountant.upper()} accountant, {plan.steps_done:,} "
            f"steps per row at sampling rate {plan.sample_rate:.3g}, noise multiplier {plan.noise_multiplier:.3g}, "
            f"clip {plan.clip:g}). Covers {GUARANTEE_COVERS}. Not covered: {GUARANTEE_EXCLUDES}.")


def fill_values(table: pd.DataFrame) -> dict:
    """Each column's median (numbers, dates) or most frequent value: what a DP fit fills holes with, so that a
    row's fill depends on column statistics only, never on one other row's values (see the module docstring)."""
    values = {}
    for col in table.columns:
        s = table[col].dropna()
        if not len(s):
            continue
        if pd.api.types.is_numeric_dtype(s) and not pd.api.types.is_bool_dtype(s):
            value = s.median()
            values[col] = float(np.round(value)) if (s == s.round()).all() else float(value)
        elif pd.api.types.is_datetime64_any_dtype(s):
            values[col] = s.sort_values().iloc[len(s) // 2]
        else:
            values[col] = s.value_counts(sort=True).index[0]
    return values


def central_fill(table: pd.DataFrame, values: dict | None = None) -> pd.DataFrame:
    """`table` with its holes filled by `values` (default: `fill_values(table)`)."""
    values = fill_values(table) if values is None else values
    out = table.copy()
    for col in table.columns[table.isna().any()]:
        if col in values:
            out[col] = table[col].fillna(values[col])
    return out


def noisy_sampler(exact: ConditionSampler, rows: int, plan: DPPlan, rng: np.random.Generator) -> ConditionSampler:
    """A ConditionSampler over `exact`'s spans whose frequencies are `exact`'s counts (of `rows` rows) with Gaussian noise
    (dp_accounting.py), clipped at 0."""
    columns = len(exact.spans)
    probs = []
    for j, width in enumerate(exact.widths):
        counts = exact.freq[j, :width] * rows
        noisy = counts + rng.normal(0.0, plan.histogram_noise_multiplier * np.sqrt(max(columns, 1)), size=width)
        noisy = np.clip(noisy, 0.0, None)
        probs.append(noisy / noisy.sum() if noisy.sum() > 0 else np.full(width, 1.0 / width))
    return ConditionSampler(exact.spans, probs)


def plan_fit(cfg, rows: int, draw_rows: int | None = None) -> DPPlan:
    """The plan of a fit on `rows` rows whose steps each draw from `draw_rows` of them (default: all)."""
    delta = cfg.dp_delta if cfg.dp_delta is not None else default_delta(rows)
    draw_rows = min(rows, draw_rows or rows)
    return DPPlan.calibrate(cfg.dp_epsilon, delta, cfg.dp_clip, min(1.0, cfg.batch_size / draw_rows),
                            max(1, draw_rows // cfg.batch_size), cfg.epochs)


class DPSteps:
    """The DP-SGD training steps of one fit (or one data-parallel worker): secret randomness, the rows' own
    condition codes, and the per-row clipped update of the critic and the target classifier."""

    def __init__(self, model, X: torch.Tensor, plan: DPPlan, workers: int = 1):
        self.model, self.X, self.plan, self.workers = model, X, plan, workers
        self.rng = secret_rng()
        self.noise = torch.Generator().manual_seed(secrets.randbits(63))
        sampler = model.sampler
        self.codes = (np.stack([X[:, s.start:s.stop].argmax(1).numpy() for s in sampler.spans], axis=1)
                      if sampler.spans else np.zeros((len(X), 0), dtype=np.int64))
        self.critic = MLP.of(model.discriminator.net)  # DP fits never wrap the critic in DDP (ray_tabular_worker.py)

    def _real_conditions(self, rows: np.ndarray) -> np.ndarray:
        sampler = self.model.sampler
        if not sampler.spans:
            return np.zeros((len(rows), 0), dtype=np.float32)
        span = self.rng.integers(0, len(sampler.spans), size=len(rows))
        return sampler.one_hot(sampler.offsets[span] + self.codes[rows, span])

    def _fake_conditions(self, n: int):
        sampler = self.model.sampler
        if not sampler.spans:
            empty = np.zeros(0, dtype=np.int64)
            return np.zeros((n, 0), dtype=np.float32), empty, empty
        span, g = sampler._draw(sampler.freq, n, self.rng)
        return sampler.one_hot(g), span, g

    def step(self, opt_g, opt_d, aux=None) -> dict[str, float]:
        model, cfg, plan = self.model, self.model.config, self.plan
        G, D, spans = model.generator, model.discriminator, model.encoder.spans  # D: averaged across workers
        rows = np.flatnonzero(self.rng.random(len(self.X)) < plan.sample_rate)
        n = len(rows)
        real = self.X[torch.from_numpy(rows)]
        x_real = torch.cat([real, torch.from_numpy(self._real_conditions(rows))], dim=1)
        cond, _, _ = self._fake_conditions(max(n, 2))  # batch norm in train mode needs 2 rows
        with torch.no_grad():
            fake = activate(G(torch.randn(len(cond), cfg.noise_dim), torch.from_numpy(cond)), spans)
        x_fake = torch.cat([fake, torch.from_numpy(cond)], dim=1)[:n]
        grads = RowGradients.empty(self.critic)
        with torch.no_grad():
            real_run, fake_run = forward(self.critic, x_real), forward(self.critic, x_fake)
            if cfg.loss == "wgan-gp":
                grads.add_pass(self.critic, real_run, -torch.ones(n, 1))
                grads.add_pass(self.critic, fake_run, torch.ones(n, 1))
                alpha = torch.rand(n, 1)
                penalty_terms(self.critic, grads, alpha * x_real + (1 - alpha) * x_fake, cfg.gp_weight)
            else:  # binary cross-entropy, real = 1, fake = 0 (minimax and non-saturating)
                grads.add_pass(self.critic, real_run, -torch.sigmoid(-real_run.out))
                grads.add_pass(self.critic, fake_run, torch.sigmoid(fake_run.out))
            groups = [(self.critic, grads)]
            if aux:
                clf, _, tspan, tmask = aux
                net = MLP.of(clf.net)
                run = forward(net, real * tmask)
                labels = real[:, tspan.start:tspan.stop].argmax(1)
                out_grad = torch.softmax(run.out, 1) - torch.nn.functional.one_hot(labels, tspan.width).float()
                clf_grads = RowGradients.empty(net)
                clf_grads.add_pass(net, run, out_grad)
                groups.append((net, clf_grads))
            clipped_noisy_step(groups, plan.clip, plan.noise_multiplier, len(self.X) * plan.sample_rate,
                               self.noise, noise_share=1.0 / self.workers)
        _average_across_workers([D] + ([aux[0]] if aux else []), self.workers)
        opt_d.step()
        if aux:
            aux[1].step()
        return self._generator_step(opt_g, aux)

    def _generator_step(self, opt_g, aux) -> dict[str, float]:
        model, cfg = self.model, self.model.config
        G, D, sampler, B = model.generator, model.discriminator, model.sampler, cfg.batch_size
        cond, span, g = self._fake_conditions(B)
        c = torch.from_numpy(cond)
        raw = G(torch.randn(B, cfg.noise_dim), c)
        fake = activate(raw, model.encoder.spans)
        frozen = list(D.parameters()) + (list(aux[0].parameters()) if aux else [])
        for p in frozen:
            p.requires_grad_(False)
        span_t = torch.from_numpy(span)
        loss_c = condition_loss(raw, sampler.spans, span_t, torch.from_numpy(g) - torch.from_numpy(sampler.offsets)[span_t])
        loss_g = generator_loss(cfg.loss, D(torch.cat([fake, c], dim=1)), cfg.dual_beta) + loss_c
        out = {}
        if aux:
            clf, _, tspan, tmask = aux
            loss_t = torch.nn.functional.cross_entropy(clf(fake * tmask), fake[:, tspan.start:tspan.stop].argmax(1).detach())
            loss_g = loss_g + cfg.target_weight * loss_t
            out["target_loss"] = loss_t.item()
        opt_g.zero_grad(set_to_none=True)
        loss_g.backward()
        opt_g.step()
        for p in frozen:
            p.requires_grad_(True)
        return {**out, "g_loss": loss_g.item(), "cond_loss": loss_c.item()}


def _average_across_workers(nets, workers: int) -> None:
    """Data-parallel workers: the mean of the workers' noised gradients (each worker drew 1/workers of the noise
    variance, so the sum carries exactly one full draw). A no-op in one process."""
    if workers <= 1:
        return
    import torch.distributed as dist
    for net in nets:
        for p in net.parameters():
            dist.all_reduce(p.grad, op=dist.ReduceOp.SUM)
            p.grad /= workers


def prepare_config(cfg, rows: int, info=None) -> None:
    """Check the budget against the table and turn off what reads real rows outside the accounted steps (the
    module docstring), saying so: before the batch size is fixed, since packing changes its multiple."""
    from ganstream.trainers.tabular.dp_accounting import check_budget
    check_budget(cfg.dp_epsilon, cfg.dp_delta, rows)
    changed = [f"{name} {getattr(cfg, name)} -> {value}" for name, value in (("pac", 1), ("frequency_weight", 0.0))
               if getattr(cfg, name) != value]
    cfg.pac, cfg.frequency_weight = 1, 0.0
    if info is not None:
        delta = cfg.dp_delta if cfg.dp_delta is not None else default_delta(rows)
        info(f"DP-SGD to epsilon {cfg.dp_epsilon:g}, delta {delta:.2g}: Poisson-sampled rows, per-row clipping at "
             f"{cfg.dp_clip:g}, no hole-filling imputer or stored hole patterns"
             + (f"; {', '.join(changed)}" if changed else ""))


def secret_rng() -> np.random.Generator:
    """Randomness an attacker cannot regenerate from the fit's seed (module docstring)."""
    return np.random.default_rng(secrets.randbits(128))

"""GAIN-style imputer on matrices (Yoon et al., ICML 2018), reworked to be accurate, not only plausible.

The adversarial game is GAIN's: the generator sees a row whose holes are filled with noise plus the mask,
and proposes values for the holes; the discriminator sees the completed row plus a *hint* (the mask, with
a random part hidden behind 0.5) and guesses, cell by cell, which values were observed. Without the hint
the discriminator could not tell which cells to judge, and the game would have many optima.

What is changed, and why (each measured on the GAIN benchmarks, benchmarks/imputation_gain.py):

* Held-out reconstruction. Published GAIN fits its reconstruction loss only on cells the generator can
  see and copy, so the only pressure to predict a hidden value well is the adversarial one. Here each
  row's observed cells are split into folds; every step hides one fold (`holdout_rate` of the cells) and
  the loss is measured on exactly those: the generator learns to predict held-out values from the rest
  of the row, which is what imputation asks of it. Squared error pulls towards the conditional mean (the
  RMSE optimum); the adversarial term (weight 1 against `alpha`) keeps it a GAN.
* Neighbour read-out (tables with >= `min_rows` rows). Forests beat MLPs on tables with near-duplicate
  rows and step-like relations (letter, spam) because they can look rows up. The generator gets the same
  ability: a cheap pre-filter picks `pool` candidate rows of a memory bank (the training rows) per row,
  and a learned per-column metric turns them into one attention-weighted estimate per column, fed to the
  MLP beside the row. Candidates for a training step are chosen without the fold it holds out: a held-out
  value must never steer its own neighbours (measured: it teaches the generator to over-trust them).
* Rank features: each value's quantile rank as extra input, so skewed columns (word frequencies) are not
  squeezed into a sliver near 0 where the MLP sees no differences. Outputs and losses stay in [0, 1].
* Ensemble on small tables (`ensemble`, auto: 3 members below `min_rows` rows): independently seeded
  generator/discriminator pairs whose point estimates are averaged. A small table's fit varies most from seed to
  seed, and its steps are cheap; big tables train one (measured: no gain at equal cost on spam).
* Architecture: residual MLP with layer norm (stable without batch statistics) plus a linear path from
  input to output (near-linear relations between columns stay exactly linear); a linear output clipped to
  [0, 1] for continuous dims; Adam with cosine learning-rate decay.

Softmax spans (one-hot groups of a categorical column) are one unit throughout: hidden together, filled
with a softmax, reconstructed with cross-entropy. A draw samples one category from that softmax, so
multiple imputations differ on categoricals; on continuous cells draws differ only by the effect of the
hole noise, which the generator learns to mostly ignore (as in GAIN's own code): those draws are close to
each other, so they understate uncertainty. `impute_mean` averages draws for a point estimate.

The bank (training rows, holes included) is part of the fitted model and is saved with it.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ganstream.trainers.errors import ConfigError, DataError, ModelError
from ganstream.trainers.tabular.imputer_calibration import fit_calibration, held_out_rows, trains_twice, widen
from ganstream.trainers.progress import ProgressFn


# Measured on breast cancer (569 rows), tuning seeds 100/101: one model 0.0525/0.0582, three 0.0511/0.0568 (3x the
# fit time, ~50 s CPU). On spam (4,601 rows) three members at a third of the steps each did not help (0.0507 vs
# 0.0509), and at full steps each they would triple a fit that already takes ~60 s: big tables train one.
SMALL_ENSEMBLE = 3


@dataclass
class GainConfig:
    """Hyper-parameters. Training length: `epochs` passes over the rows if > 0, else the larger of
    `iterations` steps and `min_epochs` passes (small tables need steps, big ones need passes)."""

    epochs: int = 0
    iterations: int = 2000
    min_epochs: int = 40
    batch_size: int = 256
    hidden: int = 128  # generator width
    blocks: int = 2  # generator residual blocks
    d_hidden: int = 64  # discriminator width (one residual block: it only judges)
    hint_rate: float = 0.9  # share of mask entries revealed to the discriminator
    alpha: float = 100.0  # reconstruction weight against the adversarial loss (weight 1)
    holdout_rate: float = 0.25  # share of observed cells hidden and reconstructed per step (1 / folds, rounded)
    visible_weight: float = 0.0  # weight of GAIN's own loss on cells the generator sees
    noise_scale: float = 0.01  # holes are filled with U(0, noise_scale) noise, as in GAIN
    rank_features: bool = True
    pool: int = 32  # candidate rows per query for the neighbour read-out (0: off)
    min_rows: int = 2000  # ... which is only used for tables with at least this many rows
    bank_size: int = 20000  # at most this many training rows are kept as the bank
    dropout: float = 0.0
    # independently seeded generator/discriminator pairs (see GainImputer); 0 = by table size: SMALL_ENSEMBLE
    # members below min_rows rows (cheap steps, and a small table's fit varies most from seed to seed), one above
    ensemble: int = 0
    lr: float = 3e-3
    lr_final: float = 0.03  # cosine decay to lr * lr_final
    weight_decay: float = 0.0
    calibrate: bool = True  # widen multiple-imputation draws to calibrated coverage (imputer_calibration.py)
    refit_small: bool = True  # below min_rows rows: train again on every row after calibrating (see fit)
    seed: int = 0

    def validate(self) -> "GainConfig":
        checks = [
            (self.epochs >= 0 and self.iterations >= 0, "epochs and iterations must be >= 0"),
            (self.epochs > 0 or self.iterations > 0, "either epochs or iterations must be > 0"),
            (self.batch_size >= 2, "batch_size must be >= 2"),
            (self.hidden >= 1 and self.blocks >= 1 and self.d_hidden >= 1, "hidden, blocks, d_hidden must be >= 1"),
            (0.0 <= self.hint_rate <= 1.0, "hint_rate must be in [0, 1]"),
            (0.0 < self.holdout_rate <= 0.5, "holdout_rate must be in (0, 0.5]"),
            (min(self.alpha, self.visible_weight, self.noise_scale, self.weight_decay) >= 0.0,
             "alpha, visible_weight, noise_scale, weight_decay must be >= 0"),
            (self.lr > 0.0 and 0.0 < self.lr_final <= 1.0, "lr must be > 0 and lr_final in (0, 1]"),
            (self.pool >= 0 and self.bank_size >= 1, "pool must be >= 0 and bank_size >= 1"),
            (0.0 <= self.dropout < 1.0, "dropout must be in [0, 1)"),
            (0 <= self.ensemble <= 16, "ensemble must be in 0..16 (0: by table size)"),
        ]
        for ok, msg in checks:
            if not ok:
                raise ConfigError(f"imputer config: {msg}")
        return self

    def members(self, rows: int) -> int:
        """Ensemble size for a table of `rows` rows."""
        return self.ensemble or (SMALL_ENSEMBLE if rows < self.min_rows else 1)

    def to_json(self) -> dict:
        return asdict(self)

    @classmethod
    def from_json(cls, d: dict) -> "GainConfig":
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in known})


# ------------------------------------------------------------------ layout
class _Layout:
    """Which encoded dimensions form one imputation unit (a continuous dim, or a whole softmax span)."""

    def __init__(self, dim: int, softmax_spans):
        spans = sorted((int(a), int(b)) for a, b in softmax_spans)
        taken = np.zeros(dim, dtype=bool)
        for a, b in spans:
            if not (0 <= a < b <= dim) or taken[a:b].any():
                raise DataError(f"softmax span ({a}, {b}) is out of range or overlaps another (dim={dim})")
            taken[a:b] = True
        self.dim, self.spans = dim, spans
        width_at = {a: b - a for a, b in spans}
        self.starts, unit, j = [], np.zeros(dim, dtype=np.int64), 0
        while j < dim:
            w = width_at.get(j, 1)
            unit[j:j + w] = len(self.starts)
            self.starts.append(j)
            j += w
        self.widths = np.diff(self.starts + [dim])
        self.unit = torch.from_numpy(unit)  # dim -> unit index
        self.n_units = len(self.starts)
        self.is_cont = torch.from_numpy(~taken)
        # contiguous segments in order: ("c", a, b) run of continuous dims or ("s", a, b) softmax span
        self.segments, j = [], 0
        for a, b in spans:
            if j < a:
                self.segments.append(("c", j, a))
            self.segments.append(("s", a, b))
            j = b
        if j < dim:
            self.segments.append(("c", j, dim))

    def unit_observed(self, X: np.ndarray) -> np.ndarray:
        """(n, units) True where the unit has no NaN (a span with any NaN counts as missing)."""
        return ~np.logical_or.reduceat(np.isnan(X), np.asarray(self.starts), axis=1)

    def expand(self, per_unit):
        """(n, units) -> (n, dim)."""
        return per_unit[:, self.unit] if torch.is_tensor(per_unit) else np.repeat(per_unit, self.widths, axis=1)

    def activate(self, logits: torch.Tensor) -> torch.Tensor:
        """Generator output as values: continuous dims clipped to [0, 1] (a linear head, not a sigmoid,
        so linear relations stay linear), softmax spans as probabilities."""
        return torch.cat([logits[:, a:b].clamp(0.0, 1.0) if k == "c" else torch.softmax(logits[:, a:b], dim=1)
                          for k, a, b in self.segments], dim=1)

    def unit_loss(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """(batch, units): squared error for continuous dims (unclipped, so gradients never vanish),
        cross-entropy for softmax spans."""
        parts = []
        for k, a, b in self.segments:
            if k == "c":
                parts.append((logits[:, a:b] - target[:, a:b]) ** 2)
            else:
                parts.append(-(target[:, a:b] * F.log_softmax(logits[:, a:b], dim=1)).sum(1, keepdim=True))
        return torch.cat(parts, dim=1)

    def sample_spans(self, probs: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
        """Replace each span's probabilities by a one-hot category drawn from them (Gumbel-max)."""
        out = probs.clone()
        for a, b in self.spans:
            u = torch.rand((len(probs), b - a), generator=gen).clamp(1e-12, 1.0 - 1e-7)
            pick = (torch.log(probs[:, a:b].clamp_min(1e-12)) - torch.log(-torch.log(u))).argmax(1)
            out[:, a:b] = F.one_hot(pick, b - a).to(probs.dtype)
        return out


# ------------------------------------------------------------------ networks
class _Block(nn.Module):
    """Pre-norm residual MLP block: the skip keeps the identity easy, layer norm keeps it stable."""

    def __init__(self, width: int, dropout: float):
        super().__init__()
        self.norm = nn.LayerNorm(width)
        self.fc1 = nn.Linear(width, width)
        self.drop = nn.Dropout(dropout)
        self.fc2 = nn.Linear(width, width)

    def forward(self, h):
        return h + self.fc2(self.drop(F.silu(self.fc1(F.silu(self.norm(h))))))


class ResMLP(nn.Module):
    """Residual body plus a linear path from input to output: much of a table's structure is near-linear
    (what MICE exploits), so the body only has to learn what is left."""

    def __init__(self, in_dim: int, out_dim: int, width: int, blocks: int, dropout: float = 0.0):
        super().__init__()
        self.inp = nn.Linear(in_dim, width)
        self.blocks = nn.Sequential(*[_Block(width, dropout) for _ in range(blocks)])
        self.norm = nn.LayerNorm(width)
        self.out = nn.Linear(width, out_dim)
        self.linear = nn.Linear(in_dim, out_dim)

    def forward(self, h):
        return self.out(F.silu(self.norm(self.blocks(self.inp(h))))) + self.linear(h)


class NeighbourReader(nn.Module):
    """Candidate rows -> one estimate per column. For target column j, candidate c scores
    -sum_i w_ji (q_i - c_i)^2 over the query's visible columns i (w >= 0 learned, one metric per target,
    as a forest grows separate trees per column); a softmax over the candidates that observed j weights
    their values of j. Also returns the share of candidates that observed j (how much to trust it)."""

    K_PLAIN = 10

    def __init__(self, dim: int):
        super().__init__()
        self.a = nn.Parameter(torch.zeros(dim, dim))  # w = softplus(a) * scale
        self.register_buffer("scale", torch.ones(dim))  # 1 / (2 var) per column: start from z-scored distance

    def forward(self, q, qm, cand, cand_m):
        """q, qm: (b, d) query values and mask; cand, cand_m: (b, P, d) candidate values and masks."""
        w = F.softplus(self.a) * self.scale  # (d_out, d_in): z-scored to start with
        both = qm.unsqueeze(1) * cand_m  # (b, P, d_in) co-observed columns
        diff2 = (q.unsqueeze(1) - cand) ** 2 * both
        # weighted mean over co-observed columns, times the total weight: a candidate with more holes
        # does not look closer just because fewer terms were summed
        # (a pseudo-column at the expected z-scored difference, 1, with 1% of the weight keeps a candidate
        # that shares no column with the query from scoring as a perfect match)
        total = w.sum(1)
        score = -(diff2 @ w.T + 0.01 * total) / (both @ w.T + 0.01 * total) * total  # (b, P, d_out)
        score = score.masked_fill(cand_m == 0, -1e9)
        att = torch.softmax(score, dim=1) * cand_m
        est = (att * cand).sum(1) / att.sum(1).clamp_min(1e-12)
        near_m = cand_m[:, :self.K_PLAIN]  # candidates come sorted by distance: a plain k-NN mean too
        plain = (cand[:, :self.K_PLAIN] * near_m).sum(1) / near_m.sum(1).clamp_min(1.0)
        return est, plain, cand_m.mean(1)


class Generator(nn.Module):
    """Inputs: the row (holes = noise), its rank features, the mask, and the neighbour read-out."""

    def __init__(self, dim: int, rows: int, cfg: GainConfig):
        super().__init__()
        self.reader = NeighbourReader(dim) if cfg.pool > 0 and rows >= cfg.min_rows else None
        n_in = 2 + int(cfg.rank_features) + (3 if self.reader is not None else 0)
        self.net = ResMLP(n_in * dim, dim, cfg.hidden, cfg.blocks, cfg.dropout)
        self.register_buffer("fill", torch.zeros(dim))  # column means: stand-in for holes in distances
        self.register_buffer("quantiles", torch.zeros(dim, _Ranker.N_QUANTILES) if cfg.rank_features else torch.zeros(0))

    def forward(self, x, m, z, cand=None, cand_m=None):
        parts = [m * x + (1 - m) * z, m]
        if self.quantiles.numel():
            parts.append(_Ranker.rank(self.quantiles, x) * m)
        if self.reader is not None:
            est, plain, cover = self.reader(m * x + (1 - m) * self.fill, m, cand, cand_m)
            parts += [torch.where(cover > 0, est, self.fill), torch.where(cover > 0, plain, self.fill), cover]
        return self.net(torch.cat(parts, dim=1))


_PAIR_BUDGET = 5e8  # query x bank row pairs spent on candidate pools during one fit


class _Ranker:
    """Per-column empirical CDF from stored quantiles, linearly interpolated, vectorised over columns."""

    N_QUANTILES = 64

    @classmethod
    def quantiles(cls, X: np.ndarray) -> np.ndarray:
        q = np.nanquantile(X, np.linspace(0.0, 1.0, cls.N_QUANTILES), axis=0).T  # (d, Q)
        return np.ascontiguousarray(np.nan_to_num(q), dtype=np.float32)

    @staticmethod
    def rank(q: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        n_q = q.shape[1]
        v = x.T.contiguous()  # (d, batch)
        hi = torch.searchsorted(q, v, right=True).clamp(1, n_q - 1)
        q_lo, q_hi = q.gather(1, hi - 1), q.gather(1, hi)
        frac = ((v - q_lo) / (q_hi - q_lo).clamp_min(1e-12)).clamp(0.0, 1.0)
        return ((hi - 1 + frac) / (n_q - 1)).T


def _candidates(x: torch.Tensor, m: torch.Tensor, bank: torch.Tensor, bank_m: torch.Tensor, gap: torch.Tensor,
                k: int, exclude: torch.Tensor | None = None, chunk: int = 1024) -> torch.Tensor:
    """(n, k) indices of the k bank rows nearest to each query row. Distance: squared differences over
    the columns the query observed, where a column the bank row lacks costs `gap` (the expected squared
    difference of two random values of that column). Filling holes with column means instead gave far
    worse neighbours; this keeps the pre-filter at one matrix product per chunk.
    exclude[i] >= 0: a bank row that query i may not get (itself, during training)."""
    k = min(k, len(bank))
    keys = torch.cat([bank_m, bank_m * bank, bank_m * bank * bank + (1 - bank_m) * gap], dim=1).T.contiguous()
    out = []
    for lo in range(0, len(x), chunk):
        xq, mq = x[lo:lo + chunk] * m[lo:lo + chunk], m[lo:lo + chunk]
        dist = torch.cat([mq * xq * xq, -2.0 * mq * xq, mq], dim=1) @ keys
        if exclude is not None:
            ex = exclude[lo:lo + chunk]
            rows = torch.nonzero(ex >= 0).squeeze(1)
            dist[rows, ex[rows]] = float("inf")
        out.append(dist.topk(k, dim=1, largest=False).indices)
    return torch.cat(out)


# ------------------------------------------------------------------ imputer
class GainImputer:
    """fit(X, softmax_spans) on a float (n, d) matrix in [0, 1] with NaN holes; transform(X, draws=K).

    With `ensemble` = E > 1, E generator/discriminator pairs are trained, each from its own seed (its own
    initialisation, batches, folds and hints) on the same rows and bank. The point estimate averages them (the
    members' errors are partly independent, so the average is closer to the conditional mean than any one),
    and multiple imputations take draw k from member k mod E, so draws also carry the between-model spread."""

    def __init__(self, config: GainConfig | None = None):
        self.config = (config or GainConfig()).validate()
        self.layout: _Layout | None = None
        self.generators: list[Generator] = []
        self.discriminators: list[ResMLP] = []
        self.bank: torch.Tensor | None = None  # (N, d) training rows, holes = 0
        self.bank_mask: torch.Tensor | None = None  # (N, d) 1 where observed
        self.history: list[dict] = []
        self.rows = 0  # training rows (decides whether the neighbour read-out is used)
        self._bank_f: torch.Tensor | None = None  # bank with holes = column means (cached)
        self.calibration: dict | None = None  # the draws' added spread (imputer_calibration.py)

    @property
    def generator(self) -> Generator | None:
        """The first member: holds the statistics all members share (fill, quantiles, metric scale)."""
        return self.generators[0] if self.generators else None

    def _member_seed(self, k: int) -> int:
        return self.config.seed if k == 0 else self.config.seed * 7919 + 104729 * k  # member 0 = a single model

    def _build(self, dim: int, rows: int, softmax_spans) -> None:
        cfg = self.config
        self.layout = _Layout(dim, softmax_spans)
        self.rows = rows
        self.generators, self.discriminators = [], []
        with torch.random.fork_rng(devices=[]):  # reproducible init without touching the caller's RNG
            for k in range(cfg.members(rows)):
                torch.manual_seed(self._member_seed(k))
                self.generators.append(Generator(dim, rows, cfg))
                self.discriminators.append(ResMLP(2 * dim, dim, cfg.d_hidden, 1))

    def _filled(self, x, m):
        return m * x + (1 - m) * self.generator.fill

    def _bank_filled(self) -> torch.Tensor:
        if self._bank_f is None:
            self._bank_f = self._filled(self.bank, self.bank_mask)
        return self._bank_f

    def _cands(self, rows_x, rows_m, exclude=None):
        if self.generator.reader is None:
            return None
        gap = 1.0 / self.generator.reader.scale  # 2 var per column
        return _candidates(rows_x, rows_m, self.bank, self.bank_mask, gap, self.config.pool, exclude)

    def _gather(self, pool_idx):
        if pool_idx is None:
            return None, None
        return self._bank_filled()[pool_idx], self.bank_mask[pool_idx]

    # -------------------------------------------------------------- fit
    def fit(self, X: np.ndarray, softmax_spans=(), progress: ProgressFn | None = None) -> "GainImputer":
        """Train on X (NaN = missing). With `calibrate`, the networks first train without a held-out share of
        the rows and the draws' spread is calibrated on it; on a table below `min_rows` rows (`refit_small`)
        they then train again on every row: there a 15% smaller training set measurably raised the RMSE of the
        point estimate (breast cancer, benchmarks/RESULTS.md), and the spread calibrated for the smaller fit
        stays on the safe side for the larger one."""
        cfg = self.config.validate()
        X = _check_matrix(X)
        fit_rows, X_calibration = held_out_rows(X, cfg.seed) if cfg.calibrate else (X, None)
        self._fit_networks(fit_rows, softmax_spans, progress)
        self.calibration = fit_calibration(self, X_calibration, cfg.seed) if X_calibration is not None else None
        if X_calibration is not None and trains_twice(len(X), cfg.calibrate, cfg.refit_small, cfg.min_rows):
            self._fit_networks(X, softmax_spans, progress)
        return self

    def _fit_networks(self, X: np.ndarray, softmax_spans, progress: ProgressFn | None) -> None:
        cfg = self.config
        self._build(X.shape[1], len(X), list(softmax_spans))
        lay, G = self.layout, self.generator
        observed = lay.unit_observed(X)
        if not observed.any(axis=0).all():
            raise DataError("a column has no observed value: the imputer cannot learn it")
        n = len(X)
        data = torch.from_numpy(np.nan_to_num(X, nan=0.0))
        obs_u = torch.from_numpy(observed.astype(np.float32))
        fill = torch.from_numpy(np.nan_to_num(np.nanmean(X, axis=0)).astype(np.float32))
        quantiles = torch.from_numpy(_Ranker.quantiles(X)) if cfg.rank_features else None
        var = np.nan_to_num(np.nanvar(X, axis=0), nan=0.0)
        scale = torch.from_numpy((0.5 / np.maximum(var, 1e-6)).astype(np.float32))
        for member in self.generators:
            member.fill.copy_(fill)
            if quantiles is not None:
                member.quantiles.copy_(quantiles)
            if member.reader is not None:
                member.reader.scale.copy_(scale)
        bank_rows = torch.full((n,), -1, dtype=torch.long)  # training row -> its bank index
        if G.reader is not None:
            pick = torch.randperm(n, generator=torch.Generator().manual_seed(cfg.seed))[:cfg.bank_size].sort().values
            self.bank, self.bank_mask = data[pick] * lay.expand(obs_u[pick]), lay.expand(obs_u[pick])
            self._bank_f = None
            bank_rows[pick] = torch.arange(len(pick))
        self.history, shared_pools = [], {}
        with torch.random.fork_rng(devices=[]):  # dropout draws from the global RNG: seed it, restore it
            for k, (G_k, D_k) in enumerate(zip(self.generators, self.discriminators)):
                torch.manual_seed(self._member_seed(k))
                self._train(G_k, D_k, self._member_seed(k), k, data, obs_u, bank_rows, progress, shared_pools)
        for net in self.generators + self.discriminators:
            net.eval()

    def _folds_and_pools(self, r, folds, gen, data, obs_u, bank_rows, shared: dict):
        """Split each row's observed cells into folds. Fold f's candidates are chosen from the other folds
        only, and when fold f is the step's target, it is hidden: a held-out value can never have steered its
        own neighbours (it would teach the generator to over-trust them).
        Without a bank the split is the member's own draw (free). With one, the pools cost one product against
        the bank per fold, so refresh r's split and pools are drawn once from the config seed and shared by
        all ensemble members (which still differ in initialisation, batches, target folds and hints)."""
        if self.bank is None:
            return torch.randint(0, folds, obs_u.shape, generator=gen), None
        if r not in shared:
            g = torch.Generator().manual_seed(self.config.seed * 1_000_003 + r)
            fold_of = torch.randint(0, folds, obs_u.shape, generator=g)
            with torch.no_grad():
                pools = torch.stack([self._cands(data, self.layout.expand(obs_u * (fold_of != f)), exclude=bank_rows)
                                     for f in range(folds)])
            shared[r] = (fold_of, pools)
        return shared[r]

    def _train(self, G, D, seed, member, data, obs_u, bank_rows, progress, shared_pools: dict) -> None:
        cfg, lay = self.config, self.layout
        n = len(data)
        bs = min(cfg.batch_size, n)
        per_epoch = max(1, n // bs)
        steps = cfg.epochs * per_epoch if cfg.epochs > 0 else max(cfg.iterations, cfg.min_epochs * per_epoch)
        epochs = math.ceil(steps / per_epoch)
        gen = torch.Generator().manual_seed(seed)
        opt_g = torch.optim.Adam(G.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
        opt_d = torch.optim.Adam(D.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
        scheds = [torch.optim.lr_scheduler.CosineAnnealingLR(o, T_max=steps, eta_min=cfg.lr * cfg.lr_final)
                  for o in (opt_g, opt_d)]
        G.train(); D.train()
        sums, count, epoch = np.zeros(4), 0, 0
        folds = max(2, round(1.0 / cfg.holdout_rate))
        # Pools are costly for big tables (one matrix product against the bank per fold), so they are
        # refreshed as often as a fixed budget of row pairs allows: every epoch for small tables.
        bank_n = 0 if self.bank is None else len(self.bank)
        refreshes = max(1, min(epochs, int(_PAIR_BUDGET / max(1, folds * n * bank_n))))
        for step in range(steps):
            if step * refreshes // steps != (step - 1) * refreshes // steps or step == 0:
                fold_of, pools = self._folds_and_pools(step * refreshes // steps, folds, gen, data, obs_u, bank_rows,
                                                       shared_pools)
            k = step % per_epoch
            if k == 0:
                perm = torch.randperm(n, generator=gen)
            idx = perm[k * bs:(k + 1) * bs]
            target_fold = torch.randint(0, folds, (len(idx), 1), generator=gen)
            keep_u = obs_u[idx] * (fold_of[idx] != target_fold)
            pool_idx = None if pools is None else pools[target_fold.squeeze(1), idx]
            sums += self._step(G, D, data[idx], obs_u[idx], keep_u, pool_idx, gen, opt_g, opt_d)
            for s in scheds:
                s.step()
            count += 1
            if (step + 1) % per_epoch == 0 or step + 1 == steps:
                mean = sums / count
                epoch += 1
                rec = {"epoch": epoch, "epochs": epochs, **({"member": member + 1} if len(self.generators) > 1 else {}),
                       "loss_d": float(mean[0]),
                       "loss_adv": float(mean[1]), "rec_holdout": float(mean[2]), "rec_visible": float(mean[3]),
                       "lr": float(opt_g.param_groups[0]["lr"])}
                self.history.append(rec)
                if progress is not None:
                    progress(dict(rec))
                sums, count = np.zeros(4), 0

    def _step(self, G, D, x, obs_u, keep_u, pool_idx, gen, opt_g, opt_d) -> np.ndarray:
        cfg, lay = self.config, self.layout
        held_u = obs_u - keep_u
        m = lay.expand(keep_u)
        z = torch.rand(x.shape, generator=gen) * cfg.noise_scale
        cand, cand_m = self._gather(pool_idx)
        logits = G(x, m, z, cand, cand_m)
        x_hat = m * x + (1 - m) * lay.activate(logits)
        # Hint: the mask on a random share of units, 0.5 ("don't know") elsewhere; D is scored only where
        # the hint hides the answer, so it cannot win by copying it.
        b_u = (torch.rand(obs_u.shape, generator=gen) < cfg.hint_rate).float()
        hint = lay.expand(b_u * keep_u + 0.5 * (1 - b_u))
        judged = lay.expand(1 - b_u)
        # One discriminator pass serves both players: D's loss is backpropagated into D only, the
        # generator's (fool D on the imputed cells it judges + reconstruction) into G only.
        d_logits = D(torch.cat([x_hat, hint], dim=1))
        loss_d = (F.binary_cross_entropy_with_logits(d_logits, m, reduction="none") * judged).sum() / judged.sum().clamp_min(1.0)
        fooled = judged * (1 - m)
        loss_adv = (F.softplus(-d_logits) * fooled).sum() / fooled.sum().clamp_min(1.0)
        unit_loss = lay.unit_loss(logits, x)
        rec_held = (unit_loss * held_u).sum() / held_u.sum().clamp_min(1.0)
        rec_vis = (unit_loss * keep_u).sum() / keep_u.sum().clamp_min(1.0)
        loss_g = loss_adv + cfg.alpha * (rec_held + cfg.visible_weight * rec_vis)
        opt_d.zero_grad(set_to_none=True)
        opt_g.zero_grad(set_to_none=True)
        loss_d.backward(inputs=list(D.parameters()), retain_graph=True)
        loss_g.backward(inputs=list(G.parameters()))
        opt_d.step()
        opt_g.step()
        return np.array([loss_d.item(), loss_adv.item(), rec_held.item(), rec_vis.item()])

    # -------------------------------------------------------- transform
    @torch.no_grad()
    def transform(self, X: np.ndarray, draws: int = 1, seed: int = 0, categorical: str = "sample",
                  chunk: int = 4096, average_members: bool = False, calibrated: bool = True) -> np.ndarray:
        """(draws, n, d) completed matrices. Each draw fills the holes with fresh noise; softmax spans
        hold a sampled one-hot category (categorical='sample') or the probabilities ('probs'). Observed
        cells are copied from X, so they come back exactly. Same seed -> identical output. Numeric holes
        get the calibrated spread (imputer_calibration.py) unless `calibrated` is False or members are
        averaged (a point estimate)."""
        self._require_fitted()
        if draws < 1:
            raise ConfigError(f"draws must be >= 1 (got {draws})")
        if categorical not in ("sample", "probs"):
            raise ConfigError("categorical must be 'sample' or 'probs'")
        X = _check_matrix(X, self.layout.dim)
        lay = self.layout
        m_np = lay.expand(lay.unit_observed(X))
        gen = torch.Generator().manual_seed(int(seed))
        out = np.empty((draws, *X.shape), dtype=np.float32)
        for lo in range(0, len(X), chunk):  # chunks bound memory; rows are independent
            x = torch.from_numpy(np.nan_to_num(X[lo:lo + chunk], nan=0.0))
            m = torch.from_numpy(m_np[lo:lo + chunk].astype(np.float32))
            cand, cand_m = self._gather(self._cands(x, m))  # the metric's scale is shared: one pool per chunk
            for k in range(draws):
                members = self.generators if average_members else [self.generators[k % len(self.generators)]]
                fill = 0.0
                for G in members:
                    z = torch.rand(x.shape, generator=gen) * self.config.noise_scale
                    fill = fill + lay.activate(G(x, m, z, cand, cand_m))
                fill = fill / len(members)
                if categorical == "sample" and lay.spans:
                    fill = lay.sample_spans(fill, gen)
                out[k, lo:lo + chunk] = fill.numpy()
        out = np.where(m_np[None], X[None], out)
        if calibrated and self.calibration and not average_members:
            out = widen(out, m_np, self.calibration, seed)
        return out

    def impute_mean(self, X: np.ndarray, draws: int = 5, seed: int = 0) -> np.ndarray:
        """(n, d) point estimate: the mean of `draws` imputations, each averaged over all ensemble members;
        category probabilities for spans."""
        return self.transform(X, draws=draws, seed=seed, categorical="probs", average_members=True).mean(axis=0)

    # ------------------------------------------------------ persistence
    def _require_fitted(self):
        if self.generator is None:
            raise ModelError("imputer is not fitted")

    def state(self) -> tuple[dict, dict[str, dict[str, torch.Tensor]]]:
        """JSON-able meta and tensors (for trainers.persistence; no pickle)."""
        self._require_fitted()
        meta = {"config": self.config.to_json(), "dim": self.layout.dim, "rows": self.rows,
                "softmax_spans": [list(s) for s in self.layout.spans], "history": self.history,
                "calibration": self.calibration}
        nets = {}
        for k, (G, D) in enumerate(zip(self.generators, self.discriminators)):
            suffix = f".{k}" if k else ""  # member 0 keeps the single-model names
            nets[f"generator{suffix}"], nets[f"discriminator{suffix}"] = G.state_dict(), D.state_dict()
        if self.bank is not None:
            nets["bank"] = {"values": self.bank, "mask": self.bank_mask}
        return meta, nets

    @classmethod
    def from_state(cls, meta: dict, networks: dict[str, dict[str, torch.Tensor]]) -> "GainImputer":
        try:
            config = GainConfig.from_json(meta["config"])
            if "ensemble" not in meta["config"]:  # saved before ensembles existed: one member
                config.ensemble = 1
            self = cls(config)
            self._build(int(meta["dim"]), int(meta["rows"]), [tuple(s) for s in meta["softmax_spans"]])
            for k, (G, D) in enumerate(zip(self.generators, self.discriminators)):
                suffix = f".{k}" if k else ""
                G.load_state_dict(networks[f"generator{suffix}"])
                D.load_state_dict(networks[f"discriminator{suffix}"])
            if self.generator.reader is not None:
                self.bank, self.bank_mask = networks["bank"]["values"], networks["bank"]["mask"]
                if self.bank.shape[1] != self.layout.dim or self.bank.shape != self.bank_mask.shape:
                    raise ValueError("bank shape does not match")
        except (KeyError, TypeError, ValueError, RuntimeError) as e:
            raise ModelError(f"imputer state does not match its metadata ({type(e).__name__}: {e})") from None
        self.history = meta.get("history", [])
        self.calibration = meta.get("calibration")  # absent in imputers saved before: draws as trained
        for net in self.generators + self.discriminators:
            net.eval()
        return self


def _check_matrix(X, dim: int | None = None) -> np.ndarray:
    X = np.asarray(X, dtype=np.float32)
    if X.ndim != 2 or len(X) == 0:
        raise DataError(f"expected a non-empty 2-D matrix, got shape {X.shape}")
    if dim is not None and X.shape[1] != dim:
        raise DataError(f"matrix has {X.shape[1]} columns, the imputer was fit on {dim}")
    if np.isinf(X).any():
        raise DataError("matrix has infinite values")
    return X

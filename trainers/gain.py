"""GAIN-style imputer on matrices (Yoon et al., ICML 2018), reworked to be accurate, not only plausible.

The adversarial game is GAIN's: the generator sees a row whose holes are filled with noise plus the mask,
and proposes values for the holes; the discriminator sees the completed row plus a *hint* (the mask, with
a random part hidden behind 0.5) and guesses, cell by cell, which values were observed. Without the hint
the discriminator could not pin down which cells to judge, and the game would have many optima.

Published GAIN fits the generator's reconstruction loss only on the cells it could see and copy, so the
only pressure to predict a hidden value well is the adversarial one. Here each batch additionally hides a
random share of the *observed* cells (`holdout_rate`) and the reconstruction loss is measured on exactly
those: the generator is trained to predict held-out values from the rest of the row, which is what
imputation asks of it. Squared error on held-out cells pulls the output towards the conditional mean (the
RMSE optimum); the adversarial term (weight 1 against `alpha` for reconstruction) keeps it a GAN and
keeps the draws varied. The networks are residual MLPs with layer norm (deeper than GAIN's 3 plain layers
and stable without batch statistics), trained with Adam and a cosine learning-rate decay.

Softmax spans (one-hot groups of a categorical column) are one unit throughout: hidden together, filled
with a softmax, reconstructed with cross-entropy. A draw then samples one category from that softmax, so
multiple imputations differ on categoricals too; `impute_mean` averages draws (the mean of K draws
approximates the conditional mean, which lowers RMSE) and returns category probabilities.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .errors import ConfigError, DataError, ModelError
from .progress import ProgressFn


@dataclass
class GainConfig:
    """Hyper-parameters. Training length is `epochs` passes over the rows if > 0, else `iterations` steps
    (a fixed step count suits both 500 and 20 000 rows; epochs suit callers that think in passes)."""

    epochs: int = 0
    iterations: int = 6000
    batch_size: int = 256
    hidden: int = 256  # generator width
    blocks: int = 3  # generator residual blocks
    d_hidden: int = 128  # discriminator width (1 residual block: it only has to judge, not predict)
    dropout: float = 0.0  # inside the generator's blocks: regularises small tables
    passes: int = 1  # generator passes: each refines the previous pass's imputations (like MICE rounds)
    mean_fill: bool = True  # first pass: holes hold the column mean (+ noise) instead of noise alone
    mc_dropout: bool = True  # keep that dropout on when imputing: draws differ, their mean is an ensemble
    hint_rate: float = 0.9  # share of mask entries revealed to the discriminator
    alpha: float = 100.0  # reconstruction weight against the adversarial loss (weight 1)
    holdout_rate: float = 0.25  # extra share of observed cells hidden per batch and reconstructed
    noise_scale: float = 0.01  # holes are filled with U(0, noise_scale) noise (as in GAIN)
    lr: float = 1e-3
    lr_final: float = 0.02  # cosine decay to lr * lr_final
    weight_decay: float = 0.0
    seed: int = 0

    def validate(self) -> "GainConfig":
        checks = [
            (self.epochs >= 0, "epochs must be >= 0"),
            (self.epochs > 0 or self.iterations > 0, "either epochs or iterations must be > 0"),
            (self.batch_size >= 2, "batch_size must be >= 2"),
            (self.hidden >= 1 and self.blocks >= 1, "hidden and blocks must be >= 1"),
            (0.0 <= self.hint_rate <= 1.0, "hint_rate must be in [0, 1]"),
            (0.0 <= self.holdout_rate < 1.0, "holdout_rate must be in [0, 1)"),
            (self.alpha >= 0.0 and self.lr > 0.0 and self.noise_scale >= 0.0, "alpha, lr, noise_scale must be positive"),
            (0.0 < self.lr_final <= 1.0, "lr_final must be in (0, 1]"),
        ]
        for ok, msg in checks:
            if not ok:
                raise ConfigError(f"imputer config: {msg}")
        return self

    def to_json(self) -> dict:
        return asdict(self)

    @classmethod
    def from_json(cls, d: dict) -> "GainConfig":
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in known})


# ------------------------------------------------------------------ networks
class _Block(nn.Module):
    """Pre-norm residual MLP block: the skip path keeps the identity easy, layer norm keeps it stable."""

    def __init__(self, width: int, dropout: float = 0.0):
        super().__init__()
        self.norm = nn.LayerNorm(width)
        self.fc1 = nn.Linear(width, width)
        self.drop = nn.Dropout(dropout)
        self.fc2 = nn.Linear(width, width)

    def forward(self, h):
        return h + self.fc2(self.drop(F.silu(self.fc1(F.silu(self.norm(h))))))


class ResMLP(nn.Module):
    """(batch, d) values + (batch, d) mask-or-hint -> (batch, d) logits. A linear path from input to
    output runs beside the residual body: much of a table's structure is near-linear (and linear
    regression is what MICE does well), so the body only has to learn what is left."""

    def __init__(self, dim: int, width: int, blocks: int, dropout: float = 0.0):
        super().__init__()
        self.inp = nn.Linear(2 * dim, width)
        self.blocks = nn.Sequential(*[_Block(width, dropout) for _ in range(blocks)])
        self.norm = nn.LayerNorm(width)
        self.out = nn.Linear(width, dim)
        self.linear = nn.Linear(2 * dim, dim)

    def forward(self, x, m):
        xm = torch.cat([x, m], dim=1)
        return self.out(F.silu(self.norm(self.blocks(self.inp(xm))))) + self.linear(xm)


# ------------------------------------------------------------------ layout
class _Layout:
    """Which encoded dimensions form one imputation unit (a continuous dim, or a whole softmax span)."""

    def __init__(self, dim: int, softmax_spans: list[tuple[int, int]]):
        spans = sorted((int(a), int(b)) for a, b in softmax_spans)
        unit = np.full(dim, -1, dtype=np.int64)
        for a, b in spans:
            if not (0 <= a < b <= dim) or (unit[a:b] >= 0).any():
                raise DataError(f"softmax span ({a}, {b}) is out of range or overlaps another (dim={dim})")
            unit[a:b] = -2
        self.dim, self.spans = dim, spans
        self.starts = []  # first dimension of each unit, in order
        u, j = 0, 0
        while j < dim:
            self.starts.append(j)
            width = next((b - a for a, b in spans if a == j), 1)
            unit[j:j + width] = u
            u, j = u + 1, j + width
        self.unit = torch.from_numpy(unit)  # dim -> unit index
        self.n_units = u
        self.is_cont = torch.ones(dim, dtype=torch.bool)
        for a, b in spans:
            self.is_cont[a:b] = False
        # contiguous segments in order: ("c", a, b) continuous run or ("s", a, b) softmax span
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

    def activate(self, logits: torch.Tensor) -> torch.Tensor:
        """Generator output as values: continuous dims clipped to the data range [0, 1] (a linear head,
        not a sigmoid, so near-linear relations between columns stay exactly linear), spans softmaxed."""
        return torch.cat([logits[:, a:b].clamp(0.0, 1.0) if k == "c" else torch.softmax(logits[:, a:b], dim=1)
                          for k, a, b in self.segments], dim=1)

    def unit_loss(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """(batch, units) per-unit loss: squared error for continuous, cross-entropy for softmax spans."""
        parts = []
        for k, a, b in self.segments:
            if k == "c":
                parts.append((logits[:, a:b] - target[:, a:b]) ** 2)  # unclipped: gradients everywhere
            else:
                parts.append(-(target[:, a:b] * F.log_softmax(logits[:, a:b], dim=1)).sum(1, keepdim=True))
        return torch.cat(parts, dim=1)

    def sample_spans(self, probs: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
        """Replace each softmax span's probabilities by a one-hot category drawn from them (Gumbel-max)."""
        out = probs.clone()
        for a, b in self.spans:
            p = probs[:, a:b]
            u = torch.rand(p.shape, generator=gen).clamp(1e-12, 1.0 - 1e-7)
            gumbel = -torch.log(-torch.log(u))
            pick = (torch.log(p.clamp_min(1e-12)) + gumbel).argmax(1)
            out[:, a:b] = F.one_hot(pick, b - a).to(probs.dtype)
        return out


# ------------------------------------------------------------------ imputer
class GainImputer:
    """fit(X, softmax_spans) on a float (n, d) matrix in [0, 1] with NaN holes; transform(X, draws=K)."""

    def __init__(self, config: GainConfig | None = None):
        self.config = (config or GainConfig()).validate()
        self.layout: _Layout | None = None
        self.generator: ResMLP | None = None
        self.discriminator: ResMLP | None = None
        self.history: list[dict] = []
        self.fill: torch.Tensor | None = None  # (d,) initial value of a hole, before noise

    def _generate(self, x, m, z, passes: int) -> list[torch.Tensor]:
        """Logits of every pass. Pass 1 sees holes = fill + noise; pass k sees pass k-1's values
        (detached: each pass learns to improve a given guess, as a MICE round does)."""
        lay, G = self.layout, self.generator
        x_in = m * x + (1 - m) * (self.fill + z)
        out = []
        for p in range(passes):
            logits = G(x_in, m)
            out.append(logits)
            if p + 1 < passes:
                x_in = m * x + (1 - m) * lay.activate(logits).detach()
        return out

    def _build(self, dim: int, softmax_spans) -> None:
        cfg = self.config
        self.layout = _Layout(dim, softmax_spans)
        with torch.random.fork_rng(devices=[]):  # reproducible init without touching the caller's RNG
            torch.manual_seed(cfg.seed)
            self.generator = ResMLP(dim, cfg.hidden, cfg.blocks, cfg.dropout)
            self.discriminator = ResMLP(dim, cfg.d_hidden, 1)

    # -------------------------------------------------------------- fit
    def fit(self, X: np.ndarray, softmax_spans=(), progress: ProgressFn | None = None) -> "GainImputer":
        cfg = self.config.validate()
        X = _check_matrix(X)
        self._build(X.shape[1], list(softmax_spans))
        lay, G, D = self.layout, self.generator, self.discriminator
        observed = lay.unit_observed(X)
        if not observed.any(axis=0).all():
            raise DataError("a column has no observed value: the imputer cannot learn it")
        data = torch.from_numpy(np.nan_to_num(X, nan=0.0))
        fill = np.nanmean(X, axis=0) if cfg.mean_fill else np.zeros(X.shape[1])
        self.fill = torch.from_numpy(np.nan_to_num(fill).astype(np.float32))
        obs_u = torch.from_numpy(observed.astype(np.float32))
        n = len(X)
        bs = min(cfg.batch_size, n)
        per_epoch = max(1, n // bs)
        steps = cfg.epochs * per_epoch if cfg.epochs > 0 else cfg.iterations
        epochs = math.ceil(steps / per_epoch)
        gen = torch.Generator().manual_seed(cfg.seed)
        opt_g = torch.optim.Adam(G.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay, fused=True)
        opt_d = torch.optim.Adam(D.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay, fused=True)
        sched = [torch.optim.lr_scheduler.CosineAnnealingLR(o, T_max=steps, eta_min=cfg.lr * cfg.lr_final)
                 for o in (opt_g, opt_d)]
        G.train(); D.train()
        with torch.random.fork_rng(devices=[]):  # dropout uses the global RNG: seed it, then restore
            torch.manual_seed(cfg.seed)
            self._train(data, obs_u, gen, opt_g, opt_d, sched, steps, per_epoch, epochs, bs, progress)
        G.eval(); D.eval()
        return self

    def _train(self, data, obs_u, gen, opt_g, opt_d, sched, steps, per_epoch, epochs, bs, progress) -> None:
        n = len(data)
        self.history, sums, count = [], np.zeros(4), 0
        perm = torch.randperm(n, generator=gen)
        for step in range(1, steps + 1):
            k = (step - 1) % per_epoch
            if k == 0 and step > 1:
                perm = torch.randperm(n, generator=gen)
            idx = perm[k * bs:(k + 1) * bs]
            sums += self._step(data[idx], obs_u[idx], gen, opt_g, opt_d)
            for s in sched:
                s.step()
            count += 1
            if step % per_epoch == 0 or step == steps:
                mean = sums / count
                rec = {"epoch": len(self.history) + 1, "epochs": epochs, "loss_d": float(mean[0]),
                       "loss_adv": float(mean[1]), "rec_holdout": float(mean[2]), "rec_visible": float(mean[3]),
                       "lr": float(opt_g.param_groups[0]["lr"])}
                self.history.append(rec)
                if progress is not None:
                    progress(dict(rec))
                sums, count = np.zeros(4), 0

    def _step(self, x, obs_u, gen, opt_g, opt_d) -> np.ndarray:
        cfg, lay, G, D = self.config, self.layout, self.generator, self.discriminator
        # Hide an extra random share of the observed units: the generator must predict them.
        keep_u = obs_u * (torch.rand(obs_u.shape, generator=gen) >= cfg.holdout_rate).float()
        held_u = obs_u - keep_u
        m = keep_u[:, lay.unit]  # per-dimension input mask
        z = torch.rand(x.shape, generator=gen) * cfg.noise_scale
        all_logits = self._generate(x, m, z, cfg.passes)
        logits = all_logits[-1]
        fake = lay.activate(logits)
        x_hat = m * x + (1 - m) * fake
        # Hint: reveal the mask on a random share of units, 0.5 ("don't know") elsewhere; D is scored
        # only where the hint hides the answer, so it cannot win by copying it.
        b_u = (torch.rand(obs_u.shape, generator=gen) < cfg.hint_rate).float()
        hint = (b_u * keep_u + 0.5 * (1 - b_u))[:, lay.unit]
        judged = (1 - b_u)[:, lay.unit]
        n_judged = judged.sum().clamp_min(1.0)

        # One discriminator pass serves both players: D's loss is backpropagated into D only, the
        # generator's (fool D on the imputed cells it judges + reconstruction) into G only.
        d_logits = D(x_hat, hint)
        loss_d = (F.binary_cross_entropy_with_logits(d_logits, m, reduction="none") * judged).sum() / n_judged
        fooled = judged * (1 - m)
        loss_adv = (F.softplus(-d_logits) * fooled).sum() / fooled.sum().clamp_min(1.0)
        unit_loss = sum(lay.unit_loss(lg, x) for lg in all_logits) / len(all_logits)
        rec_held = (unit_loss * held_u).sum() / held_u.sum().clamp_min(1.0)
        rec_vis = (unit_loss * keep_u).sum() / keep_u.sum().clamp_min(1.0)
        loss_g = loss_adv + cfg.alpha * (rec_held + 0.1 * rec_vis)
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
                  chunk: int = 8192) -> np.ndarray:
        """(draws, n, d) completed matrices. Each draw fills the holes with fresh noise; softmax spans
        hold a sampled one-hot category (categorical='sample') or the probabilities ('probs'). Observed
        cells are copied from X, so they are returned exactly. Same seed -> identical output."""
        self._require_fitted()
        if draws < 1:
            raise ConfigError(f"draws must be >= 1 (got {draws})")
        if categorical not in ("sample", "probs"):
            raise ConfigError("categorical must be 'sample' or 'probs'")
        X = _check_matrix(X, self.layout.dim)
        lay = self.layout
        m_np = np.repeat(lay.unit_observed(X), np.diff(lay.starts + [lay.dim]), axis=1)
        gen = torch.Generator().manual_seed(int(seed))
        out = np.empty((draws, *X.shape), dtype=np.float32)
        self.generator.train(self.config.mc_dropout and self.config.dropout > 0)
        with torch.random.fork_rng(devices=[]):  # dropout draws from the global RNG: seed it, then restore
            torch.manual_seed(int(seed))
            for lo in range(0, len(X), chunk):  # chunks bound memory; rows are independent
                x = torch.from_numpy(np.nan_to_num(X[lo:lo + chunk], nan=0.0))
                m = torch.from_numpy(m_np[lo:lo + chunk].astype(np.float32))
                for k in range(draws):
                    z = torch.rand(x.shape, generator=gen) * self.config.noise_scale
                    fill = lay.activate(self._generate(x, m, z, self.config.passes)[-1])
                    if categorical == "sample" and lay.spans:
                        fill = lay.sample_spans(fill, gen)
                    out[k, lo:lo + chunk] = fill.numpy()
        self.generator.eval()
        return np.where(m_np[None].astype(bool), X[None], out)

    def impute_mean(self, X: np.ndarray, draws: int = 10, seed: int = 0) -> np.ndarray:
        """(n, d) point estimate: the mean of `draws` imputations (category probabilities for spans).
        Averaging approximates the conditional mean, which minimises RMSE better than any single draw."""
        return self.transform(X, draws=draws, seed=seed, categorical="probs").mean(axis=0)

    # ------------------------------------------------------ persistence
    def _require_fitted(self):
        if self.generator is None:
            raise ModelError("imputer is not fitted")

    def state(self) -> tuple[dict, dict[str, dict[str, torch.Tensor]]]:
        """JSON-able meta and state_dicts (for trainers.persistence; no pickle)."""
        self._require_fitted()
        meta = {"config": self.config.to_json(), "dim": self.layout.dim, "fill": self.fill.tolist(),
                "softmax_spans": [list(s) for s in self.layout.spans], "history": self.history}
        return meta, {"generator": self.generator.state_dict(), "discriminator": self.discriminator.state_dict()}

    @classmethod
    def from_state(cls, meta: dict, networks: dict[str, dict[str, torch.Tensor]]) -> "GainImputer":
        try:
            self = cls(GainConfig.from_json(meta["config"]))
            self._build(int(meta["dim"]), [tuple(s) for s in meta["softmax_spans"]])
            self.fill = torch.tensor(meta["fill"], dtype=torch.float32)
            self.generator.load_state_dict(networks["generator"])
            self.discriminator.load_state_dict(networks["discriminator"])
        except (KeyError, TypeError, ValueError, RuntimeError) as e:
            raise ModelError(f"imputer state does not match its metadata ({type(e).__name__}: {e})") from None
        self.history = meta.get("history", [])
        self.generator.eval(); self.discriminator.eval()
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

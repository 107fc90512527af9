"""The tabular GAN: a conditional WGAN-GP (or non-saturating / minimax) generator for mixed tables with
missing values. Read top to bottom: config, fit (encode -> sample conditions -> alternate D and G steps),
sample (noise + condition -> generator -> exact categorical draws -> decode), save/load.

Missing values: the encoder gives each column with holes an indicator, so the generator learns *where*
values are missing (per-column rates and their co-occurrence) as part of the joint distribution. The value
behind a hole is unknown, so before training the holes are filled by the GAIN-style imputer (plausible given
the rest of the row); sampling with missing='fill' returns those values instead of the holes.
"""

from __future__ import annotations

import os
import time
from dataclasses import asdict, dataclass, field

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F

from .base import GenerativeModel
from .conditioning import ConditionSampler
from .encoding import TableEncoder, restore_dtype
from .errors import ConfigError, DataError, ModelError
from .losses import DUAL_ALPHA, DUAL_BETA, LOSSES, discriminator_loss, generator_loss, gradient_penalty, interpolates
from .networks import (Discriminator, DualDiscriminator, Generator, TargetClassifier, activate, condition_loss,
                       discretize, frequency_match_loss)
from .persistence import load_network, read_meta, save_model_dir
from .progress import ProgressFn, staged
from .runtime import seed_everything
from .schema import infer_schema


# The imputer that fills holes before GAN training only has to be plausible, not RMSE-optimal. It must also
# never use the imputer's neighbour read-out (pool > 0), which stores training rows in the model: a
# generator's model directory (and registered version) must not carry raw training rows.
FILL_IMPUTER_STEPS = 2000
FILL_IMPUTER_POOL = 0

# Options added after models were first saved, with the value those models were trained with (not today's default):
# they load, sample and --resume exactly as they were trained.
NUMERIC_ENCODINGS = ("auto", "quantile", "mode")  # the GAN's choices (the encoder's "minmax" is the imputer's)
LEGACY_CONFIG = {"numeric_encoding": "quantile", "condition_on_modes": True, "frequency_weight": 0.0}


@dataclass
class TabularGANConfig:
    epochs: int = 300
    batch_size: int = 500
    loss: str = "wgan-gp"
    pac: int = 10
    noise_dim: int = 128
    generator_hidden: tuple[int, ...] = (256, 256)
    generator_block: str = "concat"  # residual blocks that concatenate (CTGAN-like, default) or add (lighter)
    discriminator_hidden: tuple[int, ...] = (256, 256)
    lr: float = 2e-4
    weight_decay: float = 1e-6
    discriminator_steps: int = 1
    gp_weight: float = 10.0
    # Lazy regularisation: the gradient penalty on every k-th critic update, weighted k times. 4 costs ~20% less
    # CPU per step with the same 100-epoch Adult quality on one seed, but made a 90-step fit noisier (a 1- vs
    # 2-worker quality test failed), so it is an option, not the default (benchmarks/RESULTS.md).
    gp_every: int = 1
    dual_alpha: float = DUAL_ALPHA  # loss='dual': weight of D1's log term (the KL side: covers modes)
    dual_beta: float = DUAL_BETA  # loss='dual': weight of D2's log term (the reverse-KL side: stays on modes)
    seed: int = 0
    fill_missing: str = "imputer"  # how holes are filled before training: "imputer" (GAIN) or "hotdeck"
    target: str | None = None  # a column to keep predictable: adds the auxiliary-classifier loss
    target_weight: float = 1.0
    imputer_epochs: int = field(default=0)  # 0: FILL_IMPUTER_STEPS steps
    # "quantile" (per-column CDF -> N(0,1)), "mode" (mixture mode one-hot + offset) or "auto" (per column: mode where the
    # values form clusters separated by low density and are not mostly point masses, quantile elsewhere —
    # mode_encoding.choose_encoding). auto: the ring / grid get modes (they need them: 37% vs 98% HQ on the ring), Adult
    # keeps quantile on every column (mode's point masses gave it away to the detector), benchmarks/RESULTS.md run 4.
    numeric_encoding: str = "auto"
    condition_on_modes: bool = True  # mode spans: training-by-sampling also conditions on numeric modes (ring: 96% vs 37% HQ)
    # Generator term (networks.frequency_match_loss): per condition, its category probabilities vs the paired real
    # rows' frequencies. It balances the mode draw the condition leaves free (5x5 grid, 5 seeds: reverse KL 0.12 ->
    # 0.006); with the quantile encoding there are no mode spans and it does nothing. 0 = off (older models load so).
    frequency_weight: float = 10.0
    # Spans it covers: "mode" (numeric modes) or "all" (also categories; measured only with an earlier plain gradient:
    # Adult seed 0 marginals 0.064 -> 0.023 but utility 0.86 -> 0.61, benchmarks/RESULTS.md run 3).
    frequency_spans: str = "mode"

    def validate(self) -> "TabularGANConfig":
        if self.loss not in LOSSES:
            raise ConfigError(f"unknown loss '{self.loss}' (choose from {', '.join(LOSSES)})")
        if self.epochs < 1:
            raise ConfigError(f"--epochs must be >= 1 (got {self.epochs})")
        if self.pac < 1 or self.batch_size < self.pac or self.batch_size % self.pac:
            raise ConfigError(f"--batch-size must be a positive multiple of pac={self.pac} (got {self.batch_size})")
        if self.gp_every < 1:
            raise ConfigError(f"gp_every must be >= 1 (got {self.gp_every})")
        if not (self.dual_alpha > 0 and self.dual_beta > 0):
            raise ConfigError(f"dual_alpha and dual_beta must be > 0 (got {self.dual_alpha}, {self.dual_beta})")
        if self.generator_block not in ("concat", "add"):
            raise ConfigError(f"generator_block must be 'concat' or 'add' (got {self.generator_block!r})")
        if self.numeric_encoding not in NUMERIC_ENCODINGS:
            raise ConfigError(f"numeric_encoding must be one of {', '.join(NUMERIC_ENCODINGS)} (got {self.numeric_encoding!r})")
        if not self.frequency_weight >= 0:
            raise ConfigError(f"frequency_weight must be >= 0 (got {self.frequency_weight})")
        if self.frequency_spans not in ("mode", "all"):
            raise ConfigError(f"frequency_spans must be 'mode' or 'all' (got {self.frequency_spans!r})")
        if self.fill_missing not in ("imputer", "hotdeck"):
            raise ConfigError(f"fill_missing must be 'imputer' or 'hotdeck' (got {self.fill_missing!r})")
        return self

    def to_json(self) -> dict:
        return asdict(self)

    @classmethod
    def from_json(cls, d: dict) -> "TabularGANConfig":
        d = {**LEGACY_CONFIG, **d}  # a model saved before an option existed was trained without it
        for k in ("generator_hidden", "discriminator_hidden"):
            d[k] = tuple(d[k])
        return cls(**d)


class TabularGAN(GenerativeModel):
    kind = "tabular"

    def __init__(self, config: TabularGANConfig | None = None, **overrides):
        self.config = (config or TabularGANConfig())
        if overrides:
            self.config = TabularGANConfig(**{**asdict(self.config), **overrides})
        self.encoder: TableEncoder | None = None
        self.sampler: ConditionSampler | None = None
        self.generator: Generator | None = None
        self.discriminator: Discriminator | None = None
        self.imputer = None
        self.history: list[dict] = []
        self.training: dict = {}

    # ---------------------------------------------------------------- fit
    def fit(self, table: pd.DataFrame, progress: ProgressFn | None = None) -> "TabularGAN":
        cfg = self.config.validate()
        rng = seed_everything(cfg.seed)
        t0 = time.perf_counter()
        schema = infer_schema(table)
        self._check_target(schema)
        if len(table) < cfg.batch_size:
            raise DataError(f"table has {len(table)} rows, fewer than --batch-size {cfg.batch_size}: lower the batch size")
        completed = self._fill_holes(table, schema, rng, progress)
        self.encoder = self.new_encoder().fit(table, schema)
        X = self.encoder.transform(completed, missing_mask=table.isna(), rng=rng)
        self.sampler = ConditionSampler.from_data(X, self.condition_spans())
        self._build_networks()
        self._train(torch.from_numpy(X), rng, progress)
        self.training = {"rows": len(table), "columns": table.shape[1], "seconds": time.perf_counter() - t0,
                         "epochs": cfg.epochs, "final": self.history[-1] if self.history else {}}
        return self

    def new_encoder(self) -> TableEncoder:
        return TableEncoder(self.config.numeric_encoding, "indicator", small_integers=True, seed=self.config.seed)

    def condition_spans(self) -> list:
        """Spans the condition vector is built from: categories and missing indicators; a numeric column's
        mode span only with condition_on_modes (a mode is never a user-facing `--condition` value)."""
        return [s for s in self.encoder.spans if s.role != "mode" or self.config.condition_on_modes]

    def _fill_holes(self, table: pd.DataFrame, schema, rng: np.random.Generator,
                    progress: ProgressFn | None = None) -> pd.DataFrame:
        if not table.isna().any().any():
            return table
        if self.config.fill_missing == "hotdeck":
            return hot_deck(table, rng)
        from .imputer import TabularImputer, GainConfig  # local: the imputer is optional for complete tables
        icfg = GainConfig(seed=self.config.seed, iterations=FILL_IMPUTER_STEPS, pool=FILL_IMPUTER_POOL,
                          ensemble=1)  # plausible fills need no ensemble: one member, one fit's time
        if self.config.imputer_epochs:
            icfg.epochs = self.config.imputer_epochs
        self.imputer = TabularImputer(icfg).fit(table, schema=schema, progress=staged(progress, "imputer"))
        return self.imputer.transform(table, draws=1, seed=self.config.seed)[0]

    def _check_target(self, schema) -> None:
        """Fail before any training if --target cannot be used (the GAN encodes it as one softmax span)."""
        t = self.config.target
        if t is None:
            return
        if t not in schema.names:
            raise ConfigError(f"--target column '{t}' is not in the table (columns: {', '.join(schema.names)})")
        if not (schema[t].is_discrete or schema[t].is_small_integer):
            raise ConfigError(f"--target column '{t}' must be categorical, boolean or a few-level integer "
                              f"(regression targets are not supported yet)")

    def _target_parts(self):
        """(classifier, optimiser, target span, feature mask) for the auxiliary loss, or None."""
        if self.config.target is None:
            return None
        span = self.encoder.column_spans(self.config.target)[0]
        mask = torch.ones(self.encoder.output_dim)
        mask[span.start:span.stop] = 0.0
        clf = TargetClassifier(self.encoder.output_dim, span.width)
        opt = torch.optim.Adam(clf.parameters(), lr=self.config.lr, weight_decay=1e-5)
        return clf, opt, span, mask

    def _build_networks(self) -> None:
        cfg, d, c = self.config, self.encoder.output_dim, self.sampler.dim
        self.generator = Generator(cfg.noise_dim, c, d, cfg.generator_hidden, cfg.generator_block)
        critic = DualDiscriminator if cfg.loss == "dual" else Discriminator  # dual: D1 and D2 in one module
        self.discriminator = critic(d + c, cfg.discriminator_hidden, cfg.pac)

    def optimizers(self):
        """Adam for both players (CTGAN's betas), shared by the in-process and the Ray loop. `fused`: one kernel
        per optimiser step instead of a handful of ops per parameter tensor — the same update, ~8% less time per
        training step on Adult (CPU)."""
        cfg = self.config
        return tuple(torch.optim.Adam(net.parameters(), lr=cfg.lr, betas=(0.5, 0.9), weight_decay=cfg.weight_decay,
                                      fused=True)
                     for net in (self.generator, self.discriminator))

    def _train(self, X: torch.Tensor, rng: np.random.Generator, progress: ProgressFn | None) -> None:
        cfg = self.config
        opt_g, opt_d = self.optimizers()
        steps = max(1, len(X) // cfg.batch_size)
        aux = self._target_parts()
        self.generator.train(); self.discriminator.train()
        for epoch in range(1, cfg.epochs + 1):
            t_epoch, cpu_epoch = time.perf_counter(), time.process_time()
            sums: dict[str, float] = {}
            for _ in range(steps):
                for k, v in self.train_step(X, rng, opt_g, opt_d, aux).items():
                    sums[k] = sums.get(k, 0.0) + v
            seconds = time.perf_counter() - t_epoch
            metrics = {"epoch": epoch, "epochs": cfg.epochs, **{k: v / steps for k, v in sums.items()},
                       "rows_per_s": steps * cfg.batch_size / seconds, "epoch_s": seconds,
                       "epoch_cpu_s": time.process_time() - cpu_epoch}  # wall time lies on a shared machine
            self.history.append(metrics)
            if progress:
                progress(metrics)
        self.generator.eval(); self.discriminator.eval()

    def train_step(self, X: torch.Tensor, rng: np.random.Generator, opt_g, opt_d, aux=None) -> dict[str, float]:
        """One adversarial step on a batch of X: `discriminator_steps` critic updates, then one generator
        update. The last critic update and the generator update share one generator forward pass (the
        critic sees it detached), which saves a quarter of the step's compute. The critic takes the batch's
        condition rows once for real rows, fakes and interpolates (networks.Discriminator's shared-condition
        form: ~12% less CPU per Adult step than one packed forward per group, benchmarks/RESULTS.md)."""
        cfg, G, D, sampler, spans = self.config, self.generator, self.discriminator, self.sampler, self.encoder.spans
        B = cfg.batch_size
        critic_params = list(D.parameters())
        for i in range(cfg.discriminator_steps):
            cond, span, g, rows = sampler.sample_train(B, rng)
            c = torch.from_numpy(cond)
            real = X[torch.from_numpy(rows)]
            last = i == cfg.discriminator_steps - 1
            with torch.set_grad_enabled(last):
                raw = G(torch.randn(B, cfg.noise_dim), c)
                fake = activate(raw, spans)
            pairs = torch.cat([real, fake.detach()])
            if cfg.loss == "wgan-gp" and (_updates_done(opt_d) + 1) % cfg.gp_every == 0:
                x_hat = interpolates(real, fake.detach(), cfg.pac).requires_grad_(True)
                c_hat = c.detach().requires_grad_(True)  # the penalty's norm includes the condition columns
                scores, scores_hat = D(pairs, x_hat, cond=c_hat)
                penalty = gradient_penalty(scores_hat, (x_hat, c_hat), cfg.pac, cfg.gp_weight * cfg.gp_every)
            else:
                (scores,), penalty = D(pairs, cond=c), None
            real_scores, fake_scores = scores.chunk(2)
            loss_d = discriminator_loss(cfg.loss, real_scores, fake_scores, cfg.dual_alpha, cfg.dual_beta)
            if penalty is not None:
                loss_d = loss_d + penalty
            opt_d.zero_grad(set_to_none=True)
            loss_d.backward(inputs=critic_params)  # not into c_hat: its gradient only serves the penalty's norm
            opt_d.step()
        out = {"d_loss": loss_d.item()}
        if aux:
            clf, opt_c, tspan, tmask = aux
            loss_clf = F.cross_entropy(clf(real * tmask), real[:, tspan.start:tspan.stop].argmax(1))
            opt_c.zero_grad(set_to_none=True)
            loss_clf.backward()
            opt_c.step()
        span_t = torch.from_numpy(span)
        loss_c = condition_loss(raw, sampler.spans, span_t, torch.from_numpy(g) - torch.from_numpy(sampler.offsets)[span_t])
        frozen = critic_params + ([p for p in aux[0].parameters()] if aux else [])
        for p in frozen:  # the generator's backward needs gradients w.r.t. fakes, not w.r.t. D's weights
            p.requires_grad_(False)
        loss_g = generator_loss(cfg.loss, D(fake, cond=c)[0], cfg.dual_beta) + loss_c
        matched = [s for s in spans if s.kind == "softmax" and (cfg.frequency_spans == "all" or s.role == "mode")]
        if cfg.frequency_weight and matched:  # quantile encoding, frequency_spans="mode": nothing to match
            groups = torch.from_numpy(g) if len(g) else torch.zeros(B, dtype=torch.int64)  # no conditions: one group
            loss_f = frequency_match_loss(raw, real, matched, groups, max(sampler.dim, 1))
            loss_g = loss_g + cfg.frequency_weight * loss_f
            out["freq_loss"] = loss_f.item()
        if aux:
            clf, _, tspan, tmask = aux
            loss_t = F.cross_entropy(clf(fake * tmask), fake[:, tspan.start:tspan.stop].argmax(1).detach())
            loss_g = loss_g + cfg.target_weight * loss_t
            out["target_loss"] = loss_t.item()
        opt_g.zero_grad(set_to_none=True)
        loss_g.backward()
        opt_g.step()
        for p in frozen:
            p.requires_grad_(True)
        out.update(g_loss=loss_g.item(), cond_loss=loss_c.item())
        return out

    # ------------------------------------------------------------- sample
    def sample(self, n: int, seed: int = 0, condition: dict | None = None, missing: str = "keep",
               chunk_size: int = 8192, pin_conditions: bool = False) -> pd.DataFrame:
        """`n` synthetic rows. condition={column: value} makes every row carry that value (the generator is
        conditioned on it, and the column is then set exactly — no rejection loop). missing='keep' gives
        realistic holes, 'fill' complete rows. pin_conditions: unconditional rows keep the category their
        (true-frequency) condition drew in the conditioned column, instead of the generator's own draw."""
        self._require_fitted()
        if not isinstance(n, (int, np.integer)) or isinstance(n, bool) or n < 1:
            raise ConfigError(f"number of rows must be a positive integer (got {n!r})")
        if missing not in ("keep", "fill"):
            raise ConfigError(f"missing must be 'keep' or 'fill' (got {missing!r})")
        fixed = self._resolve_condition(condition) if condition else None
        gen = torch.Generator().manual_seed(int(seed))
        rng = np.random.default_rng(seed)
        self.generator.eval()
        encoded = np.empty((n, self.encoder.output_dim), dtype=np.float32)  # chunks land in place: no concatenate
        with torch.inference_mode():
            for start in range(0, n, chunk_size):
                m = min(chunk_size, n - start)
                cond = self.sampler.fixed(fixed[0], fixed[1], m) if fixed else self.sampler.sample_original(m, rng)
                z = torch.randn(m, self.config.noise_dim, generator=gen)
                raw = self.generator(z, torch.from_numpy(cond))
                block = discretize(raw, self.encoder.spans, gen).numpy()
                encoded[start:start + m] = self.sampler.pin(block, cond) if pin_conditions and not fixed else block
        out = self.encoder.inverse_transform(encoded, missing=missing)
        if fixed:
            spec = self.encoder.schema[fixed[2]]
            out[spec.name] = restore_dtype(pd.Series(spec.categories[fixed[1]], index=out.index, dtype=object), spec)
        return out

    def _resolve_condition(self, condition: dict) -> tuple[int, int, str]:
        """Map {column: value} to (span index, category index, column); values given as text (from the CLI)
        match a category by its text, also ignoring surrounding whitespace when that is unambiguous."""
        if len(condition) != 1:
            raise ConfigError(f"give exactly one condition column (got {len(condition)})")
        (col, value), = condition.items()
        schema = self.encoder.schema
        if col not in schema.names:
            raise ConfigError(f"unknown condition column '{col}' (columns: {', '.join(schema.names)})")
        spec = schema[col]
        if not self.encoder.as_category(spec):
            raise ConfigError(f"condition column '{col}' is {spec.kind} with many levels; conditions need a "
                              f"categorical, boolean or few-level integer column")
        cats = spec.categories
        idx = [i for i, c in enumerate(cats) if c == value or str(c) == str(value)]
        if not idx:
            idx = [i for i, c in enumerate(cats) if str(c).strip().lower() == str(value).strip().lower()]
        if len(idx) != 1:
            shown = ", ".join(repr(str(c).strip()) for c in cats[:10]) + (" ..." if len(cats) > 10 else "")
            raise ConfigError(f"value {value!r} is not a known category of '{col}' (known: {shown})")
        return self.sampler.span_index(col), idx[0], col

    def impute(self, table: pd.DataFrame, draws: int = 1, seed: int = 0) -> list[pd.DataFrame]:
        if self.imputer is None:
            raise ModelError("this model has no imputer (its training data had no missing values); "
                             "run `ganstream impute DATA` without --model to fit one on DATA")
        return self.imputer.transform(table, draws=draws, seed=seed)

    # -------------------------------------------------------- persistence
    def _require_fitted(self):
        if self.generator is None:
            raise ModelError("model is not fitted")

    def save(self, path: str | os.PathLike) -> None:
        self._require_fitted()
        networks = {"generator": self.generator.state_dict(), "discriminator": self.discriminator.state_dict()}
        meta = {"kind": self.kind, "config": self.config.to_json(), "encoder": self.encoder.to_json(),
                "condition_probs": [self.sampler.freq[j, :w].tolist() for j, w in enumerate(self.sampler.widths)],
                "training": self.training, "history": self.history}
        if self.imputer is not None:
            imeta, inets = self.imputer.state()
            meta["imputer"] = imeta
            networks.update({f"imputer.{k}": v for k, v in inets.items()})
        save_model_dir(path, meta, networks)

    @classmethod
    def load(cls, path: str | os.PathLike) -> "TabularGAN":
        meta = read_meta(path, kind=cls.kind)
        try:
            self = cls(TabularGANConfig.from_json(meta["config"]))
            self.encoder = TableEncoder.from_json(meta["encoder"])
            self.sampler = ConditionSampler(self.condition_spans(), [np.asarray(p) for p in meta["condition_probs"]])
            self._build_networks()
            self.generator.load_state_dict(load_network(path, "generator"))
            self.discriminator.load_state_dict(load_network(path, "discriminator"))
        except (KeyError, TypeError, RuntimeError) as e:
            raise ModelError(f"{path}: model files do not match its metadata ({type(e).__name__}: {e})") from None
        self.training, self.history = meta.get("training", {}), meta.get("history", [])
        if "imputer" in meta:
            from .imputer import TabularImputer
            nets = {k.split(".", 1)[1]: load_network(path, k) for k in meta["networks"] if k.startswith("imputer.")}
            self.imputer = TabularImputer.from_state(meta["imputer"], nets)
        self.generator.eval(); self.discriminator.eval()
        return self


def _updates_done(opt: torch.optim.Optimizer) -> int:
    """Updates an optimiser has made, from its own state: it travels with checkpoints, so a resumed fit keeps
    the lazy penalty's schedule (an attribute on the model would restart at 0)."""
    state = opt.state.get(opt.param_groups[0]["params"][0])
    return int(state["step"]) if state else 0


def hot_deck(table: pd.DataFrame, rng: np.random.Generator) -> pd.DataFrame:
    """Fill each hole with a random observed value of the same column (keeps marginals, ignores the row)."""
    out = table.copy()
    for col in table.columns[table.isna().any()]:
        s = table[col]
        miss = s.isna().to_numpy()
        donors = s[~miss].to_numpy()
        filled = s.to_numpy(copy=True).astype(object) if s.dtype == object else s.to_numpy(copy=True)
        filled[miss] = donors[rng.integers(0, len(donors), size=int(miss.sum()))]
        out[col] = pd.Series(filled, index=s.index).astype(s.dtype)
    return out

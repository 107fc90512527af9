"""The tabular GAN: a conditional WGAN-GP (or non-saturating / minimax / dual) generator for mixed tables with
missing values. Read top to bottom: fit (encode -> sample conditions -> alternate D and G steps), sample
(noise + condition -> generator -> exact categorical draws -> decode), save/load. The hyper-parameters are in
tabular/config.py.

Missing values: the encoder gives each column with holes an indicator, so the generator learns *where*
values are missing (per-column rates and their co-occurrence) as part of the joint distribution. The value
behind a hole is unknown, so before training the holes are filled by the GAIN-style imputer (plausible given
the rest of the row); sampling with missing='fill' returns those values instead of the holes.

One training loop: `run_epoch` is what an in-process fit (`fit`, the local backend) and every Ray Train worker
(backends/ray_tabular.py) run; each epoch draws from `epoch_rng(seed, rank, epoch)`, so a fit resumed from a
checkpoint continues exactly as an uninterrupted one.
"""

from __future__ import annotations

import os
import time
from typing import Iterable

import numpy as np
import pandas as pd
import torch

from ganstream.trainers.base import GenerativeModel
from ganstream.trainers.column_values import restore_dtype
from ganstream.trainers.encoding import TableEncoder
from ganstream.trainers.errors import ConfigError, ModelError
from ganstream.trainers.persistence import load_network, read_meta, save_model_dir
from ganstream.trainers.progress import ProgressFn, staged
from ganstream.trainers.runtime import derive_seed, epoch_rng, seed_everything
from ganstream.trainers.schema import infer_schema
from ganstream.trainers.tabular.missingness import HolePatterns, hot_deck, impose, indicator_slots
from ganstream.trainers.tabular.conditioning import MODE_ROLES, ConditionSampler, resolve_condition
from ganstream.trainers.tabular import schedule
from ganstream.trainers.tabular.gain import GainConfig
from ganstream.trainers.tabular.imputer_calibration import trains_twice
from ganstream.trainers.tabular.schedule import InfoFn
from ganstream.trainers.tabular import dp_training as dp
from ganstream.trainers.tabular.dp_accounting import DPPlan
from ganstream.trainers.tabular.config import LEGACY_CONFIG, Loss, TabularGANConfig  # noqa: F401
from ganstream.trainers.tabular.adversarial_step import adversarial_step
from ganstream.trainers.tabular.networks import (Discriminator, DualDiscriminator, Generator, TargetClassifier,
                                                 discretize)

# The imputer that fills holes before GAN training only has to be plausible, not RMSE-optimal. It must also
# never use the imputer's neighbour read-out (pool > 0), which stores training rows in the model: a
# generator's model directory (and registered version) must not carry raw training rows.
FILL_IMPUTER_POOL = 0
TARGET_CLASSIFIER = "target_classifier"  # checkpoint name of --target's auxiliary classifier



class TabularGAN(GenerativeModel):
    """A GAN for mixed tables with missing values (scikit-learn conventions: parameters in __init__, then
    `fit`, `sample`, `impute`, `save`; `ganstream.load(dir)` reads a saved one back).

        gan = TabularGAN(epochs=50, target="income").fit(df)     # holes as NaN / None are fine
        rows = gan.sample(1000, seed=0)                         # same seed, same rows
        rich = gan.sample(100, condition={"income": ">50K"})    # exact conditional rows, no rejection
        filled = gan.impute(df_with_holes, draws=5)             # 5 completed copies (multiple imputation)
        gan.save("runs/adult")

    `TabularGAN(config)` also takes a TabularGANConfig; keywords override its fields.
    """

    kind = "tabular"

    def __init__(self, config: TabularGANConfig | None = None, **params):
        base = config.to_json() if config is not None else {}
        self.config = TabularGANConfig.from_options(**{**base, **params})
        self.encoder: TableEncoder | None = None
        self.sampler: ConditionSampler | None = None
        self.generator: Generator | None = None
        self.discriminator: Discriminator | None = None
        self.imputer = None
        self.holes: HolePatterns | None = None  # the training rows' hole patterns (tabular/missingness.py)
        self.privacy: DPPlan | None = None  # dp_epsilon: the budget, its noise and what was spent
        self.dp_fill: dict | None = None  # dp_epsilon: each column's hole fill (dp_training.fill_values)
        self.dp_workers = 1  # data-parallel workers sharing one DP step's noise (ray_tabular_worker.py)
        self.history: list[dict] = []
        self.training: dict = {}

    # ---------------------------------------------------------------- fit
    def fit(self, table: pd.DataFrame, progress: ProgressFn | None = None, checkpoints=None,
            info: InfoFn | None = None) -> "TabularGAN":
        """Fit on `table` (a DataFrame; holes as NaN/None) in this process. `checkpoints` (the local backend's
        backends/checkpoint.LocalCheckpoints) writes one per epoch and, with a checkpoint to resume from, restores
        everything the fit had learnt (encoder, imputer, weights, optimiser states) and continues after it."""
        cfg = self.config.validate()
        t0, cpu0 = time.perf_counter(), time.process_time()
        resumed = checkpoints.latest() if checkpoints is not None else None
        if resumed is not None:
            self._adopt(type(self).load(resumed.model_dir))  # keeps a larger --epochs: --resume may extend a fit
        else:
            self.prepare(table, info=info, progress=progress)
        completed = self._complete(table)
        X = self.encoder.transform(completed, missing_mask=table.isna(),
                                   rng=np.random.default_rng(derive_seed(cfg.seed, "encode")))
        if cfg.dp_epsilon is None:
            self.sampler = ConditionSampler.from_data(X, self.condition_spans())
        elif resumed is None:  # a resumed DP fit keeps its noised frequencies and its plan
            self.privacy = dp.plan_fit(cfg, len(X))
            spans = self.condition_spans()
            self.sampler = dp.noisy_sampler(ConditionSampler.from_data(X, spans), len(X), self.privacy,
                                            dp.secret_rng())
        self._train(torch.from_numpy(X), progress, checkpoints, resumed, info)
        if self.privacy is not None and info is not None:
            info(dp.guarantee(self.privacy))
        self.training = {"rows": len(table), "columns": table.shape[1], "seconds": time.perf_counter() - t0,
                         "cpu_seconds": time.process_time() - cpu0, "epochs": self.config.epochs,
                         "final": self.history[-1] if self.history else {}}
        return self

    def prepare(self, table: pd.DataFrame, schema=None, rows: int | None = None, workers: int = 1,
                info: InfoFn | None = None, progress: ProgressFn | None = None) -> None:
        """Everything before the first step that depends on the data: schema checks, the batch size a small
        table can fill, the hole-filling imputer, the encoder and the (seeded) networks. `table` is the whole
        table in-process, or the Ray backend's bounded sample (`schema` from its statistics pass, `rows` the
        full row count)."""
        cfg = self.config
        schema = schema or infer_schema(table, categorical=cfg.categorical)
        if info is not None:
            info("columns:\n" + "\n".join(schema.describe()))
        self._check_target(schema)
        if cfg.dp_epsilon is not None:
            dp.prepare_config(cfg, rows or len(table), info)
        self.adapt_batch_size(rows or len(table), info, workers)
        self.resolve_epochs(rows or len(table), info, workers)
        seed_everything(cfg.seed)
        if info is not None and cfg.fill_missing == "imputer" and cfg.dp_epsilon is None and any(c.has_missing for c in schema.columns):
            rule = "--imputer-epochs" if cfg.imputer_epochs else f"min(epochs, {schedule.FILL_IMPUTER_MAX_EPOCHS})"
            twice = trains_twice(rows or len(table), True, True, GainConfig.min_rows)
            info(f"hole-filling imputer: {self.imputer_epochs()} passes over the rows ({rule})"
                 + (", twice: without the rows it calibrates its draws on, then on all rows" if twice else ""))
        self._fit_imputer(table, schema, progress)
        self.encoder = self.new_encoder().fit(table, schema)
        if cfg.dp_epsilon is None:  # DP: the generator's own (trained) indicators place the holes
            self.holes = HolePatterns.learn(table, [c.name for c in schema.columns if c.has_missing])
        else:
            self.dp_fill = dp.fill_values(table)
        seed_everything(cfg.seed)  # the same initial weights on every backend and every Ray worker
        self._build_networks()

    def adapt_batch_size(self, rows: int, info: InfoFn | None = None, workers: int = 1) -> None:
        """A table with fewer rows than a batch trains with what it can fill (tabular/schedule.py)."""
        schedule.adapt_batch_size(self.config, rows, info, workers)

    def resolve_epochs(self, rows: int, info: InfoFn | None = None, workers: int = 1) -> None:
        """epochs=None: enough passes for MIN_STEPS optimiser steps (tabular/schedule.py)."""
        schedule.resolve_epochs(self.config, rows, info, workers)

    def imputer_epochs(self) -> int:
        """Passes of the hole-filling imputer over the rows (tabular/schedule.py)."""
        return schedule.imputer_epochs(self.config)

    def _fit_imputer(self, table: pd.DataFrame, schema, progress: ProgressFn | None) -> None:
        self.imputer = None
        if self.config.fill_missing == "hotdeck" or self.config.dp_epsilon is not None or not table.isna().any().any():
            return
        from ganstream.trainers.tabular.imputer import GainConfig, TabularImputer
        icfg = GainConfig(seed=self.config.seed, epochs=self.imputer_epochs(), pool=FILL_IMPUTER_POOL,
                          ensemble=1)  # plausible fills need no ensemble: one member, one fit's time
        self.imputer = TabularImputer(icfg).fit(table, schema=schema, progress=staged(progress, "imputer"))

    def _complete(self, table: pd.DataFrame) -> pd.DataFrame:
        """`table` with its holes filled (the imputer, or hot deck), seeded by the config alone."""
        if not table.isna().any().any():
            return table
        if self.config.dp_epsilon is not None:
            return dp.central_fill(table, self.dp_fill)
        if self.imputer is None:
            return hot_deck(table, np.random.default_rng(derive_seed(self.config.seed, "hot-deck")))
        # the draw the generator has always trained on; the calibrated spread serves `impute`'s draws
        return self.imputer.transform(table, draws=1, seed=self.config.seed, calibrated=False)[0]

    def _adopt(self, other: "TabularGAN") -> None:
        """Take every fitted part of `other` (a checkpoint's model) but keep this object."""
        epochs = self.config.epochs
        self.__dict__.update(other.__dict__)
        self.config.epochs = epochs or self.config.epochs

    def new_encoder(self) -> TableEncoder:
        return TableEncoder(self.config.numeric_encoding, "indicator", small_integers=True, seed=self.config.seed,
                            joint_modes=self.config.joint_modes)

    def condition_spans(self) -> list:
        """Spans the condition vector is built from: categories and missing indicators; a numeric column's
        mode span only with condition_on_modes (a mode is never a user-facing `--condition` value)."""
        return [s for s in self.encoder.spans if s.role not in MODE_ROLES or self.config.condition_on_modes]

    def _check_target(self, schema) -> None:
        """Fail before any training if --target cannot be used (the GAN encodes it as one softmax span)."""
        t = self.config.target
        if t is None:
            return
        if t in schema.dropped:
            raise ConfigError(f"--target column '{t}' is not learned: {schema.dropped[t]}; keep it with --categorical {t}")
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
        cfg, d, c = self.config, self.encoder.output_dim, ConditionSampler.width(self.condition_spans())
        self.generator = Generator(cfg.noise_dim, c, d, cfg.generator_hidden, cfg.generator_block)
        self.average = None
        if cfg.generator_average > 0:  # the weights samples come from (config: generator_average)
            self.average = Generator(cfg.noise_dim, c, d, cfg.generator_hidden, cfg.generator_block)
            self.average.load_state_dict(self.generator.state_dict())
            self.average.requires_grad_(False).eval()
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

    def training_parts(self):
        """(optimisers by checkpoint name, the auxiliary target parts or None): what a fit trains beside the model."""
        opt_g, opt_d = self.optimizers()
        aux = self._target_parts()
        optimizers = {"generator": opt_g, "discriminator": opt_d, **({"target": aux[1]} if aux else {})}
        return optimizers, aux

    def _train(self, X: torch.Tensor, progress: ProgressFn | None, checkpoints=None, resumed=None,
               info: InfoFn | None = None) -> None:
        cfg = self.config
        optimizers, aux = self.training_parts()
        first = 1
        if resumed is not None:
            first = resumed.restore(optimizers, {TARGET_CLASSIFIER: aux[0]} if aux else {}) + 1
        self.generator.train(); self.discriminator.train()
        for epoch in range(first, cfg.epochs + 1):
            if self.privacy is not None and self.privacy.spent_out:  # DP: the planned epochs are the budget
                if info is not None:
                    info(f"privacy budget spent after epoch {epoch - 1}: the fit stops there (epsilon "
                         f"{self.privacy.epsilon:g} was planned for {self.privacy.epochs} epochs)")
                break
            t_epoch, cpu_epoch = time.perf_counter(), time.process_time()
            sums, steps, rows = self.run_epoch([(X, self.sampler)], epoch_rng(cfg.seed, 0, epoch), optimizers, aux)
            if self.privacy is not None:
                self.privacy.epochs_done += 1
            seconds = time.perf_counter() - t_epoch
            metrics = {"epoch": epoch, "epochs": cfg.epochs, **{k: v / max(steps, 1) for k, v in sums.items()},
                       "rows_per_s": steps * cfg.batch_size / seconds, "epoch_s": seconds,
                       "epoch_cpu_s": time.process_time() - cpu_epoch}  # wall time lies on a shared machine
            self.history.append(metrics)
            if checkpoints is not None:
                checkpoints.save(epoch, self, optimizers, {TARGET_CLASSIFIER: aux[0]} if aux else {},
                                 last=epoch == cfg.epochs)
            if progress:
                progress(metrics)
        self.generator.eval(); self.discriminator.eval()

    def run_epoch(self, batches: Iterable[tuple[torch.Tensor, ConditionSampler]], rng: np.random.Generator,
                  optimizers: dict, aux=None, max_steps: int | None = None) -> tuple[dict[str, float], int, int]:
        """One epoch: for each (encoded rows, condition sampler) batch, len(rows) // batch_size steps (at most
        `max_steps` in all). In-process the whole table is one batch; a Ray worker streams its shard in read
        batches, each with its own sampler. Returns (summed step losses, steps, rows seen)."""
        B = self.config.batch_size
        sums: dict[str, float] = {}
        steps = rows = 0
        opt_g, opt_d = optimizers["generator"], optimizers["discriminator"]
        for Xt, sampler in batches:
            self.sampler = sampler
            todo = len(Xt) // B if max_steps is None else min(len(Xt) // B, max_steps - steps)
            if self.privacy is not None:
                steps_of = self._dp_steps(Xt)
            for _ in range(todo):
                step = (steps_of.step(opt_g, opt_d, aux) if self.privacy is not None
                        else adversarial_step(self, Xt, rng, opt_g, opt_d, aux))
                for k, v in step.items():
                    sums[k] = sums.get(k, 0.0) + v
                steps += 1
            rows += len(Xt)
        return sums, steps, rows

    def _dp_steps(self, X: torch.Tensor) -> "dp.DPSteps":
        """The DP step runner for encoded rows X, kept while the same rows train (one per in-process fit)."""
        if getattr(self, "_dp_runner", None) is None or self._dp_runner.X is not X:
            self._dp_runner = dp.DPSteps(self, X, self.privacy, self.dp_workers)
        return self._dp_runner

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
        holes_rng = np.random.default_rng([int(seed), 1]) if self.holes is not None and missing == "keep" else None
        slots = indicator_slots(self.encoder, self.holes.columns) if holes_rng is not None else None
        encoded = np.empty((n, self.encoder.output_dim), dtype=np.float32)  # chunks land in place: no concatenate
        with torch.inference_mode():
            for start in range(0, n, chunk_size):
                m = min(chunk_size, n - start)
                cond = self.sampler.fixed(fixed[0], fixed[1], m) if fixed else self.sampler.sample_original(m, rng)
                z = torch.randn(m, self.config.noise_dim, generator=gen)
                raw = (self.average if self.average is not None else self.generator)(z, torch.from_numpy(cond))
                block = discretize(raw, self.encoder.spans, gen).numpy()
                if holes_rng is not None:
                    block = impose(block, raw.numpy(), self.holes, slots, holes_rng)
                encoded[start:start + m] = self.sampler.pin(block, cond) if pin_conditions and not fixed else block
        out = self.encoder.inverse_transform(encoded, missing=missing)
        if fixed:
            spec = self.encoder.schema[fixed[2]]
            out[spec.name] = restore_dtype(pd.Series(spec.categories[fixed[1]], index=out.index, dtype=object), spec)
        return out

    def _resolve_condition(self, condition: dict) -> tuple[int, int, str]:
        return resolve_condition(self.encoder, self.sampler, condition)

    def impute(self, table: pd.DataFrame, draws: int = 1, seed: int = 0) -> list[pd.DataFrame]:
        if self.imputer is None:
            why = ("a DP fit trains none" if self.privacy is not None else "its training data had no missing values")
            raise ModelError(f"this model has no imputer ({why}); "
                             "run `ganstream impute DATA` without --model to fit one on DATA")
        return self.imputer.transform(table, draws=draws, seed=seed)

    # -------------------------------------------------------- persistence
    def save(self, path: str | os.PathLike) -> None:
        self._require_fitted()
        networks = {"generator": self.generator.state_dict(), "discriminator": self.discriminator.state_dict()}
        if self.average is not None:
            networks["generator_average"] = self.average.state_dict()
        meta = {"kind": self.kind, "config": self.config.to_json(), "encoder": self.encoder.to_json(),
                "condition_probs": [self.sampler.freq[j, :w].tolist() for j, w in enumerate(self.sampler.widths)],
                "training": self.training, "history": self.history}
        if self.holes is not None:
            meta["hole_patterns"] = self.holes.to_json()
        if self.privacy is not None:
            meta["privacy"] = {**self.privacy.to_json(), "covers": dp.GUARANTEE_COVERS,
                               "not_covered": dp.GUARANTEE_EXCLUDES}
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
            if self.average is not None:
                self.average.load_state_dict(load_network(path, "generator_average"))
            if "hole_patterns" in meta:  # older models: holes as the generator draws them
                self.holes = HolePatterns.from_json(meta["hole_patterns"])
            if "privacy" in meta:
                self.privacy = DPPlan.from_json(meta["privacy"])
            if "imputer" in meta:
                from ganstream.trainers.tabular.imputer import TabularImputer
                nets = {k.split(".", 1)[1]: load_network(path, k) for k in meta["networks"] if k.startswith("imputer.")}
                self.imputer = TabularImputer.from_state(meta["imputer"], nets)
        except (KeyError, TypeError, ValueError, AttributeError, IndexError, RuntimeError) as e:
            raise ModelError(f"{path}: model files do not match its metadata ({type(e).__name__}: "
                             f"{str(e).splitlines()[0][:200] if str(e) else ''})") from None
        self.training, self.history = meta.get("training", {}), meta.get("history", [])
        self.generator.eval(); self.discriminator.eval()
        return self


TabularGAN.__doc__ += "\n" + "\n".join(line[4:] if line.startswith("    ") else line
                                        for line in TabularGANConfig.__doc__.splitlines())

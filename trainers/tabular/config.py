"""The tabular GAN's hyper-parameters, and nothing else (gretel DGAN's convention): grouped fields, Enum choices,
each documented with its default in the class docstring (which `TabularGAN`'s docstring repeats, so
`help(ganstream.TabularGAN)` lists them all).

Models saved before an option existed load with the value they were trained with (`LEGACY_CONFIG`), not with
today's default: they sample and `--resume` exactly as they were trained.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from enum import StrEnum

from ganstream.trainers.errors import ConfigError
from ganstream.trainers.tabular.losses import DUAL_ALPHA, DUAL_BETA


class Loss(StrEnum):
    WGAN_GP = "wgan-gp"
    NON_SATURATING = "non-saturating"
    MINIMAX = "minimax"
    DUAL = "dual"


class NumericEncoding(StrEnum):
    AUTO = "auto"
    QUANTILE = "quantile"
    MODE = "mode"


class GeneratorBlock(StrEnum):
    CONCAT = "concat"
    ADD = "add"


class FillMissing(StrEnum):
    IMPUTER = "imputer"
    HOTDECK = "hotdeck"


class FrequencySpans(StrEnum):
    MODE = "mode"
    ALL = "all"


DEFAULT_EPOCHS = 300  # epochs=None on a table big enough for MIN_STEPS in that many passes
MIN_STEPS = 2_000  # epochs=None: optimiser steps a fit makes at least (a small table gets more passes)
LEGACY_CONFIG = {"numeric_encoding": "quantile", "joint_modes": False, "condition_on_modes": True,
                 "frequency_weight": 0.0, "adapt_batch_size": False}
_ENUMS = {"loss": Loss, "numeric_encoding": NumericEncoding, "generator_block": GeneratorBlock,
          "fill_missing": FillMissing, "frequency_spans": FrequencySpans}


@dataclass
class TabularGANConfig:
    """Hyper-parameters of `TabularGAN` (every one can be passed as a keyword: `TabularGAN(epochs=50)`).

    Training
        epochs (None): passes over the table. None: 300, or more on a small table, so that every fit makes at
            least 2,000 optimiser steps (a 300-row table trains in batches of 300: 2,000 passes of one step; from
            3,500 rows on it stays 300; the fit says when it raises them). Why: counted in passes, a small table
            gets a few hundred steps, too few for the generator to learn P(row | class) for a rare class, and
            class-balanced rows from such a fit lowered a downstream model's ROC AUC; from 1,000 steps on the
            lift levels off (benchmarks/RESULTS.md, "Augmentation lift").
        batch_size (500): rows per step, a multiple of `pac`. A table with fewer rows trains with the largest
            multiple of `pac` it can fill (the fit says so), unless `adapt_batch_size` is False.
        adapt_batch_size (True): see `batch_size`.
        seed (0): every random draw of the fit; the same seed and data give the same model.
        lr (2e-4), weight_decay (1e-6): Adam for both players (betas 0.5, 0.9, as CTGAN).
        discriminator_steps (1): critic updates per generator update.
    Adversarial game
        loss ("wgan-gp"): "wgan-gp" (critic + gradient penalty; tracks sample quality, resists mode collapse),
            "non-saturating" (-log D(G(z))), "minimax" (the original game, kept to show its vanishing gradients),
            "dual" (two discriminators: KL + reverse KL, docs/mode_collapse.md).
        pac (10): rows the discriminator judges together (PacGAN): a collapsed generator's packs look alike.
        gp_weight (10.0): weight of the gradient penalty (wgan-gp).
        gp_every (1): the penalty on every k-th critic update, weighted k times (lazy regularisation).
        dual_alpha (1.0), dual_beta (1.0): loss="dual": weights of the KL and the reverse-KL terms.
    Networks
        noise_dim (128): size of z.
        generator_hidden ((256, 256)), discriminator_hidden ((256, 256)): layer widths.
        generator_block ("concat"): residual blocks that concatenate (CTGAN-like) or "add" (lighter).
        generator_average (0.0): samples come from an exponential moving average of the generator's weights
            with this decay per step (0 = the last weights). Why: the game's last state oscillates around its
            equilibrium, and an average of the recent states sits nearer to it (Yazici et al., ICLR 2019).
    Encoding and conditioning
        numeric_encoding ("auto"): numeric columns through a per-column quantile transform ("quantile"), a
            Gaussian-mixture mode one-hot plus offset ("mode"), or per column, mode where the values form
            separated clusters and quantile elsewhere ("auto").
        joint_modes (True): with "auto", numeric columns that are jointly clustered (modes not aligned with the
            axes: a rotated grid, elongated clouds at an angle) are encoded together, as a joint mode plus
            whitened coordinates inside it, where held-out rows show the gain (trainers/joint_encoding.py).
        condition_on_modes (True): training-by-sampling also conditions on numeric modes.
        frequency_weight (10.0): generator term matching the category frequencies under each condition
            (0 = off).
        frequency_spans ("mode"): spans that term covers: numeric modes ("mode") or also categories ("all").
        categorical (()): columns to learn as categories whatever they look like. By default identifier-like
            columns (nearly unique per row) and free text are not learned (they could only be sampled as copies
            of training values) and dates are learned as numbers (trainers/column_rules.py, datetimes.py).
    Missing values
        fill_missing ("imputer"): how holes are filled before GAN training: a GAIN-style imputer ("imputer") or
            a random observed value of the column ("hotdeck"). The generator learns where holes are either way.
        imputer_epochs (0): passes of that imputer over the rows; 0 follows the GAN: `min(epochs, 40)` passes
            (the imputer only has to be plausible, and a short fit should not spend its time there).
    Downstream target
        target (None): a categorical column downstream models will predict: an auxiliary classifier keeps
            P(target | other columns) of the samples close to the real one.
        target_weight (1.0): weight of that term.
    Differential privacy (tabular/dp_training.py)
        dp_epsilon (None): train with DP-SGD to this epsilon (None: no DP). The accountant's epsilon, delta and
            method are saved in model.json ("privacy") and the MLflow run; `train` prints what the guarantee
            covers and what it does not. Turns off packing (pac 1), the frequency-matching term, the stored hole
            patterns and the hole-filling imputer, which read real rows outside the accounted steps.
        dp_delta (None): delta of the guarantee; None: 1e-5, or 0.1 / rows when smaller. Must be below 1 / rows.
        dp_clip (1.0): bound on each row's gradient norm (the critic and the target classifier together).
    """

    # training
    epochs: int | None = None
    batch_size: int = 500
    adapt_batch_size: bool = True
    seed: int = 0
    lr: float = 2e-4
    weight_decay: float = 1e-6
    discriminator_steps: int = 1
    # adversarial game
    loss: Loss = Loss.WGAN_GP
    pac: int = 10
    gp_weight: float = 10.0
    gp_every: int = 1
    dual_alpha: float = DUAL_ALPHA
    dual_beta: float = DUAL_BETA
    # networks
    noise_dim: int = 128
    generator_hidden: tuple[int, ...] = (256, 256)
    discriminator_hidden: tuple[int, ...] = (256, 256)
    generator_block: GeneratorBlock = GeneratorBlock.CONCAT
    generator_average: float = 0.0
    # encoding and conditioning
    numeric_encoding: NumericEncoding = NumericEncoding.AUTO
    joint_modes: bool = True
    condition_on_modes: bool = True
    frequency_weight: float = 10.0
    frequency_spans: FrequencySpans = FrequencySpans.MODE
    categorical: tuple[str, ...] = ()
    # missing values
    fill_missing: FillMissing = FillMissing.IMPUTER
    imputer_epochs: int = 0
    # downstream target
    target: str | None = None
    target_weight: float = 1.0
    # differential privacy
    dp_epsilon: float | None = None
    dp_delta: float | None = None
    dp_clip: float = 1.0

    def validate(self) -> "TabularGANConfig":
        for name, enum in _ENUMS.items():
            value = getattr(self, name)
            try:
                setattr(self, name, enum(value))
            except ValueError:
                raise ConfigError(f"{name} must be one of {', '.join(e.value for e in enum)} (got {value!r})") from None
        checks = [
            (self.epochs is None or self.epochs >= 1, f"--epochs must be >= 1 (got {self.epochs})"),
            (self.pac >= 1, f"--pac must be >= 1 (got {self.pac})"),
            (self.batch_size >= self.pac and self.batch_size % self.pac == 0,
             f"--batch-size must be a positive multiple of pac={self.pac} (got {self.batch_size})"),
            (self.gp_every >= 1, f"gp_every must be >= 1 (got {self.gp_every})"),
            (self.dual_alpha > 0 and self.dual_beta > 0,
             f"dual_alpha and dual_beta must be > 0 (got {self.dual_alpha}, {self.dual_beta})"),
            (self.frequency_weight >= 0, f"frequency_weight must be >= 0 (got {self.frequency_weight})"),
            (self.imputer_epochs >= 0, f"--imputer-epochs must be >= 0 (got {self.imputer_epochs})"),
            (self.discriminator_steps >= 1, f"discriminator_steps must be >= 1 (got {self.discriminator_steps})"),
            (self.noise_dim >= 1, f"noise_dim must be >= 1 (got {self.noise_dim})"),
            (0.0 <= self.generator_average < 1.0, f"generator_average must be in [0, 1) (got {self.generator_average})"),
            (self.dp_epsilon is None or (self.dp_epsilon > 0 and self.dp_epsilon != float("inf")),
             f"--dp-epsilon must be a positive number (got {self.dp_epsilon})"),
            (self.dp_delta is None or 0 < self.dp_delta < 1, f"--dp-delta must be between 0 and 1 (got {self.dp_delta})"),
            (self.dp_delta is None or self.dp_epsilon is not None, "--dp-delta needs --dp-epsilon"),
            (self.dp_clip > 0, f"dp_clip must be > 0 (got {self.dp_clip})"),
            (self.dp_epsilon is None or self.loss in (Loss.WGAN_GP, Loss.NON_SATURATING, Loss.MINIMAX),
             f"--dp-epsilon trains the wgan-gp, non-saturating or minimax loss, not {self.loss}"),
        ]
        for ok, message in checks:
            if not ok:
                raise ConfigError(message)
        return self

    def to_json(self) -> dict:
        return {k: (v.value if isinstance(v, StrEnum) else v) for k, v in asdict(self).items()}

    def changed(self) -> dict:
        """The fields that differ from their defaults (for a readable repr)."""
        default = TabularGANConfig()
        return {f.name: getattr(self, f.name) for f in fields(self) if getattr(self, f.name) != getattr(default, f.name)}

    @classmethod
    def from_json(cls, d: dict) -> "TabularGANConfig":
        d = {**LEGACY_CONFIG, **d}  # a model saved before an option existed was trained without it
        for k in ("generator_hidden", "discriminator_hidden", "categorical"):
            if k in d:
                d[k] = tuple(d[k])
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise ConfigError(f"unknown tabular option(s) {', '.join(unknown)} (a model from a newer ganstream?)")
        return cls(**d)

    @classmethod
    def from_options(cls, **options) -> "TabularGANConfig":
        """A validated config from keyword options; an unknown name is a ConfigError naming the known ones."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(options) - known)
        if unknown:
            raise ConfigError(f"unknown TabularGAN option(s): {', '.join(unknown)} (known: {', '.join(sorted(known))})")
        if "generator_hidden" in options:
            options["generator_hidden"] = tuple(options["generator_hidden"])
        if "discriminator_hidden" in options:
            options["discriminator_hidden"] = tuple(options["discriminator_hidden"])
        if isinstance(options.get("categorical"), str):
            options["categorical"] = (options["categorical"],)
        if "categorical" in options:
            options["categorical"] = tuple(str(c) for c in (options["categorical"] or ()))
        return cls(**options).validate()

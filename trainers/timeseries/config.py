"""The time-series GAN's hyper-parameters, and nothing else: grouped fields, Enum choices, each documented with
its default (`TimeSeriesGAN`'s docstring repeats this class's).

Models saved before an option existed load with the value they were trained with (`LEGACY_CONFIG`)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from enum import StrEnum

from ganstream.trainers.errors import ConfigError


class BackboneKind(StrEnum):
    VAR1 = "var1"
    VAR2 = "var2"
    NONE = "none"


class StartKind(StrEnum):
    COPULA = "copula"
    GAUSSIAN = "gaussian"


# Options added after models were first saved, with the value those models were trained with (not today's default).
LEGACY_CONFIG = {"critic_diff_order": 0, "moment_diff_order": 1, "cpu_budget_s": None, "backbone": "none",
                 "holdout_share": 0.0, "keep_best": False, "calibrate_continuations": False, "start": "gaussian",
                 "free_run_share": 0.0, "check_classifiers": 3}
_ENUMS = {"backbone": BackboneKind, "start": StartKind}
_AT_LEAST_ONE = ("hidden", "layers", "series_noise_dim", "step_noise_dim", "critic_hidden", "critic_steps",
                 "check_every_steps", "check_classifier_steps", "check_classifiers")


@dataclass
class TimeSeriesGANConfig:
    """Hyper-parameters of `TimeSeriesGAN` (every one can be passed as a keyword: `TimeSeriesGAN(seq_len=24)`).

    Data layout
        seq_len (24): window length the model learns; series shorter than this are skipped.
        id_col (None): series id column of a long table; None: the table is one series in row order.
        time_col (None): time/order column, increasing within each series; on a regular grid, skipped
            timestamps become gaps.
        static_cols (()): per-series attribute columns the model conditions on (need id_col).
    Training
        epochs (100): passes over the training windows.
        batch_size (128): windows per step (lowered to the number of windows when there are fewer).
        seed (0): every random draw of the fit.
        lr (3e-4): the generator's learning rate in the game; critic_lr (1e-3): the critic's (two time scales).
        critic_steps (1): critic updates per generator update.
        warmup_share (0.2): first share of the epochs (or of cpu_budget_s) trains next-step prediction only.
        warmup_lr (1e-3): the warm-up's learning rate.
        free_run_share (0.5): warm-up rows that run free after a random real prefix (multi-step error).
        gp_weight (10.0): gradient penalty weight of the WGAN-GP critic.
        supervised_weight (10.0): weight of the next-step RMSE kept in the game.
        moment_weight (10.0), moment_diff_order (1): per-step mean/std matching of values and of their
            differences up to this order (2: also curvature).
        continuation_share (0.5): share of windows that keep a real prefix the generator continues.
        time_budget_s (None), cpu_budget_s (None): stop after this much wall or process CPU time.
        loss ("wgan-gp"): the only loss (named so tooling that prints `loss` works for every kind).
    Networks
        hidden (64), layers (1): the GRU generator; series_noise_dim (16), step_noise_dim (8): its noise.
        critic_hidden (64): the convolutional critic; critic_diff_order (2): the critic also reads
            standardised differences up to this order.
        backbone ("var2"): a least-squares "var1"/"var2" the generator starts from and corrects ("none": none).
        backbone_lr_scale (0.0): the backbone's learning rate relative to the network's (0: frozen).
        start ("copula"): where series start: a copula of the real first steps, or "gaussian".
    Held-out windows
        holdout_share (0.1): real windows held out of training (continuation calibration).
        keep_best (True): keep the generator state a post-hoc classifier tells least from real.
        check_every_steps (1000), check_classifier_steps (2000), check_classifiers (3): that check's schedule.
        calibrate_continuations (True): per-horizon spread of `extend` matched on the held-out windows.
    """

    # data layout
    seq_len: int = 24
    id_col: str | None = None
    time_col: str | None = None
    static_cols: tuple[str, ...] = ()
    # training
    epochs: int = 100
    batch_size: int = 128
    seed: int = 0
    lr: float = 3e-4
    critic_lr: float = 1e-3
    critic_steps: int = 1
    warmup_share: float = 0.2
    warmup_lr: float = 1e-3
    free_run_share: float = 0.5
    gp_weight: float = 10.0
    supervised_weight: float = 10.0
    moment_weight: float = 10.0
    moment_diff_order: int = 1
    continuation_share: float = 0.5
    time_budget_s: float | None = None
    cpu_budget_s: float | None = None
    loss: str = "wgan-gp"
    # networks
    hidden: int = 64
    layers: int = 1
    series_noise_dim: int = 16
    step_noise_dim: int = 8
    critic_hidden: int = 64
    critic_diff_order: int = 2
    backbone: BackboneKind = BackboneKind.VAR2
    backbone_lr_scale: float = 0.0
    start: StartKind = StartKind.COPULA
    # held-out windows
    holdout_share: float = 0.1
    keep_best: bool = True
    check_every_steps: int = 1000
    check_classifier_steps: int = 2000
    check_classifiers: int = 3
    calibrate_continuations: bool = True

    def validate(self) -> "TimeSeriesGANConfig":
        for name, enum in _ENUMS.items():
            value = getattr(self, name)
            try:
                setattr(self, name, enum(value))
            except ValueError:
                raise ConfigError(f"{name} must be one of {', '.join(e.value for e in enum)} (got {value!r})") from None
        checks = [
            (self.seq_len >= 2, f"--seq-len must be >= 2 (got {self.seq_len})"),
            (self.epochs >= 1, f"--epochs must be >= 1 (got {self.epochs})"),
            (self.batch_size >= 2, f"--batch-size must be >= 2 (got {self.batch_size})"),
            (0.0 <= self.warmup_share < 1.0, f"warmup_share must be in [0, 1) (got {self.warmup_share})"),
            (0.0 <= self.continuation_share <= 1.0, f"continuation_share must be in [0, 1] (got {self.continuation_share})"),
            (self.loss == "wgan-gp", f"the time-series GAN trains with wgan-gp only (got {self.loss!r})"),
            (self.critic_diff_order >= 0, f"critic_diff_order must be >= 0 (got {self.critic_diff_order})"),
            (0.0 <= self.free_run_share <= 1.0, f"free_run_share must be in [0, 1] (got {self.free_run_share})"),
            (0.0 <= self.holdout_share < 0.5, f"holdout_share must be in [0, 0.5) (got {self.holdout_share})"),
            (self.backbone_lr_scale >= 0, f"backbone_lr_scale must be >= 0 (got {self.backbone_lr_scale})"),
            (self.moment_diff_order in (1, 2), f"moment_diff_order must be 1 or 2 (got {self.moment_diff_order})"),
            (not self.static_cols or self.id_col, "static columns need an id column (--id-col)"),
        ]
        checks += [(getattr(self, n) >= 1, f"{n} must be >= 1 (got {getattr(self, n)})") for n in _AT_LEAST_ONE]
        for ok, message in checks:
            if not ok:
                raise ConfigError(message)
        return self

    def to_json(self) -> dict:
        d = {k: (v.value if isinstance(v, StrEnum) else v) for k, v in asdict(self).items()}
        d["static_cols"] = list(self.static_cols)
        return d

    def changed(self) -> dict:
        default = TimeSeriesGANConfig()
        return {f.name: getattr(self, f.name) for f in fields(self) if getattr(self, f.name) != getattr(default, f.name)}

    @classmethod
    def from_json(cls, d: dict) -> "TimeSeriesGANConfig":
        d = {**LEGACY_CONFIG, **d}  # a model saved before an option existed was trained without it
        d["static_cols"] = tuple(d.get("static_cols", ()))
        return cls(**d)

    @classmethod
    def from_options(cls, **options) -> "TimeSeriesGANConfig":
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(options) - known)
        if unknown:
            raise ConfigError(f"unknown TimeSeriesGAN option(s): {', '.join(unknown)} "
                              f"(known: {', '.join(sorted(known))})")
        if "static_cols" in options:
            cols = options["static_cols"]
            options["static_cols"] = (cols,) if isinstance(cols, str) else tuple(cols or ())
        return cls(**options).validate()

"""The privacy budget of a DP fit: how much noise the requested (epsilon, delta) buys, and what was spent.

Two mechanisms read the real rows, and the accountant composes both:
- the condition frequencies: one Gaussian-noised count per category of every conditioning column, released once
  (a row adds one to one count per column, so the L2 sensitivity is sqrt(columns)); they set the conditions the
  generator trains and samples with, so they must be private too;
- DP-SGD on the critic (and the auxiliary classifier): Poisson-subsampled Gaussian steps.

The accountant is Opacus's Renyi-DP accountant (Mironov 2017; the subsampled Gaussian of Mironov, Talwar and
Zhang 2019), used as a library: its RDP bounds compose the histogram (sample rate 1, one step) and the steps.
Opacus's own training wrappers are not used: they cannot differentiate the gradient penalty twice
(dp_gradients.py computes the per-row gradients instead). The frequencies get HISTOGRAM_SHARE of epsilon; the
steps' noise is then the smallest that keeps the composition within epsilon.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

from ganstream.trainers.errors import ConfigError

HISTOGRAM_SHARE = 0.1  # of epsilon, for the condition frequencies
DEFAULT_DELTA = 1e-5  # or 0.1 / rows when that is smaller: delta must stay well below 1 / rows
ACCOUNTANT = "rdp"


def default_delta(rows: int) -> float:
    return min(DEFAULT_DELTA, 0.1 / rows)


def check_budget(epsilon: float | None, delta: float | None, rows: int) -> None:
    """Bad budgets, before anything is trained or written."""
    if epsilon is None:
        return
    if not (epsilon > 0 and math.isfinite(epsilon)):
        raise ConfigError(f"--dp-epsilon must be a positive number (got {epsilon})")
    if delta is not None and not 0 < delta < 1.0 / rows:
        raise ConfigError(f"--dp-delta must be above 0 and below 1/rows = {1.0 / rows:.3g} for {rows:,} rows "
                          f"(got {delta}); a delta of 1/rows allows releasing a whole row")


# Opacus's default orders plus larger ones: a strongly noised release (the frequencies) is tightest at a high order
ORDERS = [1 + x / 10.0 for x in range(1, 100)] + list(range(12, 64)) + [80, 96, 128, 192, 256, 384, 512, 1024]


def _epsilon(history: list[tuple[float, float, int]], delta: float) -> float:
    import warnings
    from opacus.accountants import RDPAccountant
    accountant = RDPAccountant()
    accountant.history = list(history)
    with warnings.catch_warnings():  # "optimal order is the largest alpha": the bound is then valid, only looser
        warnings.simplefilter("ignore")
        return float(accountant.get_epsilon(delta, alphas=ORDERS))


def _smallest_noise(spend, target: float) -> float:
    """The smallest noise multiplier whose spent epsilon (`spend(sigma)`, decreasing) is within `target`."""
    low, high = 0.05, 1.0
    while spend(high) > target:
        low, high = high, high * 2
        if high > 1e5:
            raise ConfigError(f"--dp-epsilon {target:g} cannot be met by any noise level for this fit")
    for _ in range(40):
        mid = (low + high) / 2
        low, high = (mid, high) if spend(mid) > target else (low, mid)
    return high


@dataclass
class DPPlan:
    """What a DP fit runs with and what it spends; saved in model.json as "privacy".

    Accounting is per row: in each epoch a row can be drawn in `steps_per_epoch` steps, each with probability
    `sample_rate`. In one process the steps draw from the whole table (sample_rate = batch / rows); a Ray worker
    draws from a read batch of its shard at a time, so there a row's steps draw from fewer rows (a larger
    sample_rate) and the same epsilon needs more noise."""

    epsilon: float  # requested
    delta: float
    clip: float  # per-row gradient norm bound C
    sample_rate: float  # Poisson sampling probability q of a row per step
    steps_per_epoch: int  # steps per epoch that can draw a given row
    epochs: int  # planned: the budget ends with them
    noise_multiplier: float  # steps' noise std / C
    histogram_noise_multiplier: float  # the frequencies' noise std / sqrt(columns)
    epochs_done: int = 0
    accountant: str = ACCOUNTANT

    @classmethod
    def calibrate(cls, epsilon: float, delta: float, clip: float, sample_rate: float, steps_per_epoch: int,
                  epochs: int) -> "DPPlan":
        steps = steps_per_epoch * epochs
        hist = _smallest_noise(lambda s: _epsilon([(s, 1.0, 1)], delta), HISTOGRAM_SHARE * epsilon)
        sgd = _smallest_noise(lambda s: _epsilon([(hist, 1.0, 1), (s, sample_rate, steps)], delta), epsilon)
        return cls(epsilon, delta, clip, sample_rate, steps_per_epoch, epochs, sgd, hist)

    @property
    def steps_done(self) -> int:
        return self.epochs_done * self.steps_per_epoch

    @property
    def spent_out(self) -> bool:
        return self.epochs_done >= self.epochs

    def spent(self) -> float:
        """Epsilon after the epochs done, the frequencies included."""
        history = [(self.histogram_noise_multiplier, 1.0, 1)]
        if self.steps_done:
            history.append((self.noise_multiplier, self.sample_rate, self.steps_done))
        return _epsilon(history, self.delta)

    def to_json(self) -> dict:
        return {**asdict(self), "steps_done": self.steps_done, "epsilon_spent": self.spent()}

    @classmethod
    def from_json(cls, d: dict) -> "DPPlan":
        return cls(**{k: v for k, v in d.items() if k in cls.__dataclass_fields__})

"""`ganstream.evaluate(model, real)`: how good a fitted model's samples are, as a report object.

For a tabular model: detection AUC, per-column marginal distances, association distance, category and mode
coverage, privacy (distance to closest record, exact copies) and, with a target, train-on-synthetic utility
(augment/metrics.py says what each catches). For a time-series model: TimeGAN's discriminative and predictive
scores and the per-feature marginal distances (augment/ts_report.py).

The real table is compared through a bounded, seeded sample of `max_rows` rows (default 10,000): classifier and
nearest-neighbour costs grow with the rows, and a few thousand rows already tell a good fit from a bad one.
The sample's size is part of the report (`rows_real`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import pandas as pd

from ganstream.trainers.errors import ConfigError

if TYPE_CHECKING:
    from ganstream.augment.lift import Recipe
from ganstream.trainers.column_values import datetimes_as_numbers
from ganstream.trainers.schema import check_compatible

REPORT_MAX_ROWS = 10_000


@dataclass
class QualityReport:
    """A model's quality figures. `str(report)` is the readable table; `to_dict()` the JSON the tracking run
    stores; `figures` the flat numbers the registry gate reads."""
    kind: str
    data: dict
    plots: dict = field(default_factory=dict, repr=False)  # name -> figure factory (for tracking runs)

    def to_dict(self) -> dict:
        return self.data

    @property
    def figures(self) -> dict[str, float | None]:
        from ganstream.deploy.gate import figures
        return figures(self.data)

    def __str__(self) -> str:
        if self.kind == "timeseries":
            return format_timeseries_report(self.data) + _format_verdicts(self.data)
        from ganstream.augment.metrics import format_report
        text = format_report(self.data) + _format_verdicts(self.data)
        if "lift" not in self.data:
            return text
        from ganstream.augment.lift import format_lift
        return text + "\n\n" + format_lift(self.data["lift"])

    def to_json(self, indent: int = 1) -> str:
        return json.dumps(self.data, indent=indent)


def bounded(real: pd.DataFrame, max_rows: int | None, seed: int) -> pd.DataFrame:
    """`real`, or a seeded sample of `max_rows` of its rows."""
    if max_rows is None or len(real) <= max_rows:
        return real.reset_index(drop=True)
    return real.sample(max_rows, random_state=seed).reset_index(drop=True)


def evaluate(model, real: pd.DataFrame, target: str | None = None, holdout: pd.DataFrame | None = None,
             seed: int = 0, max_rows: int | None = REPORT_MAX_ROWS, plots: bool = False,
             lift: "bool | Recipe" = False) -> QualityReport:
    """Compare `model`'s samples with `real` (ideally its training data). target: a column for the utility
    score (tabular); holdout: real rows the model never saw, for the privacy figures (default: split `real`);
    max_rows: the bounded sample of `real` (None: all rows); plots: also build the figures a tracking run logs;
    lift: also measure whether real + synthetic rows train better downstream models than real rows alone, on
    `holdout` (augment/lift.py; True: the default recipe, or a `Recipe`). Needs `target` and `holdout`."""
    if lift and (target is None or holdout is None):
        raise ConfigError("the lift needs a target column and a holdout table (real rows the model never saw)")
    if model.kind == "timeseries":
        from ganstream.augment.ts_report import plot_series, timeseries_quality_report
        data = timeseries_quality_report(model, real, seed=seed)
        data["verdicts"] = default_verdicts("timeseries", data, None)
        made = {"series": lambda: plot_series(model, real, seed=seed)} if plots else {}
        return QualityReport("timeseries", data, {**_loss_plot(model), **made} if plots else {})
    if model.kind != "tabular":
        raise ConfigError(f"evaluate needs a tabular or time-series model (got a {model.kind} model)")
    schema = model.encoder.schema
    check_compatible(schema, real, what="real table")
    if target is not None and target not in schema.names:
        raise ConfigError(f"--target column '{target}' is not a column of the model "
                          f"(columns: {', '.join(schema.names)})")
    from ganstream.augment.metrics import quality_report
    sample = bounded(real[schema.names], max_rows, seed)
    synthetic = datetimes_as_numbers(model.sample(len(sample), seed=seed), schema)
    if holdout is not None:
        check_compatible(schema, holdout, what="holdout table")
    hold = holdout[schema.names].reset_index(drop=True) if holdout is not None else None
    numbers = datetimes_as_numbers(sample, schema)
    hold_numbers = None if hold is None else datetimes_as_numbers(hold, schema)
    data = quality_report(numbers, synthetic, target=target, holdout=hold_numbers, seed=seed)
    if hold_numbers is not None:  # rows the model never saw: the membership-inference audit can run
        from ganstream.augment.membership import membership_figures
        data["privacy"].update(membership_figures(numbers, hold_numbers, synthetic, seed=seed))
    if getattr(model, "privacy", None) is not None:  # a DP fit: the accountant's figures (trainers/tabular/dp_*)
        plan = model.privacy
        data["privacy"].update(dp_epsilon=plan.spent(), dp_delta=plan.delta, dp_accountant=plan.accountant)
    data["verdicts"] = default_verdicts("tabular", data, target)
    if lift:
        from ganstream.augment.lift import Recipe, lift as measure_lift
        data["lift"] = measure_lift(model, sample, hold, target, lift if isinstance(lift, Recipe) else Recipe(),
                                    seed=seed)
    made = {}
    if plots:
        from ganstream.augment.plots import plot_associations, plot_marginals
        made = {**_loss_plot(model), "marginals": lambda: plot_marginals(numbers, synthetic),
                "associations": lambda: plot_associations(numbers, synthetic)}
    return QualityReport("tabular", data, made)


def default_verdicts(kind: str, data: dict, target: str | None) -> dict:
    """The default gate's verdict on each figure it checks (what `train --register` would decide without
    --gate options), with the figure's direction: a report says what is good, not only what was measured."""
    from ganstream.deploy.gate import evaluate as gate_evaluate, figures, parse_gates
    result = gate_evaluate(figures(data), parse_gates(None, target, kind))
    checks = [{**c, "better": "lower" if c["op"] == "<=" else "higher"} for c in result.checks]
    return {"passed": result.passed, "checks": checks}


def _format_verdicts(data: dict) -> str:
    verdicts = data.get("verdicts")
    if not verdicts:
        return ""
    lines = [f"\n\ndefault gate: {'passed' if verdicts['passed'] else 'FAILED'} (what `train --register` would decide)"]
    for c in verdicts["checks"]:
        value = "n/a" if c["value"] is None else f"{c['value']:.4g}"
        state = {True: "ok", False: "FAILED", None: "not measured"}[c["passed"]]
        lines.append(f"  {c['key']:<24} {value:>8}  needs {c['op']} {c['threshold']:g} ({c['better']} is better): {state}")
    return "\n".join(lines)


def _loss_plot(model) -> dict:
    from ganstream.augment.plots import plot_losses
    return {"loss_curves": lambda: plot_losses(model.history)} if model.history else {}


def format_timeseries_report(r: dict) -> str:
    if "discriminative_score" not in r:
        return f"time-series quality: {r.get('note', 'no scores')} ({r.get('windows_real', 0)} real windows)"
    lines = [f"time-series quality on {r['windows_real']:,} real windows (TimeGAN's scores; lower is better)",
             f"  discriminative score   {r['discriminative_score']:.3f}   (|accuracy - 0.5| of a real-vs-synthetic GRU)"]
    if "predictive_score" in r:
        lines.append(f"  predictive score       {r['predictive_score']:.3f}   (MAE of a forecaster trained on synthetic, "
                     f"on real; real data's own: {r['predictive_score_real']:.3f})")
    lines.append(f"  marginal distance      {r['marginal_mean_distance']:.3f}   (mean per-feature KS)")
    if "continuation_coverage80" in r:
        lines.append(f"  continuation coverage  {r['continuation_coverage80']:.3f}   (share of real values inside the 80% "
                     f"band of {r['continuation_draws']} continuations, {r['continuation_horizon']} steps after "
                     f"{r['continuation_cuts']} cuts of the real series; 0.8 is right: lower means too narrow a band, higher too wide)")
    return "\n".join(lines)

"""The quality gate a fit must pass before it becomes a registered model version.

Figures come from `augment.metrics.quality_report` on the training data (see `figures`). Defaults were
chosen on UCI Adult (3,000 rows): a 1-epoch model fails them (detection AUC ~0.998, mean marginal distance
~0.28, utility ratio ~0.26), a 15-epoch one passes (~0.988, ~0.10, ~0.75); a full-data fit of a few hundred
epochs is far inside them. They catch broken or undertrained fits, not subtle regressions: tighten them
per model with `--gate`.

* detection_auc <= 0.99          a classifier must not separate real from synthetic almost perfectly
* marginal_mean_distance <= 0.2  per-column KS / TVD, averaged
* utility_ratio >= 0.5           TSTR / TRTR score (only when the fit has a --target)
* dcr_ratio >= 0.8               synthetic rows must not hug training rows closer than unseen real rows do
* exact_copy_rate <= 0.05        share of synthetic rows identical to a training row. A rate, not "== 0":
                                 real tables such as Adult hold many duplicate rows, and a good generator
                                 reproduces common rows legitimately.

`--gate` overrides one threshold per use: `KEY<=VALUE`, `KEY>=VALUE`, or `KEY=off` to drop it; the keys
above plus association_distance and exact_copies may be used, and the coverage figures of
`augment.coverage` (off by default: how much of the rare part a use case needs differs, and on small
tables the rarest categories are too few to judge), e.g. for augmentation of rare classes:

* category_coverage >= 1         every category expected >= 10 times in the samples appears (worst column)
* rare_category_ratio >= 0.5     the rarest 10% of those categories get at least half their real share
* mode_coverage >= 0.9           k-means clusters of the numeric columns that receive samples
* mode_reverse_kl <= 0.1         KL(synthetic || real) of the cluster-assignment histograms

and, for a scheduled job that must only promote a generator whose rows help (augment/lift.py; needs --target
and --holdout DATA, real rows the fit never saw):

* lift_auc >= 0                  downstream ROC AUC of real + class-balancing synthetic rows minus real only,
                                 mean of 3 learners (augment/lift.py)

and, for data that is published or shared (augment/membership.py; needs --holdout DATA):

* membership_auc <= 0.6          AUC of the stronger of two membership-inference attacks that hold only the
                                 synthetic rows (0.5: no signal about who was a training row)
* dp_epsilon <= 3                the privacy accountant's epsilon of a differentially private fit
                                 (`train --dp-epsilon`); a fit without DP has no bound and fails it

Time-series fits (`--kind timeseries`) are gated on `augment.ts_report` figures instead (TimeGAN protocol at
a tracking budget). Defaults, chosen to refuse broken or barely-trained fits (a 1-epoch fit on sines or
stocks scores a discriminative score near 0.5: the classifier separates real from synthetic every time):

* discriminative_score <= 0.4    |accuracy - 0.5| of a GRU telling real from synthetic windows
* predictive_ratio <= 1.5        forecaster trained on synthetic vs on real windows, MAE on real (1 = as good)
* marginal_mean_distance <= 0.3  per-feature KS, averaged
"""

from __future__ import annotations

import operator
import re
from dataclasses import dataclass

from ganstream.trainers.errors import EXIT_GATE, ConfigError, GanstreamError

KEYS = ("detection_auc", "marginal_mean_distance", "association_distance", "utility_ratio", "dcr_ratio",
        "exact_copies", "exact_copy_rate", "category_coverage", "rare_category_ratio", "mode_coverage",
        "mode_reverse_kl", "discriminative_score", "predictive_score", "predictive_ratio", "lift_auc",
        "membership_auc", "dp_epsilon")
UNBOUNDED_WHEN_MISSING = ("dp_epsilon",)  # no figure means no guarantee: the check fails instead of being skipped

DEFAULTS: dict[str, tuple[str, float]] = {
    "detection_auc": ("<=", 0.99),
    "marginal_mean_distance": ("<=", 0.2),
    "utility_ratio": (">=", 0.5),
    "dcr_ratio": (">=", 0.8),
    "exact_copy_rate": ("<=", 0.05),
}

TIMESERIES_DEFAULTS: dict[str, tuple[str, float]] = {
    "discriminative_score": ("<=", 0.4),
    "predictive_ratio": ("<=", 1.5),
    "marginal_mean_distance": ("<=", 0.3),
}

_OPS = {"<=": operator.le, ">=": operator.ge}


class GateFailed(GanstreamError):
    """The fit did not pass the quality gate: no model version was registered. Exit status 3."""

    exit_code = EXIT_GATE


@dataclass
class GateResult:
    passed: bool
    checks: list[dict]  # {key, op, threshold, value, passed (None: skipped, no value)}

    @property
    def failures(self) -> list[str]:
        return [f"{c['key']}={c['value']:.4g} (needs {c['op']} {c['threshold']:g})" for c in self.checks
                if c["passed"] is False]

    def summary(self) -> str:
        parts = []
        for c in self.checks:
            value = "n/a" if c["value"] is None else f"{c['value']:.4g}"
            state = {True: "ok", False: "FAILED", None: "skipped"}[c["passed"]]
            parts.append(f"{c['key']}={value} {c['op']} {c['threshold']:g}: {state}")
        return "; ".join(parts)


_SPEC = re.compile(r"([a-z_]+)(<=|>=)([-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)")
_OFF = re.compile(r"([a-z_]+)=(off|none)")


def parse_gate(spec: str) -> tuple[str, tuple[str, float] | None]:
    """(key, (op, threshold)) of `KEY<=VALUE` / `KEY>=VALUE`, or (key, None) for `KEY=off`: the one gate
    grammar (the command line's --gate and a job file's gate: section both come here). ConfigError otherwise."""
    text = str(spec).replace(" ", "").lower()
    m, off = _SPEC.fullmatch(text), _OFF.fullmatch(text)
    if not (m or off):
        raise ConfigError(f"--gate must look like KEY<=VALUE, KEY>=VALUE or KEY=off (got {spec!r})")
    key = (m or off).group(1)
    if key not in KEYS:
        raise ConfigError(f"--gate: unknown figure '{key}' (known: {', '.join(KEYS)})")
    return key, None if off else (m.group(2), float(m.group(3)))


def spec_from_value(key: str, value) -> str:
    """A job file's `gate: {KEY: VALUE}` entry as a spec of the same grammar: VALUE is '<= X' / '>= X', a bare
    number (the default direction of KEY), or off (YAML reads a bare `off` as false)."""
    if value is False or (isinstance(value, str) and value.strip().lower() in ("off", "none")):
        return f"{key}=off"
    if isinstance(value, bool) or value is None:
        raise ConfigError(f"expected '<= NUMBER', '>= NUMBER', a number or off, got {value!r}")
    if isinstance(value, (int, float)):
        if key not in DEFAULTS and key not in TIMESERIES_DEFAULTS:
            raise ConfigError(f"give a direction, e.g. '<= {value}' (this figure has no default)")
        op = (DEFAULTS.get(key) or TIMESERIES_DEFAULTS[key])[0]
        return f"{key}{op}{float(value)!r}"
    spec = f"{key}{str(value).replace(' ', '')}"
    if not _SPEC.fullmatch(spec.lower()):
        raise ConfigError(f"expected '<= NUMBER', '>= NUMBER', a number or off, got {value!r}")
    return spec


def parse_gates(specs: list[str] | None, target: str | None = None,
                kind: str = "tabular", holdout: bool = False) -> dict[str, tuple[str, float]]:
    """Defaults of the model kind updated by gate specs (`parse_gate`). Raises ConfigError on a malformed spec,
    an unknown key, utility_ratio without a target, lift_auc without a target and a holdout table, or
    membership_auc without a holdout table."""
    gates = dict(TIMESERIES_DEFAULTS if kind == "timeseries" else DEFAULTS)
    for spec in specs or []:
        key, rule = parse_gate(spec)
        if rule is None:
            gates.pop(key, None)
            continue
        if key == "utility_ratio" and target is None:
            raise ConfigError("--gate utility_ratio needs --target (utility is measured on that column)")
        if key == "lift_auc" and (target is None or not holdout):
            raise ConfigError("--gate lift_auc needs --target and --holdout DATA (real rows the fit never saw: the "
                              "downstream models are scored on them)")
        if key == "membership_auc" and not holdout:
            raise ConfigError("--gate membership_auc needs --holdout DATA (real rows the fit never saw: the attack must "
                              "tell training rows from them)")
        gates[key] = rule
    return gates


def figures(report: dict) -> dict[str, float | None]:
    """The gated figures of a `quality_report`, flat (None where not measured)."""
    utility = report.get("utility") or {}
    privacy = report.get("privacy") or {}
    coverage = (report.get("coverage") or {}).get("summary") or {}
    return {
        "detection_auc": report.get("detection_auc"),
        "marginal_mean_distance": report.get("marginal_mean_distance"),
        "association_distance": report.get("association_distance"),
        "utility_ratio": utility.get("ratio"),
        "dcr_ratio": privacy.get("dcr_ratio"),
        "exact_copies": privacy.get("exact_copies"),
        "exact_copy_rate": privacy.get("exact_copy_rate"),
        **{k: coverage.get(k) for k in ("category_coverage", "rare_category_ratio", "mode_coverage", "mode_reverse_kl")},
        **{k: report.get(k) for k in ("discriminative_score", "predictive_score", "predictive_ratio")},
        "lift_auc": (report.get("lift") or {}).get("lift_auc"),
        "membership_auc": privacy.get("membership_auc"),
        "dp_epsilon": privacy.get("dp_epsilon"),
    }


def evaluate(figs: dict[str, float | None], gates: dict[str, tuple[str, float]]) -> GateResult:
    checks = []
    for key, (op, threshold) in gates.items():
        value = figs.get(key)
        if value is None and key in UNBOUNDED_WHEN_MISSING:
            value = float("inf")
        ok = None if value is None else bool(_OPS[op](float(value), threshold))
        checks.append({"key": key, "op": op, "threshold": threshold,
                       "value": None if value is None else float(value), "passed": ok})
    return GateResult(passed=all(c["passed"] is not False for c in checks), checks=checks)

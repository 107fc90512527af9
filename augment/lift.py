"""Does adding a generator's rows to a real training set help a downstream model? The lift, measured.

TSTR utility (train on synthetic only) and detection AUC say how realistic the rows are; a team that streams
them into a training set asks something else: does *my* model score better on real held-out rows when it
trains on real + synthetic than on real alone? `lift` answers it for the usual downstream learners:

* logistic_regression   LogisticRegression(max_iter=1000) on standardised, one-hot features
* gradient_boosting     HistGradientBoostingClassifier() (default settings)
* mlp                   MLPClassifier((64,), at most 200 passes), on the same features. No early stopping:
                        on small training sets its 10% validation split holds one or two minority rows,
                        and it stopped a Default subset (350 rows, 12 positive) after 19 passes with a
                        ROC AUC of 0.06 (0.94 without it).

each trained twice (real only; real + synthetic rows made by a `Recipe`) and scored on the holdout with ROC
AUC, PR AUC (average precision) and the F1 of the minority class (the least frequent class of the real
training rows; binary ROC/PR AUC score that class as the positive one, multi-class ones are macro
one-vs-rest). `lift_auc` is the mean ROC AUC difference over the learners: the figure the registry gate reads.

Features are encoded once, fitted on the real training rows only (augment.metrics.featurize), so both arms
see the same columns. Rows whose target is missing train nothing. Everything is seeded.
"""

from __future__ import annotations

import time
import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd

from ganstream.trainers.column_values import datetimes_as_numbers
from ganstream.trainers.errors import ConfigError, DataError

LEARNERS = ("logistic_regression", "gradient_boosting", "mlp")


@dataclass(frozen=True)
class Recipe:
    """How synthetic rows join the real ones (the same rules as `stream --mix`).

    fraction (None): None balances: rows of every class of the target but the most frequent, generated
    conditioned on that class, until each class has as many rows as the most frequent one. A number in (0, 1)
    instead adds unconditioned rows making that share of the result (0.5: as many synthetic rows as real ones).
    Why balance is the default: on the lift benchmark's small imbalanced subsets it raised gradient boosting's
    ROC AUC where unconditioned rows at either fraction did not (benchmarks/RESULTS.md, "Augmentation lift")."""
    fraction: float | None = None

    def __post_init__(self):
        if self.fraction is not None and not 0 < self.fraction < 1:
            raise ConfigError(f"the synthetic fraction must be in (0, 1) (got {self.fraction})")

    @property
    def balance(self) -> bool:
        return self.fraction is None

    def describe(self) -> str:
        return "balance to the majority class" if self.balance else f"synthetic fraction {self.fraction:g}"

    def counts(self, y: pd.Series) -> dict:
        """Synthetic rows to make, by class (key None: unconditioned rows), for real target values `y`."""
        if self.balance:
            return top_up_counts(y.dropna().value_counts().to_dict())
        return {None: int(round(len(y) * self.fraction / (1 - self.fraction)))}


def top_up_counts(have: dict) -> dict:
    """Synthetic rows per class that bring every class up to the most frequent one's count (`stream --mix
    --balance` and the balance recipe both use this rule)."""
    top = max(have.values())
    return {c: int(top - n) for c, n in have.items() if top - n > 0}


def augmented(model, real: pd.DataFrame, target: str, recipe: Recipe, seed: int = 0) -> pd.DataFrame:
    """`real` plus the recipe's synthetic rows (with realistic holes, as `stream` writes them)."""
    parts = [real]
    for i, (cls, n) in enumerate(sorted(recipe.counts(real[target]).items(), key=lambda kv: str(kv[0]))):
        if n > 0:
            condition = None if cls is None else {target: cls}
            parts.append(model.sample(n, seed=seed + 1000 * i, condition=condition)[list(real.columns)])
    return pd.concat(parts, ignore_index=True)


def _learner(name: str, seed: int):
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.neural_network import MLPClassifier
    s = int(seed) % (2**32 - 1)
    return {"logistic_regression": lambda: LogisticRegression(max_iter=1000),
            "gradient_boosting": lambda: HistGradientBoostingClassifier(random_state=s),
            "mlp": lambda: MLPClassifier(hidden_layer_sizes=(64,), max_iter=200, random_state=s)}[name]()


def _labels(frame: pd.DataFrame, target: str, classes: pd.Index) -> tuple[pd.DataFrame, np.ndarray]:
    codes = classes.get_indexer(frame[target].astype(object).to_numpy())
    keep = codes >= 0
    return frame.loc[keep].drop(columns=[target]), codes[keep]


def scores(y: np.ndarray, proba: np.ndarray, minority: int) -> dict:
    from sklearn.metrics import average_precision_score, f1_score, roc_auc_score
    k = proba.shape[1]
    predicted = proba.argmax(axis=1)
    f1 = float(f1_score(y, predicted, labels=[minority], average="macro", zero_division=0))
    if k == 2:
        positive = (y == minority).astype(int)
        return {"roc_auc": float(roc_auc_score(positive, proba[:, minority])),
                "pr_auc": float(average_precision_score(positive, proba[:, minority])), "f1_minority": f1}
    onehot = np.eye(k)[y]
    present = onehot.sum(axis=0) > 0
    return {"roc_auc": float(roc_auc_score(onehot[:, present], proba[:, present], average="macro")),
            "pr_auc": float(average_precision_score(onehot[:, present], proba[:, present], average="macro")),
            "f1_minority": f1}


def downstream(train: pd.DataFrame, test: pd.DataFrame, target: str, reference: pd.DataFrame, seed: int = 0,
               learners=LEARNERS) -> dict:
    """Each learner fitted on `train`, scored on `test` ({learner: scores}). Classes and the feature encoding
    come from `reference` (the real training rows)."""
    from sklearn.exceptions import ConvergenceWarning

    from ganstream.augment.metrics import featurize
    classes = pd.Index(sorted(reference[target].dropna().unique(), key=str), dtype=object)
    minority = int(classes.get_indexer([reference[target].value_counts().idxmin()])[0])
    (x_ref, _), (x_train, y_train), (x_test, y_test) = (_labels(f, target, classes) for f in (reference, train, test))
    if len(np.unique(y_test)) < 2:
        raise DataError(f"the holdout needs rows of at least two classes of '{target}'")
    a_train, a_test = featurize([x_train, x_test], x_ref)
    out = {}
    for name in learners:
        model = _learner(name, seed)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            model.fit(a_train, y_train)
        proba = np.zeros((len(a_test), len(classes)))
        proba[:, model.classes_] = model.predict_proba(a_test)
        out[name] = scores(y_test, proba, minority)
    return out


def lift(model, real: pd.DataFrame, holdout: pd.DataFrame, target: str, recipe: Recipe = Recipe(),
         seed: int = 0, learners=LEARNERS) -> dict:
    """Real-only vs real + synthetic, both scored on `holdout` (real rows the model never saw)."""
    if target not in real.columns or target not in holdout.columns:
        raise ConfigError(f"--target column '{target}' must be a column of both the training and the holdout table")
    y = real[target].dropna()
    if pd.api.types.is_float_dtype(y) and y.nunique() > 20:
        raise ConfigError(f"--lift needs a categorical target; '{target}' looks continuous")
    if y.nunique() < 2:
        raise DataError(f"--lift needs at least two classes of '{target}' in the training rows")
    t0 = time.perf_counter()
    real = real.reset_index(drop=True)
    schema = model.encoder.schema
    mixed = datetimes_as_numbers(augmented(model, real, target, recipe, seed), schema)
    real, holdout = datetimes_as_numbers(real, schema), datetimes_as_numbers(holdout, schema)
    base = downstream(real, holdout, target, real, seed, learners)
    aug = downstream(mixed, holdout, target, real, seed, learners)
    per = {name: {"real": base[name], "augmented": aug[name],
                  "lift": {k: aug[name][k] - base[name][k] for k in base[name]}} for name in learners}
    return {"recipe": recipe.describe(), "target": target, "rows_real": len(real),
            "rows_synthetic": len(mixed) - len(real), "rows_holdout": len(holdout), "learners": per,
            "lift_auc": float(np.mean([per[n]["lift"]["roc_auc"] for n in learners])),
            "seconds": time.perf_counter() - t0}


def format_lift(r: dict) -> str:
    lines = [f"augmentation lift on {r['rows_holdout']:,} holdout rows: {r['rows_real']:,} real training rows + "
             f"{r['rows_synthetic']:,} synthetic ({r['recipe']}), target '{r['target']}'",
             f"  {'learner':20s} {'ROC AUC real -> +synth':>24s} {'PR AUC':>16s} {'minority F1':>16s}"]
    for name, v in r["learners"].items():
        a, b = v["real"], v["augmented"]
        lines.append(f"  {name:20s} {a['roc_auc']:>11.3f} -> {b['roc_auc']:.3f} {a['pr_auc']:>7.3f} -> {b['pr_auc']:.3f}"
                     f" {a['f1_minority']:>7.3f} -> {b['f1_minority']:.3f}")
    lines.append(f"  lift_auc {r['lift_auc']:+.4f} (mean ROC AUC change; {r['seconds']:.1f} s)")
    return "\n".join(lines)

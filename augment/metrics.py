"""How good is a synthetic table? Several metrics, because each one catches a different failure.

* Detection (`detection_auc`) measures *joint* fidelity: a classifier tries to tell real rows from
  synthetic rows. It sees every column at once, so it notices wrong combinations that per-column checks
  miss. 0.5 means indistinguishable, 1.0 means trivially separable.
* Utility (`utility`) measures *downstream usefulness*: models trained on synthetic data and tested on
  real data (TSTR) are compared with the same models trained on real data (TRTR), as in the SDGym/CTGAN
  benchmark. A table can look plausible and still lose the signal that predicts the target.
* Marginals (`marginal_distances`) and associations (`association_matrix`, `association_distance`)
  say *where* it goes wrong: which column has the wrong distribution or missing rate, and whether the
  pairwise dependencies between columns were kept (shuffling each column independently keeps every
  marginal but destroys every association).
* Privacy (`privacy`) looks for *memorisation*: synthetic rows that are exact copies of training rows, or
  that sit closer to training rows than genuinely unseen real rows do (distance to closest record, DCR).

`quality_report` runs all of them and returns one JSON-serializable dict; `format_report` prints it.
Everything random takes a `seed`, and the same seed gives the same numbers. Column kinds are taken from
the real (or reference) table: numeric (non-boolean numeric dtype) or discrete (everything else:
strings, objects, booleans, categoricals). Any column may have missing values.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
from sklearn.ensemble import AdaBoostClassifier
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LinearRegression, LogisticRegression
from sklearn.metrics import f1_score, r2_score
from sklearn.neighbors import NearestNeighbors
from sklearn.neural_network import MLPClassifier, MLPRegressor
from sklearn.tree import DecisionTreeClassifier, DecisionTreeRegressor

from ganstream.augment.coverage import coverage_report, format_coverage
from ganstream.augment.detection import detection_auc
from ganstream.augment.detection import sample_rows as _sample
from ganstream.augment.detection import seed_int as _seed_int
from ganstream.augment.columns import MISSING, as_float, as_labels, is_numeric, require_columns, stable_key
from ganstream.trainers.errors import DataError

__all__ = [
    "featurize",
    "detection_auc",
    "utility",
    "marginal_distances",
    "mean_marginal_distance",
    "association_matrix",
    "association_distance",
    "privacy",
    "quality_report",
    "format_report",
]

DEFAULT_MAX_CATEGORIES = 100  # one-hot width cap per discrete column in `featurize`


def _split(df: pd.DataFrame, fraction: float, rng: np.random.Generator) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Random split into (first `fraction` of rows, the rest)."""
    order = rng.permutation(len(df))
    cut = int(round(fraction * len(df)))
    return df.iloc[np.sort(order[:cut])], df.iloc[np.sort(order[cut:])]


def _ratio(a: float, b: float) -> float | None:
    return float(a / b) if b != 0 else None


# -------------------------------------------------------------------------------------- featurize
def _numeric_block(x: np.ndarray, params: tuple[float, float, float], indicator: bool) -> np.ndarray:
    median, mean, std = params
    missing = np.isnan(x)
    values = (np.where(missing, median, x) - mean) / std
    return np.column_stack([values, missing.astype(np.float64)]) if indicator else values[:, None]


def _numeric_params(ref: np.ndarray) -> tuple[float, float, float]:
    observed = ref[~np.isnan(ref)]
    if observed.size == 0:
        return 0.0, 0.0, 1.0
    std = float(observed.std())
    return float(np.median(observed)), float(observed.mean()), std if std > 0 else 1.0


def _category_index(ref: np.ndarray, max_categories: int) -> tuple[pd.Index, pd.Index]:
    """(kept categories, rare categories folded into one 'other' column), most frequent first."""
    counts = pd.Series(ref[ref != MISSING] if ref.size else ref).value_counts(sort=False)
    order = sorted(zip(counts.index, counts.to_numpy()), key=lambda kv: (-kv[1], stable_key(kv[0])))
    values = [v for v, _ in order]
    return pd.Index(values[:max_categories], dtype=object), pd.Index(values[max_categories:], dtype=object)


def _onehot_block(labels: np.ndarray, kept: pd.Index, rare: pd.Index, missing_column: bool) -> np.ndarray:
    width = len(kept) + (len(rare) > 0) + missing_column
    out = np.zeros((len(labels), width))
    codes = kept.get_indexer(labels)
    hit = codes >= 0
    out[np.flatnonzero(hit), codes[hit]] = 1.0
    if len(rare):
        out[:, len(kept)] = rare.get_indexer(labels) >= 0
    if missing_column:
        out[:, -1] = labels == MISSING
    return out


def featurize(frames: list[pd.DataFrame], reference: pd.DataFrame, *,
              max_categories: int = DEFAULT_MAX_CATEGORIES) -> list[np.ndarray]:
    """Encode tables as float matrices with one shared encoding fitted on `reference` only.

    Numeric columns: missing -> reference median, then standardised by the reference mean/std, plus a 0/1
    missing indicator if the column has missing values in the reference or any frame. Discrete columns:
    one-hot over the reference categories (missing is its own category, present if any table has missing
    values; unseen categories encode as all zeros; categories beyond the `max_categories` most frequent
    share one 'other' column). Every frame must have the reference's columns; extra columns are ignored.
    """
    columns = list(reference.columns)
    frames = [require_columns(f, columns, f"frame {i}") for i, f in enumerate(frames)]
    blocks: list[list[np.ndarray]] = [[] for _ in frames]
    for col in columns:
        if is_numeric(reference[col]):
            ref = as_float(reference[col])
            xs = [as_float(f[col]) for f in frames]
            indicator = bool(np.isnan(ref).any() or any(np.isnan(x).any() for x in xs))
            params = _numeric_params(ref)
            for out, x in zip(blocks, xs):
                out.append(_numeric_block(x, params, indicator))
        else:
            ref = as_labels(reference[col])
            labels = [as_labels(f[col]) for f in frames]
            missing_column = bool((ref == MISSING).any() or any((lab == MISSING).any() for lab in labels))
            kept, rare = _category_index(ref, max_categories)
            for out, lab in zip(blocks, labels):
                out.append(_onehot_block(lab, kept, rare, missing_column))
    return [np.hstack(b) if b else np.zeros((len(f), 0)) for b, f in zip(blocks, frames)]


# ---------------------------------------------------------------------------------------- utility
def _classifiers(seed: int) -> dict:
    s = _seed_int(seed)
    return {
        "decision_tree": DecisionTreeClassifier(max_depth=20, random_state=s),
        "adaboost": AdaBoostClassifier(random_state=s),
        "logistic_regression": LogisticRegression(max_iter=1000),
        "mlp": MLPClassifier(hidden_layer_sizes=(50,), max_iter=50, random_state=s),
    }


def _regressors(seed: int) -> dict:
    s = _seed_int(seed)
    return {
        "decision_tree": DecisionTreeRegressor(max_depth=20, random_state=s),
        "linear_regression": LinearRegression(),
        "mlp": MLPRegressor(hidden_layer_sizes=(50,), max_iter=50, random_state=s),
    }


def _infer_task(y: pd.Series) -> str:
    """Regression for numeric targets with more than two distinct values, classification otherwise."""
    if is_numeric(y) and y.nunique(dropna=True) > 2:
        return "regression"
    return "classification"


def _fit_score(model, x_train, y_train, x_test, y_test, score) -> float:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        model.fit(x_train, y_train)
    return float(score(y_test, model.predict(x_test)))


def utility(train_real: pd.DataFrame, synthetic: pd.DataFrame, test_real: pd.DataFrame, target: str,
            seed: int = 0, *, task: str | None = None) -> dict:
    """Train-on-synthetic vs train-on-real, both tested on `test_real`, with the SDGym/CTGAN models.

    Binary targets score F1 of train_real's minority class, multi-class targets macro F1, numeric targets
    (more than two distinct values, or task="regression") R². Rows with a missing target are dropped.
    A synthetic table with a single class scores 0 for every classifier.
    """
    for what, df in (("train_real", train_real), ("synthetic", synthetic), ("test_real", test_real)):
        if target not in df.columns:
            raise DataError(f"{what} has no target column '{target}'")
    features = [c for c in train_real.columns if c != target]
    task = task or _infer_task(train_real[target])
    if task not in ("classification", "regression"):
        raise ValueError(f"task must be 'classification' or 'regression', not {task!r}")
    tables = [train_real, require_columns(synthetic, train_real.columns, "synthetic"), test_real]

    if task == "regression":
        ys = [as_float(t[target]) for t in tables]
        keep = [~np.isnan(y) for y in ys]
    else:
        classes = sorted(pd.unique(train_real[target].dropna()), key=stable_key)
        if len(classes) < 2:
            raise DataError(f"target '{target}' has fewer than two classes in train_real")
        index = pd.Index(classes, dtype=object)
        keep = [t[target].notna().to_numpy(dtype=bool) for t in tables]
        ys = [index.get_indexer(t[target].astype(object).to_numpy()) for t in tables]  # unseen labels -> -1
    ys = [y[k] for y, k in zip(ys, keep)]
    tables = [t.loc[k, features] for t, k in zip(tables, keep)]
    if len(ys[0]) == 0 or len(ys[2]) == 0:
        raise DataError(f"train_real and test_real need rows with a non-missing '{target}'")
    x_train, x_syn, x_test = featurize(tables, tables[0])
    y_train, y_syn, y_test = ys

    if task == "regression":
        metric, make_models = "r2", _regressors
        mu, sd = float(y_train.mean()), float(y_train.std()) or 1.0  # scaling y helps the MLP; R² is unchanged
        y_train, y_syn, y_test = [(y - mu) / sd for y in ys]
        score = r2_score
        synthetic_usable = len(y_syn) >= 2
    else:
        if len(classes) == 2:
            metric, labels = "f1", [int(np.argmin(np.bincount(y_train, minlength=2)))]
        else:
            metric, labels = "macro_f1", list(range(len(classes)))
        make_models = _classifiers

        def score(t, p):
            return f1_score(t, p, labels=labels, average="macro", zero_division=0)

        synthetic_usable = len(np.unique(y_syn)) >= 2

    real_models, syn_models = make_models(seed), make_models(seed)
    per_model = {}
    for name in real_models:
        real = _fit_score(real_models[name], x_train, y_train, x_test, y_test, score)
        syn = _fit_score(syn_models[name], x_syn, y_syn, x_test, y_test, score) if synthetic_usable else 0.0
        per_model[name] = {"real": real, "synthetic": syn}
    real_score = float(np.mean([v["real"] for v in per_model.values()]))
    synthetic_score = float(np.mean([v["synthetic"] for v in per_model.values()]))
    out = {"metric": metric, "real_score": real_score, "synthetic_score": synthetic_score,
           "ratio": _ratio(synthetic_score, real_score), "per_model": per_model}
    if metric == "f1":  # which class the F1 is of: the rarer one in train_real
        out["positive_class"] = str(classes[labels[0]])
    return out


# -------------------------------------------------------------------------------------- marginals
def ks_statistic(a: np.ndarray, b: np.ndarray) -> float:
    """Two-sample Kolmogorov-Smirnov statistic: largest gap between the two empirical CDFs."""
    if a.size == 0 or b.size == 0:
        return 0.0 if a.size == b.size else 1.0
    a, b = np.sort(a), np.sort(b)
    grid = np.concatenate([a, b])
    cdf_a = np.searchsorted(a, grid, side="right") / a.size
    cdf_b = np.searchsorted(b, grid, side="right") / b.size
    return float(np.max(np.abs(cdf_a - cdf_b)))


def _tvd(a: np.ndarray, b: np.ndarray) -> float:
    """Total variation distance between the category frequencies of two label arrays."""
    if a.size == 0 or b.size == 0:
        return 0.0 if a.size == b.size else 1.0
    p = pd.Series(a).value_counts(normalize=True)
    q = pd.Series(b).value_counts(normalize=True)
    both = pd.concat([p, q], axis=1, sort=False).fillna(0.0).to_numpy()
    return float(0.5 * np.abs(both[:, 0] - both[:, 1]).sum())


def _missing_rate_diff(a: np.ndarray, b: np.ndarray) -> float:
    return abs(float(a.mean()) - float(b.mean())) if a.size and b.size else 0.0


def marginal_distances(real: pd.DataFrame, synthetic: pd.DataFrame) -> dict[str, dict]:
    """Per column: KS statistic on observed values (numeric) or total variation distance of category
    frequencies with missing as a category (discrete), plus the absolute difference of missing rates."""
    synthetic = require_columns(synthetic, real.columns, "synthetic table")
    out = {}
    for col in real.columns:
        if is_numeric(real[col]):
            r, s = as_float(real[col]), as_float(synthetic[col])
            r_missing, s_missing = np.isnan(r), np.isnan(s)
            entry = {"metric": "ks", "distance": ks_statistic(r[~r_missing], s[~s_missing])}
        else:
            r, s = as_labels(real[col]), as_labels(synthetic[col])
            r_missing, s_missing = r == MISSING, s == MISSING
            entry = {"metric": "tvd", "distance": _tvd(r, s)}
        entry["missing_rate_diff"] = _missing_rate_diff(r_missing, s_missing)
        out[str(col)] = entry
    return out


def mean_marginal_distance(d: dict[str, dict]) -> float:
    """Mean of the per-column distances returned by `marginal_distances` (0 for no columns)."""
    return float(np.mean([v["distance"] for v in d.values()])) if d else 0.0


# ----------------------------------------------------------------------------------- associations
def _pearson(x: np.ndarray, y: np.ndarray) -> float:
    ok = ~(np.isnan(x) | np.isnan(y))
    if ok.sum() < 2:
        return 0.0
    dx, dy = x[ok] - x[ok].mean(), y[ok] - y[ok].mean()
    denom = np.sqrt((dx * dx).sum() * (dy * dy).sum())
    return float(min(1.0, abs((dx * dy).sum()) / denom)) if denom > 0 else 0.0


def _cramers_v(a: np.ndarray, b: np.ndarray) -> float:
    """Bias-corrected Cramér's V (Bergsma 2013) of two category-code arrays (-1 = missing)."""
    ok = (a >= 0) & (b >= 0)
    n = int(ok.sum())
    if n < 2:
        return 0.0
    a, b = a[ok], b[ok]
    ka, kb = int(a.max()) + 1, int(b.max()) + 1
    table = np.bincount(a * kb + b, minlength=ka * kb).reshape(ka, kb).astype(np.float64)
    table = table[table.sum(axis=1) > 0][:, table.sum(axis=0) > 0]  # categories absent after pairing
    r, k = table.shape
    expected = np.outer(table.sum(axis=1), table.sum(axis=0)) / n
    phi2 = float(((table - expected) ** 2 / expected).sum()) / n
    phi2_corr = max(0.0, phi2 - (k - 1) * (r - 1) / (n - 1))
    r_corr, k_corr = r - (r - 1) ** 2 / (n - 1), k - (k - 1) ** 2 / (n - 1)
    denom = min(r_corr - 1, k_corr - 1)
    return float(min(1.0, np.sqrt(phi2_corr / denom))) if denom > 0 else 0.0


def _correlation_ratio(codes: np.ndarray, x: np.ndarray) -> float:
    """Correlation ratio η: share of the numeric column's spread explained by the categories."""
    ok = (codes >= 0) & ~np.isnan(x)
    if ok.sum() < 2:
        return 0.0
    codes, x = codes[ok], x[ok]
    counts = np.bincount(codes)
    sums = np.bincount(codes, weights=x)
    seen = counts > 0
    means = sums[seen] / counts[seen]
    total = float(((x - x.mean()) ** 2).sum())
    between = float((counts[seen] * (means - x.mean()) ** 2).sum())
    return float(min(1.0, np.sqrt(between / total))) if total > 0 else 0.0


def association_frame(df: pd.DataFrame, numeric: dict) -> pd.DataFrame:
    cols = list(df.columns)
    values = {c: as_float(df[c]) if numeric[c] else pd.factorize(df[c].astype(object))[0] for c in cols}
    mat = np.eye(len(cols))
    for i, ci in enumerate(cols):
        for j in range(i + 1, len(cols)):
            cj = cols[j]
            if numeric[ci] and numeric[cj]:
                v = _pearson(values[ci], values[cj])
            elif not numeric[ci] and not numeric[cj]:
                v = _cramers_v(values[ci], values[cj])
            elif numeric[ci]:
                v = _correlation_ratio(values[cj], values[ci])
            else:
                v = _correlation_ratio(values[ci], values[cj])
            mat[i, j] = mat[j, i] = v
    return pd.DataFrame(mat, index=cols, columns=cols)


def association_matrix(df: pd.DataFrame) -> pd.DataFrame:
    """Symmetric column x column association in [0, 1]: |Pearson| (numeric-numeric), bias-corrected
    Cramér's V (discrete-discrete), correlation ratio η (numeric-discrete), on pairwise-complete rows."""
    return association_frame(df, {c: is_numeric(df[c]) for c in df.columns})


def association_distance(real: pd.DataFrame, synthetic: pd.DataFrame) -> float:
    """Mean absolute difference between the off-diagonal association entries of the two tables
    (column kinds taken from `real`)."""
    synthetic = require_columns(synthetic, real.columns, "synthetic table")
    numeric = {c: is_numeric(real[c]) for c in real.columns}
    a, b = association_frame(real, numeric).to_numpy(), association_frame(synthetic, numeric).to_numpy()
    upper = np.triu_indices(len(numeric), k=1)
    return float(np.abs(a[upper] - b[upper]).mean()) if upper[0].size else 0.0


# ---------------------------------------------------------------------------------------- privacy
def _row_keys(frames: list[pd.DataFrame], numeric: dict) -> list[np.ndarray]:
    """One integer per row, equal iff two rows are equal in every column (missing == missing).

    Each column is factorized over all frames together (numeric values compared as floats, so 3 == 3.0),
    and the per-column codes are folded into one code per row, column by column.
    """
    sizes = [len(f) for f in frames]
    key = np.zeros(sum(sizes), dtype=np.int64)
    for col, is_num in numeric.items():
        if is_num:
            joined = np.concatenate([as_float(f[col]) + 0.0 for f in frames])  # + 0.0 turns -0.0 into 0.0
        else:
            joined = np.concatenate([as_labels(f[col]) for f in frames])
        codes = pd.factorize(joined)[0].astype(np.int64)  # NaN -> -1 (MISSING is a regular category)
        key = pd.factorize(key * (codes.max() + 2) + (codes + 1))[0].astype(np.int64)
    return np.split(key, np.cumsum(sizes)[:-1])


def _exact_copies(train: pd.DataFrame, synthetic: pd.DataFrame) -> int:
    numeric = {c: is_numeric(train[c]) for c in train.columns}
    train_keys, syn_keys = _row_keys([train, synthetic], numeric)
    return int(np.isin(syn_keys, train_keys).sum())


def _median_dcr(index: NearestNeighbors, x: np.ndarray) -> float:
    return float(np.median(index.kneighbors(x, n_neighbors=1)[0][:, 0]))


def privacy(train: pd.DataFrame, holdout: pd.DataFrame, synthetic: pd.DataFrame, seed: int = 0,
            max_rows: int = 5000) -> dict:
    """Memorisation checks against the training rows.

    DCR: median Euclidean distance (in `featurize` space, fitted on `train`) from synthetic rows, and from
    unseen holdout rows, to their nearest training row; synthetic and holdout are subsampled to the same
    size (at most `max_rows`). dcr_ratio = synthetic / holdout: well below 1 means synthetic rows hug the
    training rows. Exact copies are counted on the full tables.
    """
    holdout = require_columns(holdout, train.columns, "holdout table")
    synthetic = require_columns(synthetic, train.columns, "synthetic table")
    if min(len(train), len(holdout), len(synthetic)) == 0:
        raise DataError("privacy needs non-empty train, holdout and synthetic tables")
    copies = _exact_copies(train, synthetic)
    rng = np.random.default_rng(seed)
    n = min(len(synthetic), len(holdout), max_rows)
    syn_s, hold_s = _sample(synthetic, n, rng), _sample(holdout, n, rng)
    x_train, x_syn, x_hold = featurize([train, syn_s, hold_s], train)
    index = NearestNeighbors(n_neighbors=1, n_jobs=1).fit(x_train)
    dcr_syn, dcr_hold = _median_dcr(index, x_syn), _median_dcr(index, x_hold)
    return {"dcr_synthetic_median": dcr_syn, "dcr_holdout_median": dcr_hold,
            "dcr_ratio": _ratio(dcr_syn, dcr_hold), "exact_copies": copies,
            "exact_copy_rate": copies / len(synthetic)}


# ----------------------------------------------------------------------------------------- report
def quality_report(real: pd.DataFrame, synthetic: pd.DataFrame, target: str | None = None,
                   holdout: pd.DataFrame | None = None, seed: int = 0) -> dict:
    """All metrics in one JSON-serializable dict.

    Utility (only with a `target`): train-on-`real` vs train-on-synthetic, tested on `holdout` when given
    (rows the generator never saw); otherwise on a seeded 30% of `real`, training on the other 70%.
    Privacy uses `real` as the training rows and `holdout` as unseen rows; without a holdout, `real` is
    split 50/50 into train/holdout (marked {"holdout": "split"}) and exact copies are still counted
    against all of `real`.
    """
    synthetic = require_columns(synthetic, real.columns, "synthetic table")
    rng = np.random.default_rng(seed)
    marginals = marginal_distances(real, synthetic)
    report = {
        "rows_real": int(len(real)),
        "rows_synthetic": int(len(synthetic)),
        "detection_auc": detection_auc(real, synthetic, seed=seed),
        "marginal_mean_distance": mean_marginal_distance(marginals),
        "marginals": marginals,
        "association_distance": association_distance(real, synthetic),
        "utility": None,
    }
    report["coverage"] = coverage_report(real, synthetic, seed=seed)
    if target is not None and holdout is not None:
        report["utility"] = utility(real, synthetic, holdout, target, seed=seed)
    elif target is not None:
        train_part, test_part = _split(real, 0.7, rng)
        report["utility"] = utility(train_part, synthetic, test_part, target, seed=seed)
    if holdout is not None:
        report["privacy"] = {**privacy(real, holdout, synthetic, seed=seed), "holdout": "given"}
    else:
        train_part, holdout_part = _split(real, 0.5, rng)
        result = privacy(train_part, holdout_part, synthetic, seed=seed)
        copies = _exact_copies(real, synthetic)
        result.update(exact_copies=copies, exact_copy_rate=copies / len(synthetic) if len(synthetic) else 0.0,
                      holdout="split")
        report["privacy"] = result
    return report


def _fmt(value, digits: int = 3) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}"


def format_report(report: dict) -> str:
    """The headline numbers of a `quality_report` as a short aligned text table."""
    rows = [("rows real / synthetic", f"{report['rows_real']} / {report['rows_synthetic']}"),
            ("detection AUC", f"{_fmt(report['detection_auc'])}  (0.5 = indistinguishable, 1 = separable)"),
            ("marginal distance, mean", _fmt(report["marginal_mean_distance"]))]
    marginals = report.get("marginals") or {}
    if marginals:
        worst = max(marginals, key=lambda c: marginals[c]["distance"])
        rows.append(("marginal distance, worst",
                     f"{_fmt(marginals[worst]['distance'])}  ({worst}, {marginals[worst]['metric']})"))
    rows.append(("association distance", _fmt(report["association_distance"])))
    u = report.get("utility")
    if u:
        what = f"F1 of class '{u['positive_class']}'" if u.get("positive_class") is not None else u["metric"]
        rows.append((f"utility ({what})", f"real {_fmt(u['real_score'])}  synthetic "
                     f"{_fmt(u['synthetic_score'])}  ratio {_fmt(u['ratio'])}"))
    p = report.get("privacy")
    if p:
        rows.append(("privacy DCR synth / holdout", f"{_fmt(p['dcr_synthetic_median'])} / "
                     f"{_fmt(p['dcr_holdout_median'])}  ratio {_fmt(p['dcr_ratio'])}  (holdout {p.get('holdout', '?')})"))
        rows.append(("exact copies of real rows", f"{p['exact_copies']}  ({100 * p['exact_copy_rate']:.2f}%)"))
        if p.get("dp_epsilon") is not None:
            rows.append(("differential privacy", f"epsilon {p['dp_epsilon']:.3g}, delta {p['dp_delta']:.2g} "
                         f"({p['dp_accountant'].upper()} accountant; column statistics are outside it)"))
        if p.get("membership_auc") is not None:
            rows.append(("membership attack AUC", f"{_fmt(p['membership_auc'])}  (0.5 = the samples reveal nothing about "
                         f"who was in the training rows; distance {_fmt(p['membership_auc_distance'])}, density ratio "
                         f"{_fmt(p['membership_auc_density'])})"))
    if report.get("coverage"):
        rows += format_coverage(report["coverage"])
    width = max(len(name) for name, _ in rows)
    return "\n".join(f"{name:<{width}}  {value}" for name, value in rows)

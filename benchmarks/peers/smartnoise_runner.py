"""Our side of the smartnoise DP-CTGAN peer: write the training split, run the peer in its own venv, read its
samples back (benchmarks/dp_adult.py)."""

from __future__ import annotations

import json
import os
import subprocess
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def run_dpctgan(train, epochs: int, batch_size: int, seed: int, epsilon: float, threads: int):
    import pandas as pd
    py = subprocess.run([str(REPO / "benchmarks/peers/setup_smartnoise_venv.sh"),
                         str(REPO / ".benchmarks-venv-smartnoise")],
                        check=True, capture_output=True, text=True).stdout.strip().splitlines()[-1]
    categorical = [c for c in train.columns if not pd.api.types.is_numeric_dtype(train[c])]
    with tempfile.TemporaryDirectory() as tmp:
        raw = train.copy()
        for c in categorical:  # missing as its own category, as ctgan's benchmark fed Adult
            raw[c] = raw[c].astype(object).where(raw[c].notna(), "?")
        for c in raw.columns.difference(categorical):  # its continuous columns take no holes: the median
            raw[c] = raw[c].fillna(raw[c].median())
        raw.to_csv(f"{tmp}/train.csv", index=False)
        env = {**os.environ, "OMP_NUM_THREADS": str(threads)}
        subprocess.run([py, str(REPO / "benchmarks/peers/smartnoise_fit_sample.py"), f"{tmp}/train.csv",
                        "--categorical", ",".join(categorical), "--epsilon", str(epsilon), "--epochs", str(epochs),
                        "--batch-size", str(batch_size), "--rows", str(len(train)), "--seed", str(seed),
                        "--threads", str(threads), "--out-csv", f"{tmp}/synthetic.csv",
                        "--out-json", f"{tmp}/timing.json"], check=True, env=env, stdout=subprocess.DEVNULL)
        timing = json.load(open(f"{tmp}/timing.json"))
        synthetic = pd.read_csv(f"{tmp}/synthetic.csv")
    for c in categorical:
        synthetic[c] = synthetic[c].astype(object).where(synthetic[c] != "?", None)
    synthetic = synthetic[list(train.columns)]
    return synthetic, {"fit_s": timing["fit_s"], "fit_cpu_s": timing["fit_cpu_s"], "epsilon_spent": epsilon,
                       "privacy": {"peer": "smartnoise-synth 1.0.8 dpctgan"}}

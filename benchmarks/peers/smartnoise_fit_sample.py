"""Runs inside the smartnoise venv (not ours): fit smartnoise-synth's DP-CTGAN on a CSV at an epsilon, write
samples and a JSON of timings. Invoked by benchmarks/dp_adult.py; not importable from ganstream.

DP-CTGAN trains until its epochs end or its accountant reaches epsilon, whichever comes first. The column bounds
of continuous columns are estimated with `preprocessor_eps` of the same epsilon (smartnoise's own split), so
its guarantee covers its preprocessing, which ours does not (docs/privacy.md)."""

import argparse
import json
import time

import numpy as np
import pandas as pd
import torch


def main():
    p = argparse.ArgumentParser()
    p.add_argument("train_csv")
    p.add_argument("--categorical", required=True, help="comma-separated categorical column names")
    p.add_argument("--epsilon", type=float, required=True)
    p.add_argument("--epochs", type=int, default=100)
    p.add_argument("--batch-size", type=int, default=500)
    p.add_argument("--rows", type=int, required=True)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--out-csv", required=True)
    p.add_argument("--out-json", required=True)
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)
    np.random.seed(a.seed)
    from snsynth import Synthesizer
    df = pd.read_csv(a.train_csv)
    categorical = [c for c in a.categorical.split(",") if c]
    continuous = [c for c in df.columns if c not in categorical]
    model = Synthesizer.create("dpctgan", epsilon=a.epsilon, epochs=a.epochs, batch_size=a.batch_size, verbose=False)
    t0, c0 = time.perf_counter(), time.process_time()
    model.fit(df, categorical_columns=categorical, continuous_columns=continuous,
              preprocessor_eps=0.1 * a.epsilon)
    fit_s, fit_cpu_s = time.perf_counter() - t0, time.process_time() - c0
    out = model.sample(a.rows)
    out.to_csv(a.out_csv, index=False)
    json.dump({"fit_s": fit_s, "fit_cpu_s": fit_cpu_s, "epochs": a.epochs, "rows": a.rows}, open(a.out_json, "w"))


if __name__ == "__main__":
    main()

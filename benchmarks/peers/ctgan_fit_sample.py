"""Runs inside the ctgan venv (not ours): fit ctgan.CTGAN on a CSV, time each epoch and sampling, write
samples and a JSON of timings. Invoked by benchmarks/tabular_adult.py; not importable from ganstream."""

import argparse
import json
import time

import pandas as pd
import torch


def main():
    p = argparse.ArgumentParser()
    p.add_argument("train_csv")
    p.add_argument("--discrete", required=True, help="comma-separated discrete column names")
    p.add_argument("--epochs", type=int, default=300)
    p.add_argument("--batch-size", type=int, default=500)
    p.add_argument("--rows", type=int, required=True)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--out-csv", required=True)
    p.add_argument("--out-json", required=True)
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)
    from ctgan import CTGAN
    from ctgan.synthesizers import ctgan as ctgan_module

    # Instrument (not replace) ctgan's data transformer so per-epoch time excludes its preprocessing.
    prep = {"s": 0.0, "cpu_s": 0.0}
    for name in ("fit", "transform"):
        original = getattr(ctgan_module.DataTransformer, name)

        def timed(self, *args, _original=original, **kw):
            t, c = time.perf_counter(), time.process_time()
            try:
                return _original(self, *args, **kw)
            finally:
                prep["s"] += time.perf_counter() - t
                prep["cpu_s"] += time.process_time() - c

        setattr(ctgan_module.DataTransformer, name, timed)

    df = pd.read_csv(a.train_csv)
    model = CTGAN(epochs=a.epochs, batch_size=a.batch_size, verbose=False)
    model.set_random_state(a.seed)
    t0, c0 = time.perf_counter(), time.process_time()
    model.fit(df, discrete_columns=[c for c in a.discrete.split(",") if c])  # --discrete "": none
    fit_s, fit_cpu_s = time.perf_counter() - t0, time.process_time() - c0
    t0 = time.perf_counter()
    out = model.sample(a.rows)
    sample_s = time.perf_counter() - t0
    out.to_csv(a.out_csv, index=False)
    json.dump({"fit_s": fit_s, "fit_cpu_s": fit_cpu_s, "preprocess_s": prep["s"], "epoch_s": (fit_s - prep["s"]) / a.epochs,
               "epoch_cpu_s": (fit_cpu_s - prep["cpu_s"]) / a.epochs, "epochs": a.epochs, "sample_s": sample_s, "rows": a.rows}, open(a.out_json, "w"))


if __name__ == "__main__":
    main()

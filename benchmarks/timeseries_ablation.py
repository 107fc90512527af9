"""Cheap ablations of the time-series GAN on Sines: one config change at a time, a fixed CPU-time budget,
several seeds, scored with the TimeGAN discriminative score (augment/ts_metrics.py, 3 repeats) plus two
roughness diagnostics: mean |step change| of synthetic / real windows, and the per-step std ratio.

    .venv/bin/python benchmarks/timeseries_ablation.py --name base --cpu-min 2 --seeds 0 1
    .venv/bin/python benchmarks/timeseries_ablation.py --name diffs --set critic_diffs=true --cpu-min 2

Appends one JSON line per (name, seed) to benchmarks/results/timeseries_ablation.jsonl.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import numpy as np  # noqa: E402  # noqa: E402

from ganstream.augment.ts_metrics import band_coverage, discriminative_scores, minmax_by_real  # noqa: E402
from benchmarks.timeseries_timegan import HISTORY, HORIZON, L, load, long_frame, parse_set  # noqa: E402
from ganstream.trainers.runtime import set_threads  # noqa: E402
from ganstream.trainers.timeseries.model import TimeSeriesGAN, TimeSeriesGANConfig  # noqa: E402


def roughness(real: np.ndarray, fake: np.ndarray) -> dict:
    step = lambda x: np.abs(np.diff(x, axis=1)).mean()  # noqa: E731
    return {"step_ratio": float(step(fake) / step(real)),
            "std_ratio": float(fake.std(axis=0).mean() / real.std(axis=0).mean())}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--name", required=True)
    p.add_argument("--dataset", default="sines", choices=["sines", "stocks", "energy"])
    p.add_argument("--set", nargs="*", default=[], help="config overrides key=json-value")
    p.add_argument("--cpu-min", type=float, default=2.0)
    p.add_argument("--epochs", type=int, default=1000)
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    p.add_argument("--save", metavar="DIR", help="save each model under DIR/<name>_<seed>")
    p.add_argument("--windows", type=int, default=3000, help="windows scored (a seeded subsample)")
    args = p.parse_args()
    set_threads(1)
    table, overrides, real_w, hist, fut, cols = load(args.dataset)
    for seed in args.seeds:
        cfg = TimeSeriesGANConfig(seq_len=L, epochs=args.epochs, seed=seed, cpu_budget_s=args.cpu_min * 60,
                                  **overrides, **parse_set(args.set))
        t0, c0 = time.perf_counter(), time.process_time()
        model = TimeSeriesGAN(cfg).fit(table)
        wall, cpu = time.perf_counter() - t0, time.process_time() - c0
        if args.save:
            model.save(Path(args.save) / f"{args.name}_{seed}")
        n = min(args.windows, len(real_w))
        real = real_w[np.random.default_rng(seed).permutation(len(real_w))[:n]]
        fake = model.sample(n, seed=seed + 1)[cols].to_numpy().reshape(n, L, len(cols))
        ext = model.extend(long_frame(hist, cols), horizon=HORIZON, draws=50, seed=seed + 3)
        real_s, fake_s, fut_s = minmax_by_real(real_w, real, fake, fut)[1:]
        draws = minmax_by_real(real_w, ext[cols].to_numpy().reshape(len(hist), 50, HORIZON, len(cols)))[1]
        disc = discriminative_scores(real_s, fake_s, repeats=3, seed=seed, iterations=2000)
        row = {"name": args.name, "dataset": args.dataset, "seed": seed, "set": parse_set(args.set),
               "cpu_min": args.cpu_min, "train_cpu_s": cpu, "train_wall_s": wall,
               "epochs_run": len(model.history), "adversarial_epochs": sum(not h["warmup"] for h in model.history),
               "disc": float(np.mean(disc)), "disc_values": disc, **roughness(real_s, fake_s),
               "cover80": band_coverage(fut_s, draws)["coverage"], "load": os.getloadavg()[0]}
        print(json.dumps(row), flush=True)
        with open(REPO / "benchmarks" / "results" / "timeseries_ablation.jsonl", "a") as f:
            f.write(json.dumps(row) + "\n")


if __name__ == "__main__":
    main()

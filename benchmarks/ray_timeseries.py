"""Time-series GAN on Ray Train vs the same epochs in-process (issue 4's overhead question for the second
model kind): per adversarial epoch, wall and process-CPU seconds and windows/s, for the in-process `fit`,
Ray Train with 1 worker and with 2 workers, on TimeGAN's Stocks and Energy (the real datasets, 24-step windows).

    .venv/bin/python benchmarks/ray_timeseries.py [--datasets stocks energy] [--epochs 6] [--seed 0]

The Ray rows run `ganstream train`'s own code path (trainers/backends/ray_timeseries.py) on a local cluster started
once for all of them; the in-process row runs `TimeSeriesGAN.fit`. Both run the same `run_epoch`. Medians over
the adversarial epochs (the warm-up epochs are supervised only and cheaper). Ratios are per epoch of the
same data (an epoch visits every window about once, whatever the number of workers). CPU seconds are each
process's own: with 2 workers the figure is one worker's, and the machine's two cores are both busy.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("RAY_AUTH_MODE", "disabled")
os.environ.setdefault("GANSTREAM_RAY_KEEP", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import pandas as pd  # noqa: E402  # noqa: E402
import torch  # noqa: E402  # noqa: E402

from ganstream.trainers.backends.options import FitOptions  # noqa: E402
from ganstream.trainers.backends.ray_cluster import ray_cluster  # noqa: E402
from ganstream.trainers.backends.ray_timeseries import fit_timeseries_on_ray  # noqa: E402
from ganstream.trainers.timeseries.model import TimeSeriesGAN  # noqa: E402

DATA = Path(__file__).resolve().parents[2] / "shared" / "datasets" / "timegan"


def load(name: str) -> pd.DataFrame:
    """One wide series in chronological order (TimeGAN's loader flips the files)."""
    return pd.read_csv(DATA / f"{'stock' if name == 'stocks' else 'energy'}_data.csv").iloc[::-1].reset_index(drop=True)


def summary(model: TimeSeriesGAN, label: str, total_s: float) -> dict:
    adv = [h for h in model.history if not h["warmup"]]
    return {"setup": label, "epochs": len(model.history), "adversarial_epochs": len(adv),
            "epoch_s": statistics.median(h["epoch_s"] for h in adv),
            "epoch_cpu_s": statistics.median(h["epoch_cpu_s"] for h in adv),
            "windows_per_s": statistics.median(h["windows_per_s"] for h in adv), "fit_total_s": total_s}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--datasets", nargs="+", default=["stocks", "energy"], choices=["stocks", "energy"])
    p.add_argument("--epochs", type=int, default=6)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default=None, help="JSON results file")
    args = p.parse_args()
    torch.set_num_threads(1)
    rows = []
    load_avg = os.getloadavg()
    with tempfile.TemporaryDirectory() as tmp, ray_cluster():
        for name in args.datasets:
            table = load(name)
            cfg = dict(seq_len=24, epochs=args.epochs, seed=args.seed)
            t0 = time.perf_counter()
            m = TimeSeriesGAN(**cfg).fit(table)
            rows.append({"data": name, **summary(m, "in-process", time.perf_counter() - t0)})
            print(rows[-1], flush=True)
            for workers in (1, 2):
                t0 = time.perf_counter()
                m = fit_timeseries_on_ray(TimeSeriesGAN(**cfg), table, opts=FitOptions(backend="ray", 
                    workers=workers, checkpoint_dir=f"{tmp}/{name}-{workers}", run_name=f"{name}-{workers}"))
                rows.append({"data": name, **summary(m, f"ray {workers} worker(s)", time.perf_counter() - t0)})
                print(rows[-1], flush=True)
    print(f"\nload average at start: {load_avg[0]:.1f}; end: {os.getloadavg()[0]:.1f}")
    print(f"{'data':8} {'setup':18} {'epoch s':>8} {'CPU s':>7} {'windows/s':>10} {'fit s':>7} "
          f"{'epoch vs in-proc':>17} {'CPU vs in-proc':>15}")
    for r in rows:
        base = next(b for b in rows if b["data"] == r["data"] and b["setup"] == "in-process")
        r["epoch_ratio"] = r["epoch_s"] / base["epoch_s"]
        r["cpu_ratio"] = r["epoch_cpu_s"] / base["epoch_cpu_s"]
        print(f"{r['data']:8} {r['setup']:18} {r['epoch_s']:8.2f} {r['epoch_cpu_s']:7.2f} {r['windows_per_s']:10,.0f} "
              f"{r['fit_total_s']:7.1f} {r['epoch_ratio']:16.2f}x {r['cpu_ratio']:14.2f}x")
    if args.out:
        Path(args.out).write_text(json.dumps({"load_average_start": load_avg, "rows": rows}, indent=1))


if __name__ == "__main__":
    main()

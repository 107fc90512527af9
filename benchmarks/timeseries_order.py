"""Time-order-aware scores on Sines, Stocks and Energy (augment/ts_order.py), next to TimeGAN's two.

For each dataset, in one run: the real-vs-real floor and the time-reversed and time-shuffled controls, then the
VAR(1) and VAR(2) baselines, the time-series GAN's start state (its fitted VAR(2) backbone and copula start,
before any training step: what keep-best falls back to) and, with --fit-cpu-min, a fitted ganstream model
(or --load DIR: models saved by timeseries_timegan.py --save). Each on levels (TimeGAN's discriminative score)
and on first differences; the predictive score for the generators. Windows, scaling and data as in
timeseries_timegan.py.

    .venv/bin/python benchmarks/timeseries_order.py --datasets sines stocks energy --json-out F
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
sys.path.insert(0, str(REPO / "benchmarks"))

import numpy as np  # noqa: E402

from ganstream.augment.ts_metrics import VAR1, VAR2, Repeated, minmax_by_real, predictive_scores  # noqa: E402
from ganstream.augment.ts_order import order_controls, order_scores  # noqa: E402
from ganstream.trainers.runtime import set_threads  # noqa: E402
from ganstream.trainers.timeseries.model import TimeSeriesGAN, TimeSeriesGANConfig  # noqa: E402
from timeseries_timegan import L, load  # noqa: E402


def generators(name: str, table, overrides, real_w, cols, args):
    """(label, windows [n, L, F] in original units) of every generator compared."""
    n, F = len(real_w), len(cols)
    scaled_real, = minmax_by_real(real_w)
    lo, hi = real_w.reshape(-1, F).min(0), real_w.reshape(-1, F).max(0)
    unscale = lambda w: w * np.where(hi - lo > 0, hi - lo, 1.0) + lo  # noqa: E731
    yield "VAR(1)", unscale(VAR1().fit(scaled_real).sample(n, L, seed=args.seed + 2))
    yield "VAR(2)", unscale(VAR2().fit(scaled_real).sample(n, L, seed=args.seed + 2))
    cfg = TimeSeriesGANConfig(seq_len=L, seed=args.seed, cpu_budget_s=args.fit_cpu_min * 60 or None, **overrides)
    start = TimeSeriesGAN(cfg)
    start.prepare(table)
    yield "start state", start.sample(n, seed=args.seed + 1)[cols].to_numpy().reshape(n, L, F)
    if args.load:
        model = TimeSeriesGAN.load(Path(args.load) / name)
    elif args.fit_cpu_min:
        model = TimeSeriesGAN(cfg).fit(table)
    else:
        return
    yield f"ganstream ({model.training.get('cpu_seconds', 0) / 60:.1f} CPU-min)", \
        model.sample(n, seed=args.seed + 1)[cols].to_numpy().reshape(n, L, F)


def run(name: str, args) -> dict:
    table, overrides, real_w, _, _, cols = load(name)
    t0 = time.process_time()
    real_s, = minmax_by_real(real_w)
    kw = dict(repeats=args.repeats, seed=args.seed, iterations=args.disc_iterations)
    out = {"dataset": name, "windows": len(real_w), "controls": order_controls(real_s, **kw), "generators": {}}
    print(f"[{name}] controls done ({time.process_time() - t0:.0f} CPU-s)", flush=True)
    for label, fake in generators(name, table, overrides, real_w, cols, args):
        fake_s = minmax_by_real(real_w, fake)[1]
        scores = order_scores(real_s, fake_s, **kw)
        scores["predictive"] = Repeated.of(predictive_scores(real_s, fake_s, args.repeats, args.seed,
                                                             iterations=args.pred_iterations)).to_json()
        out["generators"][label] = scores
        print(f"[{name}] {label}: levels {scores['levels']['mean']:.3f}, differences "
              f"{scores['differences']['mean']:.3f}, predictive {scores['predictive']['mean']:.3f}", flush=True)
    out["cpu_seconds"] = time.process_time() - t0
    return out


def table(results: list[dict]) -> str:
    lines = ["| dataset | windows | discriminative on levels | on first differences | predictive |", "|---|---|---|---|---|"]
    for r in results:
        for label, key in (("real vs real (floor)", "real_vs_real"), ("time-reversed real", "time_reversed"),
                           ("time-shuffled real", "time_shuffled")):
            c = r["controls"][key]
            lines.append(f"| {r['dataset']} | {label} | {c['levels']['mean']:.3f} ± {c['levels']['std']:.3f} | "
                         f"{c['differences']['mean']:.3f} ± {c['differences']['std']:.3f} | |")
        for label, g in r["generators"].items():
            lines.append(f"| {r['dataset']} | {label} | {g['levels']['mean']:.3f} ± {g['levels']['std']:.3f} | "
                         f"{g['differences']['mean']:.3f} ± {g['differences']['std']:.3f} | "
                         f"{g['predictive']['mean']:.3f} ± {g['predictive']['std']:.3f} |")
    return "\n".join(lines)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--datasets", nargs="+", default=["sines", "stocks", "energy"], choices=["sines", "stocks", "energy"])
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--disc-iterations", type=int, default=2000, help="TimeGAN's code: 2000")
    p.add_argument("--pred-iterations", type=int, default=5000, help="TimeGAN's code: 5000")
    p.add_argument("--fit-cpu-min", type=float, default=0.0, help="also fit ganstream with this CPU budget (0: no)")
    p.add_argument("--load", default=None, help="score ganstream models saved by timeseries_timegan.py --save DIR")
    p.add_argument("--json-out", default=None)
    args = p.parse_args()
    set_threads(1)
    results = [run(name, args) for name in args.datasets]
    print(table(results))
    if args.json_out:
        Path(args.json_out).write_text(json.dumps({"args": vars(args), "results": results}, indent=1))


if __name__ == "__main__":
    main()

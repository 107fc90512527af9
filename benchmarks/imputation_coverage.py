"""Multiple imputation that carries its uncertainty: how often do K draws' central 90% range cover the truth?

Same protocol and data as benchmarks/imputation_gain.py (GAIN's: 20% of cells MCAR, per-column min-max; letter
and spam from --data-dir, breast = scikit-learn's breast-cancer table). Per dataset and seed, K = 20 draws each:
- ours: GainImputer (the imputer `ganstream impute --draws K` uses), draws calibrated at the end of its fit
  (trainers/tabular/imputer_calibration.py); the same fit with the calibration switched off is the "raw" arm;
- MICE with posterior sampling: IterativeImputer(sample_posterior=True), one run per draw (random_state =
  seed x 1000 + k), as the MICE literature prescribes for multiple imputation.
Printed per arm: 90% coverage (share of masked cells inside the draws' 5-95% range), the mean per-cell standard
deviation of the draws relative to the column's, the RMSE of the draws' mean (ours: `impute_mean`, the point
estimate), and CPU seconds. MissForest-style has no draws (one deterministic fill): its RMSE is in
benchmarks/imputation_gain.py's table.

    python benchmarks/imputation_coverage.py --datasets letter,spam,breast --seeds 3
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
from imputation_gain import Task, load, set_threads  # noqa: E402


def coverage(draws, task) -> tuple[float, float]:
    import numpy as np
    lo, hi = np.quantile(draws, [0.05, 0.95], axis=0)
    inside = (task.full >= lo) & (task.full <= hi)
    spread = draws.std(axis=0)[task.holes].mean() / task.full.std(axis=0).mean()
    return float(inside[task.holes].mean()), float(spread)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--datasets", default="letter,spam,breast")
    p.add_argument("--seeds", type=int, default=3)
    p.add_argument("--draws", type=int, default=20)
    p.add_argument("--miss-rate", type=float, default=0.2)
    p.add_argument("--arms", default="ours,mice")
    p.add_argument("--data-dir", default=str(ROOT.parent / "shared" / "datasets" / "gain"))
    p.add_argument("--json", default=str(ROOT / "benchmarks" / "results" / "imputation_coverage.json"))
    args = p.parse_args()
    set_threads(1)
    import numpy as np
    import torch
    from sklearn.experimental import enable_iterative_imputer  # noqa: F401
    from sklearn.impute import IterativeImputer
    from ganstream.trainers.tabular.gain import GainConfig, GainImputer
    torch.set_num_threads(1)
    arms = args.arms.split(",")
    rows = []
    print(f"{'dataset':8s} {'seed':>4s} {'arm':10s} {'cover90':>8s} {'spread':>7s} {'rmse':>7s} {'cpu s':>7s}")
    for ds in args.datasets.split(","):
        data = load(ds, args.data_dir)
        for seed in range(args.seeds):
            task = Task(data, args.miss_rate, seed)
            X = task.incomplete.astype(np.float32)
            results = {}
            if "ours" in arms:
                c0 = time.process_time()
                imp = GainImputer(GainConfig(seed=seed)).fit(X)
                draws = imp.transform(X, draws=args.draws, seed=seed).astype(np.float64)
                point = imp.impute_mean(X, draws=5, seed=seed).astype(np.float64)
                cpu = time.process_time() - c0
                raw = imp.transform(X, draws=args.draws, seed=seed, calibrated=False).astype(np.float64)
                results["ours"] = (*coverage(draws, task), task.rmse(point), cpu)
                results["ours raw"] = (*coverage(raw, task), task.rmse(point), cpu)
            if "mice" in arms:
                c0 = time.process_time()
                draws = np.stack([IterativeImputer(max_iter=10, sample_posterior=True, random_state=seed * 1000 + k)
                                  .fit_transform(task.incomplete) for k in range(args.draws)])
                results["MICE post"] = (*coverage(draws, task), task.rmse(draws.mean(axis=0)), time.process_time() - c0)
            for arm, (cov, spread, rmse, cpu) in results.items():
                print(f"{ds:8s} {seed:4d} {arm:10s} {cov:8.3f} {spread:7.3f} {rmse:7.4f} {cpu:7.0f}", flush=True)
                rows.append({"dataset": ds, "seed": seed, "arm": arm, "coverage90": cov, "spread": spread,
                             "rmse": rmse, "cpu_seconds": cpu})
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(json.dumps({"date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
                                           "args": vars(args), "rows": rows}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

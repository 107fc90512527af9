"""Imputation RMSE under the GAIN paper's protocol (Yoon et al., ICML 2018, Table 2), with the usual
baselines measured in the same run, so that "ours beats X" is a like-for-like statement.

Protocol, as in GAIN's reference code: 20% of cells missing completely at random; per-column min-max
scaling computed from the complete data; after imputation, columns with fewer than 20 distinct observed
values are rounded in the original scale; RMSE over the missing cells in the scaled space. Each method gets
the same scaled matrix with holes. Mean +- std over seeds (the seed draws the holes and seeds the methods).

    python benchmarks/imputation_gain.py                       # all datasets, 3 seeds, 1 thread
    python benchmarks/imputation_gain.py --datasets breast --seeds 1 --methods mean,mice,ours
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PAPER = {"letter": 0.1198, "spam": 0.0513, "breast": 0.0546}  # GAIN paper, Table 2 (GAIN row)
PAPER_STD = {"letter": 0.0005, "spam": 0.0016, "breast": 0.0006}
METHODS = ("mean", "mice", "missforest", "ours")


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--datasets", default="letter,spam,breast",
                   help="comma list of letter, spam (CSV files in --data-dir) and breast (sklearn's "
                        "load_breast_cancer features) [default: %(default)s]")
    p.add_argument("--seeds", type=int, default=3, help="number of seeds (0..N-1) per dataset [default: %(default)s]")
    p.add_argument("--threads", type=int, default=1,
                   help="torch/BLAS threads; sklearn always runs with n_jobs=1 [default: %(default)s]")
    p.add_argument("--methods", default=",".join(METHODS), help="comma list of %(default)s")
    p.add_argument("--miss-rate", type=float, default=0.2, help="share of cells removed [default: %(default)s]")
    p.add_argument("--data-dir", default=str(ROOT.parent / "shared" / "datasets" / "gain"),
                   help="folder with letter.csv and spam.csv [default: %(default)s]")
    p.add_argument("--mf-trees", type=int, default=100, help="MissForest: trees per forest [default: %(default)s]")
    p.add_argument("--mf-iter", type=int, default=10, help="MissForest and MICE: max_iter [default: %(default)s]")
    p.add_argument("--draws", type=int, default=5,
                   help="ours: imputations averaged into the point estimate [default: %(default)s]")
    p.add_argument("--iterations", type=int, default=0, help="ours: training steps (0: GainConfig default)")
    p.add_argument("--json", default="", help="also write all per-seed results to this JSON file")
    return p.parse_args(argv)


def set_threads(n: int) -> None:
    """Before numpy/torch are imported, so that BLAS pools are created with the right size."""
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        os.environ[var] = str(n)


def load(name: str, data_dir: str):
    import numpy as np
    import pandas as pd
    if name == "breast":
        from sklearn.datasets import load_breast_cancer
        return load_breast_cancer().data.astype(np.float64)
    path = Path(data_dir) / f"{name}.csv"
    if not path.is_file():
        sys.exit(f"error: {path} not found (use --data-dir)")
    return pd.read_csv(path).to_numpy(dtype=np.float64)


class Task:
    """One dataset x seed: the holes, the scaled matrix each method sees, and the scoring."""

    def __init__(self, data, miss_rate: float, seed: int):
        import numpy as np
        self.lo, self.hi = data.min(0), data.max(0)
        self.span = np.where(self.hi > self.lo, self.hi - self.lo, 1.0)
        self.full = (data - self.lo) / self.span
        self.holes = np.random.default_rng(seed).random(data.shape) < miss_rate
        self.incomplete = np.where(self.holes, np.nan, self.full)
        observed = np.where(self.holes, np.nan, data)
        self.round_cols = np.array([np.unique(c[~np.isnan(c)]).size < 20 for c in observed.T])

    def rmse(self, imputed) -> float:
        import numpy as np
        x = imputed * self.span + self.lo
        x[:, self.round_cols] = np.round(x[:, self.round_cols])
        x = (x - self.lo) / self.span
        return float(np.sqrt(np.mean((x[self.holes] - self.full[self.holes]) ** 2)))


def make_method(name: str, args, seed: int):
    """Return impute(matrix with NaN) -> completed matrix."""
    import numpy as np
    from sklearn.experimental import enable_iterative_imputer  # noqa: F401
    from sklearn.impute import IterativeImputer, SimpleImputer

    if name == "mean":
        return lambda X: SimpleImputer(strategy="mean").fit_transform(X)
    if name == "mice":
        return lambda X: IterativeImputer(max_iter=args.mf_iter, random_state=seed).fit_transform(X)
    if name == "missforest":
        est = _OneShotExtraTrees(n_estimators=args.mf_trees, random_state=seed)
        return lambda X: IterativeImputer(est, max_iter=args.mf_iter, random_state=seed).fit_transform(X)
    if name == "ours":
        from trainers.gain import GainConfig, GainImputer
        cfg = GainConfig(seed=seed)
        if args.iterations:
            cfg.iterations = args.iterations

        def ours(X):
            imp = GainImputer(cfg).fit(X.astype(np.float32))
            return imp.impute_mean(X, draws=args.draws, seed=seed).astype(np.float64)
        return ours
    raise SystemExit(f"error: unknown method {name!r} (choose from {', '.join(METHODS)})")


def _one_shot_cls():
    from sklearn.base import BaseEstimator, RegressorMixin
    from sklearn.ensemble import ExtraTreesRegressor

    class OneShotExtraTrees(RegressorMixin, BaseEstimator):
        """ExtraTreesRegressor that frees its forest after its one prediction. IterativeImputer keeps
        every fitted estimator (columns x rounds); 160 full-depth forests of 100 trees on letter need
        ~12 GB. fit_transform only predicts once per fit, so the imputations are unchanged."""

        def __init__(self, n_estimators=100, random_state=None):
            self.n_estimators = n_estimators
            self.random_state = random_state

        def fit(self, X, y):
            self.model_ = ExtraTreesRegressor(n_estimators=self.n_estimators, n_jobs=1,
                                              random_state=self.random_state).fit(X, y)
            return self

        def predict(self, X):
            pred = self.model_.predict(X)
            self.model_ = None
            return pred

    return OneShotExtraTrees


def _OneShotExtraTrees(**kw):
    return _one_shot_cls()(**kw)


def main(argv=None) -> int:
    args = parse_args(argv)
    set_threads(args.threads)
    import warnings
    import numpy as np
    import torch
    torch.set_num_threads(args.threads)
    sys.path.insert(0, str(ROOT))
    warnings.filterwarnings("ignore", message=".*Early stopping criterion not reached.*")

    datasets = [d.strip() for d in args.datasets.split(",") if d.strip()]
    methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    results: dict = {d: {m: {"rmse": [], "seconds": []} for m in methods} for d in datasets}
    for ds in datasets:
        data = load(ds, args.data_dir)
        for seed in range(args.seeds):
            task = Task(data, args.miss_rate, seed)
            for m in methods:
                impute = make_method(m, args, seed)
                t0 = time.perf_counter()
                out = impute(task.incomplete.copy())
                dt = time.perf_counter() - t0
                if not np.isfinite(out).all():
                    raise SystemExit(f"error: {m} left NaN/inf in {ds}")
                observed = ~task.holes
                if not np.allclose(out[observed], task.incomplete[observed], atol=1e-6):
                    raise SystemExit(f"error: {m} changed observed cells in {ds}")
                r = task.rmse(out)
                results[ds][m]["rmse"].append(r)
                results[ds][m]["seconds"].append(dt)
                print(f"{ds:7s} seed {seed} {m:10s} rmse {r:.4f}  {dt:7.1f}s", flush=True)
    print()
    print(table(results, datasets, methods))
    if args.json:
        Path(args.json).write_text(json.dumps({"args": vars(args), "results": results}, indent=1))
    return 0


def table(results: dict, datasets, methods) -> str:
    import numpy as np
    names = {"mean": "column mean", "mice": "MICE", "missforest": "MissForest", "ours": "ours (GAIN+)"}
    head = "| dataset | " + " | ".join(names[m] for m in methods) + " | GAIN paper |"
    lines = [head, "|" + "---|" * (len(methods) + 2)]
    for ds in datasets:
        cells = []
        for m in methods:
            r = np.array(results[ds][m]["rmse"])
            cells.append(f"{r.mean():.4f} ± {r.std():.4f}")
        lines.append(f"| {ds} | " + " | ".join(cells) + f" | {PAPER[ds]:.4f} ± {PAPER_STD[ds]:.4f} |")
    lines += ["", "fit+impute seconds (mean over seeds)", "",
              "| dataset | " + " | ".join(names[m] for m in methods) + " |", "|" + "---|" * (len(methods) + 1)]
    for ds in datasets:
        lines.append(f"| {ds} | " + " | ".join(f"{np.mean(results[ds][m]['seconds']):.1f}" for m in methods) + " |")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())

"""Imputation RMSE under the GAIN paper's protocol (Yoon et al., ICML 2018, Table 2), with the usual
baselines measured in the same run, so that "ours beats X" is a like-for-like statement.

Protocol, as in GAIN's reference code: 20% of cells missing completely at random; per-column min-max
scaling computed from the complete data; after imputation, columns with fewer than 20 distinct observed
values are rounded in the original scale; RMSE over the missing cells in the scaled space. Each method gets
the same scaled matrix with holes. Mean +- std over seeds (the seed draws the holes and seeds the methods).

    python benchmarks/imputation_gain.py                       # all datasets, 3 seeds, 1 thread, everything recomputed
    python benchmarks/imputation_gain.py --datasets breast --seeds 1 --methods mean,mice,ours
    python benchmarks/imputation_gain.py --reuse-baselines benchmarks/results/imputation_gain_baselines.json

Baselines are deterministic given (dataset, seed, miss rate, their settings), and MissForest-style takes
~500 s per letter seed, so `--reuse-baselines FILE` keeps them in a JSON cache: a baseline found there (same
key) is read back instead of recomputed, and every baseline computed is added to it. Without the option every
method is recomputed. Our imputer is never cached. Tuning uses seeds 100+ (`--first-seed 100`); reported
seeds are 0, 1, 2.
Timing: wall seconds and process CPU seconds (time.process_time(); sklearn runs with n_jobs=1 and torch with
--threads threads, so all work is in this process) of fit+impute, per method and seed.
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
    p.add_argument("--seeds", type=int, default=3,
                   help="number of seeds per dataset, from --first-seed on [default: %(default)s]")
    p.add_argument("--first-seed", type=int, default=0,
                   help="first seed (tuning runs use 100+, reported runs 0) [default: %(default)s]")
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
    p.add_argument("--ours-config", default="{}",
                   help='ours: JSON of GainConfig overrides, e.g. \'{"hidden": 256}\' [default: %(default)s]')
    p.add_argument("--reuse-baselines", default="", metavar="FILE",
                   help="JSON cache of baseline results (mean, mice, missforest): read those found, add new ones")
    p.add_argument("--skip-uncached", default="", metavar="METHODS",
                   help="comma list of baselines that are NOT computed when --reuse-baselines lacks them (their "
                        "table cell then shows how many seeds it has, n=k); for runs that cannot afford them")
    p.add_argument("--json", default=str(ROOT / "benchmarks" / "results" / "imputation_gain.json"),
                   help="write all per-seed results to this JSON file ('' for none) [default: %(default)s]")
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
        from ganstream.trainers.tabular.gain import GainConfig, GainImputer
        cfg = GainConfig(**{**json.loads(args.ours_config), "seed": seed})

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
    seeds = list(range(args.first_seed, args.first_seed + args.seeds))
    cache = BaselineCache(args.reuse_baselines, args)
    skip = {m.strip() for m in args.skip_uncached.split(",") if m.strip()}
    results: dict = {d: {m: {"rmse": [], "seconds": [], "cpu_seconds": [], "cached": []} for m in methods}
                     for d in datasets}
    for ds in datasets:
        data = load(ds, args.data_dir)
        for seed in seeds:
            task = Task(data, args.miss_rate, seed)
            for m in methods:
                hit = cache.get(ds, seed, m)
                if hit is None and m in skip:
                    print(f"{ds:7s} seed {seed} {m:10s} not in the baseline cache: skipped (--skip-uncached)")
                    continue
                if hit is None:
                    hit = run_method(m, args, seed, task, ds)
                    cache.put(ds, seed, m, hit)
                for k in ("rmse", "seconds", "cpu_seconds", "cached"):
                    results[ds][m][k].append(hit[k] if k != "cached" else hit.get("cached", False))
                tag = " (cached)" if hit.get("cached") else ""
                print(f"{ds:7s} seed {seed} {m:10s} rmse {hit['rmse']:.4f}  wall {hit['seconds']:7.1f}s  "
                      f"cpu {hit['cpu_seconds']:7.1f}s{tag}", flush=True)
    print()
    print(table(results, datasets, methods))
    if args.json:
        out = {"date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "load_average": os.getloadavg(),
               "cpus": os.cpu_count(), "seeds": seeds, "args": vars(args), "results": results}
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(out, indent=1))
    return 0


def run_method(m: str, args, seed: int, task: Task, ds: str) -> dict:
    import numpy as np
    impute = make_method(m, args, seed)
    t0, c0 = time.perf_counter(), time.process_time()
    out = impute(task.incomplete.copy())
    dt, dc = time.perf_counter() - t0, time.process_time() - c0
    if not np.isfinite(out).all():
        raise SystemExit(f"error: {m} left NaN/inf in {ds}")
    observed = ~task.holes
    if not np.allclose(out[observed], task.incomplete[observed], atol=1e-6):
        raise SystemExit(f"error: {m} changed observed cells in {ds}")
    return {"rmse": task.rmse(out), "seconds": dt, "cpu_seconds": dc}


class BaselineCache:
    """Baseline results keyed by dataset/seed/method and every setting that changes them. Our imputer is
    never cached (it is what is being worked on)."""

    def __init__(self, path: str, args):
        self.path = Path(path) if path else None
        self.data = json.loads(self.path.read_text()) if self.path and self.path.is_file() else {}
        self.settings = f"miss{args.miss_rate}-trees{args.mf_trees}-iter{args.mf_iter}"

    def _key(self, ds, seed, m):
        return f"{ds}/{seed}/{m}/{self.settings}"

    def get(self, ds, seed, m):
        if self.path is None or m == "ours":
            return None
        hit = self.data.get(self._key(ds, seed, m))
        return None if hit is None else {**hit, "cached": True}

    def put(self, ds, seed, m, result):
        if self.path is None or m == "ours":
            return
        self.data[self._key(ds, seed, m)] = {**result, "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
                                             "load_average": os.getloadavg()}
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.path.write_text(json.dumps(self.data, indent=1, sort_keys=True))


def table(results: dict, datasets, methods) -> str:
    import numpy as np
    names = {"mean": "column mean", "mice": "MICE", "missforest": "MissForest", "ours": "ours (GAIN+)"}
    head = "| dataset | " + " | ".join(names[m] for m in methods) + " | GAIN paper |"
    lines = [head, "|" + "---|" * (len(methods) + 2)]
    for ds in datasets:
        cells = []
        for m in methods:
            r, n_all = np.array(results[ds][m]["rmse"]), len(results[ds]["ours"]["rmse"]) if "ours" in methods else None
            if len(r) == 0:
                cells.append("–")
                continue
            cells.append(f"{r.mean():.4f} ± {r.std():.4f}" + (f" (n={len(r)})" if n_all and len(r) != n_all else ""))
        lines.append(f"| {ds} | " + " | ".join(cells) + f" | {PAPER[ds]:.4f} ± {PAPER_STD[ds]:.4f} |")
    lines += ["", "fit+impute seconds, wall / process CPU (mean over seeds; * = some read from the baseline cache)",
              "", "| dataset | " + " | ".join(names[m] for m in methods) + " |", "|" + "---|" * (len(methods) + 1)]
    for ds in datasets:
        cells = [f"{np.mean(results[ds][m]['seconds']):.1f} / {np.mean(results[ds][m]['cpu_seconds']):.1f}"
                 + ("*" if any(results[ds][m]["cached"]) else "") if results[ds][m]["seconds"] else "–"
                 for m in methods]
        lines.append(f"| {ds} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())

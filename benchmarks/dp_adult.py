"""Differentially private synthesis on UCI Adult: utility, detection and membership AUC against epsilon.

Protocol: `tabular_adult.py`'s seeded 70/30 split and scores (utility F1 and ROC AUC ratios of four learners
trained on synthetic rows and tested on the real 30%, detection AUC), plus the membership audit
(augment/membership.py) with the 30% as the holdout. Each epsilon is one ganstream fit with `dp_epsilon`
("inf": the same fit without DP); `--peer` adds smartnoise-synth's DP-CTGAN at the same epsilons when its venv
exists (`benchmarks/peers/setup_smartnoise_venv.sh`).

    python benchmarks/dp_adult.py --epsilons 1 3 10 inf --seeds 0 1 2 --epochs 100 --json-out F
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))


def parse_args():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--epsilons", nargs="+", default=["1", "3", "10", "inf"], help="epsilons (inf: no DP)")
    p.add_argument("--seeds", type=int, nargs="+", default=[0], help="split/fit seeds (default 0)")
    p.add_argument("--epochs", type=int, default=100, help="epochs of every fit (default 100)")
    p.add_argument("--batch-size", type=int, default=500, help="rows per step (default 500)")
    p.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="a TabularGAN config override, as in tabular_adult.py")
    p.add_argument("--peer", action="store_true", help="also run smartnoise-synth's DP-CTGAN (its own venv)")
    p.add_argument("--peer-only", action="store_true", help="run only the peer (its fits are the slow ones)")
    p.add_argument("--json-out", default=None, help="write all figures as JSON here")
    return p.parse_args()


def run_ours(train, args, seed, epsilon):
    import torch
    from tabular_adult import overrides
    from ganstream.trainers.tabular.model import TabularGAN
    torch.set_num_threads(args.threads)
    t0, c0 = time.perf_counter(), time.process_time()
    dp = {} if math.isinf(epsilon) else {"dp_epsilon": epsilon}
    model = TabularGAN(epochs=args.epochs, batch_size=args.batch_size, seed=seed, **dp, **overrides(args)).fit(train)
    cpu = time.process_time() - c0
    wall = time.perf_counter() - t0
    spent = model.privacy.spent() if model.privacy else float("inf")
    extra = model.privacy.to_json() if model.privacy else {}
    return model.sample(len(train), seed=seed + 2), {"fit_s": wall, "fit_cpu_s": cpu, "epsilon_spent": spent,
                                                     "privacy": extra}


def run_peer(train, args, seed, epsilon):
    from peers.smartnoise_runner import run_dpctgan
    return run_dpctgan(train, args.epochs, args.batch_size, seed, epsilon, args.threads)


def main():
    args = parse_args()
    import numpy as np
    from tabular_adult import load_dataset, score, split
    from ganstream.augment.membership import membership_audit
    table, _ = load_dataset("adult")
    epsilons = [float(e) for e in args.epsilons]
    rows = []
    for seed in args.seeds:
        train, test = split(table, seed)
        for eps in epsilons:
            arms = ([] if args.peer_only else [("ganstream", run_ours)]) + \
                ([("dpctgan", run_peer)] if (args.peer or args.peer_only) and not math.isinf(eps) else [])
            for name, run in arms:
                synthetic, info = run(train, args, seed, eps)
                figures = score(train, test, synthetic, seed, "income")
                audit = membership_audit(train, test, synthetic, seed=seed)
                row = {"model": name, "seed": seed, "epsilon": eps, **info, **figures, **audit}
                rows.append(row)
                if args.json_out:  # after every fit: a long run stopped midway keeps what it measured
                    Path(args.json_out).write_text(json.dumps({"args": vars(args), "rows": rows}, indent=1,
                                                              default=float))
                print(f"{name} seed {seed} eps {eps:g}: F1 ratio {row['utility_ratio']:.3f}, AUC ratio "
                      f"{row['utility_auc_ratio']:.3f}, detection {row['detection_auc']:.3f}, membership "
                      f"{row['membership_auc']:.3f}, spent {row['epsilon_spent']:.3g}, fit {row['fit_s']:.0f} s",
                      flush=True)
    keys = [("utility_ratio", "F1 ratio"), ("utility_auc_ratio", "AUC ratio"), ("detection_auc", "detection AUC"),
            ("membership_auc", "membership AUC"), ("epsilon_spent", "epsilon spent"), ("fit_cpu_s", "fit CPU s")]
    print(f"\nUCI Adult, epochs={args.epochs}, batch={args.batch_size}, seeds={args.seeds}, {platform.node()} "
          f"({os.cpu_count()} cores)")
    print("| model | epsilon | " + " | ".join(label for _, label in keys) + " |")
    print("|---|---|" + "---|" * len(keys))
    for name in dict.fromkeys(r["model"] for r in rows):
        for eps in epsilons:
            sel = [r for r in rows if r["model"] == name and r["epsilon"] == eps]
            if not sel:
                continue
            cells = []
            for key, _ in keys:
                v = np.array([r[key] for r in sel], dtype=float)
                cells.append(f"{v.mean():.3f} ± {v.std():.3f}" if len(v) > 1 else f"{v.mean():.3f}")
            print(f"| {name} | {eps:g} | " + " | ".join(cells) + " |")
    if args.json_out:
        Path(args.json_out).write_text(json.dumps({"args": vars(args), "rows": rows}, indent=1, default=float))


if __name__ == "__main__":
    main()

"""Which Adult column gives a numeric encoding away? Per-column detection AUC (issue 8 diagnostic).

Why: with `numeric_encoding="mode"` the whole-table detection AUC on Adult was worse than with the quantile
encoder (0.965 vs 0.955, 2 seeds, benchmarks/RESULTS.md), which kept mode out of the defaults. This fits each
variant on the tabular_adult.py split of one seed and scores the same classifier two-sample test
(augment.metrics.detection_auc) on every column alone: the columns where one variant is easier to tell
apart say where to look.

    python benchmarks/adult_column_detection.py --seed 0 --epochs 60
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

VARIANTS = {"quantile": {"numeric_encoding": "quantile"}, "mode": {"numeric_encoding": "mode"}}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--epochs", type=int, default=60)
    p.add_argument("--out", default=str(REPO / "benchmarks" / "results" / "adult_column_detection.json"))
    args = p.parse_args(argv)
    from ganstream.augment.metrics import detection_auc
    from benchmarks.tabular_adult import adult_train_split
    from ganstream.trainers.tabular.model import TabularGAN
    train = adult_train_split(args.seed)
    result = {"seed": args.seed, "epochs": args.epochs, "variants": {}}
    for name, overrides in VARIANTS.items():
        t0, c0 = time.perf_counter(), time.process_time()
        model = TabularGAN(epochs=args.epochs, seed=args.seed, **overrides).fit(train)
        synthetic = model.sample(len(train), seed=args.seed + 2)  # as tabular_adult.py scores it
        per_column = {c: detection_auc(train[[c]], synthetic[[c]], seed=args.seed) for c in train.columns}
        result["variants"][name] = {"config": model.config.to_json(), "whole_table": detection_auc(train, synthetic, seed=args.seed),
                                    "per_column": per_column, "fit_s": time.perf_counter() - t0,
                                    "cpu_s": time.process_time() - c0}
        print(f"{name}: fitted and scored in {time.perf_counter() - t0:.0f} s", file=sys.stderr, flush=True)
    names = list(result["variants"])
    print(f"{'column':<16}" + "".join(f"{n:>10}" for n in names))
    for c in train.columns:
        print(f"{c:<16}" + "".join(f"{result['variants'][n]['per_column'][c]:>10.3f}" for n in names))
    print(f"{'whole table':<16}" + "".join(f"{result['variants'][n]['whole_table']:>10.3f}" for n in names))
    Path(args.out).write_text(json.dumps(result, indent=1))
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

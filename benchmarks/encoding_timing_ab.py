"""CPU seconds per epoch of two numeric encodings on Adult, interleaved A B A B under the same load (issue 8).

Why: on a shared 2-core machine even CPU seconds drift with the load (run 4 of the mode-collapse benchmark saw
the same fits take 41-61 CPU s against 33-39 a week earlier), so "not slower per epoch" is only measured side
by side. Hot-deck filling skips the imputer (only the epochs are timed); epoch 1 (warm-up) is left out of the
mean; prep CPU = the fit's CPU outside the epochs (encoder fit: for "auto", fnlwgt's mixture).

    python benchmarks/encoding_timing_ab.py --encodings auto quantile --epochs 8 --repeats 2
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--encodings", nargs="+", default=["auto", "quantile"])
    p.add_argument("--epochs", type=int, default=8)
    p.add_argument("--repeats", type=int, default=2)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default=str(REPO / "benchmarks" / "results" / "encoding_timing_ab.json"))
    args = p.parse_args(argv)
    from benchmarks.tabular_adult import adult_train_split
    from ganstream.trainers.tabular.model import TabularGAN
    train = adult_train_split(args.seed)
    out = []
    for rep in range(args.repeats):
        for enc in args.encodings:
            c0 = time.process_time()
            m = TabularGAN(epochs=args.epochs, seed=args.seed, numeric_encoding=enc, fill_missing="hotdeck").fit(train)
            total = time.process_time() - c0
            ep = [h["epoch_cpu_s"] for h in m.history]
            out.append({"rep": rep, "encoding": enc, "epoch_cpu_s": ep, "mean_epoch_cpu_s": sum(ep[1:]) / max(len(ep) - 1, 1),
                        "prep_cpu_s": total - sum(ep), "width": m.encoder.output_dim,
                        "columns": {c: m.encoder.column_encoding(c) for c in m.encoder.numeric_params}})
            print(f"{enc} repeat {rep}: {out[-1]['mean_epoch_cpu_s']:.3f} CPU s/epoch, prep {out[-1]['prep_cpu_s']:.2f} CPU s",
                  flush=True)
    Path(args.out).write_text(json.dumps(out, indent=1))
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

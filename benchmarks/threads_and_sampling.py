"""Torch threads (1 vs 2) for fitting and sampling, per generator block, on UCI Adult.

Sampling speed does not depend on how well a model is trained, so each model trains only a few epochs.
Run it on an otherwise idle machine: a second thread only pays when the other core is free (STACK.md).

    python benchmarks/threads_and_sampling.py --epochs 3 --rows 300000
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--epochs", type=int, default=3, help="epochs timed per setting (default 3)")
    p.add_argument("--rows", type=int, default=300_000, help="rows sampled per timing (default 300k)")
    a = p.parse_args()
    import numpy as np
    import torch
    from ganstream.trainers.table_io import read_table
    from ganstream.trainers.tabular.model import TabularGAN

    adult = read_table(REPO / "data/adult.csv", ["?"])
    print(f"| generator | threads | s/epoch | sample rows/s |\n|---|---|---|---|")
    for block in ("concat", "add"):
        for threads in (1, 2):
            torch.set_num_threads(threads)
            m = TabularGAN(epochs=a.epochs, generator_block=block, fill_missing="hotdeck").fit(adult)
            epoch_s = float(np.median([h["epoch_s"] for h in m.history]))
            m.sample(10_000)
            t0 = time.perf_counter()
            m.sample(a.rows, seed=1)
            rate = a.rows / (time.perf_counter() - t0)
            print(f"| {block} | {threads} | {epoch_s:.2f} | {rate:,.0f} |", flush=True)


if __name__ == "__main__":
    main()

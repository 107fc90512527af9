"""How long a first fit takes, wall clock, as a new user runs it: `ganstream train FILE --out DIR` in a fresh
process (interpreter start, imports, reading, the hole-filling imputer, the GAN, writing the model), on

* small.csv: 200 rows (the smallest table a default fit used to refuse);
* t.csv: 2,000 rows x 6 columns (numeric, integer, categorical), 10% holes in one column (so the
  imputer stage counts),

with --epochs 2 and with the defaults, on the in-process backend and on Ray Train (one worker, a local cluster
started and stopped by the command), side by side, each repeated. Prints a table; the ratio column is each
row's median wall time over the local backend's on the same table and epochs.

    python benchmarks/fit_speed.py [--repeats 3] [--default-epochs]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

GANSTREAM = Path(sys.executable).with_name("ganstream")


def tables(directory: Path) -> dict[str, Path]:
    rng = np.random.default_rng(0)
    n = 2000
    t = pd.DataFrame({"age": rng.integers(18, 80, n), "income": rng.lognormal(10, 1, n).round(2),
                      "score": rng.normal(0, 1, n), "city": rng.choice(["a", "b", "c", "d"], n),
                      "member": rng.choice(["yes", "no"], n), "visits": rng.poisson(3, n)})
    t.loc[rng.random(n) < 0.1, "income"] = np.nan
    paths = {"t.csv (2,000 x 6, 10% holes)": directory / "t.csv", "small.csv (200 rows)": directory / "small.csv"}
    t.to_csv(paths["t.csv (2,000 x 6, 10% holes)"], index=False)
    t.iloc[:200].to_csv(paths["small.csv (200 rows)"], index=False)
    return paths


def timed(argv: list[str], cwd: Path) -> float:
    env = {**os.environ, "GANSTREAM_RAY_KEEP": "0", "RAY_TMPDIR": "/tmp/gs-bench-ray"}
    t0 = time.perf_counter()
    r = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - t0
    if r.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} failed:\n{r.stderr[-2000:]}")
    return seconds


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--default-epochs", action="store_true", help="also time a fit with the default epochs (local only)")
    args = p.parse_args()
    os.makedirs("/tmp/gs-bench-ray", exist_ok=True)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        for name, path in tables(work).items():
            cases = [("2", "local"), ("2", "ray")] + ([("default", "local")] if args.default_epochs else [])
            local_median = None
            for epochs, backend in cases:
                argv = [str(GANSTREAM), "--quiet", "train", str(path), "--out", str(work / "m"), "--backend", backend]
                if epochs != "default":
                    argv += ["--epochs", epochs]
                walls = [timed(argv, work) for _ in range(args.repeats)]
                median = statistics.median(walls)
                if backend == "local" and epochs == "2":
                    local_median = median
                ratio = median / local_median if epochs == "2" and local_median else float("nan")
                rows.append((name, epochs, backend, median, min(walls), max(walls), ratio))
                print(f"  {name}: epochs={epochs} backend={backend}: {', '.join(f'{w:.1f}' for w in walls)} s",
                      file=sys.stderr, flush=True)
    print(f"| table | epochs | backend | wall s (median of {args.repeats}) | min | max | x local |")
    print("|---|---|---|---|---|---|---|")
    for name, epochs, backend, median, lo, hi, ratio in rows:
        shown = "" if ratio != ratio else f"{ratio:.2f}"
        print(f"| {name} | {epochs} | {backend} | {median:.1f} | {lo:.1f} | {hi:.1f} | {shown} |")


if __name__ == "__main__":
    main()

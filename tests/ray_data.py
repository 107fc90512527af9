"""The hive-partitioned Parquet dataset of the Ray tests (4 partitions, region x day, 6,000 rows): rows whose
distribution depends on the partition, with holes."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

# The Ray tests' reference fit (conftest.ray_first_fit) and its exact --resume (test_ray_train): 1 worker, 2 epochs,
# the small data read once into the object store, no shard cache (a 1-worker fit is then reproducible step for step).
RAY_FIT_ARGS = ["--epochs", "2", "--batch-size", "200", "--imputer-epochs", "2", "--seed", "0", "--backend", "ray",
                "--target", "c", "--worker-cache-mb", "0", "--keep-checkpoints"]


def region_table(region: str, n: int, seed: int) -> pd.DataFrame:
    """x's mean and c's mix change with the region; 5% of x missing; a timestamp (learned as a number) and an
    event id (not learned: an identifier) ride along, so that the Ray path reads and writes both kinds."""
    rng = np.random.default_rng(seed)
    shift = {"eu": 0.0, "us": 3.0}[region]
    c = rng.choice(["a", "b", "c"], n, p=[0.6, 0.3, 0.1] if region == "eu" else [0.2, 0.3, 0.5])
    x = rng.normal(shift, 1.0, n) + (c == "c") * 2.0
    seen = pd.Timestamp("2026-11-01") + pd.to_timedelta(rng.integers(0, 86_400 * 30, n), unit="s")
    df = pd.DataFrame({"x": x, "k": rng.integers(0, 4, n), "c": c, "seen": pd.DatetimeIndex(seen).as_unit("us"),
                       "event_id": seed * 100_000 + np.arange(n)})
    df.loc[rng.random(n) < 0.05, "x"] = np.nan
    return df


def write_hive(root: Path, rows_per_file: int = 1500) -> Path:
    seed = 0
    for region in ("eu", "us"):
        for day in ("2026-11-01", "2026-11-02"):
            d = root / f"region={region}" / f"day={day}"
            d.mkdir(parents=True)
            seed += 1
            table = pa.Table.from_pandas(region_table(region, rows_per_file, seed), preserve_index=False)
            pq.write_table(table, d / "part-0.parquet")
    return root

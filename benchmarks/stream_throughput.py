"""Rows/s of the bounded Beam job (`ganstream stream --rows N`) vs the generator's raw in-process `sample()`
on the same model and machine, for 1M and 10M rows, with the peak RSS of each run.

Each measurement runs in its own fresh process (so peak RSS is that run's alone), one after the other:
* raw:  load the model, then `model.sample(shard_rows, seed)` for every shard of the job, results dropped
        (the same batch size as the job: the generator's raw speed, no Beam, no Parquet);
* beam: `ganstream stream MODEL --rows N --shard-rows S --sink DIR` (FnApiRunner, 1 worker, 1 torch thread):
        timed from the command's start to its end, so Beam start-up, the model load in DoFn.setup, Arrow
        conversion and Parquet writing all count against it.
Also recorded for 1M: one raw `sample(N)` call (the whole table in memory at once).

    .venv/bin/python benchmarks/stream_throughput.py [--rows 1000000 10000000] [--shard-rows 100000]
Writes benchmarks/results/stream_throughput.json and prints a table.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
ENV = {**os.environ, "GANSTREAM_THREADS": "1", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1",
       "PYTHONPATH": str(REPO), "MLFLOW_DISABLE_TELEMETRY": "true"}


def fit_model(out: Path, seed: int = 0) -> None:
    """The model of the test suite: 2 epochs on 3,000 Adult rows (speed, not quality, is measured here)."""
    from ganstream.trainers.runtime import set_threads
    from ganstream.trainers.table_io import read_table
    from ganstream.trainers.tabular.model import TabularGAN
    set_threads(1)
    table = read_table(REPO / "data" / "adult.csv", ["?"]).iloc[:3000].reset_index(drop=True)
    TabularGAN(epochs=2, batch_size=200, seed=seed, imputer_epochs=2).fit(table).save(out)


def raw_child(model: str, rows: int, shard_rows: int, whole: bool) -> None:
    """Runs in a child process: prints {"seconds": ...} for the raw sampling loop."""
    from ganstream.pipeline.stream_plan import SYNTHETIC, StreamSpec, derive_seed, plan_shards
    from ganstream.trainers.kinds import load_model
    from ganstream.trainers.runtime import set_threads
    set_threads(1)
    m = load_model(model)
    t0 = time.perf_counter()
    if whole:
        n = len(m.sample(rows, seed=0))
    else:
        n = 0
        for shard in plan_shards([StreamSpec(SYNTHETIC, rows)], 0, shard_rows):
            n += len(m.sample(shard.rows, seed=derive_seed(0, shard.index, 0)))
    print(json.dumps({"seconds": time.perf_counter() - t0, "rows": n}))


def run_child(argv: list[str]) -> dict:
    """Wall and CPU seconds, peak RSS (MB), stdout and stderr of a child process (rusage from wait4: that
    child only). CPU seconds matter on a shared machine: wall time there depends on the neighbours."""
    t0 = time.perf_counter()
    with tempfile.TemporaryFile() as errf:
        proc = subprocess.Popen(argv, cwd=REPO, env=ENV, stdout=subprocess.PIPE, stderr=errf)
        out = proc.stdout.read().decode()
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - t0
        errf.seek(0)
        err = errf.read().decode(errors="replace")
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"child failed: {' '.join(argv)}\n{err[-3000:]}")
    return {"wall": wall, "cpu": usage.ru_utime + usage.ru_stime, "rss_mb": usage.ru_maxrss / 1024,
            "out": out, "err": err}


def job_seconds(stderr: str, rows: int) -> float:
    """The job's own time from `stream`'s last line ('wrote N rows ... (R rows/s)'): pipeline construction to
    end, i.e. Beam start-up, model load in DoFn.setup, generation, Arrow and Parquet; not Python's imports."""
    line = [l for l in stderr.splitlines() if l.startswith("stream: wrote")][-1]
    rate = float(re.search(r"\(([0-9,.]+) rows/s\)", line).group(1).replace(",", ""))
    return rows / rate


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, nargs="+", default=[1_000_000, 10_000_000])
    ap.add_argument("--shard-rows", type=int, default=100_000)
    ap.add_argument("--model", help="model directory (default: fit the test-suite model, ~15 s)")
    ap.add_argument("--out", default=str(REPO / "benchmarks" / "results" / "stream_throughput.json"))
    args = ap.parse_args()

    work = Path(tempfile.mkdtemp(prefix="ganstream-stream-bench-"))
    try:
        model = args.model or str(work / "model")
        if not args.model:
            fit_model(Path(model))
        results = []
        for n in args.rows:
            raw = run_child([sys.executable, __file__, "--raw-child", model, str(n), str(args.shard_rows)])
            raw_s = json.loads(raw["out"])["seconds"]
            sink = work / f"sink-{n}"
            beam = run_child([sys.executable, "-m", "ganstream.pipeline.cli", "stream", model,
                              "--sink", str(sink), "--rows", str(n), "--shard-rows", str(args.shard_rows)])
            beam_s = job_seconds(beam["err"], n)
            import pyarrow.parquet as pq
            written = sum(pq.ParquetFile(f).metadata.num_rows for f in sink.glob("shard-*.parquet"))
            assert written == n, (written, n)
            shutil.rmtree(sink)
            row = {"rows": n, "shard_rows": args.shard_rows,
                   "raw_rows_per_s": n / raw_s, "raw_seconds": raw_s, "raw_process_cpu_s": raw["cpu"],
                   "raw_peak_rss_mb": raw["rss_mb"],
                   "beam_rows_per_s": n / beam_s, "beam_seconds": beam_s, "beam_process_wall_s": beam["wall"],
                   "beam_process_cpu_s": beam["cpu"], "beam_peak_rss_mb": beam["rss_mb"],
                   "ratio": raw_s / beam_s, "cpu_ratio": raw["cpu"] / beam["cpu"]}
            if n <= 1_000_000:
                whole = run_child([sys.executable, __file__, "--raw-child", model, str(n), str(args.shard_rows), "--whole"])
                row.update(raw_whole_rows_per_s=n / json.loads(whole["out"])["seconds"], raw_whole_peak_rss_mb=whole["rss_mb"])
            results.append(row)
            print(f"{n:>11,} rows: raw {row['raw_rows_per_s']:>8,.0f} rows/s ({raw['rss_mb']:,.0f} MB)  "
                  f"beam {row['beam_rows_per_s']:>8,.0f} rows/s ({beam['rss_mb']:,.0f} MB)  ratio {row['ratio']:.2f}  "
                  f"cpu ratio {row['cpu_ratio']:.2f}", flush=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)

    print(f"\n{'rows':>11} | {'raw rows/s':>10} | {'beam rows/s':>11} | {'beam/raw':>8} | {'CPU-s raw/beam':>14} | "
          f"{'raw RSS MB':>10} | {'beam RSS MB':>11}")
    for r in results:
        print(f"{r['rows']:>11,} | {r['raw_rows_per_s']:>10,.0f} | {r['beam_rows_per_s']:>11,.0f} | {r['ratio']:>8.2f} | "
              f"{r['cpu_ratio']:>14.2f} | {r['raw_peak_rss_mb']:>10,.0f} | {r['beam_peak_rss_mb']:>11,.0f}")
    report = {"date": time.strftime("%Y-%m-%d"), "machine": f"{platform.machine()}, {os.cpu_count()} CPUs (shared)",
              "command": " ".join(sys.argv), "torch_threads": 1, "runner": "FnApiRunner, 1 worker", "results": results}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(report, indent=1) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--raw-child":
        raw_child(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), "--whole" in sys.argv)
    else:
        main()

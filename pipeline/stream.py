"""The Beam pipelines of `ganstream stream`.

bounded:   Create(shards) -> Reshuffle -> ParDo(WriteShard)
           each shard: a seeded batch from the model (ShardMaker) -> one Parquet file, temp + rename.
unbounded: PeriodicImpulse(every window) -> ParDo(GenerateWindow) -> WindowInto(FixedWindows) -> ParDo(WriteWindow)
           each impulse fires when a window closes and makes that window's rows (rate x window seconds) as
           one batch, stamped with the window's start; the window's file is renamed into place complete.

Why one impulse per window and no GroupByKey (measured with Beam 2.77 here): with `--streaming`, the
in-process BundleBasedDirectRunner rejects PeriodicImpulse ("_GroupByKeyOnly was not replaced"); the
DirectRunner's fallback after its failed Prism download runs it, but a GroupByKey per window there released
every window only when the impulse stopped (all files at t=end). The FnApiRunner runs PeriodicImpulse in real
time. One element per window keeps files appearing as their windows close without relying on a runner's
watermark, and the rate is exact by construction (window_rows).

Runner: `FnApiRunner` by default: in-process, offline, no attempt to fetch Prism (the DirectRunner and
Beam's default try to download Prism first, ../shared/STACK.md). `--streaming` is added for other runners
(Flink, Dataflow, ...) in unbounded mode; any other Beam option passes through (not run here).
"""

from __future__ import annotations

import contextlib
import logging
import math
import shlex
import time
from pathlib import Path

from ganstream.trainers.errors import ConfigError

from ganstream.pipeline.stream_frames import ShardMaker, StreamJob
from ganstream.pipeline.stream_plan import (EPISODES, IN_PROCESS_RUNNERS, SYNTHETIC, Part, Shard, split_even,
                                            window_rows)
from ganstream.pipeline.stream_sink import write_parquet_atomic

DEFAULT_RUNNER = "FnApiRunner"


@contextlib.contextmanager
def _quiet_import():
    """Importing Beam logs a warning about optional GCP libraries; keep stderr to our one-line messages."""
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)
    try:
        yield
    finally:
        root.setLevel(level)


def beam():
    with _quiet_import():
        import apache_beam
    # Beam logs a failing DoFn's traceback before the error reaches the command, which reports it itself (one
    # line for a user's fault such as a full disk, the traceback for a bug): Beam's copy would be a second one.
    logging.getLogger("apache_beam").setLevel(logging.CRITICAL)
    return apache_beam


def pipeline_options(runner: str, num_workers: int, running_mode: str, extra: str = "", streaming: bool = False):
    beam()  # the quiet import first
    from apache_beam.options.pipeline_options import PipelineOptions
    argv = [f"--runner={runner}"]
    if runner in IN_PROCESS_RUNNERS:
        argv += [f"--direct_num_workers={num_workers}", f"--direct_running_mode={running_mode}"]
    if streaming and runner not in IN_PROCESS_RUNNERS:
        argv.append("--streaming")
    try:
        argv += shlex.split(extra or "")
    except ValueError as e:
        raise ConfigError(f"--beam-args: {e}") from None
    return PipelineOptions(argv)


def _make_dofns():
    b = beam()

    class WriteShard(b.DoFn):
        """Generate one shard and write it; a shard already complete in the sink (a re-run) is skipped."""

        def __init__(self, job: StreamJob, sink: str):
            self.job, self.sink = job, sink

        def setup(self):
            self.maker = ShardMaker(self.job).setup()

        def process(self, shard: Shard):
            path = Path(self.sink) / shard.name
            if not path.exists():
                write_parquet_atomic(self.maker.table(shard, shard=shard.index, shards=shard.count), path)
            yield shard.name, shard.rows

    class GenerateWindow(b.DoFn):
        """On the impulse that closes window k: that window's rows, as one Arrow table."""

        def __init__(self, job: StreamJob, t0: float, window_s: float, rate: float, duration: float | None,
                     balance: list | None):
            self.job, self.t0, self.window_s, self.rate, self.duration = job, t0, window_s, rate, duration
            self.balance = balance

        def setup(self):
            self.maker = ShardMaker(self.job).setup()

        def process(self, fired_at):
            k = int(round((float(fired_at) - self.t0) / self.window_s)) - 1
            n = window_rows(self.rate, self.window_s, k, self.duration)
            if n <= 0:
                return
            if self.balance:
                col, classes = self.balance
                parts = tuple(Part(SYNTHETIC, c, condition=(col, v)) for v, c in zip(classes, split_even(n, len(classes))) if c)
            elif self.job.episodes:  # episode ids continue across windows (cumulative floors, as window_rows)
                parts = (Part(EPISODES, n, start=int(self.rate * k * self.window_s + 1e-9)),)
            else:
                parts = (Part(SYNTHETIC, n),)
            start = self.t0 + k * self.window_s
            table = self.maker.table(Shard(k, 0, self.job.seed, parts), window=k, window_start=f"{start:.3f}",
                                     window_end=f"{start + self.window_s:.3f}")
            yield b.window.TimestampedValue((k, table), start)

    class WriteWindow(b.DoFn):
        def __init__(self, sink: str):
            self.sink = sink

        def process(self, item, window=b.DoFn.WindowParam):
            k, table = item
            start = float(window.start)
            ms = round((start % 1) * 1000)
            stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime(start)) + (f"{ms:03d}ms" if ms else "")
            write_parquet_atomic(table, Path(self.sink) / f"window-{stamp}Z-{k:06d}.parquet")
            return  # no output: the in-process runner buffers a stream's outputs, measured ~9 KB per impulse

    return WriteShard, GenerateWindow, WriteWindow


def new_pipeline(options):
    try:
        return beam().Pipeline(options=options)
    except ValueError as e:  # e.g. an unknown --runner
        raise ConfigError(f"Beam options: {str(e).splitlines()[0]}") from None


def _run(pipeline) -> None:
    result = pipeline.run()
    result.wait_until_finish()


def run_bounded(job: StreamJob, shards: list[Shard], sink: Path, options) -> None:
    b = beam()
    WriteShard, _, _ = _make_dofns()
    p = new_pipeline(options)
    (p | "Shards" >> b.Create(shards)
       | "Spread" >> b.Reshuffle()
       | "GenerateAndWrite" >> b.ParDo(WriteShard(job, str(sink))))
    _run(p)


def run_unbounded(job: StreamJob, sink: Path, options, rate: float, window_s: float, duration: float | None,
                  balance: list | None = None, start_delay_s: float = 1.0) -> None:
    b = beam()
    from apache_beam.transforms.periodicsequence import PeriodicImpulse
    from apache_beam.utils.timestamp import MAX_TIMESTAMP
    _, GenerateWindow, WriteWindow = _make_dofns()
    t0 = math.floor(time.time()) + start_delay_s
    windows = None if duration is None else math.ceil(duration / window_s - 1e-9)
    stop = MAX_TIMESTAMP if windows is None else t0 + (windows + 0.5) * window_s
    p = new_pipeline(options)
    (p | "Tick" >> PeriodicImpulse(start_timestamp=t0 + window_s, stop_timestamp=stop, fire_interval=window_s)
       | "Generate" >> b.ParDo(GenerateWindow(job, t0, window_s, rate, duration, balance))
       | "Windows" >> b.WindowInto(b.window.FixedWindows(window_s, offset=t0 % window_s))
       | "Write" >> b.ParDo(WriteWindow(str(sink))))
    with _stop_on_signal(sink):
        _run(p)


@contextlib.contextmanager
def _stop_on_signal(sink: Path):
    """SIGINT / SIGTERM end a stream at once with one line, whatever the runner would make of a
    KeyboardInterrupt raised inside a bundle: the handler removes the temp file of a window being written
    (so no partial file is left behind) and exits; every window file already renamed into place is complete."""
    import os
    import signal
    import sys
    import threading
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def stop(signum, frame):
        for tmp in Path(sink).glob(f".*.{os.getpid()}.tmp"):
            tmp.unlink(missing_ok=True)
        print(f"ganstream stream: stopped by {signal.Signals(signum).name}; every window file in {sink} is complete",
              file=sys.stderr, flush=True)
        os._exit(128 + signum)

    previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)

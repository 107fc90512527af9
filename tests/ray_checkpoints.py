"""A Ray Train run's checkpoint storage as a fit interrupted after an earlier epoch left it.

The --resume tests need a fit that stopped after epoch N and the same fit run straight through. Running the
short fit for real costs a whole Ray Train run (~40 CPU-s of Ray's own start-up on 2 cores) for a state the
straight fit already wrote: its checkpoint of epoch N is byte for byte what the short fit would have left
(1 worker is reproducible). So the straight fit's storage is copied and cut back to epoch N: the later
checkpoint directories go, and Ray Train's snapshot (which --resume reads to find the latest checkpoint) is
rewritten as it stood right after epoch N was reported. The snapshot is Ray's own file: the copy fails loudly
if its layout is not the one this was written for."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

SNAPSHOT = "checkpoint_manager_snapshot.json"
LAYOUT = {"checkpoint_results", "checkpoint_report_indices", "latest_checkpoint_result", "current_report_index"}


def interrupted_after(storage: Path, dest: Path, epoch: int, run_name: str = "ganstream") -> Path:
    """Copy STORAGE (a fit's checkpoint dir, holding RUN_NAME/) to DEST as if the fit had stopped after EPOCH."""
    shutil.copytree(storage, dest)
    run = dest / run_name
    snap = json.loads((run / SNAPSHOT).read_text())
    missing = LAYOUT - set(snap)
    assert not missing, f"Ray Train's checkpoint snapshot changed layout (no {sorted(missing)}): update {__file__}"
    results, indices = snap["checkpoint_results"], snap["checkpoint_report_indices"]  # kept ones, report order
    n = sum(r["metrics"]["epoch"] <= epoch for r in results)
    assert n and results[n - 1]["metrics"]["epoch"] == epoch, f"no checkpoint of epoch {epoch} in {storage}"
    for r in results[n:]:
        shutil.rmtree(run / r["checkpoint_dir_name"])
    snap.update(checkpoint_results=results[:n], checkpoint_report_indices=indices[:n],
                latest_checkpoint_result=results[n - 1], current_report_index=indices[n - 1] + 1)
    (run / SNAPSHOT).write_text(json.dumps(snap))
    return dest

"""Training checkpoints without pickle, for both backends: a checkpoint directory holds

    model/                 a complete model directory (model.json + safetensors: G, D, encoder, imputer, history)
    optimizers.safetensors Adam states, flattened to tensors (`<optimizer>.<param index>.<field>`)
    training_networks.safetensors  networks that train with the model but are not part of it (the optional
                           auxiliary target classifier of --target), `<network>.<weight name>`
    state.json             epoch reached, restarts, fit id, optimiser hyper-parameters (param_groups)

so the model in the last checkpoint is itself a valid, loadable model, and resuming restores the optimisers
and the training-only networks exactly (Adam's moments matter for a GAN: restarting them jolts both players;
a fresh target classifier would hand the generator a random target loss until it relearnt)."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from ganstream.trainers.errors import ConfigError, ModelError

STATE_FILE = "state.json"
OPTIM_FILE = "optimizers.safetensors"
NETWORKS_FILE = "training_networks.safetensors"
MODEL_DIR = "model"


def flatten_optimizers(optimizers: dict[str, torch.optim.Optimizer]) -> tuple[dict[str, torch.Tensor], dict]:
    tensors, groups = {}, {}
    for name, opt in optimizers.items():
        sd = opt.state_dict()
        for idx, fields in sd["state"].items():
            for k, v in fields.items():
                t = v if torch.is_tensor(v) else torch.tensor(v)
                tensors[f"{name}.{idx}.{k}"] = t.detach().contiguous().cpu()
        groups[name] = sd["param_groups"]
    return tensors, groups


def restore_optimizers(optimizers: dict[str, torch.optim.Optimizer], tensors: dict[str, torch.Tensor], groups: dict) -> None:
    for name, opt in optimizers.items():
        state: dict[int, dict] = {}
        for key, t in tensors.items():
            owner, idx, field = key.split(".", 2)
            if owner == name:
                state.setdefault(int(idx), {})[field] = t
        opt.load_state_dict({"state": state, "param_groups": groups[name]})


def write_checkpoint(path: Path, model, optimizers: dict, state: dict,
                     networks: dict[str, torch.nn.Module | dict] | None = None) -> Path:
    """`model` and `networks` (training-only networks by name, or their state_dicts) must be plain, not
    DDP-wrapped."""
    path.mkdir(parents=True, exist_ok=True)
    model.save(path / MODEL_DIR)
    tensors, groups = flatten_optimizers(optimizers)
    save_file(tensors, str(path / OPTIM_FILE))
    if networks:
        save_file({f"{name}.{k}": v.detach().contiguous().cpu() for name, net in networks.items()
                   for k, v in (net if isinstance(net, dict) else net.state_dict()).items()}, str(path / NETWORKS_FILE))
    (path / STATE_FILE).write_text(json.dumps({**state, "param_groups": groups}))
    return path


def read_checkpoint(path: Path) -> tuple[dict, dict[str, torch.Tensor]]:
    """(state, optimizer tensors); the model is read with its class's load(path / MODEL_DIR)."""
    state = json.loads((path / STATE_FILE).read_text())
    return state, load_file(str(path / OPTIM_FILE))


def read_networks(path: Path) -> dict[str, dict[str, torch.Tensor]]:
    """Training-only networks' state_dicts by name ({} when the checkpoint has none)."""
    f = path / NETWORKS_FILE
    if not f.is_file():
        return {}
    out: dict[str, dict[str, torch.Tensor]] = {}
    for key, t in load_file(str(f)).items():
        name, weight = key.split(".", 1)
        out.setdefault(name, {})[weight] = t
    return out


def default_storage(out: str | os.PathLike) -> Path:
    """Where a fit's checkpoints go unless --checkpoint-dir says otherwise: MODEL_DIR.checkpoints beside it."""
    p = Path(out).resolve()
    return p.with_name(p.name + ".checkpoints")


def checkpoints_in(run_dir: Path) -> list[Path]:
    """A run's checkpoint directories, oldest first (local: checkpoint_EEEEEE; Ray Train: checkpoint_TIMESTAMP)."""
    if not run_dir.is_dir():
        return []
    return sorted(p for p in run_dir.iterdir() if p.is_dir() and p.name.startswith("checkpoint_"))


def remove_damaged(run_dir: Path) -> list[Path]:
    """Remove the checkpoints of `run_dir` that `check_checkpoint` refuses. Why: Ray Train copies a checkpoint
    into storage itself, not atomically, and a fit that failed during the copy (a full disk) left 0-byte files;
    after a failed fit only checkpoints that `--resume` can use should remain."""
    removed = []
    for path in checkpoints_in(run_dir):
        try:
            check_checkpoint(path)
        except ModelError:
            shutil.rmtree(path, ignore_errors=True)
            removed.append(path)
    return removed


def check_checkpoint(path: Path) -> None:
    """Refuse, in one line, a checkpoint that cannot be resumed from: a file missing, empty or unreadable (a
    full disk during Ray Train's copy left 0-byte files). Reads the JSON files and every safetensors header, not
    the weights. Why before the fit: a damaged checkpoint must never make --resume start again from epoch 1."""
    from safetensors import safe_open

    from ganstream.trainers.persistence import read_meta

    def damaged(what: str) -> ModelError:
        return ModelError(f"--resume: checkpoint {path} is damaged ({what}); remove it to resume from the one "
                          f"before, or fit again without --resume")

    try:
        state = json.loads((path / STATE_FILE).read_text())
    except (OSError, ValueError) as e:
        raise damaged(f"{STATE_FILE}: {type(e).__name__}") from None
    if not isinstance(state, dict) or "epoch" not in state:
        raise damaged(f"{STATE_FILE} has no epoch")
    try:
        read_meta(path / MODEL_DIR)
    except ModelError as e:
        raise damaged(str(e).split(": ", 1)[-1][:200]) from None
    for f in sorted(path.rglob("*.safetensors")):
        try:
            with safe_open(str(f), framework="pt"):
                pass
        except Exception as e:  # safetensors raises its own types for empty or truncated headers
            raise damaged(f"{f.relative_to(path)}: {type(e).__name__}") from None


def prepare_storage(storage: Path, run_name: str, resume: bool) -> None:
    """A fresh fit clears its run's old checkpoints (it must not silently continue an old fit); --resume
    insists that there is something sound to resume from."""
    run_dir = storage / run_name
    if resume:
        found = checkpoints_in(run_dir)
        if not found:
            raise ConfigError(f"--resume: no checkpoints to resume from in {run_dir}")
        check_checkpoint(found[-1])
    elif run_dir.exists():
        shutil.rmtree(run_dir)
    storage.mkdir(parents=True, exist_ok=True)


@dataclass
class Resumed:
    """A checkpoint a fit continues from: its model directory and the training state beside it."""
    path: Path

    @property
    def model_dir(self) -> Path:
        return self.path / MODEL_DIR

    def state(self) -> dict:
        return json.loads((self.path / STATE_FILE).read_text())

    def networks(self) -> dict[str, dict[str, torch.Tensor]]:
        return read_networks(self.path)

    def restore(self, optimizers: dict[str, torch.optim.Optimizer], networks: dict[str, torch.nn.Module]) -> int:
        """Load the optimiser states and training-only networks; returns the epoch the checkpoint ended."""
        state, tensors = read_checkpoint(self.path)
        restore_optimizers(optimizers, tensors, state["param_groups"])
        saved = read_networks(self.path)
        for name, net in networks.items():
            if name in saved:
                net.load_state_dict(saved[name])
        return int(state["epoch"])


class LocalCheckpoints:
    """The in-process backend's checkpoints: STORAGE/RUN/checkpoint_EEEEEE/ in the format above, so a local
    checkpoint and a Ray Train one hold the same files. Each is written to a temp sibling and renamed into place
    (a crash never leaves a half-written checkpoint for --resume to trust); older ones are removed after.

    At most one checkpoint per `every_s` seconds of training (and always the last epoch): a tiny table trains
    an epoch in milliseconds, and writing the model after each would cost more than training it."""

    def __init__(self, storage: Path, run_name: str = "ganstream", resume: bool = False, every_s: float = 10.0):
        self.dir = Path(storage) / run_name
        self.resume, self.every_s = resume, every_s
        self._last = time.monotonic()
        prepare_storage(Path(storage), run_name, resume)

    def _existing(self) -> list[Path]:
        return checkpoints_in(self.dir)

    def latest(self) -> Resumed | None:
        """The checkpoint to resume from (with --resume), else None. A checkpoint without its state file is
        refused with one line, never silently skipped."""
        if not self.resume:
            return None
        found = self._existing()
        if not found:
            raise ConfigError(f"--resume: no checkpoints to resume from in {self.dir}")
        check_checkpoint(found[-1])
        return Resumed(found[-1])

    def save(self, epoch: int, model, optimizers: dict, networks: dict | None = None, state: dict | None = None,
             last: bool = False) -> Path | None:
        if not last and time.monotonic() - self._last < self.every_s:
            return None
        self.dir.mkdir(parents=True, exist_ok=True)
        final = self.dir / f"checkpoint_{epoch:06d}"
        tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}.", dir=self.dir))
        try:
            write_checkpoint(tmp, model, optimizers, {"epoch": epoch, "restarts": 0, "fit_id": "local", **(state or {})},
                             networks)
            if final.exists():
                shutil.rmtree(final)
            os.replace(tmp, final)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        for old in self._existing():
            if old != final:
                shutil.rmtree(old, ignore_errors=True)
        self._last = time.monotonic()
        return final

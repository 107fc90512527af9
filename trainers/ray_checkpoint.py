"""Training checkpoints without pickle: a checkpoint directory holds

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
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

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
                     networks: dict[str, torch.nn.Module] | None = None) -> Path:
    """`model` and `networks` (training-only networks by name) must be plain, not DDP-wrapped."""
    path.mkdir(parents=True, exist_ok=True)
    model.save(path / MODEL_DIR)
    tensors, groups = flatten_optimizers(optimizers)
    save_file(tensors, str(path / OPTIM_FILE))
    if networks:
        save_file({f"{name}.{k}": v.detach().contiguous().cpu() for name, net in networks.items()
                   for k, v in net.state_dict().items()}, str(path / NETWORKS_FILE))
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

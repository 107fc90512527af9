"""Model directories: `model.json` (kind, format version, config, encoder, training summary) plus one
`<name>.safetensors` file per network. No pickle anywhere: loading a model cannot execute code.
Directories are written to a temp sibling and renamed, so a crash never leaves a half-written model."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from ganstream.trainers.errors import ModelError

FORMAT_VERSION = 1
META_FILE = "model.json"
# fields every model kind reads with these types: a hand-edited or damaged model.json fails here, in one line
FIELD_TYPES = {"networks": list, "config": dict, "training": dict, "history": list}


def save_model_dir(path: str | os.PathLike, meta: dict, networks: dict[str, dict[str, torch.Tensor]]) -> Path:
    """Write meta (must contain 'kind') and state_dicts atomically to `path` (replacing an existing model)."""
    p = Path(path)
    if p.exists() and not (p / META_FILE).exists() and any(p.iterdir()):
        raise ModelError(f"{p}: exists and is not a ganstream model directory; refusing to overwrite it")
    p.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{p.name}.", dir=p.parent))
    try:
        for name, state in networks.items():
            save_file({k: v.detach().contiguous().cpu() for k, v in state.items()}, str(tmp / f"{name}.safetensors"))
        body = {"format_version": FORMAT_VERSION, **meta, "networks": sorted(networks)}
        (tmp / META_FILE).write_text(json.dumps(body, indent=1))
        if p.exists():
            old = p.with_name(f".{p.name}.old")
            shutil.rmtree(old, ignore_errors=True)
            os.replace(p, old)
            os.replace(tmp, p)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, p)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return p


def read_meta(path: str | os.PathLike, kind: str | None = None) -> dict:
    """model.json of a model directory; with `kind`, also insist the model is of that kind."""
    p = Path(path)
    if not p.is_dir():
        raise ModelError(f"{p}: not a model directory (no such directory)")
    meta_file = p / META_FILE
    if not meta_file.is_file():
        raise ModelError(f"{p}: not a ganstream model directory (no {META_FILE})")
    try:
        meta = json.loads(meta_file.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ModelError(f"{meta_file}: corrupt model metadata ({e})") from None
    if not isinstance(meta, dict) or "kind" not in meta:
        raise ModelError(f"{meta_file}: corrupt model metadata (no 'kind')")
    if meta.get("format_version") != FORMAT_VERSION:
        raise ModelError(f"{p}: model format version {meta.get('format_version')} is not supported (expected {FORMAT_VERSION})")
    if kind is not None and meta["kind"] != kind:
        raise ModelError(f"{p}: is a '{meta['kind']}' model, not a '{kind}' one")
    for key, expected in FIELD_TYPES.items():
        if key in meta and not isinstance(meta[key], expected):
            raise ModelError(f"{meta_file}: corrupt model metadata ('{key}' should be a {expected.__name__}, "
                             f"got {type(meta[key]).__name__})")
    if not all(isinstance(n, str) for n in meta.get("networks", [])):
        raise ModelError(f"{meta_file}: corrupt model metadata ('networks' should list network names)")
    return meta


def load_network(path: str | os.PathLike, name: str) -> dict[str, torch.Tensor]:
    f = Path(path) / f"{name}.safetensors"
    if not f.is_file():
        raise ModelError(f"{Path(path)}: model directory is incomplete (missing {f.name})")
    try:
        return load_file(str(f))
    except Exception as e:  # safetensors raises its own error types for truncated/corrupt files
        raise ModelError(f"{f}: cannot read weights ({e})") from None

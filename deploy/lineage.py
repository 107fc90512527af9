"""Lineage of a fit: which data (path, size, sha256 of the file or of a directory's listing) and which code
(package version, git commit) made it, and with which seed. Recorded as tags on the run and on the registered
version; `ganstream run` compares the data fingerprint to skip a fit on unchanged data."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
from pathlib import Path


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def data_fingerprint(path) -> dict:
    """Path, total bytes and sha256 of a file; for a directory, the sha256 of its sorted
    (relative path, size, sha256) listing, so renaming, adding or changing any file changes it. A table given
    in memory (a DataFrame) is fingerprinted by its columns and a hash of its rows."""
    if not isinstance(path, (str, os.PathLike)):
        import pandas as pd
        rows = pd.util.hash_pandas_object(path, index=False).to_numpy().tobytes()
        digest = hashlib.sha256(json.dumps(list(map(str, path.columns))).encode() + rows).hexdigest()
        return {"path": "<in-memory table>", "files": 0, "bytes": int(path.memory_usage(deep=True).sum()),
                "sha256": digest}
    p = Path(path).resolve()
    if p.is_file():
        return {"path": str(p), "files": 1, "bytes": p.stat().st_size, "sha256": _sha256(p)}
    files = sorted(f for f in p.rglob("*") if f.is_file() and not f.name.startswith("."))
    listing = [(str(f.relative_to(p)), f.stat().st_size, _sha256(f)) for f in files]
    digest = hashlib.sha256(json.dumps(listing).encode()).hexdigest()
    return {"path": str(p), "files": len(files), "bytes": sum(s for _, s, _ in listing), "sha256": digest}


def code_version() -> dict:
    """ganstream package version, and the git commit (+ whether the tree had local changes) if known."""
    try:
        from importlib.metadata import version
        out = {"version": version("ganstream")}
    except Exception:
        out = {"version": "unknown"}
    repo = Path(__file__).resolve().parents[1]  # the checkout holding deploy/ (editable installs)
    try:
        commit = subprocess.run(["git", "-C", str(repo), "rev-parse", "HEAD"], capture_output=True, text=True,
                                timeout=5).stdout.strip()
        if commit:
            dirty = subprocess.run(["git", "-C", str(repo), "status", "--porcelain", "--untracked-files=no"],
                                   capture_output=True, text=True, timeout=5).stdout.strip()
            out.update(git_commit=commit, git_dirty=str(bool(dirty)).lower())
    except (OSError, subprocess.SubprocessError):
        pass
    return out


def lineage_tags(data_path, seed: int) -> dict[str, str]:
    fp, code = data_fingerprint(data_path), code_version()
    tags = {f"data.{k}": str(v) for k, v in fp.items()}
    tags.update({f"code.{k}": str(v) for k, v in code.items()})
    tags["seed"] = str(seed)
    return tags

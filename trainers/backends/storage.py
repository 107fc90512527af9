"""Where a Ray fit's checkpoints live: a directory every node sees (local disk, NFS) or an S3 prefix.

`--checkpoint-dir s3://bucket/prefix` hands Ray Train an S3 filesystem as its `storage_filesystem`: Ray Train then
writes each checkpoint there from the worker that reports it, and restores a restarted worker group, or a
`--resume`, from there. Nodes then need no shared disk. The endpoint and credentials come from the standard AWS
environment (AWS_ENDPOINT_URL_S3 or AWS_ENDPOINT_URL for an S3-compatible server such as MinIO or moto,
AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_DEFAULT_REGION) of the process that starts the fit. The filesystem
object travels to the workers with the trainer, so the workers need no such environment.

The same rules hold as for a local directory (checkpoint.py): a fresh fit clears its run's old checkpoints,
`--resume` checks the newest one before the fit, a failed fit removes the checkpoints it damaged. The local
backend keeps local directories only: its checkpoints are written by this process, next to the model.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from ganstream.trainers.errors import ConfigError, ModelError

S3 = "s3://"


def is_remote(location: str | os.PathLike | None) -> bool:
    return str(location or "").startswith(S3)


def s3_filesystem():
    """A pyarrow S3 filesystem from the standard AWS environment (see the module docstring)."""
    from pyarrow import fs
    endpoint = os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL")
    options = {"region": os.environ.get("AWS_DEFAULT_REGION") or os.environ.get("AWS_REGION") or "us-east-1"}
    if endpoint:
        scheme, _, host = endpoint.partition("://")
        options.update(endpoint_override=host or scheme, scheme=scheme if host else "https")
    if os.environ.get("AWS_ACCESS_KEY_ID"):
        options.update(access_key=os.environ["AWS_ACCESS_KEY_ID"],
                       secret_key=os.environ.get("AWS_SECRET_ACCESS_KEY", ""))
    return fs.S3FileSystem(**options)


class S3Checkpoints:
    """A Ray fit's checkpoint storage under s3://bucket/prefix: run directories are prefixes below it."""

    def __init__(self, uri: str):
        self.uri = uri.rstrip("/")
        self.root = self.uri[len(S3):]
        if not self.root or self.root.startswith("/"):
            raise ConfigError(f"--checkpoint-dir {uri}: give s3://BUCKET/PREFIX")
        self.fs = s3_filesystem()

    def __str__(self) -> str:
        return self.uri

    def run(self, run_name: str) -> str:
        return f"{self.root}/{run_name}"

    def ray_storage(self) -> tuple[str, object]:
        """(storage_path, storage_filesystem) for Ray Train's RunConfig."""
        return self.root, self.fs

    def checkpoints(self, run_name: str) -> list[str]:
        from pyarrow import fs
        infos = self.fs.get_file_info(fs.FileSelector(self.run(run_name), allow_not_found=True))
        return sorted(i.path for i in infos if i.type == fs.FileType.Directory
                      and i.base_name.startswith("checkpoint_"))

    def check(self, path: str) -> None:
        """check_checkpoint on a downloaded copy (JSON files and safetensors headers, as for a local one)."""
        from pyarrow import fs
        from ganstream.trainers.backends.checkpoint import check_checkpoint
        with tempfile.TemporaryDirectory() as tmp:
            fs.copy_files(path, tmp, source_filesystem=self.fs, destination_filesystem=fs.LocalFileSystem())
            try:
                check_checkpoint(Path(tmp))
            except ModelError as e:
                raise ModelError(str(e).replace(tmp, f"{S3}{path}")) from None

    def prepare(self, run_name: str, resume: bool) -> None:
        try:
            if resume:
                found = self.checkpoints(run_name)
                if not found:
                    raise ConfigError(f"--resume: no checkpoints to resume from in {S3}{self.run(run_name)}")
                self.check(found[-1])
            else:
                self.fs.delete_dir_contents(self.run(run_name), missing_dir_ok=True)
        except OSError as e:
            raise ConfigError(f"--checkpoint-dir {self.uri}: {str(e).splitlines()[0][:200]}") from None

    def remove_damaged(self, run_name: str) -> None:
        for path in self.checkpoints(run_name):
            try:
                self.check(path)
            except ModelError:
                self.fs.delete_dir(path)

    def remove_runs(self, run_name: str) -> None:
        """After a successful fit: this fit's run prefixes (one per partition with --per-partition)."""
        from pyarrow import fs
        for info in self.fs.get_file_info(fs.FileSelector(self.root, allow_not_found=True)):
            if info.type == fs.FileType.Directory and (info.base_name == run_name
                                                       or info.base_name.startswith(f"{run_name}-")):
                self.fs.delete_dir(info.path)


class DirectoryCheckpoints:
    """A Ray fit's checkpoint storage in a directory every node sees (checkpoint.py's rules)."""

    def __init__(self, path: Path):
        self.path = path

    def __str__(self) -> str:
        return str(self.path)

    def run(self, run_name: str) -> str:
        return str(self.path / run_name)

    def ray_storage(self) -> tuple[str, None]:
        return str(self.path), None

    def prepare(self, run_name: str, resume: bool) -> None:
        from ganstream.trainers.backends.checkpoint import prepare_storage
        prepare_storage(self.path, run_name, resume)

    def remove_damaged(self, run_name: str) -> None:
        from ganstream.trainers.backends.checkpoint import remove_damaged
        remove_damaged(self.path / run_name)


def ray_checkpoints(checkpoint_dir: str | None, out) -> "S3Checkpoints | DirectoryCheckpoints":
    """The storage of a Ray fit: --checkpoint-dir (a directory or s3://...), else MODEL_DIR.checkpoints."""
    from ganstream.trainers.backends.checkpoint import default_storage
    if is_remote(checkpoint_dir):
        return S3Checkpoints(str(checkpoint_dir))
    return DirectoryCheckpoints(Path(checkpoint_dir).resolve() if checkpoint_dir else default_storage(out or "model"))


RayCheckpoints = S3Checkpoints | DirectoryCheckpoints

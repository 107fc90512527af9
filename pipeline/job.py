"""A scheduled augmentation job: one YAML file that declares data, model, gate, registry entry, tracking
and the streams to produce, so a scheduler (cron, a Kubernetes CronJob) runs one command and reads one
exit status. `ganstream run JOB.yaml` (pipeline/cmd_run.py) executes it; this module only reads and checks
the file and turns it into the argument namespaces of the existing `train` / `stream` commands, so a job
runs exactly the code a person runs by hand.

    name: adult-nightly               # default: the file name without .yaml
    state_dir: ../runs/jobs/adult     # lock, last-run record, working model dir (default .ganstream/NAME)
    data: {path: ../data/adult.csv, missing_tokens: ["?"]}
    model: {kind: tabular, loss: wgan-gp, pac: 10, target: income}
    fit: {epochs: 10, batch_size: 500, seed: 0}
    gate: {detection_auc: "<= 0.99", dcr_ratio: "off"}
    registry: {name: adult, alias: champion}
    tracking: {uri: null, experiment: ganstream}
    streams:
      - {sink: ../runs/jobs/adult/stream, rows: 10000, seed: 1}

Relative paths are relative to the job file's directory (a job behaves the same from any working dir).
Every problem is reported as one line naming the file and key, e.g.
`job.yaml: fit.epochs: expected an integer, got 'ten'`, and is a ConfigError (exit 2).
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import difflib
import fcntl
import hashlib
import io
import json
import os
import re
import socket
import sys
import time
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path

from trainers.errors import ConfigError, GanstreamError

CONFIG_EXIT_CODE = 2   # bad job file / bad input (every ConfigError, DataError, ModelError)
GATE_EXIT_CODE = 3     # the fit did not pass the quality gate (deploy.gate.GateFailed)
INFRA_EXIT_CODE = 4    # tracking server unreachable, Ray failure, I/O failure: retrying later may work
BUSY_EXIT_CODE = 5     # another run of the same job holds its lock

FIT_TAG = "ganstream.job.fit_sha256"  # model-version tag: the fit settings the version was made with


class InfrastructureError(GanstreamError):
    """Something outside the job file failed (tracking server, Ray cluster, disk). Exit status 4."""

    exit_code = INFRA_EXIT_CODE


class JobBusy(GanstreamError):
    """A second run of a job while the first still holds its lock. Exit status 5."""

    exit_code = BUSY_EXIT_CODE


# ------------------------------------------------------------------------------------------ the spec
@dataclass
class DataSpec:
    path: str
    missing_tokens: list[str] = field(default_factory=list)


@dataclass
class ModelSpec:
    """Model kind and its hyper-parameters; each maps to the `train` option of the same name."""
    kind: str = "tabular"
    loss: str | None = None
    pac: int | None = None
    target: str | None = None
    imputer_epochs: int | None = None
    seq_len: int | None = None
    id_col: str | None = None
    time_col: str | None = None


@dataclass
class FitSpec:
    """How the fit runs; each maps to the `train` option of the same name."""
    epochs: int | None = None
    batch_size: int | None = None
    seed: int = 0
    workers: int | None = None
    ray_address: str | None = None
    checkpoint_dir: str | None = None  # relative to the job file like every path


@dataclass
class RegistrySpec:
    name: str
    alias: str = "champion"


@dataclass
class TrackingSpec:
    uri: str | None = None
    experiment: str | None = None


@dataclass
class StreamSpec:
    """One `ganstream stream` of the registered model; each key maps to the stream option of the same name.
    `options` are extra command-line words passed through (e.g. Beam runner options)."""
    sink: str
    rows: int | None = None
    seed: int | None = None
    format: str | None = None
    rate: float | None = None
    duration: float | None = None
    mix: str | None = None
    synthetic_fraction: float | None = None
    balance: str | None = None
    impute: str | None = None
    missing: str | None = None
    missing_tokens: list[str] | None = None  # default: data.missing_tokens when mix/impute read real data
    shard_rows: int | None = None
    window_s: float | None = None
    swap_check_s: float | None = None
    runner: str | None = None
    direct_num_workers: int | None = None
    beam_args: str | None = None
    options: list[str] = field(default_factory=list)


@dataclass
class JobSpec:
    data: DataSpec
    registry: RegistrySpec
    name: str = ""
    state_dir: str | None = None
    model: ModelSpec = field(default_factory=ModelSpec)
    fit: FitSpec = field(default_factory=FitSpec)
    gate: dict[str, str] = field(default_factory=dict)
    tracking: TrackingSpec = field(default_factory=TrackingSpec)
    streams: list[StreamSpec] = field(default_factory=list)
    source: str = ""  # the job file, for messages

    def fit_fingerprint(self) -> str:
        """sha256 of every setting that changes the fitted model (not the data: that has its own)."""
        blob = json.dumps({"model": dataclasses.asdict(self.model), "fit": dataclasses.asdict(self.fit),
                           "missing_tokens": self.data.missing_tokens, "gate": self.gate}, sort_keys=True)
        return hashlib.sha256(blob.encode()).hexdigest()

    @property
    def model_uri(self) -> str:
        return f"models:/{self.registry.name}@{self.registry.alias}"


# A bounded stream's sink belongs to one model version (the stream refuses to mix versions), so a sink
# may name the version the job streams from: `sink: out/adult-v{version}`.
SINK_PLACEHOLDERS = ("version", "name")


def sink_for(sink: str, name: str, version: str) -> str:
    return sink.replace("{version}", str(version)).replace("{name}", name)


# ------------------------------------------------------------------------------------- validation
def _where(src: str, key: str) -> str:
    return f"{src}: {key}" if key else src


def _type_name(tp) -> str:
    return {int: "an integer", float: "a number", str: "a string", bool: "true or false"}.get(tp, str(tp))


def _unknown_key(src: str, where: str, key, known: list[str]) -> ConfigError:
    guess = difflib.get_close_matches(str(key), known, n=1)
    hint = f" (did you mean '{guess[0]}'?)" if guess else f" (known: {', '.join(known)})"
    return ConfigError(f"{_where(src, where + str(key))}: unknown key{hint}")


def _coerce(value, tp, src: str, key: str):
    """`value` as type annotation `tp` (int, float, str, X | None, list[str], dict[str, str], a dataclass)."""
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        options = [a for a in typing.get_args(tp) if a is not type(None)]
        if value is None:
            return None
        return _coerce(value, options[0], src, key)
    if dataclasses.is_dataclass(tp):
        return _build(tp, value, src, key)
    if origin is list:
        (item,) = typing.get_args(tp)
        if isinstance(value, (str, int, float)) and item is str:
            value = [value]  # a single token is a one-item list
        if not isinstance(value, list):
            raise ConfigError(f"{_where(src, key)}: expected a list, got {value!r}")
        return [_coerce(v, item, src, f"{key}[{i}]") for i, v in enumerate(value)]
    if origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{_where(src, key)}: expected a mapping, got {value!r}")
        return {str(k): v for k, v in value.items()}  # checked by its own validator
    if value is None:
        raise ConfigError(f"{_where(src, key)}: expected {_type_name(tp)}, got nothing")
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{_where(src, key)}: expected an integer, got {value!r}")
        return value
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{_where(src, key)}: expected a number, got {value!r}")
        return float(value)
    if tp is str:
        if isinstance(value, (dict, list, bool)) or value == "":
            raise ConfigError(f"{_where(src, key)}: expected a non-empty string, got {value!r}")
        return str(value)
    raise TypeError(f"unsupported field type {tp}")  # a bug in this module, not in the job file


def _build(cls, raw, src: str, key: str = ""):
    """An instance of dataclass `cls` from mapping `raw`: unknown keys rejected (with a did-you-mean),
    required keys demanded, every value type-checked; `key` is the dotted path for messages."""
    if not isinstance(raw, dict):
        raise ConfigError(f"{_where(src, key or 'the file')}: expected a mapping of keys, got {raw!r}")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls) if f.name != "source"}
    prefix = f"{key}." if key else ""
    for k in raw:
        if k not in fields:
            raise _unknown_key(src, prefix, k, list(fields))
    values = {}
    for name, f in fields.items():
        if name in raw:
            values[name] = _coerce(raw[name], hints[name], src, prefix + name)
        elif f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
            raise ConfigError(f"{_where(src, prefix + name)}: required key is missing")
    return cls(**values)


def _check_gate(job: JobSpec) -> list[str]:
    """`gate:` entries as `--gate` specs. A bare number takes the default direction of its figure."""
    from deploy import gate as gate_mod
    import re
    specs = []
    for key, value in job.gate.items():
        where = _where(job.source, f"gate.{key}")
        if key not in gate_mod.KEYS:
            raise _unknown_key(job.source, "gate.", key, list(gate_mod.KEYS))
        if value is False:  # YAML reads a bare `off` as false
            specs.append(f"{key}=off")
            continue
        if isinstance(value, bool) or value is None:
            raise ConfigError(f"{where}: expected '<= NUMBER', '>= NUMBER', a number or off, got {value!r}")
        if isinstance(value, (int, float)):
            if key not in gate_mod.DEFAULTS:
                raise ConfigError(f"{where}: give a direction, e.g. '<= {value}' (this figure has no default)")
            specs.append(f"{key}{gate_mod.DEFAULTS[key][0]}{float(value)!r}")
            continue
        text = str(value).replace(" ", "").lower()
        if text in ("off", "none"):
            specs.append(f"{key}=off")
        elif re.fullmatch(r"(<=|>=)[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?", text):
            specs.append(f"{key}{text}")
        else:
            raise ConfigError(f"{where}: expected '<= NUMBER', '>= NUMBER', a number or off, got {value!r}")
    if job.gate.get("utility_ratio") not in (None, "off") and not job.model.target:
        raise ConfigError(f"{_where(job.source, 'gate.utility_ratio')}: needs model.target (utility is "
                          f"measured on that column)")
    return specs


def load_job(path: str | os.PathLike) -> JobSpec:
    """Read and check a job file. Raises ConfigError naming the file and key on any problem."""
    import yaml
    p = Path(path)
    src = p.name
    if not p.is_file():
        raise ConfigError(f"{p}: no such job file")
    try:
        raw = yaml.safe_load(p.read_text())
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        at = f" (line {mark.line + 1}, column {mark.column + 1})" if mark else ""
        raise ConfigError(f"{src}: not valid YAML{at}: {getattr(e, 'problem', None) or e}") from None
    except (OSError, UnicodeDecodeError) as e:
        raise ConfigError(f"{p}: cannot read the job file ({e})") from None
    if raw is None:
        raise ConfigError(f"{src}: the job file is empty")
    if isinstance(raw, dict) and isinstance(raw.get("streams"), dict):
        raw["streams"] = [raw["streams"]]  # one stream may be written without the list
    job = _build(JobSpec, raw, src)
    job.source = src
    base = p.resolve().parent
    job.name = job.name or p.stem
    if not all(c.isalnum() or c in "-_." for c in job.name):
        raise ConfigError(f"{src}: name: use letters, digits, '-', '_' or '.', got {job.name!r}")

    def absolute(text: str) -> str:
        return str((base / os.path.expanduser(text)).resolve())
    job.data.path = absolute(job.data.path)
    if not Path(job.data.path).exists():
        raise ConfigError(f"{src}: data.path: no such file or directory: {job.data.path}")
    job.state_dir = absolute(job.state_dir) if job.state_dir else str(base / ".ganstream" / job.name)
    if job.fit.checkpoint_dir:
        job.fit.checkpoint_dir = absolute(job.fit.checkpoint_dir)
    for i, s in enumerate(job.streams):
        unknown = set(re.findall(r"{([^}]*)}", s.sink)) - set(SINK_PLACEHOLDERS)
        if unknown:
            raise ConfigError(f"{src}: streams[{i}].sink: unknown placeholder {{{sorted(unknown)[0]}}} "
                              f"(known: {', '.join('{' + p + '}' for p in SINK_PLACEHOLDERS)})")
        s.sink = absolute(s.sink)
        for name in ("mix", "impute"):
            value = getattr(s, name)
            if value is not None:
                setattr(s, name, absolute(value))
                if not Path(getattr(s, name)).exists():
                    raise ConfigError(f"{src}: streams[{i}].{name}: no such file or directory: {getattr(s, name)}")
    _check_gate(job)
    return job


# ---------------------------------------------------------------------- job -> command namespaces
def _subparser(parser: argparse.ArgumentParser, command: str):
    for action in parser._actions:  # argparse keeps sub-commands in a private action; stable for years
        if isinstance(action, argparse._SubParsersAction):
            return action.choices.get(command)
    return None


def _options(sub: argparse.ArgumentParser) -> dict[str, argparse.Action]:
    return {opt: a for a in sub._actions for opt in a.option_strings}


_OPTION_NAMES = {"missing_tokens": "--missing-token"}  # job keys whose option is spelled differently


def _argv_for(sub, sub_name: str, items: list[tuple[str, object]], src: str) -> list[str]:
    """Command-line words for `items` [(dotted job key, value)], checked against the real sub-command
    parser: an option it lacks, a value outside its choices, or one its type rejects names the job key."""
    options = _options(sub)
    argv: list[str] = []
    for key, value in items:
        if value is None:
            continue
        name = key.rsplit(".", 1)[-1]
        opt = _OPTION_NAMES.get(name) or "--" + name.replace("_", "-")
        if opt not in options and "--" + name in options:  # e.g. Beam's --direct_num_workers
            opt = "--" + name
        action = options.get(opt)
        if action is None:
            raise ConfigError(f"{_where(src, key)}: `ganstream {sub_name}` has no {opt} option in this version")
        values = value if isinstance(value, list) else [value]
        for v in values:
            text = str(v)
            if action.choices is not None and text not in action.choices:
                raise ConfigError(f"{_where(src, key)}: expected one of {', '.join(map(str, action.choices))}, "
                                  f"got {v!r}")
            if callable(action.type):
                try:
                    action.type(text)
                except (argparse.ArgumentTypeError, ValueError, TypeError) as e:
                    raise ConfigError(f"{_where(src, key)}: {e}") from None
            argv += [opt, text]
    return argv


def _parse(parser: argparse.ArgumentParser, argv: list[str], src: str, what: str):
    err = io.StringIO()
    try:
        with contextlib.redirect_stderr(err):
            return parser.parse_args(argv)
    except SystemExit:
        lines = [ln for ln in err.getvalue().splitlines() if ln.strip()]
        raise ConfigError(f"{src}: {what}: {lines[-1] if lines else 'rejected by the command line parser'}") from None


def model_dir(job: JobSpec) -> Path:
    return Path(job.state_dir) / "model"


def train_namespace(job: JobSpec, quiet: bool = False) -> argparse.Namespace:
    """The namespace `ganstream train` would build for this job (register + promote + gate + tracking)."""
    from pipeline.cli import build_parser
    parser = build_parser()
    train = _subparser(parser, "train")
    items = [("model.kind", job.model.kind)]
    items += [(f"model.{f.name}", getattr(job.model, f.name)) for f in dataclasses.fields(job.model) if f.name != "kind"]
    items += [(f"fit.{f.name}", getattr(job.fit, f.name)) for f in dataclasses.fields(job.fit)]
    items += [("data.missing_tokens", job.data.missing_tokens or None)]
    argv = _argv_for(train, "train", items, job.source)
    argv += ["--register", job.registry.name, "--promote", job.registry.alias]
    for spec in _check_gate(job):
        argv += ["--gate", spec]
    if job.tracking.uri:
        argv += ["--tracking-uri", job.tracking.uri]
    if job.tracking.experiment:
        argv += ["--experiment", job.tracking.experiment]
    head = ["--quiet"] if quiet else []
    return _parse(parser, [*head, "train", job.data.path, "--out", str(model_dir(job)), *argv], job.source, "train")


def stream_namespaces(job: JobSpec, quiet: bool = False) -> list[argparse.Namespace]:
    """One `ganstream stream` namespace per declared stream, reading the registry alias of this job."""
    if not job.streams:
        return []
    from pipeline.cli import build_parser
    parser = build_parser()
    stream = _subparser(parser, "stream")
    if stream is None:
        raise ConfigError(f"{job.source}: streams: streams are not built yet in this version of ganstream "
                          f"(`ganstream stream`, issue 6); remove the streams: section to run the fit alone")
    out = []
    for i, s in enumerate(job.streams):
        if s.missing_tokens is None and (s.mix or s.impute):
            s.missing_tokens = list(job.data.missing_tokens)
        items = [(f"streams[{i}].{f.name}", getattr(s, f.name)) for f in dataclasses.fields(s)
                 if f.name not in ("sink", "options")]
        argv = ["--sink", sink_for(s.sink, job.registry.name, "0"), *_argv_for(stream, "stream", items, job.source)]
        if job.tracking.uri and "--tracking-uri" in _options(stream):
            argv += ["--tracking-uri", job.tracking.uri]
        head = ["--quiet"] if quiet else []
        ns = _parse(parser, [*head, "stream", job.model_uri, *argv, *s.options], job.source, f"streams[{i}]")
        check = getattr(sys.modules.get(getattr(ns.func, "__module__", ""), None), "_check_combination", None)
        if check is not None:  # the stream's own option-combination rules, before any fit
            try:
                check(ns)
            except ConfigError as e:
                raise ConfigError(f"{_where(job.source, f'streams[{i}]')}: {e}") from None
        out.append(ns)
    return out


# --------------------------------------------------------------------------------------- the lock
@contextlib.contextmanager
def job_lock(job: JobSpec):
    """Hold `STATE_DIR/run.lock` (flock, released by the kernel even if the process dies) for the block;
    raise JobBusy at once if another process holds it."""
    state = Path(job.state_dir)
    try:
        state.mkdir(parents=True, exist_ok=True)
        fd = os.open(state / "run.lock", os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as e:
        raise InfrastructureError(f"cannot create the job's lock in {state}: {e}") from None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = os.pread(fd, 200, 0).decode(errors="replace").strip() or "another process"
        os.close(fd)
        raise JobBusy(f"job '{job.name}' is already running ({holder}, lock {state / 'run.lock'}); "
                      f"not starting a second run") from None
    try:
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"pid {os.getpid()} on {socket.gethostname()} since "
                      f"{time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime())}".encode(), 0)
        yield
    finally:
        os.ftruncate(fd, 0)
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)


def write_state(job: JobSpec, record: dict) -> None:
    """STATE_DIR/last_run.json, atomically: what the last run did (for people and monitoring)."""
    state = Path(job.state_dir)
    tmp = state / ".last_run.json.tmp"
    tmp.write_text(json.dumps(record, indent=1, default=str))
    os.replace(tmp, state / "last_run.json")

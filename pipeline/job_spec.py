"""A scheduled augmentation job: one YAML file that declares data, model, gate, registry entry, tracking
and the streams to produce, so a scheduler (cron, a Kubernetes CronJob) runs one command and reads one
exit status. `ganstream run JOB.yaml` (pipeline/cmd_run.py) executes it; this module reads and checks the
file and turns it into the typed requests of the library core (pipeline/train.py's TrainRequest,
pipeline/stream_run.py's StreamRequest): a job runs exactly the code `ganstream train` and `ganstream stream`
run, checked by the same validators, and names the job key in every error.

    name: adult-nightly               # default: the file name without .yaml
    state_dir: ../runs/jobs/adult     # lock, last-run record, working model dir (default .ganstream/NAME)
    data: {path: ../data/adult.csv, missing_tokens: ["?"]}   # holdout: FILE for the lift_auc gate
    model: {kind: tabular, loss: wgan-gp, pac: 10, target: income}
    fit: {epochs: 10, batch_size: 500, seed: 0, backend: auto}
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

import dataclasses
import difflib
import hashlib
import json
import os
import re
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path

from ganstream.trainers.backends.storage import is_remote
from ganstream.trainers.errors import ConfigError

FIT_TAG = "ganstream.job.fit_sha256"  # model-version tag: the fit settings the version was made with
# fit keys added after job files were in use (2026-12-07): left out of the fingerprint while unset, so that a
# job's registered champion still matches its settings after an upgrade instead of being refitted once
_ADDED_FIT_KEYS = ("materialize_mb", "worker_cache_mb")
_ADDED_MODEL_KEYS = ("categorical",)  # model keys added later (2026-12-07), the same way


# ------------------------------------------------------------------------------------------ the spec
@dataclass
class DataSpec:
    path: str
    missing_tokens: list[str] = field(default_factory=list)
    holdout: str | None = None  # real rows the fit never sees: the lift gate (lift_auc) scores on them


@dataclass
class ModelSpec:
    """Model kind and its hyper-parameters; each maps to the `train` option of the same name."""
    kind: str = "tabular"
    loss: str | None = None
    pac: int | None = None
    target: str | None = None
    imputer_epochs: int | None = None
    categorical: list[str] | None = None  # columns learned as categories whatever they look like
    seq_len: int | None = None
    id_col: str | None = None
    time_col: str | None = None


@dataclass
class FitSpec:
    """How the fit runs; each maps to the `train` option of the same name."""
    epochs: int | None = None
    batch_size: int | None = None
    seed: int = 0
    backend: str | None = None  # auto (default), local or ray
    workers: int | None = None
    ray_address: str | None = None
    checkpoint_dir: str | None = None  # relative to the job file like every path
    materialize_mb: float | None = None  # Ray, tabular: DATA up to this size is read once (train --materialize-mb)
    worker_cache_mb: float | None = None  # Ray, tabular: per-worker shard cache (train --worker-cache-mb)


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
    """One `ganstream stream` of the registered model; each key maps to the stream option of the same name
    (Beam runner options go in `beam_args`)."""
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
        fit = {k: v for k, v in dataclasses.asdict(self.fit).items() if not (k in _ADDED_FIT_KEYS and v is None)}
        model = {k: v for k, v in dataclasses.asdict(self.model).items() if not (k in _ADDED_MODEL_KEYS and v is None)}
        blob = json.dumps({"model": model, "fit": fit,
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
    """`gate:` entries as gate specs of the one grammar (deploy/gate.py), each checked, naming its key."""
    from ganstream.deploy import gate as gate_mod
    specs = []
    for key, value in job.gate.items():
        if key not in gate_mod.KEYS:
            raise _unknown_key(job.source, "gate.", key, list(gate_mod.KEYS))
        try:
            spec = gate_mod.spec_from_value(key, value)
            gate_mod.parse_gate(spec)
        except ConfigError as e:
            raise ConfigError(f"{_where(job.source, f'gate.{key}')}: {e}") from None
        specs.append(spec)
    if job.gate.get("utility_ratio") not in (None, "off", False) and not job.model.target:
        raise ConfigError(f"{_where(job.source, 'gate.utility_ratio')}: needs model.target (utility is "
                          f"measured on that column)")
    if job.gate.get("lift_auc") not in (None, "off", False) and not (job.model.target and job.data.holdout):
        raise ConfigError(f"{_where(job.source, 'gate.lift_auc')}: needs model.target and data.holdout (the "
                          f"downstream models are scored on real rows the fit never saw)")
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
    if job.data.holdout is not None:
        job.data.holdout = absolute(job.data.holdout)
        if not Path(job.data.holdout).exists():
            raise ConfigError(f"{src}: data.holdout: no such file or directory: {job.data.holdout}")
    job.state_dir = absolute(job.state_dir) if job.state_dir else str(base / ".ganstream" / job.name)
    if job.fit.checkpoint_dir and not is_remote(job.fit.checkpoint_dir):  # s3:// is Ray Train's storage
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


# ---------------------------------------------------------------------------- job -> typed requests
def model_dir(job: JobSpec) -> Path:
    return Path(job.state_dir) / "model"


def _config(job: JobSpec):
    """The model's typed config. Each key is checked on its own first, so an error names its job key."""
    from ganstream.trainers.tabular.config import TabularGANConfig
    from ganstream.trainers.timeseries.config import TimeSeriesGANConfig
    kind = job.model.kind
    if kind not in ("tabular", "timeseries"):
        raise ConfigError(f"{_where(job.source, 'model.kind')}: expected tabular or timeseries, got {kind!r}")
    cls = TimeSeriesGANConfig if kind == "timeseries" else TabularGANConfig
    known = {f.name for f in dataclasses.fields(cls)}
    given: dict[str, tuple[str, object]] = {}
    for section, spec in (("model", job.model), ("fit", job.fit)):
        for f in dataclasses.fields(spec):
            value = getattr(spec, f.name)
            if f.name == "kind" or value is None or f.name in _FIT_OPTIONS:
                continue
            key = f"{section}.{f.name}"
            if f.name not in known:
                raise ConfigError(f"{_where(job.source, key)}: does not apply to a {kind} model")
            given[f.name] = (key, value)
    if kind == "timeseries" and "seq_len" not in given:
        raise ConfigError(f"{_where(job.source, 'model.seq_len')}: a timeseries model needs seq_len")
    base = {"seq_len": given["seq_len"][1]} if kind == "timeseries" else {}
    for name, (key, value) in given.items():
        try:
            cls.from_options(**{**base, name: value})
        except ConfigError as e:
            raise ConfigError(f"{_where(job.source, key)}: {e}") from None
    return cls.from_options(**{name: value for name, (_, value) in given.items()})


# where and how a fit runs, not what it learns
_FIT_OPTIONS = ("backend", "workers", "ray_address", "checkpoint_dir", "materialize_mb", "worker_cache_mb")


def train_request(job: JobSpec):
    """The TrainRequest `ganstream train` would build for this job (register + promote + gate + tracking)."""
    from ganstream.pipeline.train import Tracking, TrainRequest
    from ganstream.trainers.backends.options import FitOptions
    fit = FitOptions(**{k: getattr(job.fit, k) for k in _FIT_OPTIONS if getattr(job.fit, k) is not None})
    try:
        fit.validate(job.model.kind)
    except ConfigError as e:
        raise ConfigError(f"{_where(job.source, 'fit')}: {e}") from None
    tracking = Tracking(uri=job.tracking.uri, experiment=job.tracking.experiment, register=job.registry.name,
                        promote=job.registry.alias, gate=tuple(_check_gate(job)), holdout=job.data.holdout)
    return TrainRequest(job.data.path, _config(job), model_dir(job), fit, tuple(job.data.missing_tokens), tracking)


def stream_requests(job: JobSpec) -> list:
    """One StreamRequest per declared stream, reading the registry alias of this job; each checked by the
    stream's own rules (pipeline/stream_run.py check_request) before any fit."""
    from ganstream.pipeline.stream_run import StreamRequest, check_request
    out = []
    for i, s in enumerate(job.streams):
        tokens = s.missing_tokens
        if tokens is None:
            tokens = list(job.data.missing_tokens) if (s.mix or s.impute) else []
        values = {f.name: getattr(s, f.name) for f in dataclasses.fields(s)
                  if f.name not in ("sink", "missing_tokens") and getattr(s, f.name) is not None}
        request = StreamRequest(model=job.model_uri, sink=sink_for(s.sink, job.registry.name, "0"),
                                tracking_uri=job.tracking.uri, missing_tokens=tuple(tokens), **values)
        for name, value in values.items():
            problem = _stream_value_problem(name, value)
            if problem:
                raise ConfigError(f"{_where(job.source, f'streams[{i}].{name}')}: {problem}")
        try:
            check_request(request)
        except ConfigError as e:
            raise ConfigError(f"{_where(job.source, f'streams[{i}]')}: {e}") from None
        out.append(request)
    return out


_STREAM_CHOICES = {"missing": ("keep", "fill"), "format": ("rows", "episodes"),
                   "direct_running_mode": ("in_memory", "multi_threading", "multi_processing")}
_STREAM_POSITIVE = ("rows", "shard_rows", "rate", "duration", "window_s", "swap_check_s", "direct_num_workers")


def _stream_value_problem(name: str, value) -> str | None:
    """What `ganstream stream`'s parser would reject in one value (the job file's types are checked already)."""
    if name in _STREAM_CHOICES and value not in _STREAM_CHOICES[name]:
        return f"expected one of {', '.join(_STREAM_CHOICES[name])}, got {value!r}"
    if name in _STREAM_POSITIVE and not value > 0:
        return f"--{name.replace('_', '-')} must be > 0 (got {value})"
    return None

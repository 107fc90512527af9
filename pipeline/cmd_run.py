"""`ganstream run JOB.yaml [--dry-run]`: a scheduled augmentation job (spec: pipeline/job_spec.py).

Order: check the whole file (and build the typed train and stream requests) before any work; take the job's
lock; look up the registry alias; fit + gate + register with the library core `train` runs
(pipeline/train.py) unless the champion was already fit on data with the same fingerprint (and the same fit
settings); then produce the declared streams from the alias (pipeline/stream_run.py). What happened is printed on stdout (one line per
decision) and recorded in STATE_DIR/last_run.json.

Exit status, for schedulers: 0 done; 2 bad job file or input; 3 quality gate refused the new fit (alias
unchanged, no stream produced); 4 infrastructure failure (tracking server, Ray, disk: retry later);
5 another run of this job is still going (lock held).
"""

from __future__ import annotations

import contextlib
import time
from pathlib import Path

from ganstream.trainers.errors import GanstreamError, InfrastructureError, disk_full


def add_parser(sub) -> None:
    r = sub.add_parser("run", help="run a job file: fit (skipped when the data is unchanged), gate, register, stream",
                       description="Run a scheduled job declared in JOB.yaml (data, model, gate, registry, tracking, "
                       "streams; see examples/job.yaml). The fit is skipped when the registry alias already points to "
                       "a version fit on data with the same fingerprint and the same settings. A second concurrent "
                       "run of the same job refuses. Exit status: 0 done, 2 bad job file, 3 gate refused, "
                       "4 infrastructure failure, 5 already running.")
    r.add_argument("job", metavar="JOB.yaml", help="job file")
    r.add_argument("--dry-run", action="store_true", help="print the plan (what would be fit, registered, streamed) "
                   "and exit without taking the lock or writing anything")
    r.set_defaults(func=run)


@contextlib.contextmanager
def infrastructure_errors():
    """Failures outside the job file become InfrastructureError (exit 4): the file system, Ray's own
    exceptions. ganstream's errors keep their exit codes (the tracking server's and Ray's are already 4)."""
    try:
        yield
    except GanstreamError:
        raise
    except Exception as e:
        full = disk_full(e)  # from pandas, pyarrow, Beam or Ray, in their own wrappers
        if full is not None:
            raise full from None
        if isinstance(e, OSError):
            raise InfrastructureError(f"{type(e).__name__}: {e}") from None
        if type(e).__module__.split(".")[0] == "ray":
            first = (str(e).strip().splitlines() or [""])[0][:300]
            raise InfrastructureError(f"Ray failed: {type(e).__name__}: {first}") from None
        raise


def _champion(job, uri: str, create_store: bool):
    """(version, tags) of the job's alias, or None. Without create_store an embedded sqlite store that does
    not exist yet is not created (a dry run writes nothing)."""
    from ganstream.deploy.mlflow_env import no_store_yet, using
    if not create_store and no_store_yet(uri):
        return None
    from ganstream.deploy.registry import alias_version
    with using(uri):
        return alias_version(uri, job.registry.name, job.registry.alias)


def decide(job, champion, fingerprint: dict) -> tuple[bool, str]:
    """(skip the fit?, why)."""
    from ganstream.pipeline.job_spec import FIT_TAG
    ref = f"{job.registry.name}@{job.registry.alias}"
    if champion is None:
        return False, f"no {ref} yet"
    version, tags = champion
    if tags.get("data.sha256") != fingerprint["sha256"]:
        return False, (f"data changed since {ref} (version {version} was fit on sha256 "
                       f"{tags.get('data.sha256', '?')[:12]}, the data now has {fingerprint['sha256'][:12]})")
    if FIT_TAG in tags and tags[FIT_TAG] != job.fit_fingerprint():
        return False, f"data unchanged but the model/fit/gate settings changed since {ref} (version {version})"
    return True, (f"data unchanged since {ref} (version {version}, sha256 {fingerprint['sha256'][:12]}): "
                  f"skipping the fit")


def _plan(job, uri: str, fingerprint: dict, skip: bool, why: str, streams) -> str:
    lines = [f"job {job.name} ({job.source})",
             f"  state dir: {job.state_dir} (lock: run.lock, record: last_run.json)",
             f"  data: {job.data.path} ({fingerprint['files']} file(s), {fingerprint['bytes']:,} bytes, "
             f"sha256 {fingerprint['sha256'][:12]})",
             f"  tracking: {uri}",
             f"  1. fit: {'SKIP - ' + why if skip else 'FIT - ' + why}"]
    if not skip:
        lines.append(f"     train {job.model.kind} model, epochs={job.fit.epochs or 'default'}, seed={job.fit.seed} "
                     f"-> {Path(job.state_dir) / 'model'}")
        lines.append(f"     gate: {', '.join(f'{k} {v}' for k, v in job.gate.items()) or 'defaults (deploy/gate.py)'}")
        lines.append(f"     register {job.registry.name}, move alias '{job.registry.alias}' if the gate passes")
    if not streams:
        lines.append("  2. streams: none declared")
    for i, (spec, ns) in enumerate(zip(job.streams, streams)):
        what = ", ".join(f"{k}={v}" for k, v in vars(spec).items() if v not in (None, [], "") and k != "sink")
        lines.append(f"  {i + 2}. stream {job.model_uri} -> {spec.sink} ({what})")
    return "\n".join(lines)


def run(args) -> int:
    from ganstream.deploy.lineage import data_fingerprint
    from ganstream.deploy.mlflow_env import resolve_uri
    from ganstream.pipeline.cli_common import console as console_of
    from ganstream.pipeline.job_spec import FIT_TAG, load_job, sink_for, stream_requests, train_request
    from ganstream.pipeline.job_state import job_lock, write_state
    from ganstream.pipeline.stream_run import run_stream
    from ganstream.pipeline.train import run_train

    console = console_of(args)
    job = load_job(args.job)
    train = train_request(job)  # every key checked before any work
    streams = stream_requests(job)
    with infrastructure_errors():
        uri = resolve_uri(job.tracking.uri)
        fingerprint = data_fingerprint(job.data.path)
        if args.dry_run:
            skip, why = decide(job, _champion(job, uri, create_store=False), fingerprint)
            print(_plan(job, uri, fingerprint, skip, why, streams))
            print("dry run: nothing was fit, registered, streamed or locked")
            return 0
    with job_lock(job):
        record = {"job": job.name, "file": str(Path(args.job).resolve()), "started": time.time(),
                  "data_sha256": fingerprint["sha256"], "fit": None, "streams": [], "outcome": "running"}
        try:
            with infrastructure_errors():
                champion = _champion(job, uri, create_store=True)
                skip, why = decide(job, champion, fingerprint)
                print(f"fit: {why}" if skip else f"fit: fitting ({why})", flush=True)
                version = champion[0] if skip else None
                if not skip:
                    run_train(train, console)  # a refused gate raises GateFailed (exit 3)
                    version = _tag_new_version(job, uri, FIT_TAG)
                    print(f"fit: registered {job.registry.name} version {version}, alias "
                          f"'{job.registry.alias}' -> {version}", flush=True)
                record["fit"] = "skipped" if skip else "fitted"
                record["version"] = version
                for spec, request in zip(job.streams, streams):
                    request.sink = sink_for(spec.sink, job.registry.name, version)
                    if spec.rate is None:  # a bounded stream reads exactly the version this run checked
                        request.model = f"models:/{job.registry.name}/{version}"  # (an unbounded one follows the alias)
                    console.info(f"stream {job.model_uri} (version {version}) -> {request.sink}")
                    run_stream(request, console)
                    record["streams"].append(request.sink)
                    print(f"stream: wrote {request.sink}", flush=True)
            record["outcome"] = "done"
            print(f"job {job.name}: done ({'fit skipped' if skip else 'fit registered'}, "
                  f"{len(streams)} stream(s))", flush=True)
            return 0
        except GanstreamError as e:
            record["outcome"] = f"failed (exit {e.exit_code}): {e}"
            raise
        finally:
            record["finished"] = time.time()
            with contextlib.suppress(OSError):
                write_state(job, record)


def _tag_new_version(job, uri: str, fit_tag: str) -> str:
    """Record on the version the alias now points to which job and settings made it."""
    from mlflow import MlflowClient

    from ganstream.deploy.mlflow_env import using
    from ganstream.deploy.registry import alias_version
    with using(uri):
        version, _ = alias_version(uri, job.registry.name, job.registry.alias)
        client = MlflowClient(tracking_uri=uri, registry_uri=uri)
        client.set_model_version_tag(job.registry.name, version, fit_tag, job.fit_fingerprint())
        client.set_model_version_tag(job.registry.name, version, "ganstream.job", job.name)
    return version

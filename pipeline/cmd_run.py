"""`ganstream run JOB.yaml [--dry-run]`: a scheduled augmentation job (spec: pipeline/job.py).

Order: check the whole file (and build the exact `train` / `stream` command namespaces) before any work;
take the job's lock; look up the registry alias; fit + gate + register with the `train` command's own
code unless the champion was already fit on data with the same fingerprint (and the same fit settings);
then produce the declared streams from the alias. What happened is printed on stdout (one line per
decision) and recorded in STATE_DIR/last_run.json.

Exit status, for schedulers: 0 done; 2 bad job file or input; 3 quality gate refused the new fit (alias
unchanged, no stream produced); 4 infrastructure failure (tracking server, Ray, disk: retry later);
5 another run of this job is still going (lock held).
"""

from __future__ import annotations

import contextlib
import time
from pathlib import Path

from trainers.errors import GanstreamError


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
    """Failures outside the job file become InfrastructureError (exit 4): tracking, Ray, the file system."""
    from deploy.tracking import TrackingError
    from pipeline.job import InfrastructureError
    try:
        yield
    except TrackingError as e:
        raise InfrastructureError(str(e)) from None
    except GanstreamError:
        raise
    except OSError as e:
        raise InfrastructureError(f"{type(e).__name__}: {e}") from None
    except Exception as e:
        if type(e).__module__.split(".")[0] == "ray":
            first = (str(e).strip().splitlines() or [""])[0][:300]
            raise InfrastructureError(f"Ray failed: {type(e).__name__}: {first}") from None
        raise


def check_ray_reachable(address: str | None, timeout: float = 5.0) -> None:
    """Fail at once (exit 4) when fit.ray_address names a host:port where no Ray cluster answers: Ray itself
    keeps retrying a dead cluster address for minutes. The probe is `train`'s own (trainers/ray_address.py)."""
    from pipeline.job import InfrastructureError
    from trainers.ray_address import RayUnreachable, check_ray_address
    try:
        check_ray_address(address, fix="fit.ray_address", timeout=timeout)
    except RayUnreachable as e:
        raise InfrastructureError(str(e)) from None


def _champion(job, uri: str, create_store: bool):
    """(version, tags) of the job's alias, or None. Without create_store an embedded sqlite store that does
    not exist yet is not created (a dry run writes nothing)."""
    if uri.startswith("sqlite:///") and not create_store and not Path(uri[len("sqlite:///"):]).exists():
        return None
    from deploy.registry import alias_version
    from deploy.tracking import using
    with using(uri):
        return alias_version(uri, job.registry.name, job.registry.alias)


def decide(job, champion, fingerprint: dict) -> tuple[bool, str]:
    """(skip the fit?, why)."""
    from pipeline.job import FIT_TAG
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
    from deploy.tracking import data_fingerprint, resolve_uri
    from pipeline.cli import _info, cmd_train
    from pipeline.job import (FIT_TAG, job_lock, load_job, sink_for, stream_namespaces, train_namespace,
                              write_state)

    job = load_job(args.job)
    train_args = train_namespace(job, quiet=args.quiet)  # every option checked before any work
    stream_args = stream_namespaces(job, quiet=args.quiet)
    with infrastructure_errors():
        uri = resolve_uri(job.tracking.uri)
        fingerprint = data_fingerprint(job.data.path)
        if args.dry_run:
            skip, why = decide(job, _champion(job, uri, create_store=False), fingerprint)
            print(_plan(job, uri, fingerprint, skip, why, stream_args))
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
                    check_ray_reachable(job.fit.ray_address)
                    cmd_train(train_args)  # gate refusal raises GateFailed (exit 3)
                    version = _tag_new_version(job, uri, FIT_TAG)
                    print(f"fit: registered {job.registry.name} version {version}, alias "
                          f"'{job.registry.alias}' -> {version}", flush=True)
                record["fit"] = "skipped" if skip else "fitted"
                record["version"] = version
                for spec, ns in zip(job.streams, stream_args):
                    ns.sink = sink_for(spec.sink, job.registry.name, version)
                    if spec.rate is None:  # a bounded stream reads exactly the version this run checked
                        ns.model = f"models:/{job.registry.name}/{version}"  # (an unbounded one follows the alias)
                    _info(args, f"stream {job.model_uri} (version {version}) -> {ns.sink}")
                    code = ns.func(ns)
                    if code:
                        raise GanstreamError(f"stream into {ns.sink} exited with status {code}")
                    record["streams"].append(ns.sink)
                    print(f"stream: wrote {ns.sink}", flush=True)
            record["outcome"] = "done"
            print(f"job {job.name}: done ({'fit skipped' if skip else 'fit registered'}, "
                  f"{len(stream_args)} stream(s))", flush=True)
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

    from deploy.registry import alias_version
    from deploy.tracking import using
    with using(uri):
        version, _ = alias_version(uri, job.registry.name, job.registry.alias)
        client = MlflowClient(tracking_uri=uri, registry_uri=uri)
        client.set_model_version_tag(job.registry.name, version, fit_tag, job.fit_fingerprint())
        client.set_model_version_tag(job.registry.name, version, "ganstream.job", job.name)
    return version

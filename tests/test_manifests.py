"""The deployment files in deploy/ are checked for structure and for consistency with the code they run:
every Kubernetes object has the fields its kind needs, every `ganstream` command in a manifest parses with the
real CLI parser, names that tie objects together (Services, volumes, ConfigMaps, kustomize resources) resolve,
versions (Ray, MLflow, torch, Python, the package) match what this checkout pins. No cluster is needed;
what these tests cannot show (that a cluster accepts the objects) is said in README "Scaling out"."""

import contextlib
import importlib.metadata
import importlib.util
import io
import re
import shlex
import tomllib
from pathlib import Path

import pytest
import yaml

from ganstream.pipeline.cli import build_parser

REPO = Path(__file__).resolve().parents[1]
K8S = REPO / "deploy" / "k8s"
PYPROJECT = tomllib.loads((REPO / "pyproject.toml").read_text())
VERSION = PYPROJECT["project"]["version"]


def docs(path: Path) -> list[dict]:
    return [d for d in yaml.safe_load_all(path.read_text()) if d is not None]


def objects() -> list[tuple[str, dict]]:
    out = []
    for path in sorted(K8S.glob("*.yaml")):
        if path.name in ("kustomization.yaml", "job.yaml"):
            continue
        out += [(path.name, d) for d in docs(path)]
    return out


def get(obj: dict, dotted: str):
    cur = obj
    for part in dotted.split("."):
        assert isinstance(cur, dict) and part in cur, f"missing {dotted} (at {part})"
        cur = cur[part]
    return cur


def pod_specs(obj: dict) -> list[dict]:
    kind = obj["kind"]
    if kind in ("Deployment", "StatefulSet", "Job"):
        return [get(obj, "spec.template.spec")]
    if kind == "CronJob":
        return [get(obj, "spec.jobTemplate.spec.template.spec")]
    if kind == "RayJob":
        cluster = get(obj, "spec.rayClusterSpec")
        return [get(cluster, "headGroupSpec.template.spec")] + [get(g, "template.spec") for g in cluster["workerGroupSpecs"]]
    if kind == "FlinkDeployment":
        return [get(obj, "spec.taskManager.podTemplate.spec")]
    return []


def parse_cli(argv: list[str], where: str):
    err = io.StringIO()
    try:
        with contextlib.redirect_stderr(err):
            return build_parser().parse_args(argv)
    except SystemExit:
        pytest.fail(f"{where}: `ganstream {' '.join(argv)}` does not parse: {err.getvalue().strip()}")


def has_command(name: str) -> bool:
    return any(getattr(a, "choices", None) and name in a.choices for a in build_parser()._actions)


ALL = objects()
REQUIRED = {
    "Namespace": [],
    "Secret": [],
    "PersistentVolumeClaim": ["spec.accessModes", "spec.resources.requests.storage"],
    "Service": ["spec.selector", "spec.ports"],
    "Deployment": ["spec.selector.matchLabels", "spec.template.metadata.labels", "spec.template.spec.containers"],
    "StatefulSet": ["spec.serviceName", "spec.selector.matchLabels", "spec.template.spec.containers"],
    "Job": ["spec.template.spec.containers", "spec.template.spec.restartPolicy"],
    "CronJob": ["spec.schedule", "spec.jobTemplate.spec.template.spec.containers",
                "spec.jobTemplate.spec.template.spec.restartPolicy"],
    "RayJob": ["spec.entrypoint", "spec.rayClusterSpec.rayVersion", "spec.rayClusterSpec.headGroupSpec.template.spec.containers",
               "spec.rayClusterSpec.workerGroupSpecs"],
    "FlinkDeployment": ["spec.image", "spec.flinkVersion", "spec.jobManager.resource", "spec.taskManager.resource"],
}
API = {"Namespace": "v1", "Secret": "v1", "PersistentVolumeClaim": "v1", "Service": "v1", "Deployment": "apps/v1",
       "StatefulSet": "apps/v1", "Job": "batch/v1", "CronJob": "batch/v1", "RayJob": "ray.io/v1",
       "FlinkDeployment": "flink.apache.org/v1beta1"}


@pytest.mark.parametrize("source,obj", ALL, ids=[f"{s}:{o.get('kind')}/{o.get('metadata', {}).get('name')}" for s, o in ALL])
def test_each_object_has_what_its_kind_needs(source, obj):
    kind = obj.get("kind")
    assert kind in REQUIRED, f"{source}: unexpected kind {kind!r}"
    assert obj.get("apiVersion") == API[kind]
    assert re.fullmatch(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?", get(obj, "metadata.name"))
    for path in REQUIRED[kind]:
        get(obj, path)
    for spec in pod_specs(obj):
        names = [c["name"] for c in spec["containers"]]
        assert len(names) == len(set(names)) and all(c.get("image") for c in spec["containers"])
        mounts = {m["name"] for c in spec["containers"] for m in c.get("volumeMounts", [])}
        claims = {t["metadata"]["name"] for t in obj.get("spec", {}).get("volumeClaimTemplates", [])}
        assert mounts <= {v["name"] for v in spec.get("volumes", [])} | claims, f"{source}: a volumeMount has no volume"
    if kind in ("Deployment", "StatefulSet"):
        labels = get(obj, "spec.template.metadata.labels")
        assert get(obj, "spec.selector.matchLabels").items() <= labels.items()


def test_kinds_the_issue_asks_for_are_all_there():
    kinds = {o["kind"] for _, o in ALL}
    assert {"RayJob", "CronJob", "Deployment", "StatefulSet", "Service", "PersistentVolumeClaim"} <= kinds


def test_names_that_tie_objects_together_resolve():
    by_kind: dict[str, set[str]] = {}
    for _, o in ALL:
        by_kind.setdefault(o["kind"], set()).add(o["metadata"]["name"])
    kustomization = docs(K8S / "kustomization.yaml")[0]
    generated = {g["name"] for g in kustomization.get("configMapGenerator", [])}
    for g in kustomization.get("configMapGenerator", []):
        assert all((K8S / f).is_file() for f in g["files"])
    listed = set(kustomization["resources"])
    on_disk = {p.name for p in K8S.glob("*.yaml")} - {"kustomization.yaml", "job.yaml"}
    assert listed == on_disk, "kustomization resources and the manifest files disagree"
    labelled = [get(o, "spec.template.metadata.labels") for _, o in ALL if o["kind"] in ("Deployment", "StatefulSet")]
    for source, o in ALL:
        for spec in pod_specs(o):
            for v in spec.get("volumes", []):
                if "persistentVolumeClaim" in v:
                    assert v["persistentVolumeClaim"]["claimName"] in by_kind["PersistentVolumeClaim"], source
                if "configMap" in v:
                    assert v["configMap"]["name"] in generated, source
            for c in spec["containers"]:
                for ref in c.get("envFrom", []):
                    assert ref["secretRef"]["name"] in by_kind["Secret"], source
                for env in c.get("env", []):
                    if env["name"] == "MLFLOW_TRACKING_URI":
                        m = re.fullmatch(r"http://([a-z0-9-]+):(\d+)", env["value"])
                        assert m and m.group(1) in by_kind["Service"], f"{source}: {env['value']}"
        if o["kind"] == "Service":
            assert any(o["spec"]["selector"].items() <= labels.items() for labels in labelled), \
                f"{source}: Service {o['metadata']['name']} selects no pods"


def ganstream_commands():
    """(where, argv) of every ganstream invocation in the manifests, compose file and RayJob entrypoint."""
    out = []
    for source, o in ALL:
        if o["kind"] == "RayJob":
            words = shlex.split(o["spec"]["entrypoint"])
            assert words[0] == "ganstream", f"{source}: the RayJob entrypoint must run the ganstream CLI"
            out.append((f"{source}:entrypoint", words[1:]))
            continue  # KubeRay writes the pods' own command (`ray start ...`)
        for spec in pod_specs(o):
            for c in spec["containers"]:
                if c["image"].split(":")[0].endswith("ganstream") and "command" not in c:
                    out.append((f"{source}:{c['name']}", [str(a) for a in c.get("args", [])]))
    compose = docs(REPO / "deploy" / "compose.yml")[0]
    for name, svc in compose["services"].items():
        if str(svc.get("image", "")).split(":")[0] == "ganstream":
            out.append((f"compose.yml:{name}", svc["command"]))
    return out


@pytest.mark.parametrize("where,argv", ganstream_commands(), ids=[w for w, _ in ganstream_commands()])
def test_every_ganstream_command_parses_with_the_real_cli(where, argv):
    if argv and argv[0] == "stream" and not has_command("stream"):
        pytest.skip("`ganstream stream` (issue 6) is not in this checkout")
    args = parse_cli(argv, where)
    if args.command == "run":
        assert args.job == "/jobs/job.yaml"
    if args.command == "train":
        assert args.register, f"{where}: a cluster fit should register its model (nothing comes back from the pods)"
        if where.startswith("rayjob"):  # join the RayJob's cluster, checkpoints on a volume every pod mounts
            assert args.ray_address == "auto" and args.workers > 1 and args.checkpoint_dir.startswith("/checkpoints/")


def test_versions_match_the_checkout():
    for source, o in ALL:
        if o["kind"] == "RayJob":
            assert o["spec"]["rayClusterSpec"]["rayVersion"] == importlib.metadata.version("ray"), source
        for spec in pod_specs(o):
            for c in spec["containers"]:
                name, _, tag = c["image"].partition(":")
                if name.endswith("ganstream"):
                    assert tag == VERSION, f"{source}: image {c['image']} is not version {VERSION}"
                if name.endswith("mlflow/mlflow"):
                    assert tag == "v" + importlib.metadata.version("mlflow"), source
                if "command" in c and c["command"][:2] == ["python", "-m"]:
                    assert importlib.util.find_spec(c["command"][2]), f"{source}: no module {c['command'][2]}"
    kustomization = docs(K8S / "kustomization.yaml")[0]
    assert kustomization["images"][0]["newTag"] == VERSION


def test_cronjob_retries_only_what_a_retry_can_fix():
    from ganstream.trainers.errors import EXIT_BUSY as BUSY_EXIT_CODE, EXIT_GATE as GATE_EXIT_CODE, \
        EXIT_INFRASTRUCTURE as INFRA_EXIT_CODE, EXIT_INPUT as CONFIG_EXIT_CODE
    (cron,) = [o for _, o in ALL if o["kind"] == "CronJob"]
    assert cron["spec"]["concurrencyPolicy"] == "Forbid"
    fields = cron["spec"]["schedule"].split()
    assert len(fields) == 5 and all(re.fullmatch(r"[\d*/,-]+", f) for f in fields)
    job = cron["spec"]["jobTemplate"]["spec"]
    assert job["template"]["spec"]["restartPolicy"] == "Never"  # podFailurePolicy requires it
    fail_codes = {v for r in job["podFailurePolicy"]["rules"] if r["action"] == "FailJob"
                  for v in r.get("onExitCodes", {}).get("values", [])}
    assert fail_codes == {CONFIG_EXIT_CODE, GATE_EXIT_CODE, BUSY_EXIT_CODE} and INFRA_EXIT_CODE not in fail_codes
    assert job["backoffLimit"] >= 1


def test_the_cluster_job_file_is_a_valid_job(tmp_path):
    from ganstream.pipeline.job_spec import load_job, train_request
    raw = yaml.safe_load((K8S / "job.yaml").read_text())
    assert raw["data"]["path"].startswith("/data/") and raw["state_dir"].startswith("/state/")
    assert all(s["sink"].startswith("/out/") for s in raw.get("streams", []))
    (tmp_path / "adult.csv").write_text((REPO / "data" / "adult.csv").read_text()[:5000])
    raw["data"]["path"] = str(tmp_path / "adult.csv")
    raw["state_dir"] = str(tmp_path / "state")
    if not has_command("stream"):
        raw.pop("streams", None)
    (tmp_path / "job.yaml").write_text(yaml.safe_dump(raw))
    job = load_job(tmp_path / "job.yaml")
    request = train_request(job)
    assert request.tracking.register == "adult" and request.config.epochs == 300


def test_compose_runs_mlflow_on_postgres_with_object_store_artifacts():
    compose = docs(REPO / "deploy" / "compose.yml")[0]
    services = compose["services"]
    for name, svc in services.items():
        assert svc.get("image") or svc.get("build"), name
        for dep in svc.get("depends_on", {}):
            assert dep in services, f"{name} depends on unknown service {dep}"
        for vol in svc.get("volumes", []):
            src = vol.split(":")[0]
            if src.startswith("."):
                assert (REPO / "deploy" / src).exists(), f"{name}: {src} does not exist"
            else:
                assert src in compose.get("volumes", {}), f"{name}: undeclared volume {src}"
    server = " ".join(services["mlflow"]["command"])
    assert re.search(r"--backend-store-uri postgresql\+psycopg2://\S+@postgres:5432/", server)
    assert "--artifacts-destination s3://" in server and services["mlflow"]["environment"]["MLFLOW_S3_ENDPOINT_URL"]
    assert services["mlflow"]["image"].endswith(":v" + importlib.metadata.version("mlflow"))
    assert (REPO / services["job"]["build"]["dockerfile"]).is_file() or \
        (REPO / "deploy" / services["job"]["build"]["context"] / services["job"]["build"]["dockerfile"]).is_file()


def test_dockerfile_installs_pinned_cpu_torch_first_then_the_package():
    text = (REPO / "deploy" / "Dockerfile").read_text()
    lines = [ln.strip() for ln in text.replace("\\\n", " ").splitlines() if ln.strip() and not ln.startswith("#")]
    assert lines[0].startswith("FROM python:3.11"), "the image's Python must satisfy requires-python"
    assert PYPROJECT["project"]["requires-python"] == ">=3.11,<3.12"
    installs = [ln for ln in lines if ln.startswith("RUN pip install")]
    assert installs and "torch==2.13.0" in installs[0], "torch must be installed first, pinned"
    assert "torch==2.13.0" in PYPROJECT["project"]["dependencies"]
    assert "/whl/cpu" in text, "the CPU wheel index keeps CUDA out of the image"
    assert any(re.search(r"pip install \.(\s|$)", ln) for ln in installs[1:])
    for ln in lines:
        if ln.startswith("COPY "):
            for src in ln.split()[1:-1]:
                assert (REPO / src).exists(), f"Dockerfile copies {src}, which does not exist"
    assert 'ENTRYPOINT ["ganstream"]' in lines
    assert any(ln.startswith("USER ") and ln.split()[1] != "root" for ln in lines)


def test_the_flink_stream_job_builds_portable_beam_options():
    """The stream Job's Beam options, as the stream command builds them, point at the job server Service and
    run the SDK harness in the TaskManagers' worker-pool sidecar (its port matches the sidecar's)."""
    if not has_command("stream"):
        pytest.skip("`ganstream stream` (issue 6) is not in this checkout")
    from apache_beam.options.pipeline_options import PortableOptions, StandardOptions

    from ganstream.pipeline.stream import pipeline_options
    objs = {(o["kind"], o["metadata"]["name"]): o for _, o in ALL}
    (job,) = [o for (kind, _), o in objs.items() if kind == "Job" and "stream" in o["metadata"]["name"]]
    args = parse_cli([str(a) for a in job["spec"]["template"]["spec"]["containers"][0]["args"]], "stream-flink")
    options = pipeline_options(args.runner, args.direct_num_workers, args.direct_running_mode, args.beam_args)
    portable = options.view_as(PortableOptions)
    assert options.view_as(StandardOptions).runner == "PortableRunner"
    host, port = portable.job_endpoint.split(":")
    service = objs[("Service", host)]
    assert int(port) in {p["port"] for p in service["spec"]["ports"]}
    assert portable.environment_type == "EXTERNAL"
    flink = [o for (kind, _), o in objs.items() if kind == "FlinkDeployment"][0]
    sidecar = flink["spec"]["taskManager"]["podTemplate"]["spec"]["containers"][0]
    assert portable.environment_config == f"localhost:{sidecar['ports'][0]['containerPort']}"
    assert f"--service_port={sidecar['ports'][0]['containerPort']}" in sidecar["command"]


def test_the_build_context_leaves_the_venv_and_local_stores_out():
    ignored = {ln.strip() for ln in (REPO / "deploy" / "Dockerfile.dockerignore").read_text().splitlines()
               if ln.strip() and not ln.startswith("#")}
    assert {".venv", ".git", "runs", "mlruns"} <= ignored
    text = (REPO / "deploy" / "Dockerfile").read_text()
    copied = {ln.split()[1].rstrip("/") for ln in text.splitlines() if ln.startswith("COPY ")}
    assert not copied & ignored, "the Dockerfile copies something the build context leaves out"


def _mlflow_servers():
    """(where, the server's shell command, its environment) in compose and in the k8s manifest."""
    compose = docs(REPO / "deploy" / "compose.yml")[0]["services"]["mlflow"]
    yield "compose.yml", " ".join(compose["command"]), dict(compose["environment"])
    objects = docs(K8S / "mlflow.yaml")
    secret = next(o for o in objects if o["kind"] == "Secret")["stringData"]
    for o in objects:
        for spec in pod_specs(o):
            for c in spec["containers"]:
                if c["image"].startswith("ghcr.io/mlflow/mlflow"):
                    env = {**secret, **{e["name"]: e["value"] for e in c.get("env", []) if "value" in e}}
                    command = " ".join(c["args"]).replace('"$MLFLOW_BACKEND_STORE_URI"', secret[
                        "MLFLOW_BACKEND_STORE_URI"]).replace('"$MLFLOW_ARTIFACTS_DESTINATION"',
                                                              secret["MLFLOW_ARTIFACTS_DESTINATION"])
                    yield "k8s/mlflow.yaml", command, env


def test_the_tracking_servers_run_as_the_production_stack_tests_ran_them():
    """deploy/ matches what tests/test_prod_stack.py ran for real: the same driver scheme (MLflow's plain
    postgresql:// needs psycopg 3, which neither installs), the same psycopg2-binary and boto3 versions, the same
    server settings and flags, and PostgreSQL of the major version the tests ran."""
    from prod_stack import BACKEND_SCHEME, SERVER_ENV, postgres_bin
    servers = list(_mlflow_servers())
    assert len(servers) == 2
    for where, command, env in servers:
        assert re.search(rf"--backend-store-uri {re.escape(BACKEND_SCHEME)}://\S+:5432/mlflow", command), where
        assert "--artifacts-destination s3://" in command and "--host 0.0.0.0" in command, where
        for package in ("psycopg2-binary", "boto3"):
            assert f"{package}=={importlib.metadata.version(package)}" in command, (where, package)
        assert {k: env.get(k) for k in SERVER_ENV} == SERVER_ENV, where
        assert "MLFLOW_S3_ENDPOINT_URL" in env, where
    binaries = postgres_bin()
    if binaries is not None:
        major = binaries.parent.name
        compose = docs(REPO / "deploy" / "compose.yml")[0]["services"]["postgres"]["image"]
        k8s = [c["image"] for o in docs(K8S / "mlflow.yaml") for s in pod_specs(o) for c in s["containers"]
               if c["image"].startswith("postgres:")]
        assert compose == f"postgres:{major}" and k8s == [f"postgres:{major}"], (major, compose, k8s)

"""The production tracking stack, for real, on the loopback: PostgreSQL as MLflow's backend store, an S3 server
(moto) as its artifact store, and an `mlflow server` between them, as deploy/compose.yaml describes it.

Why these processes and not fakes: the paths that differ from the embedded sqlite default (a network database
that can stop mid-transaction, artifacts proxied to an object store) are what users meet when they outgrow one
machine, and only real servers show how they fail.

- PostgreSQL: Debian's server binaries (`make setup` installs the `postgresql` package where they are missing).
  A throw-away cluster in a temp directory, trust authentication, listening on 127.0.0.1 only. It cannot run
  as root: as root the cluster belongs to the `postgres` user the package creates.
- S3: `python -m moto.server` on 127.0.0.1; one bucket.
- MLflow: `--backend-store-uri postgresql+psycopg2://...` (MLflow's plain `postgresql://` asks for psycopg 3)
  and `--artifacts-destination s3://BUCKET`: clients upload through the server and need no S3 credentials.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from mlflow_server import MlflowServer, free_port, wait_healthy

BUCKET = "ganstream-artifacts"
BACKEND_SCHEME = "postgresql+psycopg2"  # deploy/ uses the same (tests/test_manifests.py)
SERVER_ENV = {"MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false", "MLFLOW_DISABLE_TELEMETRY": "true"}
S3_ENV = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1"}


def postgres_bin() -> Path | None:
    """The directory of Debian's PostgreSQL server binaries (newest version), or None."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(p.split("/")[4]))
    return Path(found[-1]).parent if found else None


@dataclass
class Postgres:
    directory: Path
    port: int
    bin: Path
    as_user: list[str]  # the command prefix that runs a PostgreSQL tool as the cluster's owner

    @property
    def url(self) -> str:
        return f"{BACKEND_SCHEME}://mlf@127.0.0.1:{self.port}/mlflow"

    def ctl(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        return subprocess.run([*self.as_user, str(self.bin / "pg_ctl"), "-D", str(self.directory / "data"), *args],
                              capture_output=True, text=True, check=check)

    def start(self) -> None:
        self.ctl("-l", str(self.directory / "server.log"), "-w", "-o",
                 f"-p {self.port} -k {self.directory} -c listen_addresses=127.0.0.1", "start")

    def stop(self) -> None:
        self.ctl("-m", "fast", "-w", "stop", check=False)

    def query(self, sql: str) -> list[tuple]:
        import psycopg2
        with psycopg2.connect(host="127.0.0.1", port=self.port, user="mlf", dbname="mlflow") as conn:
            with conn.cursor() as cur:
                cur.execute(sql)
                return cur.fetchall()


def start_postgres() -> Postgres:
    binaries = postgres_bin()
    if binaries is None:
        raise RuntimeError("PostgreSQL server binaries not found (/usr/lib/postgresql/*/bin): run `make setup`")
    directory = Path(tempfile.mkdtemp(prefix="gs-pg-", dir="/tmp"))  # short: the socket path has a 107-byte limit
    as_user: list[str] = []
    if os.geteuid() == 0:
        owner = pwd.getpwnam("postgres")
        os.chmod(directory, 0o755)
        os.chown(directory, owner.pw_uid, owner.pw_gid)
        as_user = ["runuser", "-u", "postgres", "--"]
    pg = Postgres(directory, free_port(), binaries, as_user)
    subprocess.run([*as_user, str(binaries / "initdb"), "-D", str(directory / "data"), "-A", "trust", "-U", "mlf",
                    "--no-sync"], capture_output=True, text=True, check=True)
    pg.start()
    subprocess.run([*as_user, str(binaries / "createdb"), "-h", "127.0.0.1", "-p", str(pg.port), "-U", "mlf",
                    "mlflow"], capture_output=True, text=True, check=True)
    return pg


@dataclass
class S3Server:
    proc: subprocess.Popen
    endpoint: str

    def client(self):
        import boto3
        return boto3.client("s3", endpoint_url=self.endpoint, **{k.lower(): v for k, v in S3_ENV.items()
                                                                 if k != "AWS_DEFAULT_REGION"},
                            region_name=S3_ENV["AWS_DEFAULT_REGION"])

    def keys(self) -> list[str]:
        pages = self.client().get_paginator("list_objects_v2").paginate(Bucket=BUCKET)
        return [o["Key"] for page in pages for o in page.get("Contents", [])]

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=20)


def start_s3(directory: Path, port: int | None = None) -> S3Server:
    """A moto S3 server with the bucket (moto keeps objects in memory: a restarted server starts empty)."""
    port = port or free_port()
    with open(directory / "moto.log", "wb") as log:
        proc = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
                                stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
                                env={**os.environ, **S3_ENV})
    server = S3Server(proc, f"http://127.0.0.1:{port}")
    deadline = time.monotonic() + 60
    while True:
        try:
            urllib.request.urlopen(server.endpoint + "/moto-api/", timeout=2)
            break
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"moto server did not start:\n{(directory / 'moto.log').read_text()[-2000:]}")
            time.sleep(0.3)
    server.client().create_bucket(Bucket=BUCKET)
    return server


def start_tracking(directory: Path, pg: Postgres, s3: S3Server, port: int | None = None) -> MlflowServer:
    port, log = port or free_port(), directory / "mlflow.log"
    env = {**os.environ, **S3_ENV, **SERVER_ENV, "MLFLOW_S3_ENDPOINT_URL": s3.endpoint}
    env.pop("MLFLOW_TRACKING_URI", None)
    cmd = [str(Path(sys.executable).with_name("mlflow")), "server", "--backend-store-uri", pg.url,
           "--artifacts-destination", f"s3://{BUCKET}", "--host", "127.0.0.1", "--port", str(port), "--workers", "1"]
    with open(log, "ab") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=env, cwd=directory,
                                start_new_session=True)
    return wait_healthy(MlflowServer(f"http://127.0.0.1:{port}", pg.url, proc, log), timeout=180)


@dataclass
class Stack:
    directory: Path
    pg: Postgres
    s3: S3Server
    tracking: MlflowServer

    def restart_tracking(self) -> None:
        """A new tracking server on the same port (after a test killed it)."""
        self.tracking.stop()
        self.tracking = start_tracking(self.directory, self.pg, self.s3, int(self.tracking.uri.rsplit(":", 1)[1]))

    def restart_s3(self) -> None:
        """A new, empty S3 server on the same port, with the bucket."""
        self.s3.stop()
        self.s3 = start_s3(self.directory, int(self.s3.endpoint.rsplit(":", 1)[1]))

    def stop(self) -> None:
        self.tracking.stop()
        self.s3.stop()
        self.pg.stop()
        shutil.rmtree(self.pg.directory, ignore_errors=True)


def start_stack(directory: Path) -> Stack:
    pg = start_postgres()
    try:
        s3 = start_s3(directory)
        try:
            return Stack(directory, pg, s3, start_tracking(directory, pg, s3))
        except BaseException:
            s3.stop()
            raise
    except BaseException:
        pg.stop()
        shutil.rmtree(pg.directory, ignore_errors=True)
        raise

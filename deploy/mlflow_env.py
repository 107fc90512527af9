"""Where MLflow is, and how its failures reach the user: the tracking URI (--tracking-uri, else
$MLFLOW_TRACKING_URI, else MLflow's embedded `sqlite:///<cwd>/mlflow.db`, no server), a reachability probe
that fails in seconds instead of MLflow's minutes of retries, and one-line errors (exit 4) for anything the
server or store does.

MLflow's HTTP retries are capped (MLFLOW_HTTP_REQUEST_MAX_RETRIES=1, MLFLOW_HTTP_REQUEST_TIMEOUT=15 unless
set), so a server that dies mid-command fails it in bounded time."""

from __future__ import annotations

import contextlib
import os
import urllib.error
import urllib.request

from ganstream.trainers.errors import GanstreamError, InfrastructureError


class TrackingError(InfrastructureError):
    """The MLflow tracking server / store cannot be used (unreachable, refused, failed request). Exit 4."""


def tracking_requested(uri: str | None, register: str | None, experiment: str | None) -> bool:
    """Tracking is on when any of --tracking-uri, --register, --experiment is given or $MLFLOW_TRACKING_URI
    is set; off otherwise, so a plain `train` needs no MLflow at all."""
    return bool(uri or register or experiment or os.environ.get("MLFLOW_TRACKING_URI"))


def resolve_uri(cli_uri: str | None = None) -> str:
    """--tracking-uri, else $MLFLOW_TRACKING_URI, else MLflow's embedded default for the working dir."""
    if cli_uri:
        return cli_uri
    if os.environ.get("MLFLOW_TRACKING_URI"):
        return os.environ["MLFLOW_TRACKING_URI"]
    from mlflow.tracking._tracking_service import utils
    if utils._tracking_uri is not None:
        return utils._tracking_uri
    import mlflow
    return mlflow.get_tracking_uri()


def _bound_http_retries() -> None:
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "1")
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR", "1")
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", "15")


def check_reachable(uri: str, timeout: float = 5.0) -> None:
    """Raise TrackingError at once when an http(s) tracking server does not answer its health check."""
    if not uri.startswith(("http://", "https://")):
        return
    url = uri.rstrip("/") + "/health"
    try:
        with urllib.request.urlopen(url, timeout=timeout) as r:
            if r.status != 200:
                raise TrackingError(f"tracking server {uri} is unhealthy (GET /health: HTTP {r.status})")
    except urllib.error.HTTPError as e:
        raise TrackingError(f"tracking server {uri} is unhealthy (GET /health: HTTP {e.code})") from None
    except (urllib.error.URLError, OSError) as e:
        reason = getattr(e, "reason", e)
        raise TrackingError(f"tracking server {uri} is unreachable ({reason}); start it or pass another "
                            f"--tracking-uri") from None


def no_store_yet(uri: str) -> bool:
    """True for an embedded sqlite store whose file does not exist: opening it would create it, which a
    read-only command (`models list`, `run --dry-run`) must not do."""
    from pathlib import Path
    return uri.startswith("sqlite:///") and not Path(uri[len("sqlite:///"):]).exists()


@contextlib.contextmanager
def using(uri: str):
    """Point MLflow's fluent API at `uri` for the block, then restore the previous global setting:
    mlflow.set_tracking_uri writes $MLFLOW_TRACKING_URI and mlflow.set_experiment writes a module global and
    $MLFLOW_EXPERIMENT_ID; an experiment id of one store must not leak into a later command on another
    (it fails there with "No Experiment with id=...")."""
    _bound_http_retries()
    check_reachable(uri)
    import logging

    import mlflow
    logging.getLogger("mlflow").setLevel(logging.WARNING)  # its INFO lines (store migrations, ...) are not the user's
    from mlflow.tracking import fluent
    from mlflow.tracking._tracking_service import utils
    saved_env = {k: os.environ.get(k) for k in ("MLFLOW_TRACKING_URI", "MLFLOW_EXPERIMENT_ID")}
    old_uri, old_experiment = utils._tracking_uri, fluent._active_experiment_id
    mlflow.set_tracking_uri(uri)
    try:
        with mlflow_errors(uri):
            yield
    finally:
        mlflow.set_tracking_uri(old_uri)
        fluent._active_experiment_id = old_experiment
        for key, value in saved_env.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def _short(msg: str) -> str:
    """One line out of MLflow's multi-line, URL-laden HTTP failure messages."""
    import re
    m = re.search(r"API request to \S*?(/api/\S+) failed", msg)
    for needle, reason in (("Connection refused", "connection refused"), ("timed out", "timed out"),
                           ("Max retries exceeded", "no answer")):
        if needle in msg:
            where = f" during {m.group(1)}" if m else ""
            return f"the tracking server stopped answering{where} ({reason}); nothing was registered"
    return msg.splitlines()[0][:300] if msg else "unknown error"


@contextlib.contextmanager
def mlflow_errors(uri: str):
    """Turn MLflow / HTTP failures into one-line TrackingErrors (GanstreamErrors pass through)."""
    from mlflow.exceptions import MlflowException
    try:
        yield
    except GanstreamError:
        raise
    except MlflowException as e:
        msg = str(e.message if hasattr(e, "message") else e).strip()
        raise TrackingError(f"MLflow at {uri}: {_short(msg)}") from None
    except (ConnectionError, TimeoutError, OSError) as e:
        raise TrackingError(f"MLflow at {uri}: {type(e).__name__}: {str(e)[:300]}") from None
    except Exception as e:  # requests' exceptions, when requests is what failed
        if type(e).__module__.startswith(("requests", "urllib3")):
            raise TrackingError(f"MLflow at {uri} failed: {type(e).__name__}: {str(e)[:300]}") from None
        raise

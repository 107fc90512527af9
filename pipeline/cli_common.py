"""What every sub-command shares: the tracking-URI help text, the console its flags ask for, and the one
resolution of a MODEL argument (deploy/models.py)."""

from __future__ import annotations

from ganstream.pipeline.console import Console

TRACKING_HELP = "MLflow tracking URI (default: $MLFLOW_TRACKING_URI, else sqlite:///mlflow.db in the working dir)"
MODEL_HELP = "model directory written by `train`, or models:/NAME@ALIAS, models:/NAME/VERSION, runs:/RUN_ID/PATH"


def console(args) -> Console:
    return Console(quiet=getattr(args, "quiet", False), verbose=getattr(args, "verbose", False))


def load_model_arg(ref: str, tracking_uri: str | None = None, kind: str | None = None, command: str = ""):
    """The fitted model a MODEL argument names; with `kind`, insist on that kind (one line otherwise)."""
    from ganstream.deploy.models import load
    from ganstream.trainers.errors import ConfigError
    model = load(ref, tracking_uri)
    if kind is not None and model.kind != kind:
        raise ConfigError(f"{ref}: is a {model.kind} model; {command} needs a {kind} model")
    return model

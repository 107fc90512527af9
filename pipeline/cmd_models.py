"""`ganstream models list | show NAME`: what the MLflow registry holds."""

from __future__ import annotations

from ganstream.pipeline.cli_common import TRACKING_HELP


def add_parser(sub) -> None:
    m = sub.add_parser("models", help="list registered models, or show one's versions, aliases, metrics, lineage")
    msub = m.add_subparsers(dest="models_command", required=True, metavar="ACTION")
    ml = msub.add_parser("list", help="registered models with their latest version and aliases")
    ml.add_argument("--tracking-uri", metavar="URI", help=TRACKING_HELP)
    ms = msub.add_parser("show", help="versions of NAME: aliases, quality metrics, data/code lineage, gate")
    ms.add_argument("name", metavar="NAME")
    ms.add_argument("--tracking-uri", metavar="URI", help=TRACKING_HELP)
    m.set_defaults(func=run)


def run(args) -> int:
    from ganstream.deploy.mlflow_env import no_store_yet, resolve_uri, using
    from ganstream.deploy.registry import list_models, show_model
    from ganstream.trainers.errors import ModelError
    uri = resolve_uri(args.tracking_uri)
    if no_store_yet(uri):  # reading must not create the store
        if args.models_command == "list":
            print(f"No registered models at {uri} (no store there yet)")
            return 0
        raise ModelError(f"no registered model '{args.name}' at {uri} (no store there yet)")
    with using(uri):
        print(list_models(uri) if args.models_command == "list" else show_model(uri, args.name))
    return 0

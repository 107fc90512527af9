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
    from ganstream.deploy.mlflow_env import resolve_uri, using
    from ganstream.deploy.registry import list_models, show_model
    uri = resolve_uri(args.tracking_uri)
    with using(uri):
        print(list_models(uri) if args.models_command == "list" else show_model(uri, args.name))
    return 0

"""`ganstream evaluate MODEL --real DATA`: the quality report of a model against real data
(augment/evaluation.py), for a tabular or a time-series model."""

from __future__ import annotations

from ganstream.pipeline.argtypes import positive_int
from ganstream.pipeline.cli_common import MODEL_HELP, TRACKING_HELP, console, load_model_arg
from ganstream.trainers.errors import ConfigError


def add_parser(sub) -> None:
    e = sub.add_parser("evaluate", help="compare MODEL's samples with real data",
                       description="Tabular: detection AUC (real vs synthetic classifier), per-column marginal "
                       "distances, association distance, coverage, privacy (distance to closest record, exact "
                       "copies) and, with --target, train-on-synthetic/test-on-real utility, on a bounded sample of "
                       "--real. Time series: TimeGAN's discriminative and predictive scores.")
    e.add_argument("model", metavar="MODEL", help=MODEL_HELP)
    e.add_argument("--real", required=True, metavar="DATA", help="real table to compare against (ideally the training data)")
    e.add_argument("--holdout", metavar="DATA", help="real rows NOT used in training, for the privacy test (default: split --real)")
    e.add_argument("--target", metavar="COL", help="tabular: column to predict for the utility score")
    e.add_argument("--max-rows", type=positive_int("--max-rows"), default=10_000,
                   help="rows of --real compared (a seeded sample; default: 10,000)")
    e.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")
    e.add_argument("--missing-token", action="append", default=[], metavar="TOK", help="text that means 'missing' (repeatable)")
    lift = e.add_argument_group("augmentation lift (tabular; needs --target and --holdout)")
    lift.add_argument("--lift", action="store_true",
                      help="also train logistic regression, gradient boosting and an MLP on --real alone and on --real "
                           "+ synthetic rows, and score both on --holdout (ROC AUC, PR AUC, minority F1): does adding "
                           "this model's rows help? Takes about as long as the rest of the report")
    how = lift.add_mutually_exclusive_group()
    how.add_argument("--synthetic-fraction", type=float, metavar="F",
                     help="instead of balancing, unconditioned synthetic rows making this share of the augmented "
                          "training set, in (0, 1) (0.5: as many as the real rows, as stream --mix)")
    how.add_argument("--balance", action="store_true",
                     help="synthetic rows of every minority class of --target, conditioned on it, up to the majority "
                          "count (as stream --mix --balance); the default recipe")
    e.add_argument("--json", action="store_true", help="print the report as JSON")
    e.add_argument("--tracking-uri", metavar="URI", help=TRACKING_HELP)
    e.set_defaults(func=run)


def run(args) -> int:
    from ganstream.augment.evaluation import evaluate
    from ganstream.trainers.table_io import read_table

    model = load_model_arg(args.model, args.tracking_uri)
    real = read_table(args.real, args.missing_token)
    holdout = read_table(args.holdout, args.missing_token) if args.holdout else None
    if args.target and model.kind != "tabular":
        raise ConfigError("--target applies to tabular models")
    if args.target and args.target not in real.columns:
        raise ConfigError(f"--target column '{args.target}' is not in {args.real} "
                          f"(columns: {', '.join(map(str, real.columns))})")
    recipe = None
    if args.lift or args.synthetic_fraction is not None or args.balance:
        from ganstream.augment.lift import Recipe
        if not args.lift:
            raise ConfigError("--synthetic-fraction and --balance shape the augmented set of --lift: add --lift")
        if model.kind != "tabular" or not args.target or holdout is None:
            raise ConfigError("--lift needs a tabular model, --target COL and --holdout DATA (real rows the model "
                              "never saw, to score the downstream models on)")
        if args.target not in holdout.columns:
            raise ConfigError(f"--target column '{args.target}' is not in {args.holdout}")
        recipe = Recipe(fraction=args.synthetic_fraction)
    n = min(len(real), args.max_rows)
    console(args).info(f"scoring {n:,} {'rows' if model.kind == 'tabular' else 'rows of series'} of {args.real}"
                       f"{' (a seeded sample)' if n < len(real) else ''} against as many synthetic ones")
    report = evaluate(model, real, target=args.target, holdout=holdout, seed=args.seed, max_rows=args.max_rows,
                      lift=recipe or False)
    print(report.to_json() if args.json else str(report))
    return 0

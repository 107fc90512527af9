"""`ganstream impute DATA --out FILE`: fill the holes of DATA with a model's imputer, or with one fitted on DATA
itself. Observed cells are never changed; --draws K > 1 writes K completed copies with a leading `draw` column."""

from __future__ import annotations

from ganstream.pipeline.argtypes import positive_int
from ganstream.pipeline.cli_common import TRACKING_HELP, console
from ganstream.trainers.errors import ConfigError


def add_parser(sub) -> None:
    i = sub.add_parser("impute", help="fill the missing cells of DATA",
                       description="Fill missing cells with a GAIN-style imputer. Observed cells are never changed. "
                       "Without --model an imputer is fitted on DATA itself. With --draws K > 1 the output holds K "
                       "complete copies (multiple imputation), told apart by a leading 'draw' column.")
    i.add_argument("data", metavar="DATA", help="table with missing values")
    i.add_argument("--out", required=True, metavar="FILE", help="output .csv or .parquet")
    i.add_argument("--model", metavar="MODEL", help="use the imputer of a tabular model (directory or MLflow URI) "
                   "instead of fitting one")
    i.add_argument("--tracking-uri", metavar="URI", help=TRACKING_HELP)
    i.add_argument("--epochs", type=positive_int("--epochs"), default=None, help="imputer training epochs (default: the imputer's own)")
    i.add_argument("--draws", type=positive_int("--draws"), default=1, help="number of imputations K (default: 1)")
    i.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")
    i.add_argument("--missing-token", action="append", default=[], metavar="TOK", help="text that means 'missing' (repeatable)")
    i.set_defaults(func=run)


def run(args) -> int:
    import pandas as pd

    from ganstream.trainers.table_io import check_output_path, read_table, write_table
    check_output_path(args.out)
    if args.model and args.epochs:
        raise ConfigError("--epochs applies only when fitting a new imputer (without --model)")
    out = console(args)
    table = read_table(args.data, args.missing_token)
    holes = int(table.isna().to_numpy().sum())
    if args.model:
        from ganstream.deploy.models import load
        model = load(args.model, args.tracking_uri)
        if model.kind == "imputer":
            draws = model.transform(table, draws=args.draws, seed=args.seed)
        elif model.kind == "tabular":
            draws = model.impute(table, draws=args.draws, seed=args.seed)
        else:
            raise ConfigError(f"{args.model}: is a {model.kind} model; impute needs a tabular model or an imputer")
    else:
        from ganstream.trainers.tabular.imputer import GainConfig, TabularImputer
        cfg = GainConfig(seed=args.seed)
        if args.epochs:
            cfg.epochs = args.epochs
        out.info(f"fitting imputer on {args.data}: {len(table):,} rows, {holes:,} missing cells")
        imputer = TabularImputer(cfg).fit(table, progress=out.progress("impute"))
        draws = imputer.transform(table, draws=args.draws, seed=args.seed)
    if args.draws == 1:
        result = draws[0]
    else:
        result = pd.concat([d.assign(draw=k) for k, d in enumerate(draws)], ignore_index=True)
        result = result[["draw", *table.columns]]
    write_table(result, args.out)
    out.info(f"filled {holes:,} missing cells x {args.draws} draw(s); wrote {args.out}")
    return 0

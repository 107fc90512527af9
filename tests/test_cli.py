"""The `ganstream` CLI end to end on a small real table, and every bad input it promises to handle:
one readable line on stderr, exit status 2, and no output file."""

import json
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from ganstream.pipeline.cli import main
from helpers import run



@pytest.fixture(scope="module")
def model_dir(tmp_path_factory, small_csv):
    out = tmp_path_factory.mktemp("cli") / "model"
    assert main(["--quiet", "train", str(small_csv), "--kind", "tabular", "--missing-token", "?",
                 "--epochs", "2", "--imputer-epochs", "2", "--batch-size", "100", "--seed", "0",
                 "--out", str(out)]) == 0
    return out


def test_train_sample_impute_evaluate_end_to_end(model_dir, small_csv, tmp_path, capsys):
    assert (model_dir / "model.json").is_file()
    code, _, _ = run(["sample", model_dir, "--rows", 250, "--seed", 1, "--out", tmp_path / "s.parquet"], capsys)
    assert code == 0
    s = pd.read_parquet(tmp_path / "s.parquet")
    assert len(s) == 250 and list(s.columns) == list(pd.read_csv(small_csv).columns)

    code, _, _ = run(["sample", model_dir, "--rows", 100, "--condition", "sex=Female", "--missing", "fill",
                      "--out", tmp_path / "f.csv"], capsys)
    assert code == 0
    f = pd.read_csv(tmp_path / "f.csv")
    assert (f["sex"] == " Female").all() and not f.isna().any().any()

    code, _, _ = run(["impute", small_csv, "--missing-token", "?", "--model", model_dir, "--draws", 2,
                      "--out", tmp_path / "i.csv"], capsys)
    assert code == 0
    imputed = pd.read_csv(tmp_path / "i.csv")
    real = pd.read_csv(small_csv)
    assert len(imputed) == 2 * len(real) and list(imputed.columns) == ["draw", *real.columns]
    assert not imputed.isin([" ?"]).any().any() and not imputed.isna().any().any()
    observed = real != " ?"
    for k in (0, 1):
        draw = imputed[imputed["draw"] == k].drop(columns="draw").reset_index(drop=True)
        assert (draw[observed] == real[observed]).sum().sum() == observed.sum().sum()

    code, out, _ = run(["evaluate", model_dir, "--real", small_csv, "--missing-token", "?", "--target", "income",
                        "--json"], capsys)
    assert code == 0
    report = json.loads(out)
    assert 0.0 <= report["detection_auc"] <= 1.0 and report["utility"]["ratio"] >= 0.0
    # the verdicts: the default gate on every figure it checks, with its direction; the F1 names its class
    checks = {c["key"]: c for c in report["verdicts"]["checks"]}
    assert set(checks) == {"detection_auc", "marginal_mean_distance", "utility_ratio", "dcr_ratio", "exact_copy_rate"}
    assert checks["detection_auc"]["better"] == "lower" and checks["dcr_ratio"]["better"] == "higher"
    assert checks["detection_auc"]["passed"] == (report["detection_auc"] <= 0.99)
    assert report["verdicts"]["passed"] == all(c["passed"] is not False for c in checks.values())
    assert report["utility"]["positive_class"].strip() == ">50K"  # Adult's rarer class (the raw file has ' >50K')
    code, out, _ = run(["evaluate", model_dir, "--real", small_csv, "--missing-token", "?", "--target", "income"],
                       capsys)
    assert code == 0 and "utility (F1 of class ' >50K')" in out and "default gate: " in out
    assert "detection_auc" in out and "(lower is better)" in out and "(higher is better)" in out


def test_same_seed_gives_identical_files(model_dir, tmp_path, capsys):
    for name in ("a.csv", "b.csv"):
        assert run(["sample", model_dir, "--rows", 300, "--seed", 9, "--out", tmp_path / name], capsys)[0] == 0
    assert (tmp_path / "a.csv").read_bytes() == (tmp_path / "b.csv").read_bytes()


def test_impute_without_model_fits_on_the_data(small_csv, tmp_path, capsys):
    code, _, _ = run(["impute", small_csv, "--missing-token", "?", "--epochs", 2, "--seed", 3,
                      "--out", tmp_path / "i.parquet"], capsys)
    assert code == 0
    out = pd.read_parquet(tmp_path / "i.parquet")
    assert not out.isna().any().any() and len(out) == len(pd.read_csv(small_csv))


def test_console_script_help_and_error_exit_codes(tmp_path):
    exe = [sys.executable, "-m", "ganstream.pipeline.cli"]
    help_text = subprocess.run([*exe, "sample", "--help"], capture_output=True, text=True, check=True).stdout
    assert "--condition" in help_text and "--missing" in help_text
    r = subprocess.run([*exe, "sample", str(tmp_path / "nope"), "--rows", "3", "--out", str(tmp_path / "x.csv")],
                       capture_output=True, text=True)
    assert r.returncode == 2 and r.stderr.count("\n") == 1 and "not a ganstream model directory" in r.stderr
    assert not (tmp_path / "x.csv").exists()


# ---------------------------------------------------------------- bad input
def _bad_tables(tmp_path):
    (tmp_path / "empty.csv").write_text("")
    (tmp_path / "header_only.csv").write_text("a,b\n")
    (tmp_path / "corrupt.parquet").write_bytes(b"PAR1 this is not parquet")
    pd.DataFrame({"a": [1.0, 2.0, 3.0], "b": [np.nan] * 3}).to_csv(tmp_path / "all_missing.csv", index=False)
    pd.DataFrame({"a": [1.0, np.inf, 3.0], "b": [1, 2, 3]}).to_parquet(tmp_path / "inf.parquet")
    (tmp_path / "emptydir").mkdir()
    (tmp_path / "data.txt").write_text("a,b\n1,2\n")
    return {
        "missing file": (tmp_path / "nope.csv", "no such file"),
        "empty file": (tmp_path / "empty.csv", "empty"),
        "no rows": (tmp_path / "header_only.csv", "no rows"),
        "corrupt parquet": (tmp_path / "corrupt.parquet", "cannot read"),
        "all-missing column": (tmp_path / "all_missing.csv", "entirely missing"),
        "inf values": (tmp_path / "inf.parquet", "infinite"),
        "dir without parquet": (tmp_path / "emptydir", "no .parquet"),
        "unsupported type": (tmp_path / "data.txt", "unsupported file type"),
    }


@pytest.mark.parametrize("case", ["missing file", "empty file", "no rows", "corrupt parquet", "all-missing column",
                                  "inf values", "dir without parquet", "unsupported type"])
def test_train_bad_data(case, tmp_path, capsys):
    data, message = _bad_tables(tmp_path)[case]
    code, _, err = run(["train", data, "--epochs", 1, "--batch-size", 10, "--out", tmp_path / "model"], capsys)
    assert code == 2 and message in err and err.count("\n") == 1
    assert not (tmp_path / "model").exists()


@pytest.mark.parametrize("case", ["missing file", "empty file", "all-missing column", "corrupt parquet"])
def test_impute_bad_data(case, tmp_path, capsys):
    data, message = _bad_tables(tmp_path)[case]
    code, _, err = run(["impute", data, "--out", tmp_path / "out.csv"], capsys)
    assert code == 2 and message in err
    assert not (tmp_path / "out.csv").exists()


@pytest.mark.parametrize("args, message", [
    (["--rows", "0"], "--rows must be >= 1"),
    (["--rows", "-3"], "--rows must be >= 1"),
    (["--rows", "ten"], "--rows must be an integer"),
    (["--rows", "5", "--condition", "planet=Mars"], "unknown condition column"),
    (["--rows", "5", "--condition", "income=rich"], "not a known category"),
    (["--rows", "5", "--condition", "age=30"], "conditions need a categorical"),
    (["--rows", "5", "--condition", "income"], "column=value"),
    (["--rows", "5", "--steps", "4"], "--steps applies to time-series models only"),
])
def test_sample_bad_options(model_dir, tmp_path, capsys, args, message):
    out = tmp_path / "out.csv"
    if "--rows" in args and args[1] in ("0", "-3", "ten") or "income" == args[-1]:
        with pytest.raises(SystemExit) as exc:  # argparse usage errors exit 2 themselves
            main(["sample", str(model_dir), *args, "--out", str(out)])
        assert exc.value.code == 2
        err = capsys.readouterr().err
    else:
        code, _, err = run(["sample", model_dir, *args, "--out", out], capsys)
        assert code == 2
    assert message in err and not out.exists()


def test_sample_from_a_directory_that_is_not_a_model(tmp_path, capsys):
    (tmp_path / "notmodel").mkdir()
    (tmp_path / "notmodel" / "readme.txt").write_text("hi")
    code, _, err = run(["sample", tmp_path / "notmodel", "--rows", 5, "--out", tmp_path / "o.csv"], capsys)
    assert code == 2 and "not a ganstream model directory" in err and not (tmp_path / "o.csv").exists()


def test_output_path_is_checked_before_any_work(model_dir, tmp_path, capsys):
    code, _, err = run(["sample", model_dir, "--rows", 5, "--out", tmp_path / "o.txt"], capsys)
    assert code == 2 and ".csv or .parquet" in err


def test_train_refuses_to_overwrite_a_non_model_directory(small_csv, tmp_path, capsys):
    victim = tmp_path / "precious"
    victim.mkdir()
    (victim / "thesis.tex").write_text("do not delete")
    code, _, err = run(["train", small_csv, "--epochs", 1, "--out", victim], capsys)
    assert code == 2 and "refusing to overwrite" in err and (victim / "thesis.tex").exists()


def test_evaluate_unknown_target(model_dir, small_csv, capsys):
    code, _, err = run(["evaluate", model_dir, "--real", small_csv, "--missing-token", "?", "--target", "salary"], capsys)
    assert code == 2 and "--target column 'salary'" in err


def test_epoch_lines_are_compact_by_default_full_with_verbose_and_absent_with_quiet(small_csv, tmp_path, capsys):
    """Progress goes to stderr: by default one short line per reported epoch (epoch, losses, rows/s, eta);
    --verbose adds every figure of the epoch's record; --quiet prints no progress and no schema at all."""
    args = ["train", str(small_csv), "--missing-token", "?", "--epochs", "2", "--imputer-epochs", "2",
            "--batch-size", "100"]
    lines = {}
    for mode in ("default", "verbose", "quiet"):
        flag = {"default": [], "verbose": ["--verbose"], "quiet": ["--quiet"]}[mode]
        assert main([*flag, *args, "--out", str(tmp_path / mode)]) == 0
        out, err = capsys.readouterr()
        lines[mode] = [line for line in err.splitlines() if line.startswith("[train] epoch")]
        if mode == "quiet":
            assert err == "" and lines[mode] == []
    assert lines["default"] and lines["verbose"]
    for line in lines["default"]:
        assert len(line) <= 110 and all(k in line for k in ("d_loss", "g_loss", "rows/s", "eta")), line
    compact_figures = len(lines["default"][-1].split())
    assert all(len(line.split()) > compact_figures + 4 for line in lines["verbose"]), lines["verbose"][-1]

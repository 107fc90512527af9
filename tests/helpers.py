"""Helpers shared by the test modules (conftest.py holds the fixtures)."""

from __future__ import annotations

from ganstream.pipeline.cli import main


def run(argv, capsys):
    """`ganstream --quiet ARGV` in this process: (exit code, stdout, stderr)."""
    code = main(["--quiet", *map(str, argv)])
    out, err = capsys.readouterr()
    return code, out, err

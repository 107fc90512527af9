"""argparse value types shared by every sub-command: one place that words the "must be a positive ..."
messages."""

from __future__ import annotations

import argparse


def _positive(name: str, kind: type, noun: str, bound: str, ok):
    def parse(text: str):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{name} must be {noun} (got {text!r})") from None
        if not ok(value):
            raise argparse.ArgumentTypeError(f"{name} must be {bound} (got {value})")
        return value
    return parse


def positive_int(name: str):
    """An integer >= 1; `name` is the flag, quoted in the error."""
    return _positive(name, int, "an integer", ">= 1", lambda v: v >= 1)


def positive_float(name: str):
    """A number > 0 (rates, durations)."""
    return _positive(name, float, "a number", "> 0", lambda v: v > 0)


def number_at_least(name: str, minimum: float):
    """A number >= `minimum` (a size with a floor, e.g. Ray's minimum object store)."""
    return _positive(name, float, "a number", f">= {minimum:g}", lambda v: v >= minimum)


def condition(text: str) -> tuple[str, str]:
    """--condition COLUMN=VALUE."""
    if "=" not in text:
        raise argparse.ArgumentTypeError(f"--condition must look like column=value (got {text!r})")
    col, value = text.split("=", 1)
    return col.strip(), value

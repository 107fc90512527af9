"""argparse value types shared by every sub-command (`ganstream train`'s Ray options live in trainers/, the
rest in pipeline/): one place that words the "must be a positive ..." messages."""

from __future__ import annotations

import argparse


def positive_int(name: str):
    """An integer >= 1; `name` is the flag, quoted in the error."""
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{name} must be an integer (got {text!r})") from None
        if value < 1:
            raise argparse.ArgumentTypeError(f"{name} must be >= 1 (got {value})")
        return value
    return parse


def positive_float(name: str):
    """A number > 0 (rates, durations)."""
    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{name} must be a number (got {text!r})") from None
        if not value > 0:
            raise argparse.ArgumentTypeError(f"{name} must be > 0 (got {value})")
        return value
    return parse

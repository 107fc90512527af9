"""What the user sees while a command runs: one-line notes and per-epoch progress on stderr (stdout stays for
results a script may read), silenced by --quiet, widened by --verbose."""

from __future__ import annotations

import sys
from dataclasses import dataclass
from typing import TextIO

from ganstream.trainers.progress import ConsoleProgress, ProgressFn


@dataclass
class Console:
    quiet: bool = False
    verbose: bool = False
    stream: TextIO | None = None

    def info(self, message: str) -> None:
        if not self.quiet:
            print(message, file=self.stream or sys.stderr, flush=True)

    def progress(self, label: str) -> ProgressFn | None:
        if self.quiet:
            return None
        return ConsoleProgress(label, stream=self.stream, verbose=self.verbose)


SILENT = Console(quiet=True)

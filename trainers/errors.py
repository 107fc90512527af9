"""Typed errors and the exit-code contract. Anything a user can cause (bad path, bad schema, bad option) or an
operator can fix (a server down, a full disk) raises a subclass of GanstreamError with a message written for a
person; the command line prints it as one line and exits with its `exit_code`. Anything else is a bug and keeps
its traceback.

Exit codes, for schedulers (cron, Airflow, Kubernetes), in one place:

    0  done
    2  bad input or configuration: fix the command, the job file or the data (retrying will not help)
    3  the quality gate refused the fit (nothing registered, the alias did not move)
    4  infrastructure: Ray, the tracking server, the disk; retrying later may work
    5  another run of the same job is still going
"""

import errno

EXIT_OK = 0
EXIT_INPUT = 2
EXIT_GATE = 3
EXIT_INFRASTRUCTURE = 4
EXIT_BUSY = 5


class GanstreamError(Exception):
    """Base class of every error a user can trigger and fix."""

    exit_code = EXIT_INPUT


class DataError(GanstreamError):
    """The input table cannot be used: unreadable, empty, wrong dtype, all-missing column, inf, ..."""


class ModelError(GanstreamError):
    """A model directory (or URI) is missing, incomplete, or of the wrong kind."""


class ConfigError(GanstreamError):
    """An option has an invalid value (e.g. --rows 0, unknown --condition column)."""


class InfrastructureError(GanstreamError):
    """Something outside the input failed: a Ray cluster that cannot start or be reached, a tracking server
    that does not answer, a full disk. Retrying later may work."""

    exit_code = EXIT_INFRASTRUCTURE


_DISK_FULL_ERRNOS = (errno.ENOSPC, errno.EDQUOT)
_DISK_FULL_TEXT = ("no space left on device", "disk quota exceeded", "[errno 28]")


def disk_full(error: BaseException, target: str | None = None) -> InfrastructureError | None:
    """The one-line InfrastructureError a full disk deserves, wherever it surfaced: raised directly (an OSError
    with ENOSPC or EDQUOT), as the cause of a wrapping error, or only in the text of one (Beam and pyarrow re-raise
    it as a RuntimeError whose message quotes it). None when `error` is not about a full disk. `target`: what the
    command was writing, named when the error does not say."""
    seen: set[int] = set()
    stack: list[BaseException | None] = [error]
    while stack:
        e = stack.pop()
        if e is None or id(e) in seen:
            continue
        seen.add(id(e))
        path = getattr(e, "filename", None) if isinstance(e, OSError) else None
        if (isinstance(e, OSError) and e.errno in _DISK_FULL_ERRNOS) or any(t in str(e).lower() for t in _DISK_FULL_TEXT):
            where = path or target
            return InfrastructureError(f"no space left on the device{f' of {where}' if where else ''}: free some "
                                       "space and run it again (files already complete are kept, none is partial)")
        stack += [e.__cause__, e.__context__]
    return None

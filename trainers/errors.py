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

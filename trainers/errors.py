"""Typed errors. Anything a user can cause (bad path, bad schema, bad option) raises a subclass of
GanstreamError with a message written for a person; the CLI prints it as one line and exits non-zero.
Anything else is a bug and keeps its traceback."""


class GanstreamError(Exception):
    """Base class of every error a user can trigger and fix."""

    exit_code = 2


class DataError(GanstreamError):
    """The input table cannot be used: unreadable, empty, wrong dtype, all-missing column, inf, ..."""


class ModelError(GanstreamError):
    """A model directory (or URI) is missing, incomplete, or of the wrong kind."""


class ConfigError(GanstreamError):
    """An option has an invalid value (e.g. --rows 0, unknown --condition column)."""

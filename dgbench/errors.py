"""Errors that the CLI turns into one line and exit code 2 (bad input), never a traceback."""


class DgbenchError(Exception):
    """Bad input from the user: a suite, a flag, a path, a model name. Message is one line and says how to fix it."""

    exit_code = 2


class ConfigError(DgbenchError):
    """A suite or an override is malformed; the message names the file, the field and the fix."""


class ResultsError(DgbenchError):
    """A results directory or file is missing or corrupted."""

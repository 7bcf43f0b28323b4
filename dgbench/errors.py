"""Errors that the CLI turns into one line and exit code 2 (bad input), never a traceback; and the
exit codes every command returns (one table, so `run --gate-against` and `gate` agree)."""

# 0 success; 1 a measured failure (points failed, a gate regression, a model that does not fit);
# 2 bad input (suite, flag, path, baseline); 130 interrupted (the shell's code for SIGINT).
EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130
EXIT_POINTS_FAILED = EXIT_REGRESSION = EXIT_DOES_NOT_FIT = EXIT_FAILED
# `dgbench gate --cannot-tell fail`: no regression found, but the noise hides changes above the threshold.
EXIT_CANNOT_TELL = 3


class DgbenchError(Exception):
    """Bad input from the user: a suite, a flag, a path, a model name. Message is one line and says how to fix it."""

    exit_code = EXIT_USAGE


class ConfigError(DgbenchError):
    """A suite or an override is malformed; the message names the file, the field and the fix."""


class ResultsError(DgbenchError):
    """A results directory or file is missing or corrupted."""

"""The one error boundary every `dgbench` command runs inside.

What a user can cause ends in one line on stderr and exit 2, never a traceback: dgbench's own errors
(DgbenchError: a suite, a flag, a results file), and the Python errors bad input raises wherever it is
met (OSError from a path, UnicodeDecodeError from a file that is not UTF-8, RecursionError from input
nested too deeply, MemoryError from input too large). Interrupts end with their own codes. Anything
else is a bug in dgbench: it still surfaces, as "internal error, please report" with the traceback
saved to a file. `--debug` (or DGBENCH_DEBUG=1) prints the full traceback of any error instead.

Exit codes: 0 ok, 1 some points failed / gate regression, 2 bad input, 3 internal error,
130 interrupted by SIGINT (Ctrl-C), 143 terminated by SIGTERM (both leave a run `interrupted`),
141 the reader of stdout went away (`dgbench list models | head`), as a tool killed by SIGPIPE reports.
"""

from __future__ import annotations

import errno
import os
import signal
import sys
import tempfile
import traceback
from collections.abc import Callable
from datetime import datetime, timezone

from dgbench.errors import (EXIT_BROKEN_PIPE, EXIT_INTERNAL, EXIT_INTERRUPTED, EXIT_TERMINATED, EXIT_USAGE,
                            DgbenchError)
from dgbench.textsafe import one_line
DEBUG_ENV = "DGBENCH_DEBUG"

# What to do about an OSError, by errno: the message names the path, the system's words, and this.
_OS_FIXES = {
    errno.ENOENT: "check the path",
    errno.ENOTDIR: "a part of the path is a file, not a folder",
    errno.EISDIR: "give a file, not a folder",
    errno.EACCES: "choose a path you may read/write, or fix its permissions",
    errno.EPERM: "choose a path you may read/write, or fix its permissions",
    errno.EROFS: "the filesystem is read-only; choose a writable folder (e.g. --out /tmp/results)",
    errno.ENOSPC: "the disk is full; free space or choose another folder",
    errno.EDQUOT: "the disk quota is exhausted; free space or choose another folder",
    errno.ENAMETOOLONG: "the name is too long for this filesystem; use a shorter name or folder",
    errno.EEXIST: "it already exists; choose another name or remove it",
    errno.EFBIG: "the file grew past the allowed size (ulimit -f)",
    errno.ELOOP: "the path loops through symbolic links",
    errno.EMFILE: "too many open files (ulimit -n)",
}


class Terminated(BaseException):
    """SIGTERM, raised like KeyboardInterrupt so every `finally` (run.json status, file handles) runs.
    A BaseException, so `except Exception` around a point does not swallow it."""


def _on_sigterm(signum, frame):
    raise Terminated()


def install_sigterm():
    """Turn SIGTERM into `Terminated` in the main thread (a no-op elsewhere, where signals cannot be set);
    returns the previous handler (None when nothing was installed)."""
    import threading

    if threading.current_thread() is threading.main_thread():
        return signal.signal(signal.SIGTERM, _on_sigterm)
    return None


def debug_enabled(argv: list[str] | None) -> bool:
    argv = sys.argv[1:] if argv is None else argv
    return "--debug" in argv or os.environ.get(DEBUG_ENV, "").strip() not in ("", "0", "false", "no")


def describe_os_error(e: OSError) -> str:
    where = e.filename if e.filename is not None else ""
    if getattr(e, "filename2", None):
        where = f"{where} -> {e.filename2}"
    words = e.strerror or str(e) or type(e).__name__
    fix = _OS_FIXES.get(e.errno or -1)
    return f"{where + ': ' if where else ''}{words}" + (f"; {fix}" if fix else "")


_PATH_NAMES = ("path", "file", "filename", "source", "manifest", "run_dir", "folder")


def _input_named_in(tb) -> str | None:
    """The file being read when an error without a file name (UnicodeDecodeError, RecursionError) was
    raised: the innermost frame holding a local named like a path. A hint for the message only."""
    frames = []
    while tb is not None:
        frames.append(tb.tb_frame)
        tb = tb.tb_next
    for frame in reversed(frames):
        for name in _PATH_NAMES:
            value = frame.f_locals.get(name)
            if isinstance(value, (str, os.PathLike)) and str(value):
                return str(value)
    return None


def describe(exc: BaseException) -> str | None:
    """The one line for an error caused by input, or None when it is a bug."""
    if isinstance(exc, DgbenchError):
        return str(exc)
    if isinstance(exc, OSError):
        return describe_os_error(exc)
    where = _input_named_in(exc.__traceback__)
    prefix = f"{where}: " if where else ""
    if isinstance(exc, UnicodeDecodeError):
        bad = exc.object[exc.start:exc.start + 1].hex() if isinstance(exc.object, bytes) else "?"
        return (f"{prefix}input is not {exc.encoding} text (byte 0x{bad} at offset {exc.start}); save the file "
                "as UTF-8")
    if isinstance(exc, RecursionError):
        return f"{prefix}input is nested too deeply to read (recursion limit); flatten the file"
    if isinstance(exc, MemoryError):
        return f"{prefix}out of memory while handling the input; it is too large for this machine"
    return None


def save_traceback(exc: BaseException) -> str | None:
    """Write the traceback of a bug where the user can attach it to a report; None when nothing is writable."""
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    text = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
    text = f"dgbench internal error, {stamp}\nargv: {sys.argv!r}\n\n{text}"
    for folder in (os.environ.get("DGBENCH_CRASH_DIR"), tempfile.gettempdir(), os.getcwd()):
        if not folder:
            continue
        try:
            fd, path = tempfile.mkstemp(prefix=f"dgbench-crash-{stamp}-", suffix=".txt", dir=folder)
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                f.write(text)
            return path
        except OSError:
            continue
    return None


def _say(message: str) -> None:
    try:
        print(f"dgbench: {one_line(message)}", file=sys.stderr)
    except (OSError, ValueError):  # stderr closed: nothing more can be said
        pass


def guarded(body: Callable[[], int], argv: list[str] | None = None) -> int:
    """Run one command and map how it ended to an exit code (see the module docstring)."""
    debug = debug_enabled(argv)
    previous = install_sigterm()
    try:
        return _run(body, debug)
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


def _run(body: Callable[[], int], debug: bool) -> int:
    try:
        return body()
    except SystemExit as e:  # argparse's own usage errors (already one line), --help, --version
        if isinstance(e.code, str):  # sys.exit("message"): say it as one line
            _say(f"error: {e.code}")
        return e.code if isinstance(e.code, int) else (0 if e.code is None else EXIT_USAGE)
    except KeyboardInterrupt:
        if debug:
            traceback.print_exc()
        _say("interrupted")
        return EXIT_INTERRUPTED
    except Terminated:
        if debug:
            traceback.print_exc()
        _say("terminated (SIGTERM)")
        return EXIT_TERMINATED
    except BrokenPipeError:
        # The reader went away (`dgbench list models | head`): not an error of ours, and nothing to
        # print to. Point stdout at devnull so the interpreter's final flush does not complain.
        try:
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        except (OSError, ValueError):
            pass
        return EXIT_BROKEN_PIPE
    except BaseException as e:  # noqa: BLE001 - this is the boundary: every way out is mapped here
        line = describe(e)
        if debug:
            traceback.print_exc()
        if line is not None:
            _say(f"error: {line}")
            return getattr(e, "exit_code", EXIT_USAGE)
        saved = save_traceback(e)
        where = f"; the traceback is in {saved}" if saved else ""
        _say(f"internal error, please report ({type(e).__name__}: {str(e)[:200]}){where} "
             f"(rerun with --debug to see it here)")
        return EXIT_INTERNAL

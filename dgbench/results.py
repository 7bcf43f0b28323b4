"""The results store: one directory per run holding run.json and points.jsonl.

Versioned schema, written so that no crash, kill or full disk loses anything already measured:
- run.json is replaced atomically: a uniquely named temp file in the same folder (two writers never
  share one), fsync, rename.
- every finished sweep point is appended to points.jsonl as one line and fsynced before the next
  point starts. A write that fails midway (disk full) is cut back to where it began. Before the first
  append, a torn last line left by a kill or power loss is cut back to the last newline, the fragment
  kept beside the file (points.jsonl.torn-<time>), so the next record never lands on a fragment.
- one process at a time writes a run directory: `RunLock` holds an flock on RUN_DIR/.lock (released by
  the kernel when the holder dies) with the holder's pid in it, and a second run or resume is refused
  with that pid.
Reading checks every record against dgbench/results_schema.py. Imports no torch: report/ and gate/ read
runs cheaply. This module is the one writer API (RunStore, RunLock, open_append/write_record).
"""

from __future__ import annotations

import errno
import json
import os
import re
import tempfile
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from dgbench.errors import DgbenchError, ResultsError
from dgbench.results_schema import POINT, RUN, SAMPLE, require

SCHEMA_VERSION = 1
RUN_FILE = "run.json"
POINTS_FILE = "points.jsonl"
SAMPLES_FILE = "samples.jsonl"
LOCK_FILE = ".lock"
# Run directory names stay well under NAME_MAX (255 bytes on ext4/xfs/tmpfs) with the stamp and suffix.
MAX_NAME_BYTES = 120
REQUESTS_FILE = "requests.jsonl"   # serve scenario: one line per request sent


def utc_stamp(now: datetime | None = None) -> str:
    return (now or datetime.now(timezone.utc)).strftime("%Y%m%dT%H%M%SZ")


def _short_name(name: str) -> str:
    safe = re.sub(r"[^A-Za-z0-9_.-]+", "-", name).strip(".-") or "suite"
    return safe[:MAX_NAME_BYTES]


def default_run_dir(root: Path, suite_name: str) -> Path:
    """A fresh, not yet existing run directory under root (not created here; RunStore.create makes it)."""
    safe = _short_name(suite_name)
    path = root / f"{utc_stamp()}-{safe}"
    n = 1
    while path.exists():  # two runs in the same second stay apart
        n += 1
        path = root / f"{utc_stamp()}-{safe}-{n}"
    return path


def new_run_dir(root: Path, suite_name: str) -> Path:
    """Create and return a fresh run directory under root. mkdir without exist_ok claims the name, so
    two runs started in the same second by two processes never share a directory."""
    Path(root).mkdir(parents=True, exist_ok=True)
    for _ in range(1000):
        path = default_run_dir(Path(root), suite_name)
        try:
            path.mkdir()
            return path
        except FileExistsError:
            continue
    raise ResultsError(f"{root}: could not find a free run directory name; clean up old runs")


def ensure_writable_dir(path: Path, what: str) -> Path:
    """Create `path` (and parents) and prove a file can be written there, before any measuring or
    training starts: a read-only filesystem, /proc, a path through a regular file or a full disk is
    then one line now instead of a crash after the work. `what` names the flag (e.g. "--out")."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise DgbenchError(f"{what} {path}: exists and is not a folder; give a folder path")
    try:
        path.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(prefix=".dgbench-write-check-", dir=path)
        try:
            os.write(fd, b"x\n")
            os.fsync(fd)
        finally:
            os.close(fd)
            os.unlink(probe)
    except OSError as e:
        from dgbench.boundary import describe_os_error

        raise DgbenchError(f"{what} {path}: cannot write there ({describe_os_error(e)})") from None
    return path


def ensure_writable_file(path: str | os.PathLike, what: str) -> Path:
    """Check, before the work that produces it, that an output file can be written: not a folder, and
    its folder (created) takes a file."""
    path = Path(path)
    if path.is_dir():
        raise DgbenchError(f"{what} {path}: is a folder; give a file path")
    ensure_writable_dir(path.parent if str(path.parent) else Path("."), what)
    return path


def atomic_write_text(path: Path, text: str) -> None:
    """Replace `path` with `text` atomically. The temp name is unique (mkstemp), so two processes
    writing the same file never truncate each other's temp file."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def atomic_write_json(path: Path, data: Any) -> None:
    atomic_write_text(path, json.dumps(data, indent=2, sort_keys=True, default=str) + "\n")


def repair_torn_tail(path: Path) -> Path | None:
    """Cut a final line without its newline (a write killed midway) back to the last newline, saving the
    fragment next to the file. Returns where the fragment went, or None when the file was whole."""
    path = Path(path)
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        return None
    if size == 0:
        return None
    with open(path, "rb+") as f:
        f.seek(size - 1)
        if f.read(1) == b"\n":
            return None
        # Scan back in blocks for the last newline: the fragment may be long (a big record).
        pos, cut = size, 0
        while pos > 0:
            start = max(0, pos - 65536)
            f.seek(start)
            block = f.read(pos - start)
            i = block.rfind(b"\n")
            if i >= 0:
                cut = start + i + 1
                break
            pos = start
        f.seek(cut)
        fragment = f.read()
        keep = path.with_name(f"{path.name}.torn-{utc_stamp()}-{os.getpid()}")
        with open(keep, "wb") as out:
            out.write(fragment)
            out.flush()
            os.fsync(out.fileno())
        f.truncate(cut)
        f.flush()
        os.fsync(f.fileno())
    return keep


def open_append(path: Path):
    """An unbuffered append handle on a JSON-lines file whose torn tail (if any) was repaired first.
    Unbuffered, so a failed write leaves nothing pending in a buffer that a later flush could add."""
    repair_torn_tail(path)
    return open(path, "ab", buffering=0)


def write_record(fh, record: dict) -> None:
    """Append one JSON line and make it durable (fsync) before returning. A write that fails midway
    (ENOSPC, EFBIG) is cut back to where it began, so the file never ends in a fragment."""
    line = (json.dumps(record, sort_keys=True, default=str) + "\n").encode("utf-8")
    fd = fh.fileno()
    start = os.lseek(fd, 0, os.SEEK_END)
    try:
        view = memoryview(line)
        while view:
            view = view[os.write(fd, view):]
        os.fsync(fd)
    except OSError:
        try:
            os.ftruncate(fd, start)
        except OSError:
            pass
        raise


class RunLocked(DgbenchError):
    """Another live process writes this run directory."""


class RunLock:
    """An exclusive flock on RUN_DIR/.lock naming its holder. The kernel drops it when the holder exits
    or is killed, so a stale lock never blocks a resume."""

    def __init__(self, run_dir: Path):
        self.path = Path(run_dir) / LOCK_FILE
        self.fd: int | None = None

    def acquire(self) -> "RunLock":
        import fcntl

        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as e:
            if e.errno not in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                os.close(fd)
                raise
            holder = os.pread(fd, 200, 0).decode("utf-8", "replace").strip() or "another process"
            os.close(fd)
            raise RunLocked(f"{self.path.parent}: in use by {holder}; wait for it to finish or stop it "
                            "(kill PID), then resume") from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"pid {os.getpid()} ({' '.join(__import__('sys').argv)[:150]})".encode(), 0)
        self.fd = fd
        return self

    def release(self) -> None:
        if self.fd is not None:
            try:
                os.ftruncate(self.fd, 0)
            except OSError:
                pass
            os.close(self.fd)  # closing drops the flock
            self.fd = None

    def __enter__(self):
        return self.acquire()

    def __exit__(self, *exc):
        self.release()


def read_jsonl(path: Path, rule, *, skip_torn_tail: bool = True) -> list[dict]:
    """Every record of a JSON-lines file, each checked against `rule`. A torn final line (no newline:
    killed mid-write) is skipped; any other undecodable line is a ResultsError naming file:line."""
    data = Path(path).read_bytes()
    lines = data.split(b"\n")
    torn = bool(lines) and lines[-1] != b""
    out = []
    for i, raw in enumerate(lines, 1):
        if not raw.strip():
            continue
        last = i == len(lines)
        try:
            record = json.loads(raw.decode("utf-8"))
        except UnicodeDecodeError:
            if last and torn and skip_torn_tail:
                continue
            raise ResultsError(f"{path}:{i}: not UTF-8 text; delete that line to re-run its point") from None
        except (json.JSONDecodeError, RecursionError):
            if last and torn and skip_torn_tail:  # torn final line: that point is simply not done
                continue
            raise ResultsError(f"{path}:{i}: corrupted line; delete it to re-run that point") from None
        require(record, rule, f"{path}:{i}", "delete that line to re-run its point, or restore the file")
        out.append(record)
    return out


@dataclass
class RunStore:
    """Writes and reads one run directory."""

    path: Path
    _points_fh: Any = field(default=None, repr=False)
    _samples_fh: Any = field(default=None, repr=False)
    _requests_fh: Any = field(default=None, repr=False)

    @property
    def run_file(self) -> Path:
        return self.path / RUN_FILE

    @property
    def points_file(self) -> Path:
        return self.path / POINTS_FILE

    @property
    def samples_file(self) -> Path:
        return self.path / SAMPLES_FILE

    _lock: RunLock | None = field(default=None, repr=False)

    def create(self, run_meta: dict) -> None:
        """Make a new run directory (refused if it already holds a run), lock it, write run.json."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.path.mkdir(exist_ok=True)
        self.lock()
        if self.run_file.exists():
            self.unlock()
            raise ResultsError(f"{self.path}: already holds a run; use --resume {self.path} or another --out")
        self.write_meta(run_meta)

    def lock(self) -> None:
        """Take the run directory for this process; a second writer gets RunLocked (exit 2) naming us."""
        if self._lock is None:
            self._lock = RunLock(self.path).acquire()

    def unlock(self) -> None:
        if self._lock is not None:
            self._lock.release()
            self._lock = None

    def write_meta(self, run_meta: dict) -> None:
        atomic_write_json(self.run_file, {"schema_version": SCHEMA_VERSION, **run_meta})

    def read_meta(self) -> dict:
        if not self.run_file.is_file():
            raise ResultsError(f"{self.run_file}: no such file; is {self.path} a dgbench run directory?")
        try:
            meta = json.loads(self.run_file.read_bytes().decode("utf-8"))
        except UnicodeDecodeError:
            raise ResultsError(f"{self.run_file}: not UTF-8 text; restore the file or re-run") from None
        except json.JSONDecodeError as e:
            raise ResultsError(f"{self.run_file}: corrupted JSON at line {e.lineno}: {e.msg}") from None
        except RecursionError:
            raise ResultsError(f"{self.run_file}: JSON nested too deeply; restore the file or re-run") from None
        if not isinstance(meta, dict):
            raise ResultsError(f"{self.run_file}: expected a JSON object, got {type(meta).__name__}; "
                               "restore the file or re-run")
        version = meta.get("schema_version")
        if version != SCHEMA_VERSION:
            raise ResultsError(
                f"{self.run_file}: schema_version {version!r}, this dgbench reads {SCHEMA_VERSION}; "
                "re-run the suite or use the dgbench version that wrote it")
        require(meta, RUN, str(self.run_file))
        return meta

    def _append(self, handle_attr: str, path: Path, record: dict) -> None:
        """Append one JSON line and make it durable (fsync) before returning."""
        if getattr(self, handle_attr) is None:
            setattr(self, handle_attr, open_append(path))
        write_record(getattr(self, handle_attr), record)

    def append_point(self, record: dict) -> None:
        """Append one finished point."""
        self._append("_points_fh", self.points_file, record)

    def append_sample(self, record: dict) -> None:
        """Append one scored quality sample (samples.jsonl)."""
        self._append("_samples_fh", self.samples_file, record)

    def append_request(self, record: dict) -> None:
        """Append one request of a serve point (requests.jsonl)."""
        self._append("_requests_fh", self.path / REQUESTS_FILE, record)

    def close(self) -> None:
        for attr in ("_points_fh", "_samples_fh", "_requests_fh"):
            if getattr(self, attr) is not None:
                getattr(self, attr).close()
                setattr(self, attr, None)
        self.unlock()

    def read_samples(self) -> list[dict]:
        """Every sample line (a torn final line is skipped). A resumed run may hold a point's samples
        twice when that point failed midway; readers key samples by their point_id and keep the last run."""
        if not self.samples_file.is_file():
            return []
        return read_jsonl(self.samples_file, SAMPLE)

    def read_points(self) -> list[dict]:
        """Every point record, the last record of a point id winning (a resumed run may re-run failed points)."""
        if not self.points_file.is_file():
            return []
        by_id: dict[str, dict] = {}
        for record in read_jsonl(self.points_file, POINT):
            record.setdefault("decoder", "?")
            record.setdefault("model", "?")
            by_id[record["point_id"]] = record
        return list(by_id.values())

    def finished_point_ids(self) -> set[str]:
        return {p["point_id"] for p in self.read_points() if p.get("status") == "ok"}


def load_run(path: str | os.PathLike) -> tuple[dict, list[dict]]:
    store = RunStore(Path(path))
    return store.read_meta(), store.read_points()


def fingerprint_key(fp: dict) -> str:
    """The part of a fingerprint that must match for two runs to be comparable (stored in run.json as
    `hardware`: the GPU's name, else the CPU model and its logical core count)."""
    return fp.get("gpu_name") or f"{fp.get('cpu_model')} x{fp.get('cpu_cores_logical')}"


def point_fingerprint_key(point: dict, run_hardware: dict | None) -> str:
    """The fingerprint key of the hardware that measured `point`: its own placement (a Ray run's points,
    a merged shard's) or else its run's hardware."""
    placement = point.get("placement") or {}
    return placement.get("fingerprint_key") or fingerprint_key(placement.get("fingerprint") or run_hardware or {})


def hardware_keys(points: list[dict], run_hardware: dict | None) -> list[str]:
    """Every distinct fingerprint key among `points`, sorted; more than one: a mixed cluster's run."""
    return sorted({point_fingerprint_key(p, run_hardware) for p in points})

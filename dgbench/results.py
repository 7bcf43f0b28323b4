"""The results store: one directory per run holding run.json and points.jsonl.

Versioned schema, written so that a crash or Ctrl-C loses nothing already measured:
run.json is replaced atomically (write a temp file, fsync, rename) and every finished sweep point
is appended to points.jsonl as one line and fsynced before the next point starts. A torn last line
(killed mid-write) is ignored on reading. Imports no torch: report/ and gate/ read runs cheaply.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from dgbench.errors import ResultsError

SCHEMA_VERSION = 1
RUN_FILE = "run.json"
POINTS_FILE = "points.jsonl"
SAMPLES_FILE = "samples.jsonl"
REQUESTS_FILE = "requests.jsonl"   # serve scenario: one line per request sent


def utc_stamp(now: datetime | None = None) -> str:
    return (now or datetime.now(timezone.utc)).strftime("%Y%m%dT%H%M%SZ")


def default_run_dir(root: Path, suite_name: str) -> Path:
    safe = re.sub(r"[^A-Za-z0-9_.-]+", "-", suite_name)
    path = root / f"{utc_stamp()}-{safe}"
    n = 1
    while path.exists():  # two runs in the same second stay apart
        n += 1
        path = root / f"{utc_stamp()}-{safe}-{n}"
    return path


def atomic_write_json(path: Path, data: Any) -> None:
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(data, f, indent=2, sort_keys=True, default=str)
        f.write("\n")
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


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

    def create(self, run_meta: dict) -> None:
        self.path.mkdir(parents=True, exist_ok=True)
        self.write_meta(run_meta)

    def write_meta(self, run_meta: dict) -> None:
        atomic_write_json(self.run_file, {"schema_version": SCHEMA_VERSION, **run_meta})

    def read_meta(self) -> dict:
        if not self.run_file.is_file():
            raise ResultsError(f"{self.run_file}: no such file; is {self.path} a dgbench run directory?")
        try:
            meta = json.loads(self.run_file.read_text(encoding="utf-8"))
        except json.JSONDecodeError as e:
            raise ResultsError(f"{self.run_file}: corrupted JSON at line {e.lineno}: {e.msg}") from None
        version = meta.get("schema_version")
        if version != SCHEMA_VERSION:
            raise ResultsError(
                f"{self.run_file}: schema_version {version!r}, this dgbench reads {SCHEMA_VERSION}; "
                "re-run the suite or use the dgbench version that wrote it")
        return meta

    def _append(self, handle_attr: str, path: Path, record: dict) -> None:
        """Append one JSON line and make it durable (fsync) before returning."""
        if getattr(self, handle_attr) is None:
            setattr(self, handle_attr, open(path, "a", encoding="utf-8"))
        fh = getattr(self, handle_attr)
        fh.write(json.dumps(record, sort_keys=True, default=str) + "\n")
        fh.flush()
        os.fsync(fh.fileno())

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

    def read_samples(self) -> list[dict]:
        """Every sample line (a torn final line is skipped). A resumed run may hold a point's samples
        twice when that point failed midway; readers key samples by their point_id and keep the last run."""
        if not self.samples_file.is_file():
            return []
        out = []
        lines = self.samples_file.read_text(encoding="utf-8").splitlines()
        for i, line in enumerate(lines, 1):
            if not line.strip():
                continue
            try:
                out.append(json.loads(line))
            except json.JSONDecodeError:
                if i == len(lines):
                    continue
                raise ResultsError(f"{self.samples_file}:{i}: corrupted line") from None
        return out

    def read_points(self) -> list[dict]:
        """Every point record, the last record of a point id winning (a resumed run may re-run failed points)."""
        if not self.points_file.is_file():
            return []
        by_id: dict[str, dict] = {}
        lines = self.points_file.read_text(encoding="utf-8").splitlines()
        for i, line in enumerate(lines, 1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                if i == len(lines):  # torn final line from a kill mid-write: that point is simply not done
                    continue
                raise ResultsError(f"{self.points_file}:{i}: corrupted line; delete it to re-run that point") from None
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

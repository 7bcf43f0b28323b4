"""What a run records about where it came from (run.json): the suite's hash, git commit, library
versions. Shared by `dgbench run` and the lm-eval integration, which both write run directories."""

from __future__ import annotations

import hashlib
import json
import platform
import subprocess
import sys
from pathlib import Path

import dgbench
from dgbench.results import utc_stamp


# Not part of what a run measures: where the file was, the linter's notes, and how points are dispatched
# (harness/executors: a run keeps its hash whichever executor runs or resumes it, and so do suites older
# than the `executor` field).
UNHASHED = ("source", "lint_warnings", "executor")


def suite_hash(suite: dict) -> str:
    body = {k: v for k, v in suite.items() if k not in UNHASHED}
    return hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()[:16]


def git_commit() -> str | None:
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5,
                             cwd=Path(dgbench.__file__).resolve().parent)
        return out.stdout.strip() or None if out.returncode == 0 else None
    except (OSError, subprocess.SubprocessError):
        return None


def versions() -> dict:
    from dgbench import tested_set

    return {"python": platform.python_version(), **tested_set.installed(), "dgbench": dgbench.__version__}


def tested_set_record(found: dict) -> dict:
    """How the versions compare with constraints.txt: {"differs": {...}, "note": line or None}."""
    from dgbench import tested_set

    diff = tested_set.differences(found)
    return {"file": "constraints.txt", "differs": diff, "note": tested_set.describe(diff)}


def run_metadata(suite: dict, device: str, seed: int, fp: dict, profile: str | None, status: str,
                 weights: str) -> dict:
    """run.json's provenance: the suite and its hash, seed, commit, versions, hardware, weights."""
    return {
        "suite": suite, "suite_name": suite["name"], "config_hash": suite_hash(suite), "seed": seed,
        "git_commit": git_commit(), "versions": (found := versions()), "tested_set": tested_set_record(found),
        "hardware": fp, "hardware_profile": profile,
        "weights": weights, "created_utc": utc_stamp(), "status": status,
        "command": " ".join(sys.argv),
    }

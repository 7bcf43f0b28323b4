"""Saved baselines: a run's run.json and points.jsonl copied under a name into a folder you commit.

Default folder: ./baselines under the current directory (the repository root in CI), or $DGBENCH_BASELINES,
or --dir. A baseline is a plain run directory (BASELINES/NAME/run.json + points.jsonl), so every tool
that reads runs reads it. samples.jsonl is left out: the gate pairs accuracy from the per-item
correctness stored in each quality point, and the generated texts would only bloat the repository.
"""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

from dgbench.errors import ConfigError, ResultsError
from dgbench.results import POINTS_FILE, RUN_FILE, RunStore

ENV_DIR = "DGBENCH_BASELINES"
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")


def baselines_dir(explicit: str | None = None) -> Path:
    if explicit:
        return Path(explicit)
    return Path(os.environ.get(ENV_DIR) or Path.cwd() / "baselines")


def saved_names(folder: Path) -> list[str]:
    if not folder.is_dir():
        return []
    return sorted(d.name for d in folder.iterdir() if (d / RUN_FILE).is_file())


def save_baseline(run_dir: Path, name: str, folder: Path) -> Path:
    """Copy a finished run under `name` (replacing an older baseline of that name); returns its folder."""
    if not _NAME.fullmatch(name):
        raise ConfigError(f"baseline name {name!r}: use letters, digits, '_', '.', '-' (e.g. smoke-cpu)")
    store = RunStore(Path(run_dir))
    meta = store.read_meta()
    if meta.get("status") != "completed":
        raise ResultsError(f"{store.run_file}: run status is {meta.get('status')!r}, not 'completed'; finish it "
                           f"with `dgbench run --resume {run_dir}` before saving it as a baseline")
    points = store.read_points()
    if not points:
        raise ResultsError(f"{store.points_file}: no measured points; a baseline needs at least one")
    target = folder / name
    staging = folder / f".{name}.tmp"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    shutil.copy2(store.run_file, staging / RUN_FILE)
    shutil.copy2(store.points_file, staging / POINTS_FILE)
    # Replace in two renames so a crash leaves either the old or the new baseline, never half of one.
    old = folder / f".{name}.old"
    shutil.rmtree(old, ignore_errors=True)
    if target.exists():
        target.rename(old)
    staging.rename(target)
    shutil.rmtree(old, ignore_errors=True)
    return target


def resolve_baseline(spec: str, folder: Path) -> tuple[Path, str | None]:
    """RUN_DIR | a run.json or points.jsonl FILE | a saved NAME -> (run directory, saved name or None)."""
    path = Path(spec)
    if path.is_dir() and (path / RUN_FILE).is_file():
        return path, None
    if path.is_file() and path.name in (RUN_FILE, POINTS_FILE):
        return path.parent, None
    if path.is_file():
        raise ResultsError(f"--baseline {spec}: a file must be a run's {RUN_FILE} or {POINTS_FILE}")
    if _NAME.fullmatch(spec) and (folder / spec / RUN_FILE).is_file():
        return folder / spec, spec
    names = saved_names(folder)
    saved = f"saved there: {', '.join(names)}" if names else "none saved there yet"
    raise ResultsError(f"baseline {spec!r} not found: not a run directory, a {RUN_FILE}/{POINTS_FILE} file, nor a "
                       f"baseline saved in {folder} ({saved}); save one with `dgbench baseline save RUN_DIR NAME`")

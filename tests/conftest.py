import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def dgbench_argv() -> list[str]:
    script = Path(sys.executable).parent / "dgbench"
    return [str(script)] if script.exists() else [sys.executable, "-m", "dgbench.cli"]


def run_cli(*args, cwd=None, timeout=300, **kw) -> subprocess.CompletedProcess:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONUNBUFFERED": "1"}
    return subprocess.run([*dgbench_argv(), *map(str, args)], capture_output=True, text=True, timeout=timeout,
                          cwd=cwd or ROOT, env=env, **kw)


def only_run_dir(root: Path) -> Path:
    dirs = [d for d in root.iterdir() if d.is_dir()]
    assert len(dirs) == 1, dirs
    return dirs[0]


@pytest.fixture(scope="session")
def smoke_run(tmp_path_factory):
    """One real `dgbench run --suite smoke`, shared by the tests that read its results."""
    out = tmp_path_factory.mktemp("smoke")
    proc = run_cli("run", "--suite", "smoke", "--out", out)
    return proc, only_run_dir(out) if proc.returncode == 0 else None

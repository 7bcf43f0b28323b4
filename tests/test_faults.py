"""Faults a run must survive with no finished point lost: a torn last line (kill or power loss mid-write),
a write failing on a full disk, two writers of one run directory, SIGTERM, a read-only output folder.

The end-to-end test drives real `dgbench run` processes over a tiny real model and signals them.
"""

import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest

from conftest import ROOT, dgbench_argv, run_cli
from dgbench.results import RunLock, RunLocked, RunStore, atomic_write_json, read_jsonl, repair_torn_tail
from dgbench.results_schema import POINT

IS_ROOT = os.geteuid() == 0
can_unshare = pytest.mark.skipif(not (IS_ROOT and shutil.which("unshare")),
                                 reason="a private mount namespace needs root and unshare(1)")

TINY = """name: faults
decoders:
  - {name: ar, model: gemma4-tiny, engine: hf-autoregressive}
sweep: {gen_length: [4, 6, 8, 10], prompt_length: [4]}
measure: {warmup: 0, min_repetitions: 1, max_repetitions: 1, min_time_s: 0.0, memory: false}
telemetry: {enabled: false}
"""


def test_torn_tail_is_cut_back_kept_and_never_appended_to(tmp_path):
    store = RunStore(tmp_path / "run")
    store.create({"suite": {"name": "x"}})
    store.append_point({"point_id": "a", "status": "ok"})
    store.append_point({"point_id": "b", "status": "ok"})
    store.close()
    with open(store.points_file, "ab") as f:
        f.write(b'{"point_id": "c", "sta')  # power loss mid-write
    again = RunStore(store.path)
    again.lock()
    again.append_point({"point_id": "c", "status": "ok"})  # the re-measured point
    again.close()
    assert [p["point_id"] for p in again.read_points()] == ["a", "b", "c"]
    assert store.points_file.read_bytes().endswith(b"\n")
    kept = list(store.path.glob("points.jsonl.torn-*"))
    assert len(kept) == 1 and kept[0].read_bytes() == b'{"point_id": "c", "sta'
    assert repair_torn_tail(store.points_file) is None  # a whole file is left alone


def test_torn_tail_without_any_newline_and_multibyte_fragment(tmp_path):
    path = tmp_path / "points.jsonl"
    path.write_bytes('{"point_id": "\u00e9'.encode()[:-1])  # cut inside a UTF-8 character
    assert read_jsonl(path, POINT) == []  # torn final line: skipped on reading
    assert repair_torn_tail(path) is not None and path.read_bytes() == b""


@can_unshare
def test_a_full_disk_never_leaves_a_fragment(tmp_path):
    """In a private mount namespace, a 64 KiB tmpfs fills mid-record: the failed write is cut back to where
    it began, so every line on disk is whole and the store stays appendable."""
    disk = tmp_path / "disk"
    disk.mkdir()
    script = textwrap.dedent(f"""
        import json, pathlib, subprocess, sys
        subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "none", {str(disk)!r}], check=True)
        sys.path.insert(0, {str(ROOT)!r})
        from dgbench.results import RunStore
        store = RunStore(pathlib.Path({str(disk)!r}) / "run")
        store.create({{"suite": {{"name": "x"}}}})
        n = 0
        try:
            for i in range(10000):
                store.append_point({{"point_id": f"p{{i}}", "status": "ok", "pad": "x" * 700}})
                n += 1
        except OSError as e:
            err = e.errno
        data = (store.path / "points.jsonl").read_bytes()
        print(json.dumps({{"written": n, "errno": err, "whole": data.endswith(b"\\n"),
                           "lines": data.count(b"\\n"), "read": len(store.read_points())}}))
    """)
    out = subprocess.run(["unshare", "-m", "--propagation", "private", sys.executable, "-c", script],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    res = json.loads(out.stdout.strip().splitlines()[-1])
    assert res["errno"] == 28 and res["whole"] and res["lines"] == res["written"] == res["read"] > 10, res


def test_atomic_writes_from_two_writers_never_collide(tmp_path):
    target = tmp_path / "run.json"
    errors = []

    def writer(k):
        try:
            for i in range(50):
                atomic_write_json(target, {"writer": k, "i": i, "pad": "x" * 5000})
        except Exception as e:  # noqa: BLE001 - any failure is the finding
            errors.append(e)

    threads = [threading.Thread(target=writer, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    assert json.loads(target.read_text())["i"] == 49
    assert [p.name for p in tmp_path.iterdir()] == ["run.json"]  # no temp file left behind


def test_the_run_lock_names_its_holder_and_dies_with_it(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    holder = subprocess.Popen([sys.executable, "-c", textwrap.dedent(f"""
        import sys, time
        sys.path.insert(0, {str(ROOT)!r})
        from dgbench.results import RunLock
        RunLock({str(run)!r}).acquire()
        print("held", flush=True)
        time.sleep(60)
    """)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(RunLocked, match=f"in use by pid {holder.pid}"):
            RunLock(run).acquire()
    finally:
        holder.kill()
        holder.wait()
    RunLock(run).acquire().release()  # the kernel dropped the dead holder's lock


def _wait_for(predicate, timeout, proc=None, what=""):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        if proc is not None and proc.poll() is not None:
            pytest.fail(f"process ended (rc {proc.returncode}) before {what}: {proc.stderr.read()}")
        time.sleep(0.05)
    pytest.fail(f"timed out waiting for {what}")


def _ok_lines(run_dir: Path) -> list[dict]:
    lines = [json.loads(x) for x in (run_dir / "points.jsonl").read_text().splitlines() if x.strip()]
    return [p for p in lines if p.get("status") == "ok"]


def test_sigterm_torn_tail_and_concurrent_resume_lose_no_point(tmp_path):
    """One real run, three faults: SIGTERM mid-run (exit 143, status interrupted), a torn tail left before
    resuming, and a second resume while the first holds the run (refused, naming its pid). At the end
    every point is measured exactly once and nothing finished before a fault was lost or redone."""
    suite = tmp_path / "faults.yaml"
    suite.write_text(TINY)
    out = tmp_path / "results"
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONUNBUFFERED": "1"}
    args = ["--profile", "h100-sxm"]  # a published profile: no CPU roofline measurement in the way
    first = subprocess.Popen([*dgbench_argv(), "run", "--suite", str(suite), "--out", str(out), *args],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT, env=env)
    points = lambda: list(out.glob("*/points.jsonl"))  # noqa: E731
    _wait_for(lambda: points() and points()[0].read_text().count("\n") >= 1, 240, first, "the first point")
    first.send_signal(signal.SIGTERM)
    _, err = first.communicate(timeout=120)
    assert first.returncode == 143, err
    assert "Traceback" not in err and "interrupted (SIGTERM)" in err and "--resume" in err, err
    run_dir = points()[0].parent
    assert json.loads((run_dir / "run.json").read_text())["status"] == "interrupted"
    before = {p["point_id"]: p["started_utc"] for p in _ok_lines(run_dir)}
    assert 1 <= len(before) < 4

    with open(run_dir / "points.jsonl", "ab") as f:
        f.write(b'{"point_id": "torn", "status": "o')  # what a power loss leaves

    resume = [*dgbench_argv(), "run", "--resume", str(run_dir)]
    a = subprocess.Popen(resume, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT, env=env)
    lock = run_dir / ".lock"
    _wait_for(lambda: lock.exists() and f"pid {a.pid}" in lock.read_text(), 240, a, "the resume's lock")
    os.kill(a.pid, signal.SIGSTOP)  # hold it mid-run while the second resume tries
    try:
        b = run_cli("run", "--resume", run_dir, timeout=240)
    finally:
        os.kill(a.pid, signal.SIGCONT)
    lines = [x for x in b.stderr.splitlines() if x.strip()]
    assert b.returncode == 2 and len(lines) == 1 and f"in use by pid {a.pid}" in lines[0], b.stderr
    _, err = a.communicate(timeout=300)
    assert a.returncode == 0, err

    ok = _ok_lines(run_dir)
    ids = [p["point_id"] for p in ok]
    assert len(ids) == 4 and len(set(ids)) == 4, ids          # every point once: no duplicate, none missing
    assert all(next(p for p in ok if p["point_id"] == pid)["started_utc"] == t for pid, t in before.items())
    assert [f.read_bytes() for f in run_dir.glob("points.jsonl.torn-*")] == [b'{"point_id": "torn", "status": "o']
    assert json.loads((run_dir / "run.json").read_text())["status"] == "completed"
    assert not list(run_dir.glob("*.tmp")) and not list(run_dir.glob(".run.json.*"))


@can_unshare
@pytest.mark.parametrize("fault, message", [("read-only", "Read-only file system"),
                                            ("full", "No space left on device")])
def test_an_unwritable_out_folder_is_refused_before_measuring(fault, message, tmp_path):
    suite = tmp_path / "faults.yaml"
    suite.write_text(TINY)
    ro = tmp_path / "ro"
    ro.mkdir()
    make = {"read-only": f"mount -o remount,ro {ro}",
            "full": f"mkdir {ro}/results && (dd if=/dev/zero of={ro}/fill bs=4k 2>/dev/null; true)"}[fault]
    cmd = " ".join([f"mount -t tmpfs -o size=1m none {ro} && {make} && exec",
                    *dgbench_argv(), "run", "--suite", str(suite), "--out", str(ro / "results")])
    started = time.monotonic()
    proc = subprocess.run(["unshare", "-m", "--propagation", "private", "sh", "-c", cmd], capture_output=True,
                          text=True, timeout=240, cwd=ROOT, env={**os.environ, "HF_HUB_OFFLINE": "1"})
    lines = [x for x in proc.stderr.splitlines() if x.strip()]
    assert proc.returncode == 2 and len(lines) == 1 and message in lines[0], proc.stderr
    assert "--out" in lines[0] and "Traceback" not in proc.stderr
    assert time.monotonic() - started < 120  # refused at the start, not after loading and measuring

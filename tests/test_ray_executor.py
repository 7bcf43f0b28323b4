"""The Ray executor on a real local Ray cluster (two CPUs, no dashboard, shared by the module): the same
points and deterministic counters as a local run, a worker killed mid-point, Ctrl-C then --resume."""

import os
import signal
import threading
import time

import pytest

ray = pytest.importorskip("ray")
psutil = pytest.importorskip("psutil")

from dgbench.cli import main  # noqa: E402
from dgbench.harness.executors import executor_settings  # noqa: E402
from dgbench.harness.runner import run_suite  # noqa: E402
from dgbench.harness.suite import load_suite  # noqa: E402
from dgbench.harness.sweep import expand  # noqa: E402
from dgbench.results import RunStore  # noqa: E402

from conftest import only_run_dir  # noqa: E402

FAST_ROOFLINE = ["--profile", "h100-sxm"]   # a published profile: workers measure no CPU floors (seconds each)
# Three points of the tiny AR twin, one timed call each: what the fault tests need and no more.
AR_ONLY = ["decoders=[{name: ar, model: gemma4-tiny, engine: hf-autoregressive}]", "sweep.gen_length=[4,8,12]",
           "measure.warmup=0", "measure.min_repetitions=1", "measure.max_repetitions=1", "measure.memory=false",
           "telemetry.rate_hz=2", "executor.workers=1"]


def _sets(overrides):
    return [x for o in overrides for x in ("--set", o)]


@pytest.fixture(scope="module")
def cluster():
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, logging_level="WARNING")
    yield
    ray.shutdown()


def _workers(title="ray::PointWorker") -> list:
    out = []
    for proc in psutil.process_iter(["pid", "cmdline"]):
        cmd = proc.info["cmdline"] or []
        if cmd and cmd[0].startswith(title):
            out.append(proc.info["pid"])
    return out


def _counters(p: dict) -> tuple:
    reps = p.get("reps") or {}
    n = 3   # the smoke suite's min_repetitions: rep i has seed + 1000 + i in both runs
    return (p["status"], (reps.get("nfe") or [])[:n], (reps.get("tokens_per_forward") or [])[:n],
            (reps.get("useful_tokens") or [])[:n], p.get("sample_tokens"))


def test_smoke_on_ray_has_the_local_points_and_counters(cluster, tmp_path):
    overrides = ["sweep.gen_length=[16]"]   # the smoke suite's three decoders, one length
    local_rc = main(["run", "--suite", "smoke", "--out", str(tmp_path / "local"), *FAST_ROOFLINE, *_sets(overrides)])
    local_dir = only_run_dir(tmp_path / "local")
    rc = main(["run", "--suite", "smoke", "--executor", "ray", "--out", str(tmp_path / "ray"), *FAST_ROOFLINE,
               *_sets(overrides)])
    assert rc == local_rc
    run_dir = only_run_dir(tmp_path / "ray")
    on_ray = {p["point_id"]: p for p in RunStore(run_dir).read_points()}
    local = {p["point_id"]: p for p in RunStore(local_dir).read_points()}
    assert set(on_ray) == {p.point_id for p in expand(load_suite("smoke", overrides))}
    for pid, p in on_ray.items():
        assert _counters(p) == _counters(local[pid]), p["decoder"]
    assert any(p["status"] == "ok" and p["paradigm"] == "autoregressive" for p in on_ray.values())
    assert any(p["status"] == "ok" and p["paradigm"] == "diffusion" for p in on_ray.values())
    for p in on_ray.values():
        placement = p["placement"]
        assert placement["node_id"] == ray.get_runtime_context().get_node_id()
        assert placement["gpu_ids"] == [] and placement["fingerprint_key"] and placement["fingerprint"]["cpu_model"]
        if p["status"] == "ok":
            assert p["telemetry"]["n_samples"] >= 1        # sampled on the worker, carried with the point
    meta = RunStore(run_dir).read_meta()
    assert meta["executor"]["kind"] == "ray" and meta["executor"]["workers"] == 2
    assert meta["hardware_keys"] == [next(iter(on_ray.values()))["placement"]["fingerprint_key"]]
    rows = (run_dir / "telemetry.csv").read_text().splitlines()
    assert rows[0].startswith("t_s,source,device,point_id") and any(pid in r for r in rows for pid in on_ray)


def test_a_worker_killed_mid_point_fails_that_point_and_the_rest_complete(cluster, tmp_path):
    killed = {}

    def killer():   # SIGKILL the worker while it is inside measure(): what the OOM killer does
        deadline = time.time() + 120
        while time.time() < deadline and not killed:
            busy = _workers("ray::PointWorker.measure")
            if busy:
                time.sleep(0.3)
                os.kill(busy[0], signal.SIGKILL)
                killed["pid"] = busy[0]
            time.sleep(0.05)

    thread = threading.Thread(target=killer, daemon=True)
    thread.start()
    # min_time_s keeps each point busy for a while, so the kill lands mid-point
    rc = main(["run", "--suite", "smoke", "--executor", "ray", "--out", str(tmp_path), *FAST_ROOFLINE,
               *_sets(AR_ONLY + ["measure.max_repetitions=50", "measure.min_time_s=2.0"])])
    thread.join(timeout=5)
    assert rc == 1 and killed
    points = RunStore(only_run_dir(tmp_path)).read_points()
    assert len(points) == 3
    failed = [p for p in points if p["status"] != "ok"]
    assert len(failed) == 1 and failed[0]["error"]["kind"] == "worker_died", failed
    assert failed[0]["error"]["message"] and failed[0]["placement"]["pid"] == killed["pid"]
    assert all(p["placement"]["pid"] != killed["pid"] for p in points if p["status"] == "ok")   # a fresh worker
    assert RunStore(only_run_dir(tmp_path)).read_meta()["status"] == "completed_with_failures"


def test_interrupted_ray_run_resumes_only_the_missing_points(cluster, tmp_path):
    suite = load_suite("smoke", AR_ONLY)

    def progress(point, index, total, state):
        if state == "ok":
            raise KeyboardInterrupt   # Ctrl-C as the driver sees it, right after the first point is stored

    outcome = run_suite(suite, device="cpu", out_root=tmp_path, progress=progress, profile="h100-sxm",
                        executor=executor_settings(suite, "ray"))
    assert outcome.interrupted and len(outcome.points) == 1
    run_dir = outcome.run_dir
    assert RunStore(run_dir).read_meta()["status"] == "interrupted"
    first = outcome.points[0]
    deadline = time.time() + 30
    while _workers() and time.time() < deadline:   # the outstanding work was cancelled: no worker is left
        time.sleep(0.2)
    assert not _workers()

    assert main(["run", "--resume", str(run_dir), *FAST_ROOFLINE]) == 0   # the executor comes from run.json
    lines = (run_dir / "points.jsonl").read_text().splitlines()
    points = RunStore(run_dir).read_points()
    assert len(lines) == len(points) == 3                     # the finished point was not measured again
    assert {p["point_id"] for p in points} == {p.point_id for p in expand(suite)}
    assert next(p for p in points if p["point_id"] == first["point_id"])["started_utc"] == first["started_utc"]
    meta = RunStore(run_dir).read_meta()
    assert meta["status"] == "completed" and meta["executor"]["kind"] == "ray" and meta["resumed_utc"]

"""The CPU-time metric the gate reads beside wall time: the Clock's process CPU seconds over exactly the
call's start..stop, and cpu_s_per_tok in every generation point's repetitions."""

import threading
import time

from dgbench.harness.suite import load_suite
from dgbench.harness.sweep import expand
from dgbench.metrics import METRICS
from dgbench.telemetry.timing import Clock


def _spin(seconds: float) -> None:
    end = time.thread_time() + seconds      # this thread's own CPU time
    while time.thread_time() < end:
        pass


def test_cpu_seconds_count_work_not_waiting():
    clock = Clock("cpu")
    clock.start()
    time.sleep(0.3)                        # wall time passes, no CPU is spent
    clock.stop()
    assert clock.elapsed >= 0.29 and clock.cpu_s < 0.1
    clock.start()
    _spin(0.2)
    clock.stop()
    assert 0.19 <= clock.cpu_s <= clock.elapsed + 0.05
    # All threads of the process count (torch's intra-op pool is threads of this process).
    clock.start()
    workers = [threading.Thread(target=_spin, args=(0.15,)) for _ in range(2)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    clock.stop()
    assert clock.cpu_s >= 0.29


def test_generation_points_record_cpu_seconds_per_token(tmp_path):
    from dgbench.cli import main

    out = tmp_path / "runs"
    code = main(["run", "--suite", "smoke", "--set", "sweep.gen_length=[8]", "--set", "telemetry.enabled=false",
                 "--out", str(out)])
    assert code == 0
    import json

    (run,) = [d for d in out.iterdir() if d.is_dir()]
    points = [json.loads(x) for x in (run / "points.jsonl").read_text().splitlines() if x.strip()]
    assert len(points) == len(expand(load_suite("smoke", ["sweep.gen_length=[8]"])))
    for p in points:
        cpu, e2e, useful = p["reps"]["cpu_s_per_tok"], p["reps"]["e2e_s"], p["reps"]["useful_tokens"]
        assert len(cpu) == len(e2e)
        for c, e, u in zip(cpu, e2e, useful):
            # One torch thread or a few: CPU time per token is positive and bounded by the cores x wall time.
            assert 0 < c * u <= e * 4 + 0.01, (p["decoder"], c, e, u)
    assert not METRICS["cpu_s_per_tok"].higher_is_better
    assert "cpu_s_per_tok" in [m["name"] for m in load_suite("smoke")["gate"]["metrics"]]

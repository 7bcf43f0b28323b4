"""--shard I/N, dgbench merge, the executor field, and what a local run does not import (no Ray cluster here;
tests/test_ray_executor.py runs one)."""

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from dgbench.cli import main
from dgbench.harness.cost import point_cost
from dgbench.harness.shard import assign_shards
from dgbench.harness.suite import load_suite, suite_hash
from dgbench.harness.sweep import expand
from dgbench.results import RunStore

from conftest import ROOT, only_run_dir

# The smallest real sweep: the tiny AR twin, two decoders (sampled and greedy), three lengths, one timed call.
TINY = ["--set", "decoders=[{name: ar, model: gemma4-tiny, engine: hf-autoregressive}, "
                 "{name: greedy, model: gemma4-tiny, engine: hf-autoregressive, knobs: {do_sample: false}}]",
        "--set", "sweep.gen_length=[4,8,12]", "--set", "measure.warmup=0", "--set", "measure.min_repetitions=1",
        "--set", "measure.min_time_s=0", "--set", "measure.memory=false", "--set", "telemetry.rate_hz=2"]


# A published profile: the roofline then needs no per-run measurement of this CPU's floors (seconds per run).
FAST_ROOFLINE = ["--profile", "h100-sxm"]


def _run(out, *extra) -> int:
    return main(["run", "--suite", "smoke", "--out", str(out), "--device", "cpu", *FAST_ROOFLINE, *TINY, *extra])


def _points(run_dir) -> dict:
    return {p["point_id"]: p for p in RunStore(run_dir).read_points()}


def _counters(p: dict) -> tuple:
    reps = p.get("reps") or {}
    return p["status"], reps.get("nfe"), reps.get("tokens_per_forward"), reps.get("useful_tokens"), p.get("sample_tokens")


def test_shards_partition_the_points_deterministically_and_balance_their_cost():
    suite = load_suite("throughput")
    points = expand(suite)
    for n in (1, 2, 3, 7):
        cost = lambda p: point_cost(p, suite["measure"])  # noqa: E731
        shards = assign_shards(points, n, cost)
        assert shards == assign_shards(list(points), n, cost)          # every job computes the same split
        assert set(shards) <= set(range(1, n + 1))
        loads = [sum(cost(p) for p, s in zip(points, shards) if s == k) for k in range(1, n + 1)]
        # LPT: no shard exceeds another by more than the heaviest single point
        assert max(loads) - min(loads) <= max(cost(p) for p in points)
    assert len(set(assign_shards(points, 3, lambda p: 1))) == 3


@pytest.mark.parametrize("shard", ["0/3", "4/3", "1/0", "a/b", "2"])
def test_bad_shard_is_one_line_and_exit_2(shard, capsys):
    assert main(["run", "--suite", "smoke", "--dry-run", "--shard", shard]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--shard" in err[0] and "I/N" in err[0]


@pytest.fixture(scope="module")
def shard_runs(tmp_path_factory):
    """One run of the tiny sweep, and the same sweep as three shards."""
    root = tmp_path_factory.mktemp("shards")
    assert _run(root / "single") == 0
    shards = []
    for i in (1, 2, 3):
        assert _run(root / f"s{i}", "--shard", f"{i}/3") == 0
        shards.append(only_run_dir(root / f"s{i}"))
    return only_run_dir(root / "single"), shards


def _copies(dirs, tmp_path) -> list:
    return [Path(shutil.copytree(d, tmp_path / f"copy{i}" / d.name)) for i, d in enumerate(dirs)]


def test_three_shards_merged_equal_one_run(shard_runs, tmp_path):
    single, shard_dirs = shard_runs
    ids = [set(_points(d)) for d in shard_dirs]
    assert all(ids) and not (ids[0] & ids[1]) and not (ids[1] & ids[2]) and not (ids[0] & ids[2])
    assert RunStore(shard_dirs[1]).read_meta()["shard"]["index"] == 2

    merged = tmp_path / "merged"
    assert main(["merge", *map(str, shard_dirs), "-o", str(merged)]) == 0
    one, both = _points(single), _points(merged)
    assert set(both) == set(one) == {p.point_id for p in expand(load_suite("smoke", TINY[1::2]))}
    for pid in one:   # the deterministic counters of a seeded run: identical however the points were split
        assert _counters(both[pid]) == _counters(one[pid]), one[pid]["decoder"]
        assert both[pid]["placement"]["fingerprint_key"] and both[pid]["placement"]["run_dir"]
    meta = RunStore(merged).read_meta()
    assert meta["status"] == "completed" and "shard" not in meta
    assert sorted(m["shard"] for m in meta["merged_from"]) == ["1/3", "2/3", "3/3"]


def test_merge_refuses_overlaps_other_suites_and_an_existing_output(shard_runs, tmp_path, capsys):
    single, shard_dirs = shard_runs
    assert main(["merge", str(shard_dirs[0]), str(single), "-o", str(tmp_path / "m1")]) == 2
    assert "is in both" in capsys.readouterr().err
    other = tmp_path / "other"
    assert _run(other, "--set", "decoders=[{name: ar, model: gemma4-tiny, engine: hf-autoregressive}]",
                "--set", "sweep.gen_length=[4]") == 0
    assert main(["merge", str(shard_dirs[1]), str(only_run_dir(other)), "-o", str(tmp_path / "m2")]) == 2
    assert "config hash" in capsys.readouterr().err
    assert main(["merge", str(shard_dirs[1]), "-o", str(single)]) == 2
    assert "already holds a run" in capsys.readouterr().err
    assert not (tmp_path / "m1").exists() and not (tmp_path / "m2").exists()


def test_merge_of_some_shards_resumes_to_the_full_run(shard_runs, tmp_path, capsys):
    first, _, third = _copies(shard_runs[1], tmp_path)
    merged = tmp_path / "merged"
    assert main(["merge", str(first), str(third), "-o", str(merged)]) == 1      # points are missing: not done yet
    assert "--resume" in capsys.readouterr().err
    before = _points(merged)
    assert RunStore(merged).read_meta()["status"] == "interrupted"
    assert main(["run", "--resume", str(merged), *FAST_ROOFLINE]) == 0
    after = _points(merged)
    assert set(after) == {p.point_id for p in expand(load_suite("smoke", TINY[1::2]))}
    assert all(after[pid]["started_utc"] == before[pid]["started_utc"] for pid in before)   # not re-measured
    lines = (merged / "points.jsonl").read_text().splitlines()
    assert len(lines) == len(after)        # only the missing points were appended
    assert RunStore(merged).read_meta()["status"] == "completed"


def test_mixed_hardware_is_kept_apart_by_report_and_gate(shard_runs, tmp_path, capsys):
    """Shards from two kinds of machine: the report shows a row per decoder and machine, and the gate compares
    a point only with a baseline point measured on the same hardware."""
    from dgbench.report.data import load_view

    single, shard_dirs = shard_runs
    dirs = _copies(shard_dirs, tmp_path)
    # Shard 2 "ran on" an H100: run.json's hardware is what a shard on that node would have written.
    store = RunStore(dirs[1])
    meta = store.read_meta()
    meta["hardware"] = {**meta["hardware"], "device": "cuda:0", "gpu_name": "NVIDIA H100 80GB HBM3"}
    store.write_meta({k: v for k, v in meta.items() if k != "schema_version"})
    merged = tmp_path / "merged"
    assert main(["merge", *map(str, dirs), "-o", str(merged)]) == 0
    assert "2 kinds of hardware" in capsys.readouterr().out
    view = load_view(merged)
    labels = {p["decoder"] for p in view.points}
    assert any(d.endswith("@ NVIDIA H100 80GB HBM3") for d in labels) and len(labels) > 2
    assert "mixed hardware" in view.machine
    assert main(["gate", "--baseline", str(merged), "--candidate", str(merged)]) == 0   # same placements: gated
    assert main(["gate", "--baseline", str(single), "--candidate", str(merged)]) == 2   # H100 vs CPU: refused
    assert "different hardware" in capsys.readouterr().err


def test_executor_field_is_validated_and_not_hashed(tmp_path, capsys):
    base = load_suite("smoke")
    assert base["executor"]["kind"] == "local"
    ray = load_suite("smoke", ["executor={kind: ray, address: auto, gpus_per_point: 1}"])
    assert suite_hash(ray) == suite_hash(base)         # dispatch is not what is measured: runs still resume/merge
    for bad, word in (("executor.kind=slurm", "executor.kind"), ("executor.address='no such'", "executor.address"),
                      ("executor.cpus_per_point=-1", "executor.cpus_per_point"), ("executor.nodes=2", "executor.nodes")):
        assert main(["run", "--suite", "smoke", "--dry-run", "--set", bad]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and word in err[0], err


def test_executor_ray_without_ray_installed_is_one_line(tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "ray", None)       # what `import ray` sees where Ray is not installed
    assert main(["run", "--suite", "smoke", "--executor", "ray", "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "pip install 'dgbench[ray]'" in err[0]
    assert not any(tmp_path.iterdir())                   # nothing was created


def test_a_local_run_imports_no_ray(tmp_path):
    code = ("import sys; from dgbench.cli import main; "
            f"rc = main(['run', '--suite', 'smoke', '--out', {str(tmp_path)!r}, '--device', 'cpu', *{FAST_ROOFLINE + TINY!r}, "
            "'--set', 'sweep.gen_length=[4]']); "
            "print(json.dumps({'rc': rc, 'ray': 'ray' in sys.modules}))")
    proc = subprocess.run([sys.executable, "-c", "import json; " + code], capture_output=True, text=True, cwd=ROOT,
                          timeout=300)
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result == {"rc": 0, "ray": False}, proc.stderr[-2000:]

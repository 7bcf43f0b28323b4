"""Real `dgbench run` subprocesses: the smoke suite, failure recording, Ctrl-C and --resume."""

import json
import signal
import subprocess
import time

from dgbench.results import load_run

from conftest import dgbench_argv, only_run_dir, run_cli, ROOT


def test_smoke_run_writes_a_complete_run(smoke_run):
    proc, run_dir = smoke_run
    assert proc.returncode == 0, proc.stderr[-2000:]
    meta, points = load_run(run_dir)
    assert meta["status"] == "completed" and meta["suite_name"] == "smoke"
    for key in ("schema_version", "config_hash", "versions", "hardware", "seed", "suite", "git_commit"):
        assert key in meta
    assert meta["versions"]["torch"] and meta["hardware"]["cpu_model"]
    assert {p["decoder"] for p in points} == {"diffusion", "diffusion-hf", "ar"}
    assert {p["engine"] for p in points} == {"dgbench-diffusion", "hf-diffusion", "hf-autoregressive"}
    assert len(points) == 6 and all(p["status"] == "ok" for p in points)
    for p in points:
        reps = p["reps"]
        n = len(reps["e2e_s"])
        assert 3 <= n <= 5, "min/max repetitions of the smoke suite"
        assert all(len(v) == n for v in reps.values()), "every metric keeps one raw value per repetition"
        assert p["summary"]["committed_tok_s"]["median"] > 0
        assert p["summary"]["e2e_s"]["p10"] <= p["summary"]["e2e_s"]["median"] <= p["summary"]["e2e_s"]["p90"]
        gen = p["params"]["gen_length"]
        assert reps["useful_tokens"] == [gen] * n, "fixed-length mode counts every requested token"
        if p["paradigm"] == "autoregressive":
            assert reps["nfe"] == [gen] * n and reps["tokens_per_forward"] == [1.0] * n
            assert len(p["pooled"]["itl_s"]) == n * (gen - 1)
        else:
            canvases = -(-gen // p["canvas_length"])
            assert reps["nfe"] == [canvases * 4] * n  # random weights: every canvas runs its 4-step cap
            assert p["summary"]["cap_hit_share"]["median"] == 1.0
            assert p["summary"]["in_step_tok_s"]["median"] > p["summary"]["committed_tok_s"]["median"]


def test_summary_table_has_diffusion_and_ar_rows_with_units(smoke_run):
    proc, _ = smoke_run
    out = proc.stdout
    assert "committed tok/s" in out and "TTFT/TTFC ms" in out and "NFE passes" in out
    rows = [line for line in out.splitlines() if "tiny" in line]
    assert any("diffusion" in r for r in rows) and any(" ar " in r for r in rows)


def _limit_memory():  # the child may map at most 8 GB: a huge batch then fails to allocate, a small one does not
    import resource

    resource.setrlimit(resource.RLIMIT_AS, (8 * 2**30, 8 * 2**30))


def test_failed_points_are_recorded_and_the_sweep_goes_on(tmp_path):
    proc = run_cli("run", "--suite", "smoke", "--out", tmp_path, "--set", "sweep.batch_size=[1,3000000]",
                   "--set", "sweep.gen_length=[16]", "--set", "measure.min_repetitions=1",
                   "--set", "measure.warmup=0", "--set", "measure.min_time_s=0", preexec_fn=_limit_memory)
    assert proc.returncode == 1, proc.stderr[-2000:]
    meta, points = load_run(only_run_dir(tmp_path))
    assert meta["status"] == "completed_with_failures"
    by = {(p["decoder"], p["params"]["batch_size"]): p for p in points}
    assert len(by) == 6, "every point is recorded, failed or not"
    for decoder in ("diffusion", "diffusion-hf", "ar"):
        assert by[(decoder, 1)]["status"] == "ok"
        failed = by[(decoder, 3000000)]
        assert failed["status"] == "failed" and failed["error"]["kind"] == "out_of_memory"
        assert "allocate" in failed["error"]["message"]
    assert "FAILED: out_of_memory" in proc.stdout


def test_sigint_mid_sweep_then_resume_keeps_finished_points(tmp_path):
    args = ["run", "--suite", "smoke", "--out", str(tmp_path), "--set", "sweep.gen_length=[16,24,32,40,48,56]",
            "--set", "measure.min_time_s=0.5"]
    proc = subprocess.Popen([*dgbench_argv(), *args], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    points_file = None
    deadline = time.time() + 240
    while time.time() < deadline:
        dirs = list(tmp_path.iterdir())
        if dirs and (dirs[0] / "points.jsonl").exists() and \
                len((dirs[0] / "points.jsonl").read_text().splitlines()) >= 2:
            points_file = dirs[0] / "points.jsonl"
            break
        time.sleep(0.1)
    assert points_file is not None, "no point finished in time"
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err[-2000:]
    assert "Resume with: dgbench run --resume" in err
    run_dir = points_file.parent
    meta, before = load_run(run_dir)
    assert meta["status"] == "interrupted"
    assert 2 <= len(before) < 18, "interrupted mid-way"
    kept = {p["point_id"]: p["started_utc"] for p in before}

    resumed = run_cli("run", "--resume", run_dir)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert f"{len(before)} already done" in resumed.stdout
    meta, after = load_run(run_dir)
    assert meta["status"] == "completed" and meta["resumed_utc"]
    assert len(after) == 18 and all(p["status"] == "ok" for p in after)
    for pid, started in kept.items():  # not re-run: same record, same start time
        assert next(p for p in after if p["point_id"] == pid)["started_utc"] == started
    lines = [json.loads(x) for x in points_file.read_text().splitlines()]
    assert len(lines) == 18, "each point measured exactly once"


def test_engine_and_reference_give_the_same_tokens_in_a_real_run(smoke_run):
    _, run_dir = smoke_run
    _, points = load_run(run_dir)
    for gen in (16, 32):
        ours, ref = (next(p for p in points if p["decoder"] == d and p["params"]["gen_length"] == gen)
                     for d in ("diffusion", "diffusion-hf"))
        assert ours["sample_tokens"] == ref["sample_tokens"]
        assert set(ours["reps"]["nfe"]) == set(ref["reps"]["nfe"]) == {gen // 16 * 4}


def test_resume_refuses_a_changed_suite(smoke_run, tmp_path):
    _, run_dir = smoke_run
    proc = run_cli("run", "--resume", run_dir, "--set", "seed=99")
    assert proc.returncode == 2 and "differs from the one this run started with" in proc.stderr


def test_dry_run_prints_the_sweep_and_runs_nothing(tmp_path):
    proc = run_cli("run", "--suite", "throughput", "--dry-run", "--out", tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "30 points" in proc.stdout and "forward passes" in proc.stdout and "Nothing was run" in proc.stdout
    assert not any(tmp_path.iterdir())


def test_help_shows_examples():
    for args in (["run", "--help"], ["list", "--help"], ["--help"]):
        proc = run_cli(*args)
        assert proc.returncode == 0
        assert "dgbench run --suite smoke" in proc.stdout or "dgbench list" in proc.stdout


def test_list_commands():
    out = run_cli("list", "suites").stdout
    assert "smoke" in out and "latency" in out and "throughput" in out
    out = run_cli("list", "models").stdout
    assert "diffusiongemma-small" in out and "gemma4-small" in out and "synthetic" in out
    assert "hf-diffusion" in run_cli("list", "engines").stdout
    assert "h100-sxm" in run_cli("list", "profiles").stdout
    out = run_cli("list", "tasks").stdout
    assert "sudoku" in out and "gpqa" in out


def test_trajectory_is_stored_with_the_point(tmp_path):
    proc = run_cli("run", "--suite", "smoke", "--out", tmp_path, "--set", "decoders=[{name: d, model: "
                   "diffusiongemma-tiny, engine: dgbench-diffusion, knobs: {max_denoising_steps: 3, "
                   "record_trajectory: true}}]", "--set", "sweep.gen_length=[32]", "--set", "measure.min_repetitions=1",
                   "--set", "measure.min_time_s=0")
    assert proc.returncode == 0, proc.stderr[-2000:]
    _, points = load_run(only_run_dir(tmp_path))
    traj = points[0]["trajectory"]
    assert len(traj) == 2 * 3, "two canvases of three steps"
    assert [(t["canvas"], t["step"]) for t in traj[:4]] == [(0, 0), (0, 1), (0, 2), (1, 0)]
    assert all(len(t["entropy"]) == 16 and len(t["argmax"]) == 16 and t["accepted"] for t in traj)


def test_speculative_rows_record_acceptance(tmp_path):
    proc = run_cli("run", "--suite", "latency", "--out", tmp_path, "--set", "sweep.gen_length=[16]",
                   "--set", "decoders=[{name: lookup, model: gemma4-tiny, engine: hf-autoregressive, knobs: "
                   "{prompt_lookup_num_tokens: 3}}, {name: self-draft, model: gemma4-tiny, engine: hf-autoregressive,"
                   " knobs: {assistant_model: gemma4-tiny, num_assistant_tokens: 4, "
                   "assistant_confidence_threshold: 0.0}}]",
                   "--set", "measure.min_repetitions=2", "--set", "measure.min_time_s=0", "--set", "gate.metrics=[]")
    assert proc.returncode == 0, proc.stderr[-2000:]
    _, points = load_run(only_run_dir(tmp_path))
    by = {p["decoder"]: p for p in points}
    # The target drafting for itself (same weights, greedy) has every draft accepted.
    assert by["self-draft"]["reps"]["acceptance_rate"] == [1.0, 1.0]
    assert by["self-draft"]["summary"]["nfe"]["median"] < 16, "accepted drafts save target forward passes"
    assert 0.0 <= by["lookup"]["summary"]["acceptance_rate"]["median"] <= 1.0
    assert "draft accept" in proc.stdout

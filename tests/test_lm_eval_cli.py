"""The `lm_eval` command line itself (a subprocess) runs dgbench's diffusion decoder on a local task."""

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

# The embedded masked-diffusion reference model, loaded by name in the subprocess, on the generation task.
CLI_DIFFUSION_MODEL, CLI_KNOBS, CLI_TASK = "ref-diffusion", "steps=16", "dgbench_mc_gen"


def test_lm_eval_command_line_runs_dgbench_diffusion(tmp_path):
    lm_eval = Path(sys.executable).parent / "lm_eval"
    out = tmp_path / "out"
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}
    proc = subprocess.run(
        [str(lm_eval), "--model", "dgbench-diffusion",
         "--model_args", f"model={CLI_DIFFUSION_MODEL},{CLI_KNOBS},dgbench_out={out}",
         "--tasks", str(ROOT / "suites" / "lm_eval_tasks" / f"{CLI_TASK}.yaml"), "--limit", "4",
         "--batch_size", "4", "--device", "cpu", "--output_path", str(out)],
        capture_output=True, text=True, timeout=300, cwd=tmp_path, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    # lm-eval's own table, then dgbench's: the same accuracy with speed columns beside it.
    assert "|dgbench_mc_gen|" in proc.stdout.replace(" ", "")
    assert "committed tok/s" in proc.stdout and f"dgbench-diffusion:{CLI_DIFFUSION_MODEL}" in proc.stdout
    records = [json.loads(line) for line in (out / "dgbench_requests.jsonl").read_text().splitlines()]
    assert len(records) == 4 and {r["call"] for r in records} == {0}          # one batch of four requests
    assert all(r["nfe_sequence"] >= 1 and r["useful_tokens"] <= r["gen_length"] == 16 for r in records)
    (results_file,) = out.glob("*/results_*.json")
    results = json.loads(results_file.read_text())
    assert results["config"]["dgbench"]["engine"] == "dgbench-masked"   # the masked model's default engine
    points = [json.loads(line) for line in (out / "dgbench_run" / "points.jsonl").read_text().splitlines()]
    assert len(points) == 1 and points[0]["quality"]["n"] == 4
    assert points[0]["quality"]["accuracy"] == results["results"][CLI_TASK]["exact_match,dgbench-extract"]
    assert points[0]["summary"]["nfe"]["median"] >= 2


def test_dgbench_lm_eval_finds_the_models_for_tasks_named_through_include_path(tmp_path):
    """`dgbench lm-eval` registers dgbench's models before lm-eval resolves --model, so a task named by
    --include_path + --tasks NAME (which plain lm_eval 0.4.13 cannot pair with a plug-in model) runs."""
    out = tmp_path / "out"
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}
    proc = subprocess.run(
        [str(Path(sys.executable).parent / "dgbench"), "lm-eval", "--model", "dgbench-ar",
         "--model_args", "model=ref-ar", "--include_path", str(ROOT / "suites" / "lm_eval_tasks"),
         "--tasks", "dgbench_mc", "--limit", "4", "--batch_size", "4", "--device", "cpu",
         "--output_path", str(out)],
        capture_output=True, text=True, timeout=300, cwd=tmp_path, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "dgbench-ar:ref-ar" in proc.stdout and "acc,none" in proc.stdout
    records = [json.loads(line) for line in (out / "dgbench_requests.jsonl").read_text().splitlines()]
    assert len(records) == 4 * 4   # four questions x four choices, one log-likelihood request each

"""benchmarks/gpu_validation.py in its CPU mode: the same code as the GPU run, on the tiny specs, so the
script cannot rot between the rare runs on a real card."""

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "benchmarks" / "gpu_validation.py"


def test_cpu_tiny_mode_writes_a_complete_report(tmp_path):
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    proc = subprocess.run([sys.executable, str(SCRIPT), "--device", "cpu", "--tiny", "--out", str(tmp_path)],
                          capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    folder, = tmp_path.iterdir()
    r = json.loads((folder / "validation.json").read_text())
    sections = ("telemetry", "sampler", "timing", "engines", "full_diffusion", "full_ar")
    assert not [s for s in sections if "error" in r[s]], {s: r[s].get("error") for s in sections}
    assert r["tiny"] and r["device"] == "cpu" and folder.name.endswith(r["date"])
    # engines: transformers is the reference; every variant must have matched its tokens in every rep
    for kind in ("diffusion", "ar"):
        e = r["engines"][kind]
        assert set(e["summary"]) >= {"transformers", "dgbench"}
        assert all(n == e["reps"] for n in e["identical"].values()), (kind, e["identical"])
    fd, ar = r["full_diffusion"], r["full_ar"]
    assert fd["steps_per_canvas"] == [r["config"]["steps"]] * 2, "16-steps-forced shape: every canvas runs them all"
    assert fd["committed_tok_s"] > 0 and fd["in_step_tok_s"] > fd["committed_tok_s"] and 0 < fd["ttfc_s"] < fd["e2e_s"]
    assert ar["tok_s"] > 0 and 0 < ar["ttft_s"] < ar["e2e_s"]
    assert r["diffusion_over_ar"] == fd["committed_tok_s"] / ar["tok_s"]
    for part in (fd, ar):   # the memory estimator against what the call really allocated
        assert 0.5 < part["estimate_over_measured"] < 2.0, part
    assert r["telemetry"]["samples"] >= 2 and r["timing"]["host_s"]["n"] >= 3
    md = (folder / "README.md").read_text()
    assert "diffusion ÷ AR" in md and "Failed sections: none" in md


def test_cuda_without_a_gpu_is_one_line_and_exit_2(capsys):
    import importlib.util

    import torch

    if torch.cuda.is_available():
        return
    spec = importlib.util.spec_from_file_location("gpu_validation", SCRIPT)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    assert mod.main(["--device", "cuda"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--device cpu --tiny" in err[0]


def test_a_spent_time_budget_skips_sections_and_still_writes_the_report(tmp_path):
    # --budget-s 0: every section is recorded as skipped for time, and the report folder is written all the same
    # (it is rewritten after every section, so a lease that ends mid-run keeps what was measured).
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    proc = subprocess.run([sys.executable, str(SCRIPT), "--device", "cpu", "--tiny", "--budget-s", "0",
                           "--out", str(tmp_path)], capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    folder, = tmp_path.iterdir()
    r = json.loads((folder / "validation.json").read_text())
    sections = ("telemetry", "sampler", "timing", "full_diffusion", "full_ar", "engines")
    assert all("time budget" in r[s]["skipped"] for s in sections), {s: r[s] for s in sections}
    assert r["diffusion_over_ar"] is None and r["budget_s"] == 0
    md = (folder / "README.md").read_text()
    assert "Skipped for time: " + ", ".join(sections) in md and "Not yet run: none" in md


def test_the_device_runner_checks_the_environment_and_writes_under_out(tmp_path):
    # benchmarks/gpu_device_run.sh is what a lent GPU machine runs; here on the CPU, with this interpreter as
    # python3 and no time budget, it must still check the environment and leave the report folder under $OUT.
    bindir = tmp_path / "bin"
    bindir.mkdir()
    wrapper = bindir / "python3"            # a wrapper, not a link: a venv's python finds its venv by its own path
    wrapper.write_text(f'#!/bin/sh\nexec "{sys.executable}" "$@"\n')
    wrapper.chmod(0o755)
    env = {**os.environ, "PATH": f"{bindir}:{os.environ['PATH']}", "OUT": str(tmp_path / "out"),
           "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(["bash", str(ROOT / "benchmarks" / "gpu_device_run.sh"), "--device", "cpu", "--tiny",
                           "--budget-s", "0"], capture_output=True, text=True, env=env, cwd=ROOT, timeout=300)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    out = tmp_path / "out"
    assert "transformers 5." in (out / "environment.txt").read_text()
    assert "skipped" in (out / "log.txt").read_text()
    folder, = [p for p in out.iterdir() if p.is_dir()]
    assert json.loads((folder / "validation.json").read_text())["budget_s"] == 0

"""End to end with real subprocesses: real `smoke` runs, a saved baseline, a deliberately slowed decoder.

The smoke suite is cut to its AR row on dgbench's own engine (the one with the slowing knob) and one
length, with a fixed 8 repetitions: a few seconds a run instead of 20. The machine running the tests is
shared, and its load swings by an order of magnitude between one minute and the next, so two runs made
one after the other can differ by more than any regression worth catching. The baseline, the same-code
and the slowed runs are therefore measured at the same time (one torch thread each), so they share
whatever load there is; the candidates gate with a threshold of 1.0 (a factor of 2) and the slowed
decoder does eight extra forward passes per step (~9x the work). How the rule behaves at realistic
noise is what tests/test_gate_power.py measures.
"""

import json
import os
import subprocess

import pytest

from conftest import ROOT, dgbench_argv, only_run_dir, run_cli

SMOKE_AR = ["--suite", "smoke",
            "--set", "decoders=[{name: ar, model: gemma4-tiny, engine: dgbench-autoregressive}]",
            "--set", "sweep.gen_length=[16]", "--set", "measure.min_repetitions=8",
            "--set", "measure.max_repetitions=8", "--set", "measure.min_time_s=0", "--set", "measure.memory=false",
            "--set", "gate.threshold=1.0"]
SLOWED = ["--set", "decoders.0.knobs.extra_forward_passes=8"]


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Three real smoke runs measured side by side (baseline, same code, slowed); the first saved as `smoke`."""
    root = tmp_path_factory.mktemp("gate-e2e")
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    procs = {name: subprocess.Popen([*dgbench_argv(), "run", *SMOKE_AR, *extra, "--out", str(root / name)],
                                    cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for name, extra in (("base", []), ("same", []), ("slow", SLOWED))}
    for name, proc in procs.items():
        out, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, (name, err[-2000:])
    saved = run_cli("baseline", "save", only_run_dir(root / "base"), "smoke", "--dir", root / "baselines")
    assert saved.returncode == 0, saved.stderr
    assert "saved baseline 'smoke'" in saved.stdout
    return root


def test_same_code_passes_and_slowed_decoder_fails(runs):
    folder = runs / "baselines"
    same_dir, slow_dir = only_run_dir(runs / "same"), only_run_dir(runs / "slow")
    same = run_cli("gate", "--baseline", "smoke", "--candidate", same_dir, "--dir", folder,
                   "--markdown", runs / "same.md")
    assert same.returncode == 0, same.stdout[-3000:] + same.stderr[-2000:]
    assert (runs / "same.md").read_text().startswith("## ✅ dgbench gate: PASS")

    slow = run_cli("gate", "--baseline", "smoke", "--candidate", slow_dir, "--dir", folder, "--update-baseline",
                   "--markdown", runs / "slow.md", "--junit", runs / "slow.xml", "--json", runs / "slow.json")
    assert slow.returncode == 1, slow.stdout[-3000:] + slow.stderr[-2000:]
    md = (runs / "slow.md").read_text()
    assert "FAIL" in md
    regressed = [line for line in md.splitlines() if "**REGRESSION**" in line]
    assert any("| committed_tok_s |" in line for line in regressed), md
    assert all("extra_forward_passes: unset → 8" in line for line in regressed)
    # The extra passes are not forward passes of the decode loop: NFE is unchanged, and compared exactly.
    nfe = next(line for line in md.splitlines() if "| nfe |" in line)
    assert "| exact | ok |" in nfe
    report = json.loads((runs / "slow.json").read_text())
    assert report["passed"] is False and report["regressions"] >= 1
    assert "<failure" in (runs / "slow.xml").read_text()

    # --update-baseline records only a passing candidate.
    assert "baseline 'smoke' updated" not in slow.stdout
    before = json.loads((folder / "smoke" / "run.json").read_text())
    assert before["created_utc"] == json.loads((only_run_dir(runs / "base") / "run.json").read_text())["created_utc"]
    same = run_cli("gate", "--baseline", "smoke", "--candidate", same_dir, "--dir", folder, "--update-baseline")
    assert same.returncode == 0 and "baseline 'smoke' updated" in same.stdout, same.stdout[-3000:]
    after = json.loads((folder / "smoke" / "run.json").read_text())
    assert after == json.loads((same_dir / "run.json").read_text())


def test_run_gate_against_writes_the_reports(runs, monkeypatch, tmp_path):
    # Only the exact counters are gated here (no timing metric listed), so the verdict cannot depend on
    # the machine's load: this checks the wiring of `run --gate-against`, the rule is checked above.
    monkeypatch.setenv("DGBENCH_BASELINES", str(runs / "baselines"))
    proc = run_cli("run", *SMOKE_AR, "--set", "gate.metrics=[{name: nfe, direction: lower, threshold: 0.0}]",
                   "--out", tmp_path, "--gate-against", "smoke")
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    run_dir = only_run_dir(tmp_path)
    assert "PASS" in (run_dir / "gate.md").read_text()
    assert json.loads((run_dir / "gate.json").read_text())["passed"] is True
    assert 'failures="0"' in (run_dir / "gate.xml").read_text()
    assert "PASS: 0 regression(s)" in proc.stdout


def test_bad_input_exits_2_with_one_line(runs, tmp_path):
    base_dir = only_run_dir(runs / "base")
    cases = {}
    cases["missing baseline"] = run_cli("gate", "--baseline", "no-such-baseline", "--candidate", base_dir,
                                        "--dir", runs / "baselines")
    # A corrupted results file: a line cut in the middle of the points file.
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "run.json").write_text((base_dir / "run.json").read_text())
    lines = (base_dir / "points.jsonl").read_text().splitlines()
    (broken / "points.jsonl").write_text(lines[0][:40] + "\n" + lines[0] + "\n")
    cases["corrupted"] = run_cli("gate", "--baseline", base_dir, "--candidate", broken)
    # Mismatched configurations: the same run at another generation length.
    other = tmp_path / "other"
    other.mkdir()
    (other / "run.json").write_text((base_dir / "run.json").read_text())
    point = json.loads(lines[0])
    point["params"]["gen_length"] = 64
    point["point_id"] = "0123456789ab"
    (other / "points.jsonl").write_text(json.dumps(point) + "\n")
    cases["mismatch"] = run_cli("gate", "--baseline", base_dir, "--candidate", other)
    cases["update a path"] = run_cli("gate", "--baseline", base_dir, "--candidate", base_dir, "--update-baseline")
    cases["run against missing"] = run_cli("run", *SMOKE_AR, "--out", tmp_path / "r", "--gate-against", "nope")
    expected = {"missing baseline": "baseline 'no-such-baseline' not found",
                "corrupted": "points.jsonl:1: corrupted line", "mismatch": "no candidate point matches",
                "update a path": "--update-baseline needs --baseline NAME", "run against missing": "'nope' not found"}
    for name, proc in cases.items():
        assert proc.returncode == 2, (name, proc.stdout[-2000:], proc.stderr)
        err = proc.stderr.strip().splitlines()
        assert len(err) == 1 and expected[name] in err[0] and "Traceback" not in proc.stderr, (name, proc.stderr)
    assert not (tmp_path / "r").exists(), "a missing baseline must stop the run before it measures"

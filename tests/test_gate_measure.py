"""`dgbench gate --measure` on real runs of a tiny slice of smoke: both sides measured here, interleaved.

Identical code must pass, and a test-only slowdown of about 2x must fail and be confirmed by the re-measure:
extra_forward_passes=3 runs every forward pass three more times, discarded (an 8-token generation then
takes ~2-2.5x as long: part of its time is outside the network). The two gates run at the
same time (one torch thread each) to keep the wall time down. How often the gate is wrong at a 10%
slowdown is what benchmarks/gate_error_rates.py measures; the simulation is tests/test_gate_family.py.
"""

import json
import os
import subprocess

import pytest

from conftest import ROOT, dgbench_argv
from dgbench.errors import ConfigError
from dgbench.gate.interleave import block_order, build_worktree, remove_worktree

TINY = ["--suite", "smoke", "--set", "decoders=[{name: ar, model: gemma4-tiny, engine: dgbench-autoregressive}]",
        "--set", "sweep.gen_length=[8]", "--blocks", "5", "--block-reps", "2"]


@pytest.fixture(scope="module")
def gates(tmp_path_factory):
    root = tmp_path_factory.mktemp("gate-measure")
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    cases = {"same": [], "slow": ["--candidate-set", "decoders.0.knobs.extra_forward_passes=3"]}
    procs = {name: subprocess.Popen([*dgbench_argv(), "gate", "--measure", "--baseline-dir", str(ROOT), *TINY, *extra,
                                     "--out", str(root / name), "--markdown", str(root / f"{name}.md"),
                                     "--json", str(root / f"{name}.json"), "--junit", str(root / f"{name}.xml")],
                                    cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for name, extra in cases.items()}
    out = {}
    for name, proc in procs.items():
        stdout, stderr = proc.communicate(timeout=600)
        out[name] = (proc.returncode, stdout, stderr)
    return root, out


def test_identical_code_passes(gates):
    root, out = gates
    code, stdout, stderr = out["same"]
    assert code == 0, stdout[-3000:] + stderr[-2000:]
    report = json.loads((root / "same.json").read_text())
    assert report["passed"] and report["regressions"] == 0
    timing = [c for c in report["comparisons"] if c["kind"] == "timing"]
    assert timing and all(c["design"] == "paired blocks (5)" for c in timing)
    assert "Holm-Bonferroni" in report["family"]
    # The default schedule: one side at a time, both workers pinned to one CPU.
    assert any("measured alternate, both sides on CPU" in n for n in report["notes"]), report["notes"]
    assert (root / "same.md").read_text().startswith("## ✅ dgbench gate: PASS")
    # The workers measured with this checkout's own code, models kept loaded (no fallback to `dgbench run`).
    logs = "".join(f.read_text() for f in (root / "same" / "logs").rglob("*.log"))
    assert "fast path unavailable" not in logs, logs[-2000:]


def test_two_x_slowdown_fails_and_is_confirmed(gates):
    root, out = gates
    code, stdout, stderr = out["slow"]
    assert code == 1, stdout[-3000:] + stderr[-2000:]
    report = json.loads((root / "slow.json").read_text())
    tok = next(c for c in report["comparisons"] if c["metric"] == "committed_tok_s")
    assert tok["change"] < -0.3, tok
    # The regression is found in wall time or in the call's CPU time (what a loaded machine hides least),
    # and confirmed by the re-measure.
    flagged = [c for c in report["comparisons"] if c["metric"] in ("committed_tok_s", "cpu_s_per_tok")
               and c["verdict"] == "regression"]
    assert flagged, report["comparisons"]
    assert all("confirmed on re-measure" in c["note"] for c in flagged) and "reproduced" in report["confirmation"]
    cpu = next(c for c in report["comparisons"] if c["metric"] == "cpu_s_per_tok")
    assert cpu["change"] > 0.3, cpu
    # The extra passes are outside the decode loop's count: NFE is compared exactly and unchanged.
    nfe = next(c for c in report["comparisons"] if c["metric"] == "nfe")
    assert nfe["verdict"] == "ok"
    assert "<failure" in (root / "slow.xml").read_text()
    # Both sides' runs stay on disk, merged from their blocks (what the gate read).
    merged = json.loads((root / "slow" / "candidate" / "points.jsonl").read_text().splitlines()[0])
    assert merged["rep_blocks"]["committed_tok_s"] == [2] * 5


def test_block_orders():
    assert block_order(2, 2, "concurrent") == [[(0, 0), (0, 1)], [(1, 0), (1, 1)]]
    assert block_order(3, 2, "alternate") == [[(0, 0)], [(0, 1)], [(1, 1)], [(1, 0)], [(2, 0)], [(2, 1)]]


def test_worktree_for_a_ref(tmp_path):
    repo = tmp_path / "repo"
    repo.mkdir()
    git = ["git", "-C", str(repo), "-c", "user.email=t@t", "-c", "user.name=t"]
    subprocess.run([*git, "init", "-q"], check=True)
    (repo / "f.txt").write_text("one")
    subprocess.run([*git, "add", "f.txt"], check=True)
    subprocess.run([*git, "commit", "-qm", "one"], check=True)
    where = build_worktree(repo, "HEAD", tmp_path / "wt")
    assert (where / "f.txt").read_text() == "one"
    remove_worktree(repo, where)
    assert not where.exists()
    with pytest.raises(ConfigError, match="not-a-ref"):
        build_worktree(repo, "not-a-ref", tmp_path / "wt2")


def test_fractional_extra_passes_are_rounded_the_same_every_call():
    from dgbench.backends.autoregressive import _SlowedModel

    calls = []

    class Counting:   # stands in for the network: only the number of calls matters here
        def __call__(self, **kwargs):
            calls.append(kwargs.get("use_cache", True))

    for fraction, forwards, extra in ((0.1, 32, 3), (0.1, 16, 2), (8, 3, 24), (1, 4, 4), (0.0625, 16, 1)):
        calls.clear()
        slowed = _SlowedModel(Counting(), fraction)
        for _ in range(forwards):
            slowed(input_ids=None)
        assert len(calls) - forwards == extra and calls.count(False) == extra, (fraction, forwards)


def test_pin_cpu_choices_and_errors():
    from dgbench.gate.interleave import resolve_pin

    allowed = sorted(os.sched_getaffinity(0))
    assert resolve_pin("auto", "alternate") == allowed[-1]
    assert resolve_pin("auto", "concurrent") is None     # concurrent sides would queue on one core
    assert resolve_pin("none", "alternate") is None
    assert resolve_pin(str(allowed[0]), "concurrent") == allowed[0]
    for bad, message in (("fast", "auto, none or a CPU number"), (str(max(allowed) + 64), "not a CPU this process")):
        with pytest.raises(ConfigError, match=message) as info:
            resolve_pin(bad, "alternate")
        assert "--pin-cpu" in str(info.value)


def test_pinned_workers_run_on_that_cpu(tmp_path):
    from dgbench.gate.interleave import Side, start_workers

    cpu = sorted(os.sched_getaffinity(0))[-1]
    sides = (Side("baseline", ROOT), Side("candidate", ROOT))
    workers = start_workers(sides, tmp_path, cpu=cpu)
    try:
        assert [os.sched_getaffinity(w.proc.pid) for w in workers] == [{cpu}, {cpu}]
    finally:
        for w in workers:
            w.close()


def test_the_workflows_gate_command_parses():
    """bench-gate.yml's command line is accepted by this dgbench's own parser (its flags cannot rot)."""
    import re
    import shlex

    from dgbench.cli import build_parser

    text = (ROOT / ".github" / "workflows" / "bench-gate.yml").read_text()
    command = re.search(r"\.venv/bin/dgbench (gate --measure .*?)\n\s*echo", text, re.S).group(1)
    argv = shlex.split(command.replace("\\\n", " ").replace('"$BASE_SHA"', "HEAD~1"))
    args = build_parser().parse_args(argv)
    assert args.measure and args.suite == "smoke" and args.schedule == "alternate" and args.pin_cpu == "auto"
    assert (args.blocks, args.block_reps) == (96, 2)


def _comparison(point_id, verdict, change):
    from dgbench.gate.rules import Comparison

    return Comparison(point=point_id, point_id=point_id, metric="committed_tok_s", unit="tok/s", kind="timing",
                      baseline=100.0, candidate=100.0 * (1 + change), change=change, verdict=verdict, p_adjusted=0.01)


def _result(*comparisons):
    from dgbench.gate.rules import GateResult

    return GateResult(list(comparisons), "b", "c", None, None, "hw", 0.05)


def test_flagged_improvements_are_confirmed_like_regressions(tmp_path):
    # A flagged improvement counts only if the fresh re-measure flags it too; one that does not reproduce is
    # ok again (or cannot tell), with both measurements in its note. Regressions keep their old rule.
    from dgbench.gate.measured import MeasureOptions, confirm, flagged_points
    from dgbench.gate.rules import CANNOT_TELL, IMPROVEMENT, OK, REGRESSION

    first = _result(_comparison("real-speedup", IMPROVEMENT, 0.12), _comparison("lucky-pair", IMPROVEMENT, 0.05),
                    _comparison("noisy", IMPROVEMENT, 0.06), _comparison("slower", REGRESSION, -0.10),
                    _comparison("steady", OK, 0.0))
    assert flagged_points(first) == {"real-speedup", "lucky-pair", "noisy", "slower"}
    again = _result(_comparison("real-speedup", IMPROVEMENT, 0.11), _comparison("lucky-pair", OK, 0.004),
                    _comparison("noisy", CANNOT_TELL, 0.02), _comparison("slower", REGRESSION, -0.09))
    confirm(first, again, MeasureOptions(suite="smoke", out_dir=tmp_path))
    verdicts = {c.point_id: c.verdict for c in first.comparisons}
    assert verdicts == {"real-speedup": IMPROVEMENT, "lucky-pair": OK, "noisy": CANNOT_TELL, "slower": REGRESSION,
                        "steady": OK}
    notes = {c.point_id: c.note for c in first.comparisons}
    assert "confirmed on re-measure: +11.0%" in notes["real-speedup"]
    assert "flagged as improvement (+5.0%" in notes["lucky-pair"] and "+0.4%" in notes["lucky-pair"]
    assert len(first.improvements) == 1 and len(first.regressions) == 1 and not first.passed
    assert "(1 regression(s), 3 improvement(s))" in first.confirmation and "2 reproduced" in first.confirmation


def test_without_confirmation_flagged_changes_stand(tmp_path):
    from dgbench.gate.measured import MeasureOptions, confirm
    from dgbench.gate.rules import IMPROVEMENT

    first = _result(_comparison("p", IMPROVEMENT, 0.07))
    confirm(first, None, MeasureOptions(suite="smoke", out_dir=tmp_path, confirm=False))
    assert first.comparisons[0].verdict == IMPROVEMENT and "--no-confirm" in first.confirmation
    nothing = _result(_comparison("q", "ok", 0.0))
    confirm(nothing, None, MeasureOptions(suite="smoke", out_dir=tmp_path))
    assert nothing.confirmation == "no timing change to confirm"

"""The gate's statistics and decision rules, on numbers and on run directories written to disk (no torch)."""

import json
import math
import random
import subprocess
import sys

import pytest
from scipy import stats as scipy_stats  # cross-check only; dgbench itself needs no scipy

from dgbench.errors import ResultsError
from dgbench.gate.rules import (IMPROVEMENT, OK, REGRESSION, MetricRule, accuracy_verdict, compare_runs, exact_verdict,
                          min_attainable_p, timing_verdict)
from dgbench.gate.baselines import resolve_baseline, save_baseline
from dgbench.gate.outputs import junit_xml, markdown
from dgbench.stats import bootstrap_ratio_of_medians, mann_whitney_u, mcnemar_exact


def test_mann_whitney_matches_scipy_exact_and_tie_corrected():
    rng = random.Random(0)
    for trial in range(200):
        n1, n2 = rng.randint(1, 12), rng.randint(1, 12)
        if trial % 2:  # small integers: mostly tied values
            a = [rng.randint(0, 5) for _ in range(n1)]
            b = [rng.randint(0, 6) for _ in range(n2)]
        else:
            a = [rng.random() for _ in range(n1)]
            b = [rng.random() + 0.3 for _ in range(n2)]
        # Ties: normal approximation with tie and continuity correction; none: the exact distribution.
        method = "asymptotic" if len(set(a + b)) < len(a + b) else "exact"
        ref = scipy_stats.mannwhitneyu(a, b, alternative="two-sided", method=method).pvalue
        got = mann_whitney_u(a, b)
        assert got == pytest.approx(ref, abs=1e-12), (a, b)
    # Beyond 2,500 pairs the normal approximation is used even without ties.
    a = [rng.random() for _ in range(60)]
    b = [rng.random() + 0.1 for _ in range(60)]
    assert mann_whitney_u(a, b) == pytest.approx(
        scipy_stats.mannwhitneyu(a, b, alternative="two-sided", method="asymptotic").pvalue, rel=1e-9)
    assert math.isnan(mann_whitney_u([], [1.0]))
    assert mann_whitney_u([2.0] * 4, [2.0] * 5) == 1.0


def test_min_attainable_p_is_what_complete_separation_gives():
    for n in (3, 5, 8):
        assert mann_whitney_u(list(range(n)), list(range(10, 10 + n))) == pytest.approx(min_attainable_p(n, n))
    assert min_attainable_p(3, 3) == pytest.approx(0.1)   # three reps a side can never be significant


def test_mcnemar_exact_matches_scipy_binomtest():
    for b01, b10 in [(0, 0), (0, 10), (3, 13), (5, 15), (6, 16), (40, 60)]:
        ref = 1.0 if b01 + b10 == 0 else scipy_stats.binomtest(b01, b01 + b10, 0.5).pvalue
        assert mcnemar_exact(b01, b10) == pytest.approx(ref, rel=1e-9)


def test_bootstrap_ratio_interval_is_seeded_and_covers_the_ratio():
    base = [1.0, 1.02, 0.98, 1.01, 0.99, 1.0]
    cand = [1.2, 1.21, 1.19, 1.22, 1.18, 1.2]
    first = bootstrap_ratio_of_medians(base, cand, seed=7)
    assert first == bootstrap_ratio_of_medians(base, cand, seed=7)
    ratio, low, high = first
    assert ratio == pytest.approx(1.2)
    assert 1.1 < low <= ratio <= high < 1.3


def test_timing_rule_needs_both_threshold_and_significance():
    rule = MetricRule("e2e_s", higher_is_better=False, threshold=0.05)
    base = [1.00, 1.01, 0.99, 1.02, 0.98, 1.00, 1.01]
    assert timing_verdict(rule, base, [x * 1.2 for x in base], 0.05)[0] == REGRESSION
    assert timing_verdict(rule, base, [x * 0.8 for x in base], 0.05)[0] == IMPROVEMENT
    # Significant but within the threshold: a 2% shift with no overlap is not worth failing a change for.
    assert timing_verdict(rule, base, [x * 1.03 for x in base], 0.05)[0] == OK
    # Beyond the threshold but not significant: three repetitions a side can never reach p < 0.05.
    assert timing_verdict(rule, base[:3], [x * 1.5 for x in base[:3]], 0.05)[0] == OK
    # Direction comes from the metric: higher tok/s is better.
    tok = MetricRule("committed_tok_s", higher_is_better=True, threshold=0.05)
    assert timing_verdict(tok, base, [x * 0.8 for x in base], 0.05)[0] == REGRESSION


def test_exact_counters_and_absolute_threshold():
    nfe = MetricRule("nfe", higher_is_better=False, threshold=0.0, kind="exact")
    assert exact_verdict(nfe, 16, 17)[0] == REGRESSION
    assert exact_verdict(nfe, 16, 16)[0] == OK
    assert exact_verdict(nfe, 16, 12)[0] == IMPROVEMENT
    # A relative change of 50% that is 0.5 ms in absolute terms stays ok under absolute: 0.001 s.
    ttft = MetricRule("ttft_s", higher_is_better=False, threshold=0.1, absolute=0.001)
    assert timing_verdict(ttft, [0.001] * 6, [0.0015] * 5 + [0.0016], 0.05)[0] == OK


def test_accuracy_is_paired_and_exact_for_greedy_decoders():
    rule = MetricRule("accuracy", higher_is_better=True, threshold=0.0, kind="accuracy")
    base = [True] * 120 + [False] * 80
    cand = list(base)
    for i in range(10):
        cand[i] = False   # ten items broken, none gained: a 5-point drop, p = 2 / 2**10
    verdict, change, p, b01, b10 = accuracy_verdict(rule, base, cand, 0.05, deterministic=False)
    assert (verdict, b01, b10) == (REGRESSION, 0, 10) and change == pytest.approx(-0.05) and p < 0.01
    one = list(base)
    one[0] = False
    assert accuracy_verdict(rule, base, one, 0.05, deterministic=False)[0] == OK   # one item: noise
    assert accuracy_verdict(rule, base, one, 0.05, deterministic=True)[0] == REGRESSION  # greedy: exact


# ---------------------------------------------------------------- run directories on disk

def write_run(path, points, hardware=None, gate=None, status="completed"):
    path.mkdir(parents=True)
    meta = {"schema_version": 1, "status": status, "suite_name": "synthetic", "git_commit": "abc",
            "hardware": hardware or {"device": "cpu", "cpu_model": "Test CPU", "cpu_cores_logical": 2},
            "suite": {"gate": gate or {"threshold": 0.05, "metrics": [
                {"name": "committed_tok_s", "direction": "higher", "threshold": None}]}}}
    (path / "run.json").write_text(json.dumps(meta))
    (path / "points.jsonl").write_text("".join(json.dumps(p) + "\n" for p in points))
    return path


def point(pid="p1", tok_s=(100, 101, 99, 100, 102, 98, 100), nfe=16, correct=None, knobs=None, gen=16):
    p = {"point_id": pid, "status": "ok", "decoder": "ar", "model": "m", "engine": "e", "dtype": "float32",
         "params": {"batch_size": 1, "gen_length": gen}, "knobs": knobs or {"do_sample": True},
         "reps": {"committed_tok_s": list(tok_s), "nfe": [nfe] * len(tok_s)}}
    if correct is not None:
        p["correct"] = correct
        p["item_ids"] = [f"item{i}" for i in range(len(correct))]
    return p


def test_compare_runs_reports_regressions_improvements_and_matches_changed_knobs(tmp_path):
    base = write_run(tmp_path / "base", [point(), point("p2", gen=32, correct=[True] * 30 + [False] * 10)])
    slower = [x * 0.8 for x in (100, 101, 99, 100, 102, 98, 100)]
    cand = write_run(tmp_path / "cand", [
        point("p1-other-knobs", tok_s=slower, knobs={"do_sample": True, "extra_forward_passes": 2}),
        point("p2", gen=32, tok_s=[x * 1.3 for x in (100, 101, 99, 100, 102, 98, 100)], nfe=15,
              correct=[False] * 10 + [True] * 20 + [False] * 10)])
    result = compare_runs(base, cand)
    by = {(c.point_id, c.metric): c for c in result.comparisons}
    assert by[("p1-other-knobs", "committed_tok_s")].verdict == REGRESSION
    assert "extra_forward_passes: unset → 2" in by[("p1-other-knobs", "committed_tok_s")].note
    assert by[("p2", "committed_tok_s")].verdict == IMPROVEMENT
    assert by[("p2", "nfe")].verdict == IMPROVEMENT
    assert by[("p2", "accuracy")].verdict == REGRESSION and by[("p2", "accuracy")].change == pytest.approx(-0.25)
    assert not result.passed
    md = markdown(result)
    assert "**REGRESSION**" in md and "committed_tok_s" in md and "❌" in md
    xml = junit_xml(result)
    assert 'failures="2"' in xml and "<failure" in xml


def test_markdown_and_xml_escape_names_from_the_suite(tmp_path):
    p = point()
    p["decoder"] = "<script>|x"
    base = write_run(tmp_path / "base", [p])
    result = compare_runs(base, base)
    assert result.passed
    assert "<script>" not in markdown(result) and "&lt;script&gt;\\|x" in markdown(result)
    assert "<script>" not in junit_xml(result)


@pytest.mark.parametrize("case, message", [
    ("mismatch", "no candidate point matches"),
    ("missing_point", "have no match in the candidate"),
    ("corrupted", "corrupted line"),
    ("hardware", "cpu_model: 'Test CPU' vs 'Other CPU'"),
    ("no_points", "points.jsonl: no such file"),
])
def test_data_errors_are_one_line(tmp_path, case, message):
    base = write_run(tmp_path / "base", [point(), point("p2", gen=32)])
    if case == "mismatch":
        cand = write_run(tmp_path / "cand", [point("q", gen=64)])
    elif case == "missing_point":
        cand = write_run(tmp_path / "cand", [point()])
    elif case == "corrupted":
        cand = write_run(tmp_path / "cand", [point(), point("p2", gen=32)])
        (cand / "points.jsonl").write_text('{"point_id": "p1", \n' + json.dumps(point("p2", gen=32)) + "\n")
    elif case == "hardware":
        cand = write_run(tmp_path / "cand", [point(), point("p2", gen=32)],
                         hardware={"device": "cpu", "cpu_model": "Other CPU", "cpu_cores_logical": 2})
    else:
        cand = write_run(tmp_path / "cand", [point()])
        (cand / "points.jsonl").unlink()
    with pytest.raises(ResultsError, match=message.replace("|", r"\|")) as err:
        compare_runs(base, cand)
    assert "\n" not in str(err.value)
    if case == "hardware":
        assert compare_runs(base, cand, allow_different_hardware=True).passed


def test_baselines_save_resolve_and_refuse_unfinished_runs(tmp_path):
    run = write_run(tmp_path / "run", [point()])
    folder = tmp_path / "baselines"
    saved = save_baseline(run, "smoke-cpu", folder)
    assert sorted(f.name for f in saved.iterdir()) == ["points.jsonl", "run.json"]
    assert resolve_baseline("smoke-cpu", folder) == (saved, "smoke-cpu")
    assert resolve_baseline(str(run / "points.jsonl"), folder) == (run, None)
    with pytest.raises(ResultsError, match="saved there: smoke-cpu"):
        resolve_baseline("smoke-gpu", folder)
    partial = write_run(tmp_path / "partial", [point()], status="running")
    with pytest.raises(ResultsError, match="not 'completed'"):
        save_baseline(partial, "x", folder)


def test_gate_import_leaves_torch_out():
    code = ("import sys, dgbench.gate, dgbench.gate.outputs, dgbench.gate.baselines, dgbench.cli.gate, "
            "dgbench.cli.baseline, dgbench.gate.power; print('torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"

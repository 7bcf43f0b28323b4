"""The gate's sound statistics: Student's t without scipy, Holm over a gate's timing comparisons, paired
block ratios, the minimum detectable effect and "cannot tell", and the exit code for it (no torch)."""

import json
import math
import random

import pytest
from scipy import stats as scipy_stats  # cross-check only; dgbench itself needs no scipy

from conftest import run_cli
from dgbench.gate.family import holm_adjust, mde_from_se, paired_se, t_quantile, t_two_sided_p
from dgbench.gate.outputs import junit_xml, markdown, verdict_text
from dgbench.gate.power import paired_rates
from dgbench.gate.rules import (CANNOT_TELL, OK, REGRESSION, accuracy_mde, compare_runs)


def test_student_t_matches_scipy():
    for t, df in ((2.228, 10), (0.5, 3), (4.0, 7), (1.0, 1), (12.0, 2)):
        assert t_two_sided_p(t, df) == pytest.approx(2 * scipy_stats.t.sf(t, df), rel=1e-6)
    for q, df in ((0.975, 7), (0.8, 3), (0.99875, 9)):
        assert t_quantile(q, df) == pytest.approx(scipy_stats.t.ppf(q, df), rel=1e-6)


def test_holm_matches_the_textbook_step_down():
    # Holm 1979: sorted p x (K - rank), running maximum, capped at 1; nan is not part of the family.
    assert holm_adjust([0.01, 0.04, 0.03, 0.005]) == pytest.approx([0.03, 0.06, 0.06, 0.02])
    adjusted = holm_adjust([0.2, math.nan, 0.9])
    assert adjusted[0] == pytest.approx(0.4) and math.isnan(adjusted[1]) and adjusted[2] == pytest.approx(0.9)


def test_mde_shrinks_with_blocks_and_grows_with_noise():
    rng = random.Random(0)
    logs = [rng.gauss(0, 0.03) for _ in range(8)]
    se, df = paired_se(logs)
    mde8 = mde_from_se(se, df, 0.05)
    se16, df16 = paired_se(logs + [rng.gauss(0, 0.03) for _ in range(8)])
    assert mde_from_se(se16, df16, 0.05) < mde8
    assert mde_from_se(se, df, 0.05 / 12) > mde8          # a stricter family level needs a bigger change
    assert mde_from_se(2 * se, df, 0.05) > mde8


def write_run(path, points, threshold=0.05):
    path.mkdir(parents=True)
    meta = {"schema_version": 1, "status": "completed", "suite_name": "synthetic", "git_commit": "abc",
            "hardware": {"device": "cpu", "cpu_model": "Test CPU", "cpu_cores_logical": 2},
            "suite": {"gate": {"threshold": threshold, "metrics": [{"name": "committed_tok_s"}]}}}
    (path / "run.json").write_text(json.dumps(meta))
    (path / "points.jsonl").write_text("".join(json.dumps(p) + "\n" for p in points))
    return path


def blocked_point(pid, blocks, interleave="g1"):
    """A point measured interleaved: tok/s repetitions in blocks, as `dgbench gate --measure` merges them."""
    reps = [v for b in blocks for v in b]
    return {"point_id": pid, "status": "ok", "decoder": "ar", "model": "m", "engine": "e", "dtype": "float32",
            "params": {"batch_size": 1, "gen_length": 16}, "knobs": {}, "interleave_id": interleave,
            "reps": {"committed_tok_s": reps, "nfe": [16] * len(reps)},
            "rep_blocks": {"committed_tok_s": [len(b) for b in blocks], "nfe": [len(b) for b in blocks]}}


def paired_runs(tmp_path, factor_of, noise_of, blocks=8, seed=0):
    """Baseline and candidate runs whose block i shares a load factor (drift) hitting both sides alike."""
    rng = random.Random(seed)
    base, cand = [], []
    for pid in factor_of:
        drift = [rng.uniform(0.5, 1.5) for _ in range(blocks)]   # the machine's load, block by block
        bb = [[100 * d * (1 + rng.gauss(0, noise_of[pid])) for _ in range(3)] for d in drift]
        cb = [[100 * d * factor_of[pid] * (1 + rng.gauss(0, noise_of[pid])) for _ in range(3)] for d in drift]
        base.append(blocked_point(pid, bb))
        cand.append(blocked_point(pid, cb))
    return write_run(tmp_path / "base", base), write_run(tmp_path / "cand", cand)


def test_paired_blocks_see_through_drift_that_fools_the_unpaired_test(tmp_path):
    # Same code, point a; 2x slower (half the tok/s), point b; point c's noise is far above the 5% threshold.
    base, cand = paired_runs(tmp_path, {"a": 1.0, "b": 0.5, "c": 1.0}, {"a": 0.01, "b": 0.01, "c": 0.5})
    result = compare_runs(base, cand)
    by = {c.point_id: c for c in result.comparisons if c.metric == "committed_tok_s"}
    assert by["a"].verdict == OK and by["a"].design == "paired blocks (8)" and by["a"].mde < 0.05
    assert by["b"].verdict == REGRESSION and by["b"].change == pytest.approx(-0.5, abs=0.02)
    assert by["c"].verdict == CANNOT_TELL and by["c"].mde > 0.05
    assert verdict_text(by["c"]).startswith("cannot tell (noise ±") and "> threshold 5%)" in verdict_text(by["c"])
    assert "Holm-Bonferroni over 3 timing comparison(s)" in result.family
    assert by["b"].p_adjusted >= by["b"].p_value
    # Every output carries the same verdicts: markdown, JUnit (cannot tell is skipped, a regression fails).
    md = markdown(result)
    assert "**REGRESSION**" in md and "cannot tell (noise" in md and "Holm-Bonferroni" in md
    xml = junit_xml(result)
    assert xml.count("<failure") == 1 and xml.count("<skipped") == 1
    # Without the interleave id the same numbers are two unrelated runs: drift swamps them (unpaired).
    for run in (base, cand):
        lines = [json.loads(x) for x in (run / "points.jsonl").read_text().splitlines()]
        for p in lines:
            p.pop("interleave_id")
        (run / "points.jsonl").write_text("".join(json.dumps(p) + "\n" for p in lines))
    unpaired = {c.point_id: c for c in compare_runs(base, cand).comparisons if c.metric == "committed_tok_s"}
    assert unpaired["a"].design == "unpaired runs" and unpaired["a"].mde > by["a"].mde


def test_cannot_tell_exit_code_is_chosen_by_a_flag(tmp_path):
    base, cand = paired_runs(tmp_path, {"c": 1.0}, {"c": 0.5})
    default = run_cli("gate", "--baseline", base, "--candidate", cand)
    assert default.returncode == 0, default.stdout[-2000:] + default.stderr
    assert "cannot tell (noise" in default.stdout and "1 cannot tell" in default.stdout
    strict = run_cli("gate", "--baseline", base, "--candidate", cand, "--cannot-tell", "fail")
    assert strict.returncode == 3, strict.stdout[-2000:] + strict.stderr


def test_measure_mode_needs_its_inputs():
    proc = run_cli("gate", "--measure", "--suite", "smoke")
    assert proc.returncode == 2 and "--baseline-ref" in proc.stderr and "Traceback" not in proc.stderr
    proc = run_cli("gate", "--measure", "--baseline-dir", "/nonexistent", "--suite", "smoke")
    assert proc.returncode == 2 and "no dgbench package there" in proc.stderr
    proc = run_cli("gate", "--measure", "--baseline-ref", "no-such-ref-xyz", "--suite", "smoke")
    assert proc.returncode == 2 and "no-such-ref-xyz" in proc.stderr and len(proc.stderr.strip().splitlines()) == 1
    proc = run_cli("gate")
    assert proc.returncode == 2 and "--baseline" in proc.stderr


def test_accuracy_says_when_n_is_too_small():
    # Exact McNemar: d right->wrong and none back gives p = 2 * 0.5^d, below 0.05 only from d = 6.
    assert accuracy_mde(20, 0.05) == pytest.approx(6 / 20)
    assert accuracy_mde(200, 0.05) == pytest.approx(6 / 200)


def test_simulated_paired_gate_meets_the_goals_under_drift():
    # Drift: each block's load factor varies by 30% and hits both sides alike; repetitions add 3% noise and
    # one in twenty is a load spike (x1.5-3). Drift this size makes the unpaired test useless (see above).
    same = paired_rates(slowdown=0.0, drift=0.3, cv=0.03, blocks=8, block_reps=3, trials=400, seed=1)
    slow = paired_rates(slowdown=0.10, drift=0.3, cv=0.03, blocks=8, block_reps=3, trials=400, seed=2)
    assert same["regression_rate"] <= 0.05 and same["improvement_rate"] <= 0.05, same
    assert slow["regression_rate"] >= 0.90, slow


def test_process_pairs_are_the_unit_when_a_pair_carries_a_lifelong_bias():
    """Same code, 4 process pairs x 6 blocks; each pair runs +-8% off for its whole life (tiny block noise).
    Blocks as units: the bias looks like a tight, significant change. Pairs as units: 3 df, the bias is the
    noise, and no significant change remains."""
    from dgbench.gate.family import process_means
    from dgbench.gate.rules import MetricRule, apply_family, timing_comparison

    rng = random.Random(3)
    bias = [0.08, 0.02, 0.06, -0.01]          # one draw per pair: the majority is off in the same direction
    groups = [g for g in range(4) for _ in range(6)]
    base = [[1.0 + rng.gauss(0, 0.002) for _ in range(3)] for _ in groups]
    cand = [[(1.0 + rng.gauss(0, 0.002)) * math.exp(bias[g]) for _ in range(3)] for g in groups]
    flat_b, flat_c = [x for b in base for x in b], [x for c in cand for x in c]
    rule = MetricRule("e2e_s", False, 0.05, 0.0, "timing")
    as_blocks = apply_family([timing_comparison(rule, flat_b, flat_c, (base, cand), 0.05, 0)], 0.05)[0]
    as_pairs = apply_family([timing_comparison(rule, flat_b, flat_c, (base, cand, groups), 0.05, 0)], 0.05)[0]
    assert as_blocks.p_value < 1e-3 and as_blocks.design == "paired blocks (24)"
    assert as_pairs.p_value > 0.05 and as_pairs.verdict != REGRESSION and as_pairs.df == 3
    assert as_pairs.design == "paired processes (4 pairs x 6 blocks)"
    assert as_pairs.mde > as_blocks.mde
    # The unit means: one per pair, the mean of that pair's block log ratios.
    logs = [math.log(sum(sorted(c)[1:2]) / sum(sorted(b)[1:2])) for b, c in zip(base, cand)]
    means = process_means(logs, groups)
    assert len(means) == 4 and means[0] == pytest.approx(sum(logs[:6]) / 6)
    assert process_means(logs, None) == logs and process_means(logs, [0] * 24) == logs

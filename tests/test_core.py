"""Statistics, the measurement loop, the results store and the metric derivations."""

import json

import numpy as np
import pytest

from dgbench.backends.base import steps_between, useful_length
from dgbench.errors import ResultsError
from dgbench.scenarios.measure import MeasurePlan, repeat
from dgbench.results import RunStore
from dgbench.stats import percentile, summarize


@pytest.mark.parametrize("q", [0, 10, 50, 90, 100])
def test_percentile_matches_numpy(q):
    xs = [3.0, 1.0, 4.0, 1.5, 9.0, 2.6, 5.3]
    assert percentile(xs, q) == pytest.approx(np.percentile(xs, q))


def test_summarize_reports_n_spread_and_cv():
    s = summarize([1.0, 2.0, 3.0, 4.0])
    assert s["n"] == 4 and s["median"] == 2.5
    assert s["cv"] == pytest.approx(np.std([1, 2, 3, 4], ddof=1) / 2.5)
    assert summarize([])["n"] == 0


def test_repeat_runs_warmup_then_until_min_count_and_min_time():
    calls = []
    plan = MeasurePlan(warmup=2, min_repetitions=3, max_repetitions=10, min_time_s=1.0)
    out = repeat(lambda i: calls.append(i) or 0.3, plan, elapsed_of=lambda r: r)
    assert calls[:2] == [-1, -2], "warmup calls come first and are not returned"
    assert len(out) == 4, "3 reps give 0.9 s < 1.0 s, so a 4th is measured"


def test_repeat_stops_at_max_repetitions():
    plan = MeasurePlan(warmup=0, min_repetitions=1, max_repetitions=5, min_time_s=100.0)
    assert len(repeat(lambda i: 0.01, plan, elapsed_of=lambda r: r)) == 5


def test_useful_tokens_stop_before_first_eos_or_pad():
    assert useful_length([5, 6, 1, 7], {1, 0}) == 2
    assert useful_length([5, 6, 7], {1, 0}) == 3
    assert useful_length([0, 5], {1, 0}) == 0
    assert useful_length([5, 1], set()) == 2, "fixed-length mode counts everything"


def test_steps_are_split_by_canvas_commits():
    steps, durations = steps_between([0.0, 1.0, 2.0, 5.0, 6.0], [2.5, 7.0])
    assert steps == [3, 2]
    assert durations == pytest.approx([1.0, 1.0, 0.5, 1.0, 1.0])


def test_results_store_is_durable_and_ignores_a_torn_last_line(tmp_path):
    store = RunStore(tmp_path / "run")
    store.create({"suite_name": "x"})
    store.append_point({"point_id": "a", "status": "ok"})
    store.append_point({"point_id": "b", "status": "failed"})
    store.close()
    with open(store.points_file, "a") as f:
        f.write('{"point_id": "c", "sta')  # killed mid-write
    assert [p["point_id"] for p in store.read_points()] == ["a", "b"]
    assert store.finished_point_ids() == {"a"}, "failed points are re-run on resume"
    assert json.loads(store.run_file.read_text())["schema_version"] == 1


def test_results_store_rejects_corruption_and_missing_runs(tmp_path):
    with pytest.raises(ResultsError, match="no such file"):
        RunStore(tmp_path).read_meta()
    (tmp_path / "run.json").write_text("{not json")
    with pytest.raises(ResultsError, match="corrupted JSON"):
        RunStore(tmp_path).read_meta()
    (tmp_path / "points.jsonl").write_text('garbage\n{"point_id": "a"}\n')
    with pytest.raises(ResultsError, match="points.jsonl:1: corrupted line"):
        RunStore(tmp_path).read_points()


def test_synthetic_prompts_never_contain_a_special_id():
    from dgbench.scenarios.generation import synthetic_prompts

    ids, mask = synthetic_prompts(64, 64, 20, [0, 1, 2, 17], seed=0, device="cpu")
    values = set(ids.flatten().tolist())
    assert values == set(range(20)) - {0, 1, 2, 17}, "every other id is drawn, no special one"
    assert mask.all()
    # A count n means ids 0..n-1, drawing the same prompts as the explicit list.
    assert ids.equal(synthetic_prompts(64, 64, 20, [0, 1, 2, 17], 0, "cpu")[0])
    assert synthetic_prompts(4, 8, 50, 3, 1, "cpu")[0].equal(synthetic_prompts(4, 8, 50, [2, 0, 1], 1, "cpu")[0])

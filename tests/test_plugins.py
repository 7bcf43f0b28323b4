"""Adding a task is one file plus its registration (tests/fixtures/echo_task.py), and the report's
comparison page and `dgbench gate` give the same verdicts on the same two runs."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from dgbench.errors import ConfigError
from dgbench.harness.suite import load_suite

sys.path.insert(0, str(Path(__file__).resolve().parent))
import fixtures.echo_task  # noqa: E402,F401  (registers the task "echo")

ECHO_SUITE = """\
name: echo
scenario: quality
decoders:
  - {name: ar, model: gemma4-tiny, engine: dgbench-autoregressive}
tasks:
  echo: {n: 2, length: 5}
measure: {warmup: 0}
telemetry: {enabled: false}
"""


def test_a_task_in_its_own_file_runs_from_a_suite(tmp_path):
    from dgbench.harness.runner import run_suite
    from dgbench.harness.sweep import expand

    path = tmp_path / "echo.yaml"
    path.write_text(ECHO_SUITE)
    suite = load_suite(str(path))
    assert suite["tasks"]["echo"] == {"n": 2, "length": 5}
    (point,) = expand(suite)
    assert (point.task, point.gen_length, point.scenario) == ("echo", 5, "quality")
    outcome = run_suite(suite, device="cpu", out_root=tmp_path / "results")
    (record,) = outcome.points
    assert record["status"] == "ok", record.get("error")
    assert record["quality"]["n"] == 2 and record["item_ids"] == ["echo-0-0", "echo-0-1"]
    samples = [json.loads(line) for line in (Path(outcome.run_dir) / "samples.jsonl").read_text().splitlines()]
    assert [s["task"] for s in samples] == ["echo", "echo"] and all("chars" in s for s in samples)


def test_the_tasks_fields_are_validated_like_built_in_ones(tmp_path):
    path = tmp_path / "echo.yaml"
    path.write_text(ECHO_SUITE.replace("length: 5", "length: 0"))
    with pytest.raises(ConfigError, match="length"):
        load_suite(str(path))
    path.write_text(ECHO_SUITE.replace("echo: {", "ecko: {"))
    with pytest.raises(ConfigError, match="echo"):   # did you mean
        load_suite(str(path))

"""Every shipped suite validates; bad suites fail with one line naming file:line, field and fix."""

from pathlib import Path

import pytest

from dgbench.errors import ConfigError
from dgbench.harness.suite import apply_overrides, load_suite
from dgbench.harness.sweep import expand

from conftest import ROOT, run_cli

SUITE_FILES = sorted((ROOT / "suites").glob("*.yaml"))


def test_there_are_the_three_core_suites():
    assert {p.stem for p in SUITE_FILES} >= {"smoke", "latency", "throughput", "samplers"}


@pytest.mark.parametrize("path", SUITE_FILES, ids=lambda p: p.stem)
def test_every_shipped_suite_validates_and_expands(path):
    suite = load_suite(str(path))
    points = expand(suite)
    assert points, "a suite with no sweep points measures nothing"
    assert len({p.point_id for p in points}) == len(points), "point ids must be unique for --resume"
    if suite["scenario"] == "serve" and len(suite["endpoints"]) == 1:
        return   # `serve` is pointed at the user's one server (--set endpoint.url=...); it sweeps the load instead
    assert len({p.decoder for p in points}) >= 2, "each shipped suite compares at least two decoders"


def test_throughput_suite_sweeps_diffusion_knobs_only_for_diffusion():
    points = expand(load_suite("throughput"))
    diff = [p for p in points if p.decoder == "diffusion"]
    ar = [p for p in points if p.decoder == "ar"]
    assert len(diff) == 3 * 2 * 2 * 2  # batch x gen x canvas x steps
    assert len(ar) == 3 * 2            # batch x gen: AR has no canvas or steps
    assert {p.knobs["canvas_length"] for p in diff} == {32, 64}


def write(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "bad.yaml"
    p.write_text(text)
    return p


GOOD = """\
name: t
decoders:
  - name: d
    model: diffusiongemma-tiny
    engine: hf-diffusion
    knobs: {max_denoising_steps: 2}
sweep:
  gen_length: [16]
measure:
  warmup: 0
"""


@pytest.mark.parametrize("old, new, pattern", [
    # unknown key, with the line and the suggestion
    ("  warmup: 0", "  warmpu: 0", r"bad.yaml:10: measure.warmpu: unknown key; did you mean 'warmup'\?"),
    # an engine knob is checked against that engine's knobs
    ("max_denoising_steps: 2", "max_denoising_step: 2",
     r"decoders\[0\].knobs.max_denoising_step: unknown key; did you mean 'max_denoising_steps'"),
    # wrong type names the field and the expected type
    ("warmup: 0", "warmup: three", r"bad.yaml:10: measure.warmup: expected an integer, got str \('three'\)"),
    # YAML syntax error gives file and line
    ("  gen_length: [16]", "  gen_length: [16", r"bad.yaml:\d+: YAML syntax error"),
    # unknown model lists a close match
    ("diffusiongemma-tiny", "diffusiongema-tiny",
     r"unknown value 'diffusiongema-tiny'; did you mean 'diffusiongemma-tiny'"),
    # engine and model paradigms must agree
    ("diffusiongemma-tiny", "gemma4-tiny", "decodes diffusion models but 'gemma4-tiny' is autoregressive"),
], ids=["unknown-key", "unknown-knob", "wrong-type", "yaml-syntax", "unknown-model", "paradigm-mismatch"])
def test_bad_suite_error_names_file_field_and_fix(tmp_path, old, new, pattern):
    p = write(tmp_path, GOOD.replace(old, new))
    with pytest.raises(ConfigError, match=pattern):
        load_suite(str(p))


def test_gate_direction_must_match_the_metric_definition(tmp_path):
    p = write(tmp_path, GOOD + "gate:\n  metrics:\n    - {name: committed_tok_s, direction: lower}\n")
    with pytest.raises(ConfigError, match="committed_tok_s is higher-is-better by definition"):
        load_suite(str(p))


def test_set_overrides_any_field_and_is_validated():
    suite = load_suite("smoke", ["sweep.gen_length=[8,24]", "decoders.0.knobs.max_denoising_steps=3", "seed=7"])
    assert suite["sweep"]["gen_length"] == [8, 24]
    assert suite["decoders"][0]["knobs"]["max_denoising_steps"] == 3
    assert suite["seed"] == 7
    with pytest.raises(ConfigError, match=r"measure.min_repetitions: expected an integer"):
        load_suite("smoke", ["measure.min_repetitions=lots"])
    with pytest.raises(ConfigError, match="expected key=value"):
        apply_overrides({}, ["novalue"], "x")


def test_scalar_accepted_where_a_sweep_list_is_expected():
    assert load_suite("smoke", ["sweep.batch_size=2"])["sweep"]["batch_size"] == [2]


@pytest.mark.parametrize("case, text, expected", [
    ("unknown key", GOOD + "repetitions: 3\n", "repetitions: unknown key"),
    ("wrong type", GOOD.replace("warmup: 0", "warmup: [1]"), "measure.warmup: expected an integer"),
    ("yaml syntax", "name: [\n", "YAML syntax error"),
    ("unknown model", GOOD.replace("diffusiongemma-tiny", "llama-99b"), "unknown value 'llama-99b'"),
])
def test_cli_bad_suite_is_one_line_and_exit_2(tmp_path, case, text, expected):
    p = write(tmp_path, text)
    proc = run_cli("run", "--suite", p, "--out", tmp_path / "res")
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("dgbench: error: ") and expected in lines[0], proc.stderr
    assert "Traceback" not in proc.stderr
    assert not (tmp_path / "res").exists(), "nothing is created for a suite that does not validate"


def test_cli_missing_suite_file_and_unknown_suite_name(tmp_path):
    proc = run_cli("run", "--suite", tmp_path / "nope.yaml")
    assert proc.returncode == 2 and "nope.yaml: suite file not found" in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1
    proc = run_cli("run", "--suite", "smok")
    assert proc.returncode == 2 and "unknown suite 'smok'; did you mean 'smoke'?" in proc.stderr


def test_cli_bad_device_is_exit_2(tmp_path):
    proc = run_cli("run", "--suite", "smoke", "--device", "tpu", "--out", tmp_path)
    assert proc.returncode == 2 and "--device 'tpu'" in proc.stderr and "Traceback" not in proc.stderr


@pytest.mark.parametrize("name", sorted(p.stem for p in (ROOT / "suites").glob("*.yaml")))
def test_every_builtin_suite_dry_runs(name, capsys):
    """--dry-run prices every point (masked-diffusion decoders included) and runs nothing."""
    from dgbench.cli import main

    assert main(["run", "--suite", name, "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "Nothing was run" in out and "forward passes" in out

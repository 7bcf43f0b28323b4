"""The decoder linter: settings that cannot work are errors, settings that waste work are warnings."""

import pytest

from dgbench.decoding.lint import lint_point
from dgbench.errors import ConfigError
from dgbench.harness.suite import load_suite

from conftest import run_cli


def levels(findings):
    return [(f.level, f.message) for f in findings]


@pytest.mark.parametrize("knobs, gen, expected", [
    ({"t_min": 0.9, "t_max": 0.8}, 64, "t_max (0.8) must be above t_min (0.9)"),
    ({"threshold": 0.0, "block_length": 32, "steps": 64}, 64, "threshold 0.0 is outside (0, 1]"),
    ({"threshold": 1.5, "block_length": 32, "steps": 64}, 64, "threshold 1.5 is outside (0, 1]"),
    ({"block_length": 128, "steps": 64}, 64, "block_length 128 is longer than gen_length 64"),
    ({"block_length": 24, "steps": 64}, 64, "gen_length 64 is not divisible by block_length 24"),
    ({"block_length": 16, "steps": 6}, 64, "steps 6 is not divisible by the 4 blocks"),
])
def test_errors(knobs, gen, expected):
    found = levels(lint_point(knobs, gen))
    assert ("error", next(m for lvl, m in found if lvl == "error")) and any(expected in m for _, m in found)


@pytest.mark.parametrize("knobs, gen, expected", [
    ({"block_length": 16, "steps": 4}, 64, "one step per block"),
    ({"max_denoising_steps": 1}, 64, "max_denoising_steps=1"),
    ({"max_denoising_steps": 8, "canvas_length": 64}, 16, "canvas_length 64 > gen_length 16"),
    ({"max_denoising_steps": 8, "canvas_length": 32}, 48, "not a multiple of canvas_length 32"),
    ({"block_length": 8, "steps": 32}, 16, "16 steps per block for 8 tokens"),
])
def test_warnings(knobs, gen, expected):
    found = levels(lint_point(knobs, gen))
    assert all(lvl == "warning" for lvl, _ in found) and any(expected in m for _, m in found), found


def test_good_settings_are_silent():
    assert lint_point({"max_denoising_steps": 16, "canvas_length": 32, "t_min": 0.4, "t_max": 0.8}, 64) == []
    assert lint_point({"block_length": 32, "steps": 64, "threshold": 0.9}, 64) == []


def test_suite_errors_come_from_the_linter_before_anything_runs(tmp_path):
    with pytest.raises(ConfigError, match=r"decoders\[0\] \(diffusion\), gen_length=16: t_max \(0.8\) must be above"):
        load_suite("smoke", ["decoders.0.knobs.t_min=0.9"])
    proc = run_cli("run", "--suite", "smoke", "--set", "decoders.0.knobs.t_min=0.9", "--out", tmp_path)
    assert proc.returncode == 2 and len(proc.stderr.strip().splitlines()) == 1
    assert not any(tmp_path.iterdir())


def test_suite_warnings_are_kept_and_shown(tmp_path):
    suite = load_suite("smoke", ["sweep.gen_length=[24]"])
    assert any("not a multiple of canvas_length 16" in w for w in suite["lint_warnings"])
    proc = run_cli("run", "--suite", "smoke", "--set", "sweep.gen_length=[24]", "--dry-run")
    assert proc.returncode == 0 and "warning:" in proc.stdout and "canvas_length 16" in proc.stdout

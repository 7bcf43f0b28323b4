"""Suite keys of the answer (seeds, compare, measure.batch_invariance), `run --seeds`, and publish's history."""

from __future__ import annotations

import json

import pytest

from conftest import run_cli
from dgbench.errors import ConfigError
from dgbench.harness.suite import load_suite, suite_hash
from dgbench.harness.sweep import expand


def test_seeds_repeat_only_stochastic_decoders_and_keep_other_ids():
    plain = load_suite("smoke")
    seeded = load_suite("smoke", ["seeds=[3, 4]"])
    ids = {p.point_id for p in expand(plain)}
    points = expand(seeded)
    diffusion = [p for p in points if p.decoder.startswith("diffusion")]
    assert {p.seed for p in diffusion} == {3, 4} and all(p.params["seed"] in (3, 4) for p in diffusion)
    greedy = [p for p in points if p.decoder == "ar"]
    assert all(p.seed is None for p in greedy) and {p.point_id for p in greedy} <= ids   # unchanged ids
    assert "seeds" not in plain and "compare" not in plain and "batch_invariance" not in plain["measure"]
    assert suite_hash(plain) == suite_hash(load_suite("smoke"))
    # A sampling AR decoder is stochastic too.
    sampled = load_suite("smoke", ["seeds=[0, 1]", "decoders.2.knobs.do_sample=true"])
    assert {p.seed for p in expand(sampled) if p.decoder == "ar"} == {0, 1}


@pytest.mark.parametrize("override, message", [
    ("seeds=[1, 1]", "repeats a seed"),
    ("compare.margin=-1", "must be at least 0"),
    ("compare.margin_kind=percent", "unknown value 'percent'"),
    ("compare.margni=0.1", "did you mean 'margin'"),
])
def test_bad_answer_keys_name_the_key(override, message):
    with pytest.raises(ConfigError, match=message):
        load_suite("smoke", [override])
    with pytest.raises(ConfigError, match="fraction of the reference accuracy"):
        load_suite("smoke", ["compare={margin: 2, margin_kind: relative}"])


def test_run_seeds_flag_in_dry_run(tmp_path):
    proc = run_cli("run", "--suite", "smoke", "--seeds", "2", "--seed", "5", "--dry-run")
    assert proc.returncode == 0, proc.stderr
    assert "seed=5" in proc.stdout and "seed=6" in proc.stdout
    bad = run_cli("run", "--suite", "smoke", "--seeds", "0", "--dry-run")
    assert bad.returncode == 2 and "--seeds 0" in bad.stderr


def _report(folder, name, created, commit, metrics, machine="AMD EPYC, 2 logical cores (cpu)"):
    d = folder / name
    d.mkdir(parents=True)
    (d / "index.html").write_text("<html></html>")
    (d / "report.json").write_text(json.dumps({
        "kind": "run", "title": name, "created_utc": created, "machines": [machine], "suites": ["latency"],
        "commits": [commit], "headline": [], "history_metrics": metrics}))


def test_publish_draws_history_per_machine(tmp_path):
    key = "speedup diffusion vs fastest AR, batch=1 prompt=32 gen=64"
    for i, (created, value) in enumerate([("20261130T000000Z", 1.1), ("20261201T000000Z", 1.3),
                                          ("20261202T000000Z", 1.2)]):
        _report(tmp_path, f"r{i}", created, f"c0mmit{i}", {key: {"value": value, "low": value - 0.1,
                                                                  "high": value + 0.1, "unit": "x"}})
    _report(tmp_path, "gpu", "20261202T000000Z", "c0mmit9", {key: {"value": 4.0, "unit": "x"}}, machine="H100")
    proc = run_cli("publish", tmp_path)
    assert proc.returncode == 0, proc.stderr
    html = (tmp_path / "index.html").read_text()
    assert "History per machine" in html and "latency on AMD EPYC" in html and "latency on H100" not in html
    assert "1.3 [1.2\u20131.4]" in html and "c0mmit1" in html
    figs = list((tmp_path / "figures").glob("history-*.png"))
    assert len(figs) == 1 and figs[0].stat().st_size > 5000

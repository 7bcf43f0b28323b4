"""The quality scenario end to end: byte codec, `dgbench run --suite quality`, samples.jsonl, Wilson intervals."""

import json

import pytest

from dgbench.errors import ConfigError
from dgbench.harness.suite import load_suite
from dgbench.harness.sweep import expand
from dgbench.models.registry import get
from dgbench.tasks.text import decode, encode, offset

from conftest import only_run_dir, run_cli

SPECS = ["diffusiongemma-tiny", "gemma4-tiny", "diffusiongemma-small", "gemma4-small"]


@pytest.mark.parametrize("name", SPECS)
def test_codec_round_trips_and_never_emits_special_ids(name):
    spec = get(name)
    text = "Solve:\n4.13\n(A) 3.0 m/s — ünïcode ✓\n\tdef f(x): return x\n" + "".join(map(chr, range(32, 127)))
    ids = encode(text, spec)
    special = {int(v) for v in spec.special_tokens.values()}
    assert not special & set(ids)
    assert min(ids) >= offset(spec) and max(ids) < spec.text_config["vocab_size"]
    assert decode(ids, spec) == text
    eos = spec.special_tokens["eos"]
    assert decode(ids[:3] + [eos] + ids[3:], spec) == text[:3], "decoding stops at EOS"
    assert decode([0, 1, 2] + ids[:3], spec) == "", "pad/EOS first gives nothing"


def test_quality_suite_expands_one_point_per_decoder_and_task():
    suite = load_suite("quality-synthetic")
    points = expand(suite)
    assert {(p.decoder, p.task) for p in points} == {(d, t) for d in ("diffusion", "ar")
                                                       for t in ("sudoku", "mc", "code_infill")}
    suite["limit"] = 3
    limited = expand(suite)
    assert {p.point_id for p in points}.isdisjoint({p.point_id for p in limited}), "--limit changes point ids"
    assert [p.point_id for p in limited] == [p.point_id for p in expand(suite)], "ids are stable"


def test_unknown_task_key_suggests_the_right_one():
    with pytest.raises(ConfigError, match=r"tasks.sudoku.sise: unknown key; did you mean 'size'"):
        load_suite("quality-synthetic", ["tasks.sudoku.sise=4"])
    with pytest.raises(ConfigError, match=r"tasks.mcq: unknown task; did you mean 'mc'"):
        load_suite("quality-synthetic", ["tasks.mcq.n=3"])
    with pytest.raises(ConfigError, match=r"only scenario quality runs tasks"):
        load_suite("smoke", ["tasks.mc.n=3"])


@pytest.fixture(scope="module")
def quality_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("quality")
    proc = run_cli("run", "--suite", "quality-synthetic", "--limit", "3", "--out", out)
    return proc, only_run_dir(out) if proc.returncode == 0 else None


def test_quality_run_writes_samples_and_accuracy_points(quality_run):
    proc, run_dir = quality_run
    assert proc.returncode == 0, proc.stderr[-3000:]
    samples = [json.loads(line) for line in (run_dir / "samples.jsonl").read_text().splitlines()]
    assert len(samples) == 2 * 3 * 3
    fields = {"decoder", "task", "item_id", "prompt", "output", "extracted", "correct", "e2e_s", "nfe",
              "useful_tokens", "tokens_per_forward", "committed_tok_s", "point_id"}
    for s in samples:
        assert fields <= set(s), fields - set(s)
        assert isinstance(s["correct"], bool) and s["nfe"] >= 1 and s["e2e_s"] > 0
    by_pair = {}
    for s in samples:
        by_pair.setdefault((s["decoder"], s["task"]), []).append(s["item_id"])
    assert len(by_pair) == 6 and all(len(v) == 3 for v in by_pair.values())
    assert by_pair[("diffusion", "mc")] == by_pair[("ar", "mc")], "both decoders see the same items"
    # Diffusion fills Sudoku blanks and the code gap in place (known parts fixed in its canvas); AR
    # writes its answer after the prompt.
    for s in samples:
        if s["task"] in ("sudoku", "code_infill"):
            assert s["fill"] == ("in-place" if s["decoder"] == "diffusion" else "after-prompt")
        if s["task"] == "code_infill":
            assert s["infill_mode"] == ("native-gap" if s["decoder"] == "diffusion" else "suffix-first")
        if s["task"] == "sudoku":
            assert s["fill"] == ("in-place" if s["decoder"] == "diffusion" else "after-prompt")
            if s["decoder"] == "diffusion":
                # The template's three row breaks are fixed in the canvas (a random blank may add more).
                assert s["output"].count("\n") >= 3

    points = [json.loads(line) for line in (run_dir / "points.jsonl").read_text().splitlines()]
    assert len(points) == 6 and all(p["status"] == "ok" for p in points)
    for p in points:
        q = p["quality"]
        assert q["n"] == 3 and 0 <= q["low"] <= q["accuracy"] <= q["high"] <= 1
        assert p["summary"]["committed_tok_s"]["n"] == 3
    assert "accuracy [95% Wilson]" in proc.stdout and "McNemar" in proc.stdout


def test_gpqa_without_a_file_is_one_line_exit_2(tmp_path):
    proc = run_cli("run", "--suite", "quality-synthetic", "--set", "tasks.mc.source=gpqa",
                   "--set", f"tasks.mc.path={tmp_path / 'missing.csv'}", "--out", tmp_path / "res")
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "Idavidrein/gpqa" in lines[0] and "tasks.mc.path" in lines[0], proc.stderr
    assert not (tmp_path / "res").exists()


def test_limit_is_only_for_quality_suites(tmp_path):
    proc = run_cli("run", "--suite", "smoke", "--limit", "2", "--out", tmp_path)
    assert proc.returncode == 2 and "--limit applies to quality suites" in proc.stderr


def test_multiple_choice_by_loglikelihood_with_an_ar_decoder(tmp_path):
    proc = run_cli("run", "--suite", "quality-synthetic", "--limit", "4", "--out", tmp_path,
                   "--set", "decoders=[{name: ar, model: gemma4-tiny, engine: dgbench-autoregressive}]",
                   "--set", "tasks={mc: {scoring: loglikelihood}}")
    assert proc.returncode == 0, proc.stderr[-3000:]
    run_dir = next(tmp_path.iterdir())
    samples = [json.loads(line) for line in (run_dir / "samples.jsonl").read_text().splitlines()]
    assert len(samples) == 4
    for s in samples:
        assert s["fill"] == "loglikelihood" and len(s["logprobs"]) == 4
        best = max(range(4), key=lambda i: (s["logprobs"][i], -i))
        assert s["extracted"] == "ABCD"[best], "the most likely letter is the answer"
        assert all(lp < 0 for lp in s["logprobs"])


def test_loglikelihood_scoring_refuses_a_diffusion_decoder(tmp_path):
    proc = run_cli("run", "--suite", "quality-synthetic", "--limit", "2", "--out", tmp_path,
                   "--set", "tasks={mc: {scoring: loglikelihood}}")
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "loglikelihood needs autoregressive decoders" in lines[0]

"""One real run of the tiny twins over batch 1 and 2 with two sampling seeds and the batch-invariance check:
the console prints the diffusion-vs-AR line, `dgbench export` tables load with one pandas call, and the
report carries the answer."""

from __future__ import annotations

import json
import re

import pytest

from conftest import only_run_dir, run_cli
from test_report_browser import browser, visit  # noqa: F401 - headless Chromium, as the report tests use it

SUITE = """\
name: answer-tiny
scenario: throughput
seed: 0
seeds: [0, 1]
decoders:
  - {name: diffusion, model: diffusiongemma-tiny, engine: hf-diffusion, knobs: {max_denoising_steps: 2}}
  - {name: ar, model: gemma4-tiny, engine: hf-autoregressive}
sweep: {batch_size: [1, 2], gen_length: [8], prompt_length: [4]}
measure: {warmup: 0, min_repetitions: 2, max_repetitions: 2, min_time_s: 0.0, memory: false, batch_invariance: true}
telemetry: {enabled: false}
"""


@pytest.fixture(scope="module")
def answer_run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("answer")
    (tmp / "answer.yaml").write_text(SUITE, encoding="utf-8")
    proc = run_cli("run", "--suite", tmp / "answer.yaml", "--out", tmp / "results", timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc, only_run_dir(tmp / "results"), tmp


def test_console_prints_headline_pairs_and_invariance(answer_run):
    proc, _, _ = answer_run
    lines = [l for l in proc.stdout.splitlines() if "(fastest AR)" in l]
    # diffusion at 2 seeds x 2 batch sizes, each against the AR row at its batch.
    assert len(lines) == 4, proc.stdout[-3000:]
    for line in lines:
        assert re.match(r"^diffusion seed=[01] vs ar \(fastest AR\): \d+\.\d\dx \[\d+\.\d\d\u2013\d+\.\d\d\] "
                        r"committed tok/s", line), line
    assert "seeds diffusion at batch=2 prompt=4 gen=8" in proc.stdout and "n=2 seeds" in proc.stdout
    assert "batch invariance ar (deterministic) at batch=2" in proc.stdout
    assert "crossover diffusion seed=0 vs fastest AR" in proc.stdout
    assert "speedup (diffusion vs AR) (x): median committed tok/s" in proc.stdout


def test_points_record_seeds_and_batch_invariance(answer_run):
    _, run_dir, _ = answer_run
    points = [json.loads(l) for l in (run_dir / "points.jsonl").read_text().splitlines()]
    diffusion = [p for p in points if p["decoder"] == "diffusion"]
    assert sorted((p["params"]["batch_size"], p["params"]["seed"]) for p in diffusion) == [(1, 0), (1, 1), (2, 0),
                                                                                          (2, 1)]
    assert all("seed" not in p["params"] for p in points if p["decoder"] == "ar")   # greedy: one point
    ar2 = next(p for p in points if p["decoder"] == "ar" and p["params"]["batch_size"] == 2)
    inv = ar2["batch_invariance"]
    assert inv["rows"] == 2 and inv["stochastic"] is False and inv["positions"] == 16
    assert 0 <= inv["identical_rows"] <= 2 and 0 <= inv["token_agreement"] <= 1
    assert all("rep0_tokens" not in p for p in points)
    assert "p99" in ar2["summary"]["e2e_s"] and "p50" in ar2["summary"]["e2e_s"]


def test_export_csv_parquet_json_vllm(answer_run):
    import pandas as pd

    _, run_dir, tmp = answer_run
    for fmt in ("csv", "parquet", "json", "vllm"):
        proc = run_cli("export", run_dir, "--format", fmt, "-o", tmp / fmt)
        assert proc.returncode == 0, proc.stderr
    reps = pd.read_csv(tmp / "csv" / "repetitions.csv")
    # One row per timed repetition: 6 points x 2 repetitions, knobs flattened.
    assert len(reps) == 12
    assert {"run", "point_id", "decoder", "label", "paradigm", "batch_size", "gen_length", "prompt_length", "seed",
            "rep", "committed_tok_s", "e2e_s", "ttft_s", "knob.max_denoising_steps", "knob.do_sample"} <= set(reps.columns)
    assert set(reps["label"]) == {"diffusion seed=0", "diffusion seed=1", "ar"}
    pts = pd.read_parquet(tmp / "parquet" / "points.parquet")
    assert len(pts) == 6 and {"committed_tok_s.p50", "committed_tok_s.p99", "e2e_s.n"} <= set(pts.columns)
    both = json.loads((tmp / "json" / "export.json").read_text())
    assert len(both["repetitions"]) == 12 and len(both["points"]) == 6
    vllm = pd.read_json(tmp / "vllm" / "vllm.json")
    ar = vllm[vllm["paradigm"] == "autoregressive"].iloc[0]
    assert ar["output_throughput"] > 0 and ar["median_ttft_ms"] > 0 and "p99_itl_ms" in vllm.columns
    diff = vllm[vllm["paradigm"] == "diffusion"]
    assert diff["median_tpot_ms"].isna().all() and (diff["median_time_per_canvas_ms"] > 0).all()
    assert (diff["mean_nfe"] > 0).all()


def test_export_bad_format_and_missing_run(answer_run, tmp_path):
    _, run_dir, _ = answer_run
    bad = run_cli("export", run_dir, "--format", "xlsx")
    assert bad.returncode == 2 and "invalid choice" in bad.stderr
    missing = run_cli("export", tmp_path / "nope")
    assert missing.returncode == 2 and "no such run directory" in missing.stderr


def test_report_has_answer_and_per_user_figure(answer_run):
    _, run_dir, tmp = answer_run
    proc = run_cli("report", run_dir, "-o", tmp / "report")
    assert proc.returncode == 0, proc.stderr
    html = (tmp / "report" / "index.html").read_text()
    assert html.index('id="answer"') < html.index('id="glance"')
    assert "(fastest AR)" in html and "per-user.png" in html and "p99" in html
    data = json.loads((tmp / "report" / "report.json").read_text())
    assert len(data["answer"]["pairs"]) == 4 and data["answer"]["batch_invariance"]
    assert any(k.startswith("speedup diffusion seed=0 vs fastest AR") for k in data["history_metrics"])


def test_answer_section_in_a_browser(answer_run, browser):  # noqa: F811 - the fixture from test_report_browser
    _, run_dir, tmp = answer_run
    out = tmp / "browser-report"
    assert run_cli("report", run_dir, "-o", out).returncode == 0
    page = visit(browser, (out / "index.html").as_uri())
    assert page["errors"] == [] and all(ok and width > 0 for _, ok, width in page["images"]), page
    text = page["text"]
    assert text.index("Diffusion vs AR: the answer") < text.index("At a glance")
    assert "diffusion seed=0 vs ar (fastest AR)" in text and "tok/s per device vs tok/s per user" in text

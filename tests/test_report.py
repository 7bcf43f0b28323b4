"""`dgbench report` / `dgbench publish` on real runs: a self-contained site, sections that explain missing data,
escaped model output, comparison deltas with their tests, markdown, the publish index. (Browser: test_report_browser.)"""

from __future__ import annotations

import json
import subprocess
import sys

from conftest import run_cli
from test_report_support import (PAYLOADS, copy_run, failed_dir, gpu_point_fields, nvml_rows, quality_dir,  # noqa: F401
                                 read_page, smoke_dir, smoke_site, write_telemetry)

from dgbench.metrics import METRICS
from dgbench.report.pages import write_report
from dgbench.report.fmt import spread


def test_report_modules_never_import_torch():
    code = ("import sys, dgbench.report.html, dgbench.report.compare, dgbench.report.markdown, "
            "dgbench.report.publish, dgbench.cli.report, dgbench.cli.publish\n"
            "print(sorted(m for m in sys.modules if m == 'torch' or m.startswith('torch.')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_smoke_report_is_a_self_contained_site(smoke_dir, smoke_site):
    site = smoke_site
    page = read_page(site / "index.html")
    assert not page.all("script"), "no script"
    assert [a["href"] for a in page.all("link")] == ["data:,"], "no external stylesheet or font; an empty icon"
    links = [a["src"] for a in page.all("img")] + [a["href"] for a in page.all("a")]
    assert links and all("://" not in x and not x.startswith("/") for x in links), "relative links only"
    for img in page.all("img"):
        data = (site / img["src"]).read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and img["alt"]
    figures = {a["src"] for a in page.all("img")}
    assert {"figures/sweep-gen_length.png", "figures/latency-distributions.png", "figures/nfe-tpf.png",
            "figures/steps-per-canvas.png"} <= figures
    # The numbers on the page are the stored ones: every point's committed tok/s cell in "At a glance".
    points = [json.loads(line) for line in (smoke_dir / "points.jsonl").read_text().splitlines()]
    glance = page.section("glance").text
    for p in points:
        assert spread(p["summary"]["committed_tok_s"]) in glance
    defs = page.section("definitions").text
    assert all(m.definition in defs for m in METRICS.values())
    manifest = json.loads((site / "report.json").read_text())
    assert manifest["kind"] == "run" and manifest["suites"] == ["smoke"] and manifest["headline"]


def test_failed_points_trajectory_and_single_point_sections_say_why(failed_dir, smoke_dir, tmp_path):
    write_report([failed_dir], tmp_path / "failed")
    page = read_page(tmp_path / "failed" / "index.html")
    failures = page.section("failures").text
    assert "1 of 2 points failed" in failures and failures.count("out_of_memory") == 1
    assert "batch=3000000" in failures
    assert page.section("trajectory").all("img")[0]["src"] == "figures/trajectory.png"
    # Single point: a copy of the smoke run that keeps its first point and drops its telemetry.
    single = copy_run(smoke_dir, tmp_path / "single-run", points=lambda ps: ps[:1], telemetry=False)
    write_report([single], tmp_path / "single")
    page = read_page(tmp_path / "single" / "index.html")
    assert "A single configuration per decoder" in page.section("sweeps").text
    assert not page.section("sweeps").all("img")
    assert "No telemetry.csv" in page.section("telemetry").text
    assert "No denoising trajectory recorded" in page.section("trajectory").text
    assert "No quality points" in page.section("plane").text


def test_cpu_only_telemetry_is_explained(smoke_dir, tmp_path):
    run = copy_run(smoke_dir, tmp_path / "cpu-run")
    if not (run / "telemetry.csv").exists():  # older runner: write the CPU rows the sampler would
        ids = [json.loads(x)["point_id"] for x in (run / "points.jsonl").read_text().splitlines()]
        write_telemetry(run / "telemetry.csv", [{"t_s": i / 10, "source": "cpu", "device": "cpu", "point_id": pid,
                                                 "phase": "rep", "rep": 0, "cpu_util_pct": 150.0, "rss_bytes": 4e8}
                                                for i, pid in enumerate(ids)])
    write_report([run], tmp_path / "site")
    section = read_page(tmp_path / "site" / "index.html").section("telemetry")
    assert "CPU run without NVML" in section.text
    assert section.all("img")[0]["src"] == "figures/telemetry.png"


def test_gpu_telemetry_throttling_roofline_and_projection(smoke_dir, tmp_path):
    ids = [json.loads(x)["point_id"] for x in (smoke_dir / "points.jsonl").read_text().splitlines()]
    run = copy_run(smoke_dir, tmp_path / "gpu-run", points=lambda ps: [gpu_point_fields(p) for p in ps],
                   note="test fixture: NVML rows and per-point telemetry/roofline blocks appended (CI has no GPU)")
    write_telemetry(run / "telemetry.csv", nvml_rows(ids))
    write_report([run], tmp_path / "site")
    page = read_page(tmp_path / "site" / "index.html")
    tel = page.section("telemetry")
    assert tel.all("img")[0]["src"] == "figures/telemetry.png" and "no NVML" not in tel.text
    assert tel.text.count("yes: hw_slowdown, sw_thermal") == len(ids)
    roof = page.section("roofline")
    assert roof.all("img")[0]["src"] == "figures/roofline.png" and "memory" in roof.text
    proj = page.section("projected")
    assert proj.all("img")[0]["src"] == "figures/projected.png"
    assert "PROJECTED tok/s" in proj.text and "profile has no bf16 peak" in proj.text

    from dgbench.report.data import load_view
    from dgbench.report.figures_system import _spans

    rows = sorted(load_view(run).telemetry, key=lambda r: r["t_s"])
    spans = _spans(rows, lambda r: bool(r["throttle"]))
    throttled_t = [r["t_s"] for r in rows if r["throttle"]]
    assert len(spans) == len(ids) and [a for a, _ in spans] == throttled_t


def _plant(quality_dir, dst):
    """The quality run with HTML and script in the model output, a decoder name, an error and the suite text."""
    def points(ps):
        ps[0]["decoder"] = PAYLOADS[1]
        ps[1]["sample_text"] = PAYLOADS[0]
        ps[-1].update(status="failed", error={"kind": "RuntimeError", "message": PAYLOADS[2]})
        return ps

    def samples(ss):
        for i, s in enumerate(ss):
            s["output"] = PAYLOADS[i % 3]
        return ss

    def meta(m):
        m["suite"]["description"] = PAYLOADS[0]
        return m
    return copy_run(quality_dir, dst, points=points, samples=samples, meta=meta)


def test_model_output_is_escaped_in_the_page(quality_dir, tmp_path):
    write_report([_plant(quality_dir, tmp_path / "run")], tmp_path / "site")
    page = read_page(tmp_path / "site" / "index.html")
    assert not page.all("script"), "a planted <script> became an element"
    assert all(img["src"].startswith("figures/") for img in page.all("img")), "a planted <img> became an element"
    assert len(page.all("h1")) == 1, "a planted </table><h1> broke out of its cell"
    for payload in PAYLOADS:
        assert payload in page.text, "the payload is shown as text"
    assert "&lt;script&gt;window.__xss" in page.html


def test_comparison_reports_deltas_with_mann_whitney(smoke_dir, failed_dir, tmp_path):
    from dgbench.report.compare import deltas, match_points
    from dgbench.report.data import load_view
    from dgbench.report.fmt import pvalue
    from dgbench.stats import mann_whitney_u

    write_report([smoke_dir, failed_dir], tmp_path / "cmp")
    page = read_page(tmp_path / "cmp" / "index.html")
    subpages = [a["href"] for a in page.all("a") if a["href"].startswith("runs/")]
    assert len(subpages) == 2 and all((tmp_path / "cmp" / h).is_file() for h in subpages)
    views = [load_view(smoke_dir), load_view(failed_dir)]
    rows, mode = match_points(views)
    assert mode == "decoder"
    delta_rows, _, unmatched = deltas(views, rows)
    both = [r for r in rows if all(p and p["status"] == "ok" for p in r["points"])]
    assert len(both) == 1, "diffusion at batch 1, gen 16 ran in both"
    for r in both:
        a, b = r["points"]
        expected = pvalue(mann_whitney_u(a["reps"]["committed_tok_s"], b["reps"]["committed_tok_s"]))
        row = next(d for d in delta_rows if d[0] == r["label"] and d[2].startswith("committed_tok_s"))
        assert row[7] == expected
        nfe = next(d for d in delta_rows if d[0] == r["label"] and d[2].startswith("nfe"))
        assert nfe[8] == "equal"
    assert len(unmatched) == 6  # smoke's 5 other points and the failed batch=3000000 point
    assert "Deltas and their significance" in page.text and "Points not in every run" in page.text


def test_comparison_of_two_decoders_pairs_accuracy_with_mcnemar(quality_dir, tmp_path):
    from dgbench.report.compare import deltas, match_points
    from dgbench.report.data import load_view
    from dgbench.report.fmt import pvalue
    from dgbench.stats import mcnemar

    flip = {}

    def only(decoder, flip_first=False):
        def edit(ps):
            kept = [p for p in ps if p["decoder"] == decoder]
            if flip_first:  # one item right in this run: a discordant pair for McNemar
                for p in kept:
                    p["correct"][0] = not p["correct"][0]
                    flip[p["task"]] = p["correct"]
            return kept
        return edit

    a = copy_run(quality_dir, tmp_path / "a", points=only("diffusion"))
    b = copy_run(quality_dir, tmp_path / "b", points=only("ar", flip_first=True))
    views = [load_view(a), load_view(b)]
    rows, mode = match_points(views)
    assert mode == "configuration" and len(rows) == 2
    _, acc_rows, _ = deltas(views, rows)
    assert len(acc_rows) == 2
    for r, acc in zip(rows, acc_rows):
        pa, pb = r["points"]
        assert acc[6].startswith(pvalue(mcnemar(pa["correct"], pb["correct"])["p_value"]))
    write_report([a, b], tmp_path / "site")
    assert "runs share no decoder" in read_page(tmp_path / "site" / "index.html").text


def test_markdown_summary(smoke_dir, tmp_path):
    from dgbench.report.markdown import cell

    proc = run_cli("report", smoke_dir, "--format", "md")
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0].startswith("### dgbench smoke:")
    header = next(line for line in lines if line.startswith("| decoder | params |"))
    assert "committed tok/s" in header
    points = [json.loads(x) for x in (smoke_dir / "points.jsonl").read_text().splitlines()]
    for p in points:
        assert any(line.startswith(f"| {p['decoder']} |") and spread(p["summary"]["committed_tok_s"]) in line
                   for line in lines)
    assert cell("a|<b>&") == "a\\|&lt;b&gt;&amp;"


def test_publish_lists_reports_newest_first_with_relative_links(smoke_site, tmp_path):
    import shutil

    reports = tmp_path / "reports"
    shutil.copytree(smoke_site, reports / "older")
    shutil.copytree(smoke_site, reports / "group" / "newer")
    manifest = json.loads((reports / "group" / "newer" / "report.json").read_text())
    manifest["created_utc"] = "20991231T000000Z"  # as if its run were the latest
    (reports / "group" / "newer" / "report.json").write_text(json.dumps(manifest))
    (reports / "broken").mkdir()
    (reports / "broken" / "report.json").write_text("{not json")
    proc = run_cli("publish", reports)
    assert proc.returncode == 0, proc.stderr
    page = read_page(reports / "index.html")
    hrefs = [a["href"] for a in page.all("a")]
    assert hrefs == ["group/newer/index.html", "older/index.html"]
    assert all((reports / h).is_file() for h in hrefs)
    assert "broken/report.json could not be read" in page.text and "smoke" in page.text
    assert (reports / ".nojekyll").exists()


def test_bad_input_is_one_line_and_exit_2(smoke_dir, tmp_path):
    broken = copy_run(smoke_dir, tmp_path / "broken")
    (broken / "run.json").write_text("{")
    for args, words in ((("report", tmp_path / "nope", "-o", tmp_path / "o"), "no such run directory"),
                        (("report", broken, "-o", tmp_path / "o"), "corrupted JSON"),
                        (("report", smoke_dir), "--out DIR is required"),
                        (("publish", tmp_path / "nothing"), "no such folder")):
        proc = run_cli(*args)
        assert proc.returncode == 2 and words in proc.stderr and "Traceback" not in proc.stderr, proc.stderr
        assert len(proc.stderr.strip().splitlines()) == 1


def test_comparison_page_shows_the_gates_verdicts(smoke_dir, tmp_path):
    """The same two runs: every verdict `dgbench gate` reaches is the one the comparison page prints."""
    from dgbench.gate.rules import compare_runs
    from dgbench.report.compare import deltas, match_points
    from dgbench.report.data import load_view

    def slower(ps):   # the first point 30% slower, the others 2% (inside the 5% threshold); smoke's 3 repetitions
        # cannot reach p < 0.05, so the gate says ok throughout where the page's own test could not tell
        for i, p in enumerate(ps):
            factor = 0.7 if i == 0 else 0.98
            p["reps"]["committed_tok_s"] = [x * factor for x in p["reps"]["committed_tok_s"]]
        return ps

    cand = copy_run(smoke_dir, tmp_path / "cand", points=slower)
    result = compare_runs(smoke_dir, cand)
    views = [load_view(smoke_dir), load_view(cand)]
    rows, _ = match_points(views)
    point_of = {r["label"]: r["points"][1]["point_id"] for r in rows}
    delta_rows, _, _ = deltas(views, rows)
    shown = {(point_of[d[0]], d[2].split(" ")[0]): d[9] for d in delta_rows}
    gated = {(c.point_id, c.metric): c.verdict for c in result.comparisons}
    assert gated and all(shown[key] == verdict for key, verdict in gated.items() if key in shown)
    assert {k for k in gated if k[1] == "committed_tok_s"} <= set(shown)
    assert all(v == "not gated" for k, v in shown.items() if k not in gated)


def test_comparison_page_and_gate_outputs_agree_on_interleaved_runs(smoke_dir, tmp_path):
    """Paired blocks, Holm over the whole run pair and "cannot tell": the page, the console/markdown rows and
    the JUnit cases all carry the verdicts of dgbench.gate.rules, computed once over the same family."""
    import random

    from dgbench.gate.outputs import junit_xml, markdown, rows as gate_rows
    from dgbench.gate.rules import compare_runs
    from dgbench.report.compare import deltas, match_points
    from dgbench.report.data import load_view

    rng = random.Random(5)
    loads = [rng.uniform(0.6, 1.4) for _ in range(6)]

    def interleaved(factor_of, noise_of):
        def edit(ps):
            for i, p in enumerate(ps):
                reps = p["reps"]["committed_tok_s"]
                level = sorted(reps)[len(reps) // 2]
                blocks = [[level * d * factor_of(i) * (1 + rng.gauss(0, noise_of(i))) for _ in range(2)] for d in loads]
                p["reps"] = {"committed_tok_s": [v for b in blocks for v in b]}
                p["rep_blocks"] = {"committed_tok_s": [2] * len(loads)}
                p["interleave_id"] = "agree"
            return ps
        return edit

    base = copy_run(smoke_dir, tmp_path / "base", points=interleaved(lambda i: 1.0, lambda i: 0.01))
    # point 0: half the throughput (a regression); point 1: noise far above the threshold; the rest: same.
    cand = copy_run(smoke_dir, tmp_path / "cand", points=interleaved(lambda i: 0.5 if i == 0 else 1.0,
                                                                      lambda i: 0.6 if i == 1 else 0.01))
    result = compare_runs(base, cand)
    gated = {(c.point_id, c.metric): c.verdict for c in result.comparisons}
    assert "regression" in gated.values() and "cannot tell" in gated.values()
    views = [load_view(base), load_view(cand)]
    page_rows, _ = match_points(views)
    point_of = {r["label"]: r["points"][1]["point_id"] for r in page_rows}
    delta_rows, _, _ = deltas(views, page_rows)
    shown = {(point_of[d[0]], d[2].split(" ")[0]): d[9] for d in delta_rows}
    assert all(shown[key] == verdict for key, verdict in gated.items() if key in shown)
    assert {k for k in gated if k[1] == "committed_tok_s"} <= set(shown)
    by_label = {(c.point, c.metric): c.verdict for c in result.comparisons}
    text = {"regression": "REGRESSION", "ok": "ok", "improvement": "improved"}
    for row in gate_rows(result):
        verdict = by_label[(row[0], row[1])]
        assert row[6] == text.get(verdict, row[6]) and (verdict != "cannot tell" or row[6].startswith("cannot tell"))
    md, xml = markdown(result), junit_xml(result)
    assert md.count("**REGRESSION**") == sum(v == "regression" for v in gated.values())
    assert xml.count("<failure") == sum(v == "regression" for v in gated.values())
    assert xml.count("<skipped") == sum(v == "cannot tell" for v in gated.values())

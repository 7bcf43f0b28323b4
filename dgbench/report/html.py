"""`dgbench report`: a self-contained HTML site from one or more run directories.

One run gives index.html (sections in the order a reader asks: what ran where, did it work, how fast
against how accurate, how it scales, what the hardware did, the raw tables) plus figures/*.png. Several
runs give a comparison page (dgbench/report/compare.py) with each run's own report under runs/.
Every link is relative and nothing loads from another host, so the folder works from file:// and from
any static server. Jinja2 autoescaping is on: results files hold model output and user-chosen names.
Imports no torch (a test checks it).
"""

from __future__ import annotations

from pathlib import Path

from dgbench.report import figures_speed as fs
from dgbench.report import figures_system as fsys
from dgbench.report import tables as tb
from dgbench.report.data import RunView, decoders, params_label, summary_of
from dgbench.report.fmt import display_unit, spread
from dgbench.report.plotting import Colors
from dgbench.report.site import draw, environment, headline_lines, manifest, section, table, write_manifest

def overview(view: RunView) -> dict:
    m = view.meta
    suite = m.get("suite") or {}
    meta_rows = [["run directory", view.name], ["suite", f"{view.suite_name}: {suite.get('description', '')}"],
                 ["scenario", view.scenario], ["status", str(m.get("status", "?"))],
                 ["started / finished (UTC)", f"{m.get('created_utc', '?')} / {m.get('finished_utc', '-')}"],
                 ["points", f"{len(view.ok)} measured, {len(view.failed)} failed"],
                 ["git commit", str(m.get("git_commit", "?"))], ["command", str(m.get("command", ""))],
                 ["seed", str(m.get("seed", ""))], ["weights", str(m.get("weights", ""))],
                 ["hardware profile", str(m.get("hardware_profile", "-"))],
                 ["versions", ", ".join(f"{k} {v}" for k, v in (m.get("versions") or {}).items())]]
    meta_rows += [["lint warning", str(w)] for w in suite.get("lint_warnings") or []]
    hw_rows = [[k, str(v)] for k, v in sorted(view.hardware.items())]
    decoder_rows = [[str(d.get("name")), str(d.get("model")), str(d.get("engine")),
                     ", ".join(f"{k}={v}" for k, v in (d.get("knobs") or {}).items())] for d in suite.get("decoders", [])]
    return section("overview", "Run and hardware", tables=[
        table(["field", "value"], meta_rows, cls="meta"),
        table(["fingerprint field", "value"], hw_rows, caption=f"Hardware fingerprint: {view.machine}", cls="meta"),
        table(["decoder", "model", "engine", "knobs"], decoder_rows, caption="Decoders")])


def glance(view: RunView) -> dict:
    """The numbers first: speed per point (median [p10-p90], n), as the markdown summary prints them."""
    from dgbench.report.tables import SPEED_COLUMNS

    speed = [p for p in view.ok if not p.get("quality")]
    cols = [c for c in SPEED_COLUMNS if any(summary_of(p, c[1]) for p in speed)]
    rows = [[p["decoder"], p.get("model", ""), params_label(p)]
            + [spread(summary_of(p, m), display_unit(tb.metric_info(m).unit)[0]) for _, m in cols]
            + [str((summary_of(p, "e2e_s") or {}).get("n", 0))] for p in speed]
    return section("glance", "At a glance", tables=[table(
        ["decoder", "model", "params"] + [h for h, _ in cols] + ["n"], rows, numeric=range(3, 4 + len(cols)),
        caption="Median [p10-p90] over n timed repetitions after warmup")] if rows else [],
        intro=" | ".join(headline_lines(view)))


def serve_section(view: RunView, out: Path, colors) -> dict:
    from dgbench.report import figures_serve
    from dgbench.report.serve import crossover_lines, serve_rows

    header, rows = serve_rows(view.points)
    return section("serve", "Serving under load", draw(figures_serve.per_user_vs_aggregate, view, out, colors),
                   intro=" ".join(crossover_lines(view.ok)),
                   tables=[table(header, rows, numeric=range(2, len(header) - 1),
                                 caption="One load run per point; latencies are percentiles over its requests "
                                         "(chunk gaps and sizes pooled over chunks), n = successful requests")])


def run_sections(view: RunView, out: Path) -> list[dict]:
    colors = Colors(decoders(view.points))
    quality = [p for p in view.ok if p.get("quality")]
    sections = [glance(view), overview(view)]
    if view.scenario == "serve":
        sections.append(serve_section(view, out, colors))

    fail_rows = tb.failures(view)
    sections.append(section(
        "failures", "Failed points", intro=(f"All {len(view.points)} points were measured." if not fail_rows else ""),
        reasons=[f"{len(fail_rows)} of {len(view.points)} points failed; figures and tables below use the "
                 f"{len(view.ok)} measured ones. Each failure was recorded with its error and the sweep went on."]
        if fail_rows else (["The run has no points (it was interrupted before the first finished)."]
                           if not view.points else []),
        tables=[table(["point", "error kind", "message"], fail_rows, pre=(2,))] if fail_rows else []))

    entries = fs.plane_entries(view.ok, lambda p: p["decoder"])
    sections.append(section("plane", "Speed vs accuracy", draw(fs.speed_accuracy, entries, out, view.stamp(), colors)))
    if quality:
        mc_rows = tb.mcnemar_rows(view.ok)
        q_tables = [table(["decoder", "model", "task", "n items", "correct", "accuracy", "95% Wilson",
                           "committed tok/s", "NFE passes", "tok/forward"], tb.quality_rows(view),
                          caption="Accuracy with n and 95% Wilson interval; speed median [p10-p90] over the same calls",
                          numeric=range(3, 10)),
                    table(["task", "decoder A", "decoder B", "items", "b01 (B right, A wrong)", "b10", "p", "method"],
                          mc_rows, caption="McNemar's test, paired on the same items")]
        samples = tb.sample_rows(view)
        if samples:
            q_tables.append(table(["point", "item", "prompt (end)", "model output", "extracted", "correct"],
                                  [[s["point"], s["item"], s["prompt"], s["output"], s["extracted"], s["correct"]]
                                   for s in samples], pre=(2, 3),
                                  caption=f"Scored samples (first {tb.MAX_SAMPLES_PER_POINT} per point; the model "
                                          "output is shown as text)"))
        sections.append(section("quality", "Quality", tables=q_tables))

    sections += [
        section("sweeps", "Throughput and latency across the sweep", draw(fs.sweeps, view, out, colors)),
        section("latency", "Latency distributions", draw(fs.latency_distributions, view, out, colors)),
        section("nfe", "NFE and tokens per forward", draw(fs.nfe_and_tpf, view, out, colors)),
        section("steps", "Steps per canvas", draw(fs.steps_per_canvas, view, out, colors)),
    ]
    tel_rows = tb.telemetry_rows(view)
    tel_note = view.telemetry_note()
    timeline = draw(fsys.telemetry_timeline, view, out, colors)
    sections.append(section(
        "telemetry", "Telemetry: power, utilisation, clocks, throttling", timeline,
        reasons=[tel_note] if tel_note and not isinstance(timeline, str) else [],
        tables=[table(["point", "source", "samples", "energy J", "energy/token J/tok", "method",
                       "power W median [p10-p90]", "throttled"], tel_rows, numeric=(2, 3, 4),
                      caption="Per point, over the timed repetitions")] if tel_rows else []))

    roof_rows = tb.roofline_rows(view)
    skipped = [f"{p['decoder']}: {p['roofline']['skipped']}" for p in view.ok
               if isinstance(p.get("roofline"), dict) and p["roofline"].get("skipped")]
    sections.append(section(
        "roofline", "Roofline", draw(fsys.roofline, view, out, colors), reasons=skipped[:5],
        details=[{"summary": f"Roofline per point ({sum(r[2] != '-' for r in roof_rows)} points)", "table": table(["point", "profile", "FLOPs/call", "bytes/call", "FLOP/B", "achieved FLOP/s", "MFU", "MBU",
                       "predicted ms", "bound"], [r for r in roof_rows if r[2] != "-"], numeric=range(2, 9))}]
        if any(r[2] != "-" for r in roof_rows) else []))
    proj_rows = tb.projected_rows(view)
    sections.append(section(
        "projected", "Projected throughput per hardware profile (projected, not measured)",
        draw(fsys.projected, view, out, colors),
        details=[{"summary": f"Projected tok/s per profile ({len(proj_rows)} rows)", "table": table(
            ["point", "profile", "PROJECTED tok/s", "bound", "measured tok/s here"], proj_rows, numeric=(2, 4),
            cls="projected")}] if proj_rows else []))
    sections.append(section("trajectory", "Denoising trajectory", draw(fsys.trajectory, view, out, colors)))

    token_rows = tb.sample_token_rows(view)
    if token_rows:
        sections.append(section("outputs", "Sample output per point", tables=[
            table(["point", "form", "first generated tokens of repetition 0"], token_rows, pre=(2,))]))
    metric_details = [{"summary": f"{t['name']} ({t['unit']}, {t['direction']}): {len(t['rows'])} points",
                       "table": table(["decoder", "model", "params", "n", f"median {t['unit']}", f"p10 {t['unit']}",
                                       f"p90 {t['unit']}", "CV %"], t["rows"], numeric=range(3, 8),
                                      caption=t["definition"])}
                      for t in tb.metric_tables(view.ok)]
    sections.append(section(
        "tables", "Every metric: unit, n, median and spread", details=metric_details,
        intro="n is the number of timed repetitions (after warmup) or pooled values (per step, per canvas); "
              "p10/p90 bound the middle 80%; CV is the standard deviation over the mean.",
        reasons=[] if metric_details else ["No measured point: no metric to tabulate."]))
    sections.append(section("definitions", "Metric definitions", tables=[table(
        ["metric", "unit", "better", "definition", "in this run"],
        [[d["name"], d["unit"], d["direction"], d["definition"], "yes" if d["in_run"] else ""]
         for d in tb.definitions(view.points)])]))
    return sections


def render_run(view: RunView, out: Path, up: dict | None = None) -> dict:
    out.mkdir(parents=True, exist_ok=True)
    sections = run_sections(view, out)
    title = f"dgbench {view.suite_name}: {', '.join(decoders(view.points)) or 'no points'}"
    banner = (f"{len(view.failed)} of {len(view.points)} points failed (see Failed points)." if view.failed else "")
    html = environment().get_template("run.html").render(
        title=title, subtitle=f"{view.machine} | {view.created} | commit {view.commit or '?'} | {view.scenario}",
        sections=sections, banner=banner, up=up)
    (out / "index.html").write_text(html, encoding="utf-8")
    data = manifest([view], "run", title)
    write_manifest(out, data)
    return data

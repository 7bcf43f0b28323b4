"""System figures: telemetry timelines, the roofline, projected throughput per profile, a denoising trajectory.

Inputs that a run may lack (telemetry.csv on a machine without NVML, roofline records, a trajectory
that was not asked for) turn into a sentence, never an exception.
"""

from __future__ import annotations

import math
from pathlib import Path

from dgbench.report.data import RunView, point_label, reference_points
from dgbench.report.plotting import Colors, Fig, figure, save

# telemetry.csv columns drawn as timeline panels: (column, axis label, scale)
NVML_PANELS = [("power_w", "power (W)", 1.0), ("gpu_util_pct", "GPU utilisation (%)", 1.0),
               ("sm_clock_mhz", "SM clock (MHz)", 1.0), ("mem_clock_mhz", "memory clock (MHz)", 1.0),
               ("temp_c", "temperature (C)", 1.0)]
CPU_PANELS = [("cpu_util_pct", "CPU utilisation (%)", 1.0), ("rss_bytes", "process RSS (MiB)", 1 / 2**20)]
MAX_TRAJECTORY_STEPS, MAX_TRAJECTORY_POSITIONS = 400, 512


def _spans(rows: list[dict], predicate) -> list[tuple[float, float]]:
    """Contiguous time intervals over which predicate(row) holds (rows sorted by time)."""
    spans, start, prev = [], None, None
    for r in rows:
        if predicate(r):
            start = r["t_s"] if start is None else start
        elif start is not None:
            spans.append((start, r["t_s"]))
            start = None
        prev = r["t_s"]
    if start is not None:
        spans.append((start, prev))
    return spans


def telemetry_timeline(view: RunView, out: Path, colors: Colors) -> list[Fig] | str:
    rows = sorted(view.telemetry, key=lambda r: r["t_s"])
    if not rows:
        return view.telemetry_note() or "No telemetry rows."
    panels = [p for p in NVML_PANELS + CPU_PANELS if any(r.get(p[0]) is not None for r in rows)]
    if not panels:
        return "telemetry.csv holds timestamps only (every measurement column is empty): nothing to draw."
    throttled = [r for r in rows if (r.get("throttle") or "").strip()]
    reasons = sorted({x for r in throttled for x in r["throttle"].split(";") if x})
    with figure(9.5, 1.0 + 1.5 * len(panels)) as fig:
        axes = fig.subplots(len(panels), 1, sharex=True, squeeze=False)[:, 0]
        rep_spans = _spans(rows, lambda r: r.get("phase") == "rep")
        throttle_spans = _spans(rows, lambda r: bool((r.get("throttle") or "").strip()))
        for ax, (col, label, scale) in zip(axes, panels):
            for device in dict.fromkeys(r.get("device") or "?" for r in rows):
                mine = [r for r in rows if (r.get("device") or "?") == device and r.get(col) is not None]
                if mine:
                    ax.plot([r["t_s"] for r in mine], [r[col] * scale for r in mine], linewidth=0.9,
                            color=colors.color(f"device:{device}"), label=device)
            for a, b in rep_spans:
                ax.axvspan(a, b, color="#999999", alpha=0.12, linewidth=0)
            for a, b in throttle_spans:
                ax.axvspan(a, b, color="#d62728", alpha=0.35, linewidth=0)
            ax.set_ylabel(label, fontsize=8)
        axes[0].set_title(f"telemetry: {len(rows)} samples ({', '.join(sorted({r.get('source') or '?' for r in rows}))})"
                          + (f"; THROTTLED ({', '.join(reasons)}) in red" if reasons else "; no throttling recorded"))
        axes[-1].set_xlabel("time since the run started (s); grey: timed repetitions")
        if len({r.get("device") for r in rows}) > 1:
            axes[0].legend(fontsize=7)
    caption = ("Sampled during the run; grey bands are timed repetitions, red bands samples with a throttle "
               "reason." + (f" {view.telemetry_note()}" if view.telemetry_note() else ""))
    return [save(fig, out, "telemetry", "Telemetry timeline", caption, view.stamp())]


def _roof(points: list[dict]) -> tuple[float | None, float | None]:
    """Peak FLOP/s and bandwidth of the profile, recovered from achieved / utilisation (MFU = achieved /
    peak), so the roof is exactly the one the utilisations were computed against."""
    peaks = [p["roofline"]["achieved_flop_s"] / p["roofline"]["mfu"] for p in points
             if p["roofline"].get("mfu") and p["roofline"].get("achieved_flop_s")]
    bws = [p["roofline"]["achieved_bytes_s"] / p["roofline"]["mbu"] for p in points
           if p["roofline"].get("mbu") and p["roofline"].get("achieved_bytes_s")]
    return (peaks[0] if peaks else None), (bws[0] if bws else None)


def roofline(view: RunView, out: Path, colors: Colors) -> list[Fig] | str:
    with_roof = [p for p in view.ok if isinstance(p.get("roofline"), dict)
                 and p["roofline"].get("arithmetic_intensity") and p["roofline"].get("achieved_flop_s")]
    if not with_roof:
        return ("No point carries a roofline record (FLOPs and bytes per call against a hardware profile): this run "
                "was made without one, so there is no roofline figure and no projection.")
    refs = reference_points(with_roof)
    peak, bw = _roof(with_roof)
    profile = with_roof[0]["roofline"].get("profile", "?")
    with figure(7.5, 4.6 + 0.18 * len(refs)) as fig:
        ax = fig.add_subplot()
        ax.set_xscale("log")
        ax.set_yscale("log")
        xs = [p["roofline"]["arithmetic_intensity"] for p in refs.values()]
        lo, hi = min(xs) / 4, max(xs) * 4
        if peak and bw:
            ridge = peak / bw
            lo, hi = min(lo, ridge / 8), max(hi, ridge * 8)
            grid = [lo * (hi / lo) ** (i / 200) for i in range(201)]
            ax.plot(grid, [min(peak, x * bw) for x in grid], color="#333333", linewidth=1.5,
                    label=f"{profile} roof: {peak / 1e12:.3g} TFLOP/s, {bw / 1e9:.3g} GB/s (ridge {ridge:.3g} FLOP/B)")
        for dec, p in refs.items():
            r = p["roofline"]
            ax.plot([r["arithmetic_intensity"]], [r["achieved_flop_s"]], colors.marker(dec), color=colors.color(dec),
                    markersize=8, label=f"{point_label(p)}: MFU {100 * (r.get('mfu') or 0):.2g}%, "
                                        f"{r.get('bound', '?')}-bound")
        ax.set_xlabel("arithmetic intensity (FLOP/byte)")
        ax.set_ylabel("achieved FLOP/s")
        ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.13), ncol=1)
    note = "" if peak and bw else " The records carry no MFU/MBU, so the profile's roof is not drawn."
    return [save(fig, out, "roofline", "Roofline",
                 "One marker per decoder at the configuration most decoders share (its params in the legend); FLOPs "
                 "and bytes per call come from the model's geometry, FLOP/s from the measured median time." + note,
                 view.stamp())]


def projected(view: RunView, out: Path, colors: Colors) -> list[Fig] | str:
    with_proj = [p for p in view.ok if isinstance(p.get("roofline"), dict) and p["roofline"].get("projected")]
    if not with_proj:
        return "No projected throughput: the points carry no roofline projection to other hardware profiles."
    refs = reference_points(with_proj)
    profiles = list(dict.fromkeys(name for p in refs.values() for name in p["roofline"]["projected"]))
    height = 0.8 / max(1, len(refs))
    with figure(8.5, 1.5 + 0.22 * len(profiles) * max(1, len(refs)) ** 0.7) as fig:
        ax = fig.add_subplot()
        for i, (dec, p) in enumerate(refs.items()):
            proj = p["roofline"]["projected"]
            # A profile without a peak for this dtype has tok_s None: no bar (the table says why).
            names = [n for n in profiles if (proj.get(n) or {}).get("tok_s")]
            ys = [profiles.index(n) + i * height for n in names]
            ax.barh(ys, [proj[n]["tok_s"] for n in names], height=height, color=colors.color(dec), hatch="//",
                    alpha=0.7, edgecolor="white", label=f"{point_label(p)} (projected)")
            for y, name in zip(ys, names):
                ax.annotate(f" {proj[name].get('bound') or ''}", (proj[name]["tok_s"], y), va="center", fontsize=6)
        ax.set_yticks([j + height * (len(refs) - 1) / 2 for j in range(len(profiles))], profiles, fontsize=7)
        ax.invert_yaxis()
        ax.set_xscale("log")
        ax.set_xlabel("PROJECTED throughput (tok/s, log scale)")
        ax.set_title("Projected, not measured: the roofline time of each decoder's call on other profiles")
        ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.12), ncol=1)
    return [save(fig, out, "projected", "Projected throughput per hardware profile (projected, not measured)",
                 "Hatched bars are projections: the roofline time (max of FLOPs / peak and bytes / bandwidth) of the "
                 "measured call on each profile, labelled with its bound (compute or memory). Nothing here ran on "
                 "those devices.",
                 view.stamp())]


def trajectory_grid(traj: list[dict], canvas_length: int | None):
    """(cells, background, boundaries, kind): accepted (row, position, value) cells, a per-row background
    (entropy over the canvas, DiffusionGemma) or None, and the rows where a new canvas/block starts."""
    cells, background, boundaries, last = [], [], [], None
    dg = any("accepted" in e for e in traj)
    for row, event in enumerate(traj[:MAX_TRAJECTORY_STEPS]):
        group = event.get("canvas", event.get("block"))
        if group != last and row:
            boundaries.append(row - 0.5)
        last = group
        if dg:
            width = len(event.get("entropy") or []) or canvas_length or 0
            base = (event.get("canvas") or 0) * width
            entropy = {base + i: e for i, e in enumerate(event.get("entropy") or [])}
            background.append(entropy)
            cells += [(row, base + i, entropy.get(base + i, math.nan)) for i in event.get("accepted") or []]
        else:
            conf = event.get("confidence") or []
            cells += [(row, pos, conf[k] if k < len(conf) else math.nan)
                      for k, pos in enumerate(event.get("unmasked") or [])]
    return cells, (background if dg else None), boundaries, ("entropy-bound" if dg else "masked")


def trajectory(view: RunView, out: Path, colors: Colors) -> list[Fig] | str:
    found = [p for p in view.ok if p.get("trajectory")]
    if not found:
        return ("No denoising trajectory recorded: set the engine knob record_trajectory: true on a diffusion "
                "decoder (dgbench-diffusion or dgbench-masked) to keep one per point.")
    p = found[0]
    traj = p["trajectory"]
    cells, background, boundaries, kind = trajectory_grid(traj, p.get("canvas_length"))
    n_rows = min(len(traj), MAX_TRAJECTORY_STEPS)
    n_pos = min(MAX_TRAJECTORY_POSITIONS, 1 + max([c[1] for c in cells] + [max(b, default=0)
                                                                            for b in (background or [{}])]))
    with figure(9.5, min(9.0, max(3.6, 2.0 + 0.06 * n_rows))) as fig:
        ax = fig.add_subplot()
        if background:
            grid = [[row.get(i, math.nan) for i in range(n_pos)] for row in background]
            image = ax.imshow(grid, aspect="auto", cmap="Greys", interpolation="nearest",
                              extent=(-0.5, n_pos - 0.5, n_rows - 0.5, -0.5))
            fig.colorbar(image, ax=ax, label="entropy of the prediction (nats)", fraction=0.04)
        shown = [c for c in cells if c[1] < n_pos]
        xy = ([c[1] for c in shown], [c[0] for c in shown])
        if kind == "masked":
            scatter = ax.scatter(*xy, c=[c[2] for c in shown], s=14, marker="s", cmap="viridis", edgecolors="none")
            fig.colorbar(scatter, ax=ax, label="confidence of the unmasked token", fraction=0.04)
        else:  # the grey background already carries the entropy: accepted cells in one loud colour
            ax.scatter(*xy, s=16, marker="s", color="#D55E00", edgecolors="none", label="accepted")
        for b in boundaries:
            ax.axhline(b, color="#1f77b4", linestyle="--", linewidth=0.8)
        ax.set_xlim(-0.5, n_pos - 0.5)
        ax.set_ylim(n_rows - 0.5, -0.5)
        ax.set_xlabel("position in the generation")
        ax.set_ylabel("denoising step (in order; dashed: next canvas/block)")
        ax.set_title(f"{point_label(p)}: positions accepted at each step ({kind})")
    cut = (f" Truncated to the first {MAX_TRAJECTORY_STEPS} steps / {MAX_TRAJECTORY_POSITIONS} positions."
           if len(traj) > MAX_TRAJECTORY_STEPS or n_pos >= MAX_TRAJECTORY_POSITIONS else "")
    what = ("Coloured squares: positions accepted at that step, over the grey entropy of every canvas position."
            if kind == "entropy-bound" else "Coloured squares: positions unmasked at that step, by confidence.")
    return [save(fig, out, "trajectory", "Denoising trajectory",
                 f"Repetition 0, first sequence of {point_label(p)} ({len(traj)} steps). {what}{cut}", view.stamp())]

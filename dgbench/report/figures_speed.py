"""Speed and accuracy figures: the speed/accuracy plane, sweeps, latency distributions, NFE, steps per canvas.

Each function returns a list of Fig, or a string saying why the section has no figure (no quality
points, a single configuration, an AR-only run). Cells are medians with p10-p90 bars; accuracy
carries its 95% Wilson interval, as the quality scenario stores it.
"""

from __future__ import annotations

from pathlib import Path

from matplotlib.ticker import MaxNLocator

from dgbench.report.data import (RunView, axis_value, decoders, modal_slice, params_label, point_label,
                                 point_task, summary_of, varied_axes)
from dgbench.report.plotting import Colors, Fig, categorical, errorbar, figure, save

MAX_BOXES = 40  # latency boxes per figure; beyond this the tables hold every point


def pareto_front(items: list[tuple[float, float]]) -> list[int]:
    """Indices of the points no other point beats on both axes (both higher is better), by x ascending."""
    order = sorted(range(len(items)), key=lambda i: (-items[i][0], -items[i][1]))
    front, best_y = [], float("-inf")
    for i in order:
        if items[i][1] > best_y:
            front.append(i)
            best_y = items[i][1]
    return sorted(front, key=lambda i: items[i][0])


def plane_entries(points: list[dict], label_of, curve_of=None) -> dict[str, list[dict]]:
    """Per task: the points that carry both a speed summary and an accuracy. `label_of` names each marker
    (the operating point: decoder and knob values); `curve_of` names the curve it belongs to (a decoder's
    operating points are joined in the order of their knob values), by default its own label."""
    curve_of = curve_of or label_of
    out: dict[str, list[dict]] = {}
    for p in points:
        if p.get("status") == "ok" and p.get("quality") and summary_of(p, "committed_tok_s"):
            knobs = tuple(_sortable(v) for k, v in (p.get("params") or {}).items()
                          if k not in ("task", "gen_length", "batch_size", "prompt_length"))
            out.setdefault(str(point_task(p)), []).append({"label": label_of(p), "curve": curve_of(p), "point": p,
                                                            "order": knobs})
    return out


def _sortable(v):
    return (0, v, "") if isinstance(v, (int, float)) and not isinstance(v, bool) else (1, 0, str(v))


def _knob_text(label: str, curve: str) -> str:
    """What a marker's annotation says: its knob values (the label without the curve's name)."""
    return label[len(curve):].strip() if label.startswith(curve) else label


def speed_accuracy(entries: dict[str, list[dict]], out: Path, stamp: str, colors: Colors,
                   prefix: str = "", name: str = "plane") -> list[Fig] | str:
    if not entries:
        return ("No quality points in this run: the speed/accuracy plane needs accuracy, which only a quality "
                "suite measures (dgbench run --suite quality).")
    figs = []
    for task, rows in entries.items():
        with figure(7.6, 4.9) as fig:
            ax = fig.add_subplot()
            xy, lows = [], []
            curves: dict[str, list[tuple]] = {}
            placed: list[tuple[float, float]] = []
            for row in rows:
                p, q = row["point"], row["point"]["quality"]
                s = summary_of(p, "committed_tok_s")
                acc = 100 * (q.get("accuracy") or 0.0)
                lo, hi = 100 * (q.get("low") or 0.0), 100 * (q.get("high") or 0.0)
                curve = row.get("curve", row["label"])
                color = colors.color(curve)
                first = curve not in curves
                ax.errorbar([s["median"]], [acc], xerr=[[s["median"] - s["p10"]], [s["p90"] - s["median"]]],
                            yerr=[[max(0.0, acc - lo)], [max(0.0, hi - acc)]], fmt=colors.marker(curve),
                            color=color, capsize=3, alpha=0.9,
                            label=(f"{curve} (n={q.get('n')})" if first else None))
                curves.setdefault(curve, []).append((row.get("order", ()), s["median"], acc))
                text = _knob_text(row["label"], curve)
                if text:
                    # Labels of nearby markers would print over each other: step each one down a line.
                    near = sum(abs(a - acc) < 4 for _, a in placed)
                    placed.append((s["median"], acc))
                    ax.annotate(text, (s["median"], acc), textcoords="offset points", xytext=(6, 6 - 10 * near),
                                fontsize=7, color=color)
                xy.append((s["median"], acc))
                lows.append(lo)
            for curve, pts in curves.items():
                if len(pts) > 1:   # one decoder's operating points in knob order: its speed-accuracy curve
                    pts = sorted(pts, key=lambda t: (t[0], t[1]))
                    ax.plot([x for _, x, _ in pts], [y for _, _, y in pts], "-", color=colors.color(curve),
                            linewidth=1.3, alpha=0.8)
            front = pareto_front(xy)
            ax.plot([xy[i][0] for i in front], [xy[i][1] for i in front], "--", color="#222222", linewidth=2.2,
                    label="Pareto frontier", zorder=5)
            ax.scatter([xy[i][0] for i in front], [xy[i][1] for i in front], s=160, facecolors="none",
                       edgecolors="#222222", linewidths=1.5, zorder=6)
            ax.set_xlabel("committed throughput (tok/s), median with p10-p90")
            ax.set_ylabel("accuracy (%), with 95% Wilson interval")
            # Zoom to the measured accuracies (with their intervals) so close operating points stay apart.
            ax.set_ylim(max(-3.0, min(lows) - 5.0), 103)
            ax.set_title(f"{task}: speed vs accuracy")
            ax.legend(fontsize=7, loc="best")
            figs.append(save(fig, out, f"{name}-{task}", f"Speed vs accuracy: {task}",
                             f"{task}: each marker is one operating point (decoder and its swept knob values, "
                             "written beside it) on the same items; a decoder's points are joined in knob order. "
                             "Up and right is better. The thick dashed line and ringed markers are the Pareto "
                             "frontier: the points no other point beats on both axes.",
                             stamp, prefix=prefix))
    return figs


def sweeps(view: RunView, out: Path, colors: Colors) -> list[Fig] | str:
    ok = [p for p in view.ok if not p.get("quality")]
    if not ok:
        return "No timed sweep points (a quality run, or every point failed): nothing to plot against the sweep."
    axes = varied_axes(ok)
    if not axes:
        return (f"A single configuration per decoder ({params_label(ok[0]) or 'no sweep axes'}): throughput and "
                "latency cannot be drawn against batch size, length, canvas or steps. The tables below hold the "
                "numbers.")
    held = modal_slice(ok, axes)
    figs = []
    for axis in axes:
        others = {a: v for a, v in held.items() if a != axis}
        rows = [p for p in ok if all(axis_value(p, a) == v for a, v in others.items())]
        with figure(9.0, 3.8) as fig:
            ax_tok, ax_lat = fig.subplots(1, 2)
            ticks = None
            for dec in decoders(rows):
                mine = [p for p in rows if p["decoder"] == dec and summary_of(p, "committed_tok_s")]
                if not mine:
                    continue
                xs, ticks = categorical([axis_value(p, axis) for p in rows])
                xs = [xs[rows.index(p)] for p in mine]
                errorbar(ax_tok, xs, [summary_of(p, "committed_tok_s") for p in mine], 1.0, colors.color(dec),
                         colors.marker(dec), dec)
                errorbar(ax_lat, xs, [summary_of(p, "e2e_s") for p in mine], 1e3, colors.color(dec),
                         colors.marker(dec), dec)
            for ax, ylabel in ((ax_tok, "committed throughput (tok/s)"), (ax_lat, "end-to-end latency (ms)")):
                ax.set_xlabel(axis)
                ax.set_ylabel(ylabel)
                if ticks:
                    ax.set_xticks(range(len(ticks)), ticks, rotation=20)
            ax_tok.legend(fontsize=7)
            held_text = (f"other axes held at {', '.join(f'{a}={v}' for a, v in others.items())}" if others
                         else "no other axis varies")
            figs.append(save(fig, out, f"sweep-{axis}", f"Throughput and latency against {axis}",
                             f"Median with p10-p90 bars over the timed repetitions of each point; {held_text}.",
                             view.stamp()))
    return figs


def latency_distributions(view: RunView, out: Path, colors: Colors) -> list[Fig] | str:
    ok = [p for p in view.ok if (p.get("reps") or {}).get("e2e_s")]
    if not ok:
        return "No point has timed repetitions (every point failed): no latency distribution to draw."
    shown = ok[:MAX_BOXES]
    panels = [("e2e_s", "end-to-end latency per call (ms)")]
    if any((p.get("reps") or {}).get("ttft_s") for p in shown):
        panels.append(("ttft_s", "TTFT / TTFC (ms)"))
    with figure(9.5, 1.2 + 0.28 * len(shown)) as fig:
        axes = fig.subplots(1, len(panels), squeeze=False)[0]
        labels = [point_label(p) for p in shown]
        for ax, (metric, xlabel) in zip(axes, panels):
            data = [[x * 1e3 for x in (p.get("reps") or {}).get(metric) or [] if x is not None] or [float("nan")]
                    for p in shown]
            box = ax.boxplot(data, orientation="horizontal", patch_artist=True, widths=0.6)
            for patch, p in zip(box["boxes"], shown):
                patch.set_facecolor(colors.color(p["decoder"]))
                patch.set_alpha(0.55)
            ax.set_yticks(range(1, len(shown) + 1), labels if ax is axes[0] else [""] * len(shown), fontsize=7)
            ax.invert_yaxis()
            ax.set_xlabel(xlabel)
    more = f" Showing the first {len(shown)} of {len(ok)} points; the tables hold all." if len(ok) > len(shown) else ""
    return [save(fig, out, "latency-distributions", "Latency distributions",
                 "Boxes: median and quartiles of the timed repetitions (n per point in the tables); whiskers 1.5 IQR."
                 + more, view.stamp())]


def nfe_and_tpf(view: RunView, out: Path, colors: Colors) -> list[Fig] | str:
    ok = [p for p in view.ok if summary_of(p, "nfe") and not p.get("quality")] or \
         [p for p in view.ok if summary_of(p, "nfe")]
    if not ok:
        return "No point recorded forward passes (NFE): no NFE or tokens-per-forward figure."
    # Quality points differ by task, whose lengths differ: a line over gen_length would mix tasks, so
    # quality runs get one bar per (decoder, task).
    axes = [] if any(p.get("quality") for p in ok) else varied_axes(ok)
    axis = "gen_length" if "gen_length" in axes else (axes[0] if axes else None)
    with figure(9.0, 3.6) as fig:
        ax_nfe, ax_tpf = fig.subplots(1, 2)
        if axis:
            held = {a: v for a, v in modal_slice(ok, axes).items() if a != axis}
            rows = [p for p in ok if all(axis_value(p, a) == v for a, v in held.items())]
            xs_all, ticks = categorical([axis_value(p, axis) for p in rows])
            for dec in decoders(rows):
                mine = [p for p in rows if p["decoder"] == dec]
                xs = [xs_all[rows.index(p)] for p in mine]
                for ax, metric in ((ax_nfe, "nfe"), (ax_tpf, "tokens_per_forward")):
                    sums = [summary_of(p, metric) for p in mine]
                    keep = [(x, s) for x, s in zip(xs, sums) if s]
                    if keep:
                        errorbar(ax, [k[0] for k in keep], [k[1] for k in keep], 1.0, colors.color(dec),
                                 colors.marker(dec), dec)
            for ax in (ax_nfe, ax_tpf):
                ax.set_xlabel(axis)
                if ticks:
                    ax.set_xticks(range(len(ticks)), ticks, rotation=20)
            caption = "Median with p10-p90 bars" + (f"; other axes held at {', '.join(f'{a}={v}' for a, v in held.items())}."
                                                     if held else ".")
        else:
            labels = [p["decoder"] + (f" {point_task(p)}" if point_task(p) else "") for p in ok]
            for ax, metric in ((ax_nfe, "nfe"), (ax_tpf, "tokens_per_forward")):
                sums = [summary_of(p, metric) or {"median": 0.0, "p10": 0.0, "p90": 0.0} for p in ok]
                ax.barh(range(len(ok)), [s["median"] for s in sums], color=[colors.color(p["decoder"]) for p in ok],
                        xerr=[[s["median"] - s["p10"] for s in sums], [s["p90"] - s["median"] for s in sums]],
                        capsize=3, error_kw={"elinewidth": 1})
                ax.set_yticks(range(len(ok)), labels if ax is ax_nfe else [""] * len(ok), fontsize=7)
                ax.invert_yaxis()
            caption = "Median per point with p10-p90 bars (one configuration per decoder and task)."
        ax_nfe.set_title("NFE: forward passes per call")
        ax_tpf.set_title("tokens per forward (tok/pass)")
        ax_nfe.set_ylabel("passes" if axis else "")
        if axis:
            ax_nfe.legend(fontsize=7)
    return [save(fig, out, "nfe-tpf", "NFE and tokens per forward", caption, view.stamp())]


def steps_per_canvas(view: RunView, out: Path, colors: Colors) -> list[Fig] | str:
    pooled: dict[str, list[int]] = {}
    caps: dict[str, set] = {}
    for p in view.ok:
        steps = (p.get("pooled") or {}).get("steps_per_canvas")
        if steps:
            pooled.setdefault(p["decoder"], []).extend(steps)
            if p.get("step_cap"):
                caps.setdefault(p["decoder"], set()).add(p["step_cap"])
    if not pooled:
        return ("No diffusion point recorded steps per canvas (an AR-only run, or the diffusion points failed): "
                "no histogram.")
    with figure(8.0, 3.6) as fig:
        ax = fig.add_subplot()
        top = max(max(v) for v in pooled.values())
        bins = [b - 0.5 for b in range(1, top + 2)]
        labels = []
        for dec, steps in pooled.items():
            cap = max(caps.get(dec, {0}))
            hit = sum(s >= cap for s in steps) / len(steps) if cap else float("nan")
            labels.append(f"{dec}: n={len(steps)} canvases, cap {cap or '?'} hit {100 * hit:.0f}%")
            if cap:
                ax.axvline(cap + 0.45, color=colors.color(dec), linestyle=":", linewidth=1)
        # Side by side, not overlaid: decoders that all hit the cap would hide each other.
        ax.hist(list(pooled.values()), bins=bins, color=[colors.color(d) for d in pooled], label=labels)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_xlabel("denoising steps per canvas (dotted: right edge of the step cap)")
        ax.set_ylabel("canvases")
        ax.legend(fontsize=7)
    return [save(fig, out, "steps-per-canvas", "Steps per canvas",
                 "Denoising steps each canvas took, pooled over every timed repetition and point of a decoder. With "
                 "random weights the adaptive stop never fires, so every canvas runs to the cap.", view.stamp())]

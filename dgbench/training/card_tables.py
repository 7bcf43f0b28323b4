"""The held-out tables every reference model card prints (both pairs): per task with its Wilson interval,
per clue count for 4x4 Sudoku, the twin's numbers beside with McNemar on the same items, and the adaptive
stop's statistics for the DiffusionGemma sampler. From training.json alone, so a card can be rewritten."""

from __future__ import annotations

import statistics


def eval_n(meta: dict) -> int:
    """Held-out items per task (per clue count for Sudoku)."""
    return meta.get("eval_n") or next(r["n"] for t, r in meta["heldout"].items() if t != "sudoku4all")


def _pct(r: dict) -> str:
    return f"{r['correct']}/{r['n']} | {100 * r['accuracy']:.1f}% | [{100 * r['low']:.1f}%, {100 * r['high']:.1f}%]"


def _mcnemar(a: list, b: list) -> str:
    from dgbench.stats import mcnemar

    m = mcnemar(a, b)
    return f"{m['b10']} / {m['b01']}, p = {m['p_value']:.3g}"


def _groups(task: str, n: int, correct: list) -> dict:
    """Per-group correctness lists, in the held-out order (data.heldout_items is deterministic)."""
    from dgbench.training.data import heldout_items

    out: dict[str, list] = {}
    for item, ok in zip(heldout_items(task, n), correct):
        out.setdefault(item.group, []).append(ok)
    return out


def _stop_stats(steps: list[int], cap: int) -> str:
    return (f"median {statistics.median(steps):g}, mean {statistics.fmean(steps):.1f}, "
            f"cap-hit share {sum(s >= cap for s in steps) / len(steps):.1%} (cap {cap}, n = {len(steps)} canvases)")


def heldout_tables(meta: dict, other: dict | None) -> str:
    """The card's tables: the main decoding's, then one section per decoding variant (training/variants.py),
    each with the twin's main numbers beside."""
    n = eval_n(meta)
    text = _tables(meta["name"], meta["heldout"], meta["heldout_correct"], other, n)
    if meta.get("heldout_steps_per_canvas") and meta["config"]["objective"] == "uniform-diffusion":
        cap = meta["decoding"][1].get("max_denoising_steps", 48)
        text += "\n\nAdaptive stop on the held-out items (denoising steps per canvas; each item is one canvas):\n\n" + \
            "\n".join(f"- {task}: {_stop_stats(s, cap)}" for task, s in meta["heldout_steps_per_canvas"].items())
    for label, v in (meta.get("heldout_variants") or {}).items():
        text += (f"\n\n### The same weights decoded with {label}\n\n`{v['engine']}` with {v['knobs_json']} "
                 f"(reproduce: `{v['command']}`; {v['eval_wall_s']:.0f} s of scoring).\n\n"
                 + _tables(f"{meta['name']} ({label})", v["heldout"], v["heldout_correct"], other, n))
    return text


def _tables(name: str, heldout: dict, correct: dict, other: dict | None, n: int) -> str:
    head = f"| task | {name}: correct / n | accuracy | 95% Wilson |"
    sep = "|---|---|---|---|"
    if other:
        head += f" {other['name']} | McNemar ({name} only / {other['name']} only) |"
        sep += "---|---|"
    rows = [head, sep]
    for task, r in heldout.items():
        row = f"| {task} | {_pct(r)} |"
        if other and task in other["heldout"]:
            o = other["heldout"][task]
            row += f" {100 * o['accuracy']:.1f}% [{100 * o['low']:.1f}, {100 * o['high']:.1f}] |" \
                   f" {_mcnemar(correct[task], other['heldout_correct'][task])} |"
        rows.append(row)
        for label, key in (("log-likelihood", "loglikelihood"),):
            if key in r:
                rows.append(f"| {task} ({label}) | {_pct(r[key])} |" + (" | |" if other else ""))
    text = "\n".join(rows)
    sudoku = "sudoku4all"
    if sudoku in heldout:
        mine = _groups(sudoku, n, correct[sudoku])
        theirs = _groups(sudoku, n, other["heldout_correct"][sudoku]) if other and sudoku in other["heldout"] else {}
        lines = [f"| givens | {name} | 95% Wilson |" + (f" {other['name']} | 95% Wilson | McNemar |"
                                                         if theirs else ""),
                 "|---|---|---|" + ("---|---|---|" if theirs else "")]
        from dgbench.stats import wilson_interval

        for group, oks in mine.items():
            lo, hi = wilson_interval(sum(oks), len(oks))
            line = f"| {group.split()[0]} | {sum(oks)}/{len(oks)} = {100 * sum(oks) / len(oks):.1f}% | " \
                   f"[{100 * lo:.1f}%, {100 * hi:.1f}%] |"
            if theirs:
                t = theirs[group]
                tlo, thi = wilson_interval(sum(t), len(t))
                line += f" {sum(t)}/{len(t)} = {100 * sum(t) / len(t):.1f}% | [{100 * tlo:.1f}%, {100 * thi:.1f}%] |" \
                        f" {_mcnemar(oks, t)} |"
            lines.append(line)
        text += "\n\n4x4 Sudoku per clue count (held-out puzzles with exactly that many givens):\n\n" + "\n".join(lines)
    return text

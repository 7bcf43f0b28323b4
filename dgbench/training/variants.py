"""A trained model's held-out accuracy under another decoding of the same weights, added to its card.

The card's main numbers use the reference decoding (training/evaluate.DECODING, what the quality suite
runs). The masked pair's default commits every position above 0.9 confidence at once (Fast-dLLM's
parallel threshold); `threshold: 1.0` commits exactly one position per step, the most confident
(LLaDA's low-confidence remasking with as many steps as blanks): slower, and on the hardest 4x4 grids
(4 givens) more accurate. Both operating points are the diffusion side of the speed-accuracy question,
so the card shows both, each beside the AR twin on the same items.

    python -m dgbench.training.variants DIR --knobs '{"threshold": 1.0}' --label "one token per step" [--twin DIR_AR]
"""

from __future__ import annotations

import argparse
import json
import shlex
import time
from pathlib import Path


def add_variant(directory: Path, knobs: dict, label: str, tasks: list[str] | None = None) -> dict:
    from dgbench.models.loading import load_pretrained
    from dgbench.training.checkpoint import read_meta, write_meta
    from dgbench.training.evaluate import DECODING, evaluate

    directory = Path(directory)
    meta = read_meta(directory)
    cfg = meta["config"]
    objective, backbone = cfg["objective"], cfg.get("backbone", "llama")
    tasks = tasks or list(cfg["tasks"])
    model = load_pretrained(directory)
    started = time.perf_counter()
    result = evaluate(model, objective, tasks, meta["eval_n"], knobs=knobs, backbone=backbone)
    engine, default = DECODING[objective]
    meta.setdefault("heldout_variants", {})[label] = {
        "engine": engine, "knobs": {**default, **knobs}, "knobs_json": json.dumps({**default, **knobs}),
        "command": f"python -m dgbench.training.variants {directory} --knobs {shlex.quote(json.dumps(knobs))} "
                   f"--label {shlex.quote(label)}" + (f" --tasks {','.join(tasks)}" if tasks != list(cfg["tasks"]) else ""),
        "eval_wall_s": round(time.perf_counter() - started, 1),
        "heldout": {t: {k: v for k, v in r.items() if k not in ("outputs", "correct_items", "steps_per_canvas")}
                    for t, r in result.items()},
        "heldout_correct": {t: r["correct_items"] for t, r in result.items()},
    }
    write_meta(directory, meta)
    return meta


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("directory", type=Path)
    ap.add_argument("--knobs", required=True, help="JSON object of engine knobs, over the card's decoding")
    ap.add_argument("--label", required=True)
    ap.add_argument("--tasks", default=None, help="comma-separated subset of the model's tasks")
    ap.add_argument("--twin", type=Path, default=None, help="the other member's folder: both cards are rewritten")
    args = ap.parse_args(argv)
    meta = add_variant(args.directory, json.loads(args.knobs), args.label,
                       args.tasks.split(",") if args.tasks else None)
    for task, r in meta["heldout_variants"][args.label]["heldout"].items():
        print(f"{args.label}: {task} {r['correct']}/{r['n']} = {100 * r['accuracy']:.1f}% "
              f"[{100 * r['low']:.1f}-{100 * r['high']:.1f}%]")
    if args.twin:
        from dgbench.training.gemma_card import write_pair

        diffusion_first = meta["config"]["objective"] != "autoregressive"
        write_pair(*((args.directory, args.twin) if diffusion_first else (args.twin, args.directory)))
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())

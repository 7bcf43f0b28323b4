"""One `dgbench train` run end to end: train, save the checkpoint, score the held-out items, write the card."""

from __future__ import annotations

from pathlib import Path


def run_training(objective: str, tasks: list[str], steps: int, seed: int, batch_size: int, lr: float, out: Path,
                 eval_n: int = 200, name: str | None = None, console=None, show_progress: bool = True,
                 backbone: str = "llama", storage_dtype: str = "") -> dict:
    import time

    import torch
    import transformers

    from dgbench.models.synthetic import count_parameters

    from dgbench.training import checkpoint
    from dgbench.training.evaluate import DECODING, evaluate
    from dgbench.training.loop import TrainConfig, train

    cfg = TrainConfig(objective, tuple(tasks), steps, seed, batch_size, lr, backbone=backbone,
                      storage_dtype=storage_dtype)
    say = console.print if console is not None else (lambda *_a, **_k: None)
    say(f"training {objective} on {','.join(tasks)}: {steps} steps x batch {batch_size}, seed {seed}")
    result = train(cfg, show_progress=show_progress)
    out = Path(out)
    model = result.model
    if cfg.stored_as == "bfloat16":
        # Stored in bfloat16 (the shipped-weights budget); scored as shipped: reloaded by the normal loader
        # in float32, so the card's accuracy is that of the bf16-rounded weights.
        from dgbench.models.loading import load_pretrained

        checkpoint.save_checkpoint(model.to(torch.bfloat16), out)
        model = load_pretrained(out)
    else:
        checkpoint.save_checkpoint(model, out)
    say(f"trained in {result.wall_s:.0f} s; checkpoint in {out}; scoring {eval_n} held-out items per task")
    eval_started = time.perf_counter()
    heldout = evaluate(model, objective, tasks, eval_n, backbone=backbone) if eval_n else {}
    eval_s = time.perf_counter() - eval_started
    tail = result.losses[-20:]
    meta = {
        "name": name or out.resolve().name,
        "config": {**cfg.__dict__, "tasks": list(cfg.tasks)},
        "command": cfg.command(out),
        "params": count_parameters(model),
        "wall_s": round(result.wall_s, 1),
        "eval_wall_s": round(eval_s, 1),
        "eval_n": eval_n,
        "storage_dtype": cfg.stored_as,
        "machine": checkpoint.machine(),
        "versions": {"torch": torch.__version__, "transformers": transformers.__version__},
        "final_loss": sum(tail) / len(tail),
        "skipped_reserved": result.skipped_reserved,
        "decoding": list(DECODING[objective]),
        # Outputs stay out of the card's JSON (they are reproducible from the checkpoint).
        "heldout": {t: {k: v for k, v in r.items() if k not in ("outputs", "correct_items", "steps_per_canvas")}
                    for t, r in heldout.items()},
        # Per item, for McNemar against the other member (same items, same order).
        "heldout_correct": {t: r["correct_items"] for t, r in heldout.items()},
        "heldout_steps_per_canvas": {t: r["steps_per_canvas"] for t, r in heldout.items() if "steps_per_canvas" in r},
        "losses": [round(x, 5) for x in result.losses],
        "tasks_per_step": result.tasks_per_step,
    }
    checkpoint.plot_losses(result.losses, result.tasks_per_step, f"{meta['name']} ({objective}), seed {seed}",
                           out / checkpoint.CURVE_FILE)
    checkpoint.write_meta(out, meta)
    if backbone == "gemma4":
        from dgbench.training.gemma_card import write_gemma_card

        write_gemma_card(out, meta)      # gemma_card.write_pair adds the twin's numbers once both exist
    else:
        checkpoint.write_card(out, meta)
    for task, r in meta["heldout"].items():
        say(f"  {task}: {r['correct']}/{r['n']} = {100 * r['accuracy']:.1f}% "
            f"[{100 * r['low']:.1f}-{100 * r['high']:.1f}%]")
    return meta

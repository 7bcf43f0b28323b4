"""One `dgbench train` run end to end: train, save the checkpoint, score the held-out items, write the card."""

from __future__ import annotations

from pathlib import Path


def run_training(objective: str, tasks: list[str], steps: int, seed: int, batch_size: int, lr: float, out: Path,
                 eval_n: int = 200, name: str | None = None, console=None, show_progress: bool = True) -> dict:
    import torch
    import transformers

    from dgbench.training import checkpoint
    from dgbench.training.evaluate import DECODING, evaluate
    from dgbench.training.loop import TrainConfig, train

    cfg = TrainConfig(objective, tuple(tasks), steps, seed, batch_size, lr)
    say = console.print if console is not None else (lambda *_a, **_k: None)
    say(f"training {objective} on {','.join(tasks)}: {steps} steps x batch {batch_size}, seed {seed}")
    result = train(cfg, show_progress=show_progress)
    out = Path(out)
    checkpoint.save_checkpoint(result.model, out)
    say(f"trained in {result.wall_s:.0f} s; checkpoint in {out}; scoring {eval_n} held-out items per task")
    heldout = evaluate(result.model, objective, tasks, eval_n) if eval_n else {}
    tail = result.losses[-20:]
    meta = {
        "name": name or out.resolve().name,
        "config": {**cfg.__dict__, "tasks": list(cfg.tasks)},
        "command": cfg.command(out),
        "params": sum(p.numel() for p in result.model.parameters()),
        "wall_s": round(result.wall_s, 1),
        "machine": checkpoint.machine(),
        "versions": {"torch": torch.__version__, "transformers": transformers.__version__},
        "final_loss": sum(tail) / len(tail),
        "skipped_reserved": result.skipped_reserved,
        "decoding": list(DECODING[objective]),
        # Outputs stay out of the card's JSON (they are reproducible from the checkpoint).
        "heldout": {t: {k: v for k, v in r.items() if k != "outputs"} for t, r in heldout.items()},
        "losses": [round(x, 5) for x in result.losses],
        "tasks_per_step": result.tasks_per_step,
    }
    checkpoint.plot_losses(result.losses, result.tasks_per_step, f"{meta['name']} ({objective}), seed {seed}",
                           out / checkpoint.CURVE_FILE)
    checkpoint.write_meta(out, meta)
    checkpoint.write_card(out, meta)
    for task, r in meta["heldout"].items():
        say(f"  {task}: {r['correct']}/{r['n']} = {100 * r['accuracy']:.1f}% "
            f"[{100 * r['low']:.1f}-{100 * r['high']:.1f}%]")
    return meta

"""Write a trained model as a normal transformers checkpoint plus dgbench's model card.

    DIR/model.safetensors, config.json, generation_config.json   (save_pretrained)
    DIR/tokenizer.json, tokenizer_config.json, ...                (byte-level, tokenizer.py)
    DIR/training.json   everything the card says, machine-readable (config, losses, held-out results)
    DIR/loss.png        the loss curve
    DIR/README.md       the model card

dgbench.models.loading.load_pretrained (and transformers' from_pretrained with local_files_only) read it.
"""

from __future__ import annotations

import json
import platform
from pathlib import Path

from dgbench.training.data import GEN_LENGTH, MIX

CARD_FILE, META_FILE, CURVE_FILE = "README.md", "training.json", "loss.png"
TASK_TEXT = {
    "sudoku4": "`sudoku4` (unique-solution 4x4 puzzles with 5-11 givens, answer = the solved grid)",
    "sudoku6": "`sudoku6` (6x6, 14-24 givens)",
    "infill": "`infill` (an arithmetic sequence with 1-3 consecutive terms blanked, answer = the missing terms)",
    "mc": "`mc` (dgbench's procedural four-way science questions, answer = the letter)",
    "sudoku4all": "`sudoku4all` (unique-solution 4x4 puzzles, clue count drawn uniformly from 4-11, answer = the "
                  "solved grid)",
    "pyfill": "`pyfill` (dgbench.tasks.pyfill: a generated two-line Python function whose first body line is "
              "missing, fixed by the docstring before and the variable used after; answer = that line)",
    "mcc": "`mcc` (dgbench.tasks.mc_computable: GPQA-format four-way questions whose letter is computable: "
           "largest/smallest number, odd one out by parity, a one-digit sum; answer = \"Answer: X\")",
    "mccwork": "`mccwork` (the `mcc` questions, the answer written with its working first, a scratchpad: the "
               "running max/min over the choices, each choice's parity, or the sum; then \"Answer: X\")",
}


def machine() -> str:
    import os

    import torch

    from dgbench.hardware.detect import cpu_model

    # Thread count changes float summation order, hence the exact weights (not the accuracy): record it.
    return (f"{cpu_model()}, {os.cpu_count()} logical CPUs, {torch.get_num_threads()} torch thread(s), "
            f"{platform.system()} {platform.release()}")


def save_checkpoint(model, directory: Path) -> None:
    from dgbench.training.tokenizer import save_tokenizer

    directory.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(str(directory), safe_serialization=True)
    save_tokenizer(directory)


def smooth(values: list[float], window: int = 20) -> list[float]:
    out, acc = [], 0.0
    for i, v in enumerate(values):
        acc += v
        if i >= window:
            acc -= values[i - window]
        out.append(acc / min(i + 1, window))
    return out


def plot_losses(losses: list[float], tasks_per_step: list[str], title: str, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 3.6), dpi=100)
    for task in dict.fromkeys(tasks_per_step):
        steps = [i for i, t in enumerate(tasks_per_step) if t == task]
        ax.plot(steps, [losses[i] for i in steps], ".", markersize=2, alpha=0.35, label=f"{task} (per step)")
    ax.plot(range(len(losses)), smooth(losses), "k-", linewidth=1.2, label="all tasks, 20-step mean")
    ax.set_xlabel("step")
    ax.set_ylabel("training loss (nats)")
    ax.set_yscale("log")
    ax.set_title(title, fontsize=10)
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def write_card(directory: Path, meta: dict, other: dict | None = None) -> None:
    """README.md from training.json's content: one place says what the card says. `other`: the twin's
    training.json, whose numbers then sit beside with McNemar (gemma_card.heldout_tables, shared)."""
    from dgbench.training.card_tables import heldout_tables
    from dgbench.training.learnable import V2_TASKS

    cfg = meta["config"]
    mix_total = sum(MIX[t] for t in cfg["tasks"])
    mix = ", ".join(f"{t} {MIX[t] / mix_total:.0%}" for t in cfg["tasks"])
    in_place = ("; in-place rows for the v2 tasks (dgbench/training/objectives.py): the answer region is the filled "
                "template the quality suite decodes, only its blanks masked and scored, the givens (Sudoku) or the "
                "code after the gap (pyfill) clean; pyfill always, Sudoku with probability 1/2, else the whole grid "
                "after the prompt") if set(cfg["tasks"]) & set(V2_TASKS) else ""
    objective = ("masked diffusion: t ~ U(0,1) per sequence, each answer token masked with probability t, "
                 "cross entropy on masked positions weighted 1/t (LLaDA / MDLM), bidirectional attention "
                 "(a full 4D mask, as the dgbench-masked engine runs it)" + in_place
                 if cfg["objective"] == "diffusion" else
                 "next-token cross entropy on the answer and its EOS, causal attention (pyfill: the suffix-first "
                 "layout of decoding/infill.py, so the code after the gap is read before the gap is written)")
    engine, knobs = meta["decoding"]
    default_twin = "ref-ar" if cfg["objective"] == "diffusion" else "ref-diffusion"
    twin = other["name"] if other else default_twin
    pair = (meta["name"], twin) if cfg["objective"] == "diffusion" else (twin, meta["name"])
    text = f"""# {meta['name']}: dgbench reference model ({cfg['objective']})

One member of a matched reference pair (`{pair[0]}`, `{pair[1]}`): same backbone, size, data,
steps and seed; only the objective and the decoder differ. Trained from scratch by `dgbench train`.
This is the LLaDA-family pair (a Llama trained as a masked-diffusion model, and its causal twin);
`ref-diffusiongemma` / `ref-gemma4` are the DiffusionGemma-architecture pair.

- **Backbone**: transformers `LlamaForCausalLM`, {meta['params']:,} parameters (hidden 128, 4 layers,
  4 heads, MLP 384, untied embeddings); byte-level vocabulary of 260 ids (pad 0, EOS 1, BOS 2, mask 3,
  byte b = id b + 4: exactly `dgbench.tasks.text`), so the quality tasks' prompts work unchanged.
  Stored in {meta.get('storage_dtype', 'float32')} (safetensors).
- **Objective**: {objective}.
- **Data**: generated on the fly by dgbench's task generators, batches of one task each, mix {mix}:
  {'; '.join(TASK_TEXT[t] for t in cfg['tasks'])}. Prompts are the quality harness's own (Sudoku: its `compact` style). Held-out and
  quality-suite items (seed 0, first 200 per task; Sudoku v2: per clue count) are excluded from training by
  content ({meta['skipped_reserved']} drawn items were skipped for that).
- **Budget**: {cfg['steps']} steps x batch {cfg['batch_size']} = {cfg['steps'] * cfg['batch_size']:,} sequences;
  AdamW lr {cfg['lr']:g} (warmup {cfg['warmup']}, cosine to 10%), weight decay {cfg['weight_decay']}, clip {cfg['grad_clip']};
  seed {cfg['seed']}.
- **Wall time**: {meta['wall_s']:.0f} s of training (+ {meta.get('eval_wall_s', 0):.0f} s held-out scoring) on
  {meta['machine']} (torch {meta['versions']['torch']}, transformers {meta['versions']['transformers']}).
- **Final loss** (mean of the last 20 steps): {meta['final_loss']:.4f}.

![loss curve]({CURVE_FILE})

## Reproduce

```bash
OMP_NUM_THREADS=1 {meta['command']}
```

Bit for bit on the same machine, torch and transformers versions and thread count (one thread: the
summation order of float ops depends on it).

## Held-out accuracy

Decoded by `{engine}` with {json.dumps(knobs) if knobs else 'its default knobs (greedy)'}, answer length
per task {', '.join(f'{t} {GEN_LENGTH[t]}' for t in cfg['tasks'])} tokens, stopping at EOS (diffusion fills a Sudoku grid,
and pyfill's gap, in place instead: the givens or the code after the gap fixed, the blanks masked, as the
quality suite does); scored by the tasks' own scorers (Sudoku: the whole grid solved; mc/mcc/mccwork: the letter;
pyfill: prefix + the generated line + suffix passes its asserts in dgbench's sandbox; infill: the exact
missing terms). Chance: mc/mcc/mccwork 25%, the others 0%. Items are held out by content from training and from
what the quality suite scores. 95% Wilson intervals.{' The twin ' + twin + "'s numbers are beside, on the same items." if other else ''}

{heldout_tables(meta, other)}
"""
    (directory / CARD_FILE).write_text(text)


def write_meta(directory: Path, meta: dict) -> None:
    (directory / META_FILE).write_text(json.dumps(meta, indent=1) + "\n")


def read_meta(directory: Path) -> dict:
    return json.loads((Path(directory) / META_FILE).read_text())

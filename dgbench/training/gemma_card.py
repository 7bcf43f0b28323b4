"""Model cards of the DiffusionGemma pair (ref-diffusiongemma, ref-gemma4), from their training.json files.

Each card states its own member's numbers and, when the twin's training.json is there, the twin's beside them
with McNemar's test on the same held-out items (per task, and per clue count for Sudoku). Both cards are
rewritten from the JSON alone, so `python -m dgbench.training.gemma_card DIR_DIFFUSION DIR_AR` regenerates
them after both runs have finished (each run writes its own card first, without the twin).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from dgbench.training.card_tables import eval_n, heldout_tables
from dgbench.training.checkpoint import CARD_FILE, CURVE_FILE, TASK_TEXT, read_meta

OBJECTIVE_TEXT = {
    "uniform-diffusion": (
        "uniform-state discrete diffusion, the objective DiffusionGemma's sampler assumes "
        "(dgbench/training/gemma_pair.py cites the recipes): the prompt through the causal encoder into the KV "
        "cache; t ~ U(0,1) per sequence, each canvas position replaced by a uniformly random token (whole "
        "vocabulary) with probability t (D3PM's uniform kernel / SEDD, UDLM, Duo); cross entropy of the clean "
        "canvas at every canvas position (answer, then EOS to the canvas end); self-conditioning as Analog Bits "
        "(Chen et al. 2022): on half the batches a first pass without it, its logits detached and tempered by "
        "tau ~ U(0.4, 0.8) (the sampler's temperature range; a guess), then the loss on a second pass given them. "
        "Sudoku rows are in place (givens clean in the canvas) with probability 1/2; pyfill always (the code "
        "after the gap fixed in the canvas). Guesses, written down in gemma_pair.py: unweighted CE rather than "
        "a time-weighted ELBO; same-x_t self-conditioning; no MoE load-balancing loss"),
    "autoregressive": "next-token cross entropy on the answer and its EOS, prompt unscored, causal attention",
}


def write_gemma_card(directory: Path, meta: dict, other: dict | None = None) -> None:
    cfg = meta["config"]
    from dgbench.training.data import GEN_LENGTH, MIX

    mix_total = sum(MIX[t] for t in cfg["tasks"])
    mix = ", ".join(f"{t} {MIX[t] / mix_total:.0%}" for t in cfg["tasks"])
    diffusion = cfg["objective"] == "uniform-diffusion"
    arch = "DiffusionGemmaForBlockDiffusion" if diffusion else "Gemma4ForCausalLM"
    engine, knobs = meta["decoding"]
    twin = "ref-gemma4" if diffusion else "ref-diffusiongemma"
    text = f"""# {meta['name']}: dgbench reference model ({'DiffusionGemma, uniform diffusion' if diffusion else 'Gemma 4, autoregressive'})

One member of dgbench's DiffusionGemma pair (`ref-diffusiongemma`, `ref-gemma4`): the same widths, data, steps and
seed; only the architecture's decoding path, the objective and the decoder differ. Trained from scratch by
`dgbench train`. (`ref-diffusion` / `ref-ar` are the other pair: the LLaDA-family masked-diffusion reference,
a Llama, and its causal twin.)

- **Architecture**: transformers `{arch}`, {meta['params']:,} parameters, built as dgbench's synthetic
  builder builds the DiffusionGemma specs (dgbench.models.synthetic): hidden 128, 4 layers (sliding and
  full attention, the last full), 4 query / 2 KV heads of 32, dense MLP 256 beside a MoE block of 4 experts
  top-2 (width 128){', encoder and decoder sharing every layer weight, a self-conditioning block, canvas of 32 tokens; the tiny vision tower is dropped (the text path never calls it)' if diffusion else ''};
  byte-level vocabulary of 260 ids (pad 0, EOS 1, BOS 2, mask 3 unused, byte b = id b + 4), the quality
  tasks' own codec. **Stored in {meta.get('storage_dtype', 'bfloat16')}** (safetensors); dgbench's loader reads it
  into float32, and every number below is of those stored weights.
- **Objective**: {OBJECTIVE_TEXT[cfg['objective']]}.
- **Data**: generated on the fly by dgbench's task generators, batches of one task each, mix {mix}:
  {'; '.join(TASK_TEXT[t] for t in cfg['tasks'])}. Held-out items and the quality suite's (seed 0, first 200
  per task; Sudoku: per clue count) are excluded from training by content ({meta['skipped_reserved']} drawn
  items were skipped for that).
- **Budget**: {cfg['steps']} steps x batch {cfg['batch_size']} = {cfg['steps'] * cfg['batch_size']:,} sequences;
  AdamW lr {cfg['lr']:g} (warmup {cfg['warmup']}, cosine to 10%), weight decay {cfg['weight_decay']}, clip
  {cfg['grad_clip']}; seed {cfg['seed']}. Chosen to fit a ~45-minute wall-clock budget per model on a 2-core
  machine shared with other work (load average ~20 during training): a budget limit, not a converged run.
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

Decoded by `{engine}` with {json.dumps(knobs) if knobs else 'its default knobs'}{' (DiffusionGemma sampler defaults: entropy bound 0.1, temperature 0.8 -> 0.4, adaptive stop after one stable step at mean entropy < 0.005, at most 48 steps per canvas)' if diffusion else ' (greedy)'};
answer lengths {', '.join(f'{t} {GEN_LENGTH[t]}' for t in cfg['tasks'])} tokens, stopping at EOS. Diffusion fills
the Sudoku grid and the pyfill gap in place, one item per call, as the quality suite does; AR writes the grid
after the prompt and reads pyfill's suffix first. Scored by the tasks' scorers (Sudoku: the whole grid solved;
pyfill: prefix + the generated line + suffix passes its asserts in dgbench's sandbox; mcc: the letter).
Chance: mcc 25%, pyfill and Sudoku 0%. n = {eval_n(meta)} per task (Sudoku: per clue count).
{'The twin ' + twin + "'s numbers are beside, on the same items." if other else ''}

{heldout_tables(meta, other)}
"""
    (Path(directory) / CARD_FILE).write_text(text)


def write_pair(diffusion_dir, ar_dir) -> None:
    """Both cards of a pair with the twin's numbers beside (either pair: the writer follows the backbone)."""
    from dgbench.training.checkpoint import write_card

    a, b = read_meta(diffusion_dir), read_meta(ar_dir)
    write = write_gemma_card if a["config"].get("backbone") == "gemma4" else write_card
    write(Path(diffusion_dir), a, b)
    write(Path(ar_dir), b, a)


if __name__ == "__main__":  # pragma: no cover - a maintenance entry point, documented in the cards
    write_pair(sys.argv[1], sys.argv[2])

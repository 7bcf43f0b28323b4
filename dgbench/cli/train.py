"""`dgbench train`: train one member of the reference pair (masked diffusion or autoregressive).

Exit codes: 0 trained and saved, 2 bad input (objective, tasks, numbers, output folder: one line).
The heavy imports (torch, transformers) happen inside main(), so `dgbench --help` stays fast.
"""

from __future__ import annotations

import sys

from dgbench.errors import ConfigError

NAME = "train"

TRAIN_EPILOG = """\
examples:
  dgbench train --objective diffusion --steps 40 --out /tmp/ref-diffusion          # a quick look
  dgbench train --objective diffusion --tasks sudoku4,sudoku6,infill,mc --steps 400 --seed 0 \\
      --out dgbench/_data/models/ref-diffusion                                  # the shipped model
  dgbench train --objective autoregressive --tasks sudoku4 --steps 200 --out /tmp/ar-sudoku
  dgbench train --objective uniform-diffusion --tasks sudoku4all,pyfill,mcc --steps 550 --batch-size 16 \
      --lr 0.003 --out dgbench/_data/models/ref-diffusiongemma                  # the DiffusionGemma pair
  dgbench train --objective autoregressive --backbone gemma4 --tasks sudoku4all,pyfill,mcc --steps 550 \
      --batch-size 16 --lr 0.003 --out dgbench/_data/models/ref-gemma4          # ... and its Gemma 4 twin

diffusion and autoregressive (the default llama backbone) train the same LlamaForCausalLM (d=128, 4 layers,
byte-level vocabulary) on the same generated data with the same seed; only the loss and the attention mask
differ. uniform-diffusion trains a DiffusionGemmaForBlockDiffusion (MoE, canvas 32) with the objective its
sampler assumes (uniform noise, self-conditioning; dgbench/training/gemma_pair.py), and autoregressive with
--backbone gemma4 its Gemma4ForCausalLM twin; both are stored in bfloat16. The folder
gets a transformers checkpoint (safetensors, config.json, tokenizer files), training.json, loss.png and
a model card README.md with held-out accuracy per task (95% Wilson interval, n).

exit codes: 0 trained and saved, 2 bad input (objective, tasks, numbers, output folder)
"""


def add_parser(sub, formatter) -> None:
    from dgbench.training.backbone import BACKBONES, OBJECTIVES
    from dgbench.training.data import TASKS

    p = sub.add_parser(NAME, help="train a small reference model (masked diffusion or autoregressive)",
                       formatter_class=formatter, epilog=TRAIN_EPILOG,
                       description="Train one member of dgbench's matched reference pair from scratch on "
                                   "dgbench's own task generators, save it as a transformers checkpoint and "
                                   "write its model card with held-out accuracy.")
    p.add_argument("--objective", required=True, choices=OBJECTIVES,
                   help="diffusion: masked-diffusion loss, bidirectional (Llama); uniform-diffusion: DiffusionGemma's "
                        "uniform-noise objective with self-conditioning; autoregressive: next-token, causal")
    p.add_argument("--backbone", choices=BACKBONES, default=None,
                   help="llama (the masked pair; default) or gemma4 (DiffusionGemmaForBlockDiffusion for "
                        "uniform-diffusion, Gemma4ForCausalLM for autoregressive); uniform-diffusion implies gemma4")
    p.add_argument("--tasks", default=",".join(TASKS), metavar="LIST",
                   help=f"comma-separated tasks to train on (default: {','.join(TASKS)})")
    p.add_argument("--steps", type=int, default=400, metavar="N", help="optimizer steps (default 400)")
    p.add_argument("--seed", type=int, default=0, metavar="S", help="seed of data, init and masking (default 0)")
    p.add_argument("--batch-size", type=int, default=32, metavar="N", help="sequences per step (default 32)")
    p.add_argument("--lr", type=float, default=2e-3, metavar="LR", help="peak learning rate (default 2e-3)")
    p.add_argument("--out", required=True, metavar="DIR", help="folder for the checkpoint and its card")
    p.add_argument("--eval-n", type=int, default=200, metavar="N",
                   help="held-out items scored per task for the card (default 200; 0 skips evaluation)")
    p.add_argument("--storage-dtype", choices=["float32", "bfloat16"], default="",
                   help="dtype of the saved checkpoint (default: float32 for llama, bfloat16 for gemma4); the "
                        "card's accuracy is scored on the stored weights")
    p.add_argument("--name", metavar="NAME", help="model name in the card (default: the folder's name)")
    p.add_argument("--force", action="store_true", help="write into a folder that already holds files")


def check_args(args):
    from pathlib import Path

    from dgbench.training.data import parse_tasks

    tasks = parse_tasks(args.tasks)
    backbone = args.backbone or ("gemma4" if args.objective == "uniform-diffusion" else "llama")
    if (args.objective == "uniform-diffusion") != (backbone == "gemma4") and args.objective != "autoregressive":
        raise ConfigError(f"--objective {args.objective} runs on the "
                          f"{'gemma4' if args.objective == 'uniform-diffusion' else 'llama'} backbone, not "
                          f"--backbone {backbone}; drop --backbone or pick the other objective")
    args.backbone = backbone
    # Upper bounds too: a mistyped 10**20 steps would otherwise start a run that never ends.
    for flag, value, low, high in (("steps", args.steps, 1, 10**7), ("batch-size", args.batch_size, 1, 65536),
                                   ("eval-n", args.eval_n, 0, 10**6)):
        if value < low:
            raise ConfigError(f"--{flag} must be at least {low}, got {value}")
        if value > high:
            raise ConfigError(f"--{flag} must be at most {high}, got {value}")
    if not args.lr > 0 or args.lr >= 1:
        raise ConfigError(f"--lr must be between 0 and 1 (exclusive), got {args.lr:g}; try 2e-3")
    out = Path(args.out).expanduser()
    if out.exists() and not out.is_dir():
        raise ConfigError(f"--out {out}: exists and is not a folder; give a folder path")
    if out.is_dir() and any(out.iterdir()) and not args.force:
        raise ConfigError(f"--out {out}: folder is not empty; pick a new folder or pass --force to overwrite")
    from dgbench.results import ensure_writable_dir

    ensure_writable_dir(out, "--out")  # before the first training step, not after the last
    return tasks, out


def main(args) -> int:
    from rich.console import Console

    tasks, out = check_args(args)
    from dgbench.training.run import run_training

    console = Console(stderr=True)
    run_training(args.objective, tasks, args.steps, args.seed, args.batch_size, args.lr, out,
                 eval_n=args.eval_n, name=args.name, console=console, show_progress=True,
                 backbone=args.backbone, storage_dtype=args.storage_dtype)
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main(None))

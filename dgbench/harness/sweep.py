"""Expand a suite's grid into sweep points, each with a stable id (so --resume can recognise it)."""

from __future__ import annotations

import hashlib
import itertools
import json
from dataclasses import dataclass

from dgbench.harness.suite import COMMON_AXES


@dataclass(frozen=True)
class Point:
    decoder: str
    model: str
    engine: str
    dtype: str
    batch_size: int
    gen_length: int
    prompt_length: int
    knobs: dict            # every knob of the engine, defaults filled, sweep values applied
    swept_knobs: tuple     # names of the knobs that vary in this suite (shown in tables)
    # Quality scenario only: one point per (decoder, task); prompts come from the task's items.
    task: str | None = None
    task_config: dict | None = None
    limit: int | None = None   # --limit: items per task at most
    # Latency only: real task prompts (harness/task_prompts.py) instead of random ids; None: random.
    prompts: str | None = None

    @property
    def params(self) -> dict:
        if self.task is not None:
            return {"task": self.task, "gen_length": self.gen_length, **{k: self.knobs[k] for k in self.swept_knobs}}
        return {"batch_size": self.batch_size, "gen_length": self.gen_length, "prompt_length": self.prompt_length,
                **({"prompts": self.prompts} if self.prompts else {}), **{k: self.knobs[k] for k in self.swept_knobs}}

    @property
    def point_id(self) -> str:
        key = {"decoder": self.decoder, "model": self.model, "engine": self.engine, "dtype": self.dtype,
               "batch_size": self.batch_size, "gen_length": self.gen_length, "prompt_length": self.prompt_length,
               "knobs": self.knobs}
        if self.task is not None:  # only quality points carry these, so other ids stay as they were
            key.update(task=self.task, task_config=self.task_config, limit=self.limit)
        if self.prompts is not None:  # likewise: ids of random-prompt points stay as they were
            key.update(prompts=self.prompts)
        return hashlib.sha1(json.dumps(key, sort_keys=True).encode()).hexdigest()[:12]

    def label(self) -> str:
        parts = [f"{k}={v}" for k, v in self.params.items()]
        return f"{self.decoder} " + " ".join(parts)


def task_gen_length(task: str, config: dict) -> int:
    """Tokens (bytes) generated per item: a sudoku grid with its newlines, a short MC answer, one code line."""
    if task == "sudoku":
        return config["size"] * config["size"] + config["size"]
    if task.startswith("lm_eval:"):   # the cap; each lm-eval task sets its own max_gen_toks
        return config["max_gen_toks"]
    return {"mc": 16, "code_infill": 64, "pyfill": 16}[task]


def task_entries(task: str, config: dict) -> list[tuple[str, dict]]:
    """(point task, its config): one per listed lm-eval task, named lm_eval:NAME; other tasks as they are.
    `n` (items before --limit, shown by --dry-run) is lm-eval's limit, or 0 when lm-eval decides."""
    if task != "lm_eval":
        return [(task, config)]
    return [(f"lm_eval:{name}", {**config, "task": name, "n": config["limit"] or 0}) for name in config["task"]]


def expand(suite: dict) -> list[Point]:
    from dgbench.backends import ENGINES

    sweep = suite["sweep"]
    if suite.get("scenario") == "quality":
        return _expand_quality(suite, ENGINES)
    points = []
    for dec in suite["decoders"]:
        engine = ENGINES[dec["engine"]]
        axes = {a: sweep[a] for a in COMMON_AXES}
        if dec.get("prompts"):   # task prompts have their own length: one value, the real one
            from dgbench.harness.task_prompts import prompt_length

            axes["prompt_length"] = [prompt_length(dec["prompts"])]
        knob_axes = {k: v for k, v in sweep["knobs"].items() if k in engine.knobs}
        names = list(axes) + list(knob_axes)
        for combo in itertools.product(*axes.values(), *knob_axes.values()):
            values = dict(zip(names, combo))
            knobs = {**dec["knobs"], **{k: values[k] for k in knob_axes}}
            points.append(Point(decoder=dec["name"], model=dec["model"], engine=dec["engine"], dtype=dec["dtype"],
                                batch_size=values["batch_size"], gen_length=values["gen_length"],
                                prompt_length=values["prompt_length"], knobs=knobs,
                                swept_knobs=tuple(knob_axes), prompts=dec.get("prompts")))
    return points


def _expand_quality(suite: dict, engines) -> list[Point]:
    """One point per decoder x task (x swept knob values); batch 1, prompts from the task items."""
    sweep = suite["sweep"]
    points = []
    for dec in suite["decoders"]:
        knob_axes = {k: v for k, v in sweep["knobs"].items() if k in engines[dec["engine"]].knobs}
        for combo in itertools.product(*knob_axes.values()):
            knobs = {**dec["knobs"], **dict(zip(knob_axes, combo))}
            for task, config in (e for t, c in suite["tasks"].items() for e in task_entries(t, c)):
                points.append(Point(decoder=dec["name"], model=dec["model"], engine=dec["engine"], dtype=dec["dtype"],
                                    batch_size=1, gen_length=task_gen_length(task, config), prompt_length=0,
                                    knobs=knobs, swept_knobs=tuple(knob_axes), task=task, task_config=config,
                                    limit=suite.get("limit")))
    return points

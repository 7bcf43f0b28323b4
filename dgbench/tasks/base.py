"""The Task contract: what a quality task declares so that a suite can name it.

A task is one module with one class, registered with @register_task in that module and imported once in
dgbench/tasks/__init__.py (or by a plug-in module of its own, as tests/fixtures/echo_task.py does). The
suite schema, the sweep and the quality scenario read everything from here: the task's suite fields
(`tasks: {NAME: {...}}`), its generation length, its items (prompt and scorer) and the scenario that runs it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, ClassVar


@dataclass(frozen=True)
class TaskItem:
    id: str
    prompt: str
    score: Callable[[str], tuple[Any, bool, dict]]   # output text -> (extracted answer, correct, extra fields)
    # For decoders that fill in place (diffusion): the output with its known characters, and the
    # character offsets of the blanks to fill. None: the decoder writes its answer after the prompt.
    template: str | None = None
    blanks: tuple[int, ...] = ()
    # In place: score only the first `answer_span` output positions (the gap), not the fixed context.
    answer_span: int | None = None
    # Log-likelihood scoring: (context, continuations, index of the right one), no generation.
    ll: tuple | None = None
    infill_mode: str | None = None   # code infill: how the hole was presented (stored with every sample)


class Task:
    """One quality task. Subclasses set the class attributes and implement gen_length and items."""

    name: ClassVar[str]              # the key under a suite's `tasks:`
    description: ClassVar[str]       # one line for `dgbench list tasks`
    fields: ClassVar[dict]           # its suite fields: name -> dgbench.validation.Field
    scenario: ClassVar[str] = "quality"   # the scenario that measures its points (dgbench/scenarios/)

    def gen_length(self, config: dict) -> int:
        """Tokens (bytes) generated per item."""
        raise NotImplementedError

    def items(self, config: dict, limit: int | None, seed: int, paradigm: str) -> list[TaskItem]:
        """At most `limit` items (None: all `n`), seeded; prompt and scorer per item."""
        raise NotImplementedError

    def check(self, config: dict, suite: dict, paradigms: list[str], loc) -> None:
        """Checks beyond the fields' own, before anything loads: one line naming the field (loc.at).
        `paradigms[i]` is the paradigm of suite["decoders"][i]'s engine."""

    def entries(self, config: dict) -> list[tuple[str, dict]]:
        """(point task name, its config): one point per decoder and entry; most tasks have one."""
        return [(self.name, config)]


TASKS: dict[str, Task] = {}


def register_task(cls: type[Task]) -> type[Task]:
    """Class decorator: register a task once under its `name`."""
    if cls.name in TASKS:
        raise ValueError(f"task {cls.name!r} registered twice")
    TASKS[cls.name] = cls()
    return cls


def task_of(point_task: str) -> Task:
    """The task behind a point's task name (`lm_eval:NAME` points belong to the lm_eval task)."""
    return TASKS[point_task.split(":", 1)[0]]


def count(config: dict, limit: int | None) -> int:
    return config["n"] if limit is None else min(config["n"], limit)

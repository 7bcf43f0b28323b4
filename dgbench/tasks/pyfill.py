"""Generated Python infill: a two-step function with its middle line missing, scored by running it.

Each item is a small function whose docstring states the whole computation and whose body computes it in
two lines; the first body line is the gap:

    def scale(n):
     \"\"\"Return (n * 3) + 2.\"\"\"
     ________________          <- the gap: ` out = n * 3`
     return out + 2

    assert scale(0) == 2 ...

The gap is fixed by both sides: the parameter name and the first operation come from the code before it
(signature, docstring), the variable it must assign comes only from the code after it (`return out ...`),
so a model that reads only the prefix cannot name the variable, and one that reads only the suffix cannot
know the operation. It is learnable by a ~1M-parameter model (copying plus a small vocabulary of
operators and digits), which is the point: dgbench's reference models need an infill task with signal.

Scoring (dgbench.tasks.sandbox, never in this process): prefix + generated line + suffix is run with the
tests in the suffix; pass@1 is whether it exits cleanly. Any line that makes the tests pass counts (a
different but equivalent expression is correct), so the score is functional, not exact match; exact match
is reported beside it.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from dgbench.tasks.base import Task, TaskItem, count, register_task
from dgbench.validation import Field

FUNCTIONS = ("scale", "shift", "adjust", "apply", "convert", "step", "mix", "calc")
PARAMS = ("n", "x", "k", "val", "num", "a")
VARIABLES = ("out", "res", "tmp", "acc", "m", "y", "total", "part")
OPERATORS = ("+", "-", "*")
# One-space indentation (valid Python, and every byte is a token of a small model's canvas). Characters the
# gap may hold: the longest middle (" total = num * 9") is 16, so the answer is never truncated.
INDENT = " "
GAP_LENGTH = 16
# Characters of the suffix an in-place template shows after the gap and its newline: enough for
# ` return <var>`; the trained DiffusionGemma's canvas is 32 = 16 + 1 + 15.
CANVAS_CONTEXT = 15


@dataclass(frozen=True)
class PyFillItem:
    id: str
    prefix: str          # signature and docstring, ending with a newline
    middle: str          # the reference gap line, without its newline
    suffix: str          # the return line, then the tests; starts at the line after the gap
    entry_point: str

    @property
    def key(self) -> str:
        """Identity for split disjointness: the whole program."""
        return self.prefix + self.middle + "\n" + self.suffix


def _apply(op: str, a: int, b: int) -> int:
    return a + b if op == "+" else a - b if op == "-" else a * b


def make_item(rng: random.Random, item_id: str) -> PyFillItem:
    fn, param, var = rng.choice(FUNCTIONS), rng.choice(PARAMS), rng.choice(VARIABLES)
    while var == param:
        var = rng.choice(VARIABLES)
    op1, op2 = rng.choice(OPERATORS), rng.choice(OPERATORS)
    a, b = rng.randint(1, 9), rng.randint(1, 9)
    prefix = f'def {fn}({param}):\n{INDENT}"""Return ({param} {op1} {a}) {op2} {b}."""\n'
    middle = f"{INDENT}{var} = {param} {op1} {a}"
    inputs = rng.sample(range(-5, 13), 3)
    tests = "".join(f"assert {fn}({v}) == {_apply(op2, _apply(op1, v, a), b)}\n" for v in inputs)
    suffix = f"{INDENT}return {var} {op2} {b}\n\n{tests}"
    return PyFillItem(item_id, prefix, middle, suffix, fn)


def generate(n: int, seed) -> list[PyFillItem]:
    """n items, item k drawn from its own RNG seeded by (seed, k): the first k are the same for any n."""
    return [make_item(random.Random(f"pyfill:{seed}:{k}"), f"pyfill-{seed}-{k}") for k in range(n)]


def gap_line(text: str) -> str:
    """The generated gap as one line: text up to the first newline, trailing whitespace dropped."""
    return text.split("\n", 1)[0].rstrip()


def program(item: PyFillItem, middle_text: str) -> str:
    return item.prefix + gap_line(middle_text) + "\n" + item.suffix


def exact_match(item: PyFillItem, text: str) -> bool:
    return gap_line(text) == item.middle


def passes(item: PyFillItem, text: str, timeout_s: float = 5) -> bool:
    """Whether prefix + the generated line + suffix (with its asserts) runs cleanly in the sandbox."""
    from dgbench.tasks.sandbox import run_python

    return run_python(program(item, text), timeout_s=timeout_s).status == "passed"


def canvas_template(item: PyFillItem, context: int) -> str:
    """What an in-place (diffusion) decoder fills: GAP_LENGTH blanks ('_'), then the first `context`
    characters of the suffix, fixed, so the denoiser attends to the code after the gap."""
    return "_" * GAP_LENGTH + "\n" + item.suffix[:context]


@register_task
class PyfillTask(Task):
    name = "pyfill"
    description = ("generated two-line Python functions with the first body line missing, fixed by the code before "
                   "and after the gap; pass@1 in the sandbox, exact match")
    fields = {"n": Field(int, default=50, min=1, help="generated functions (before --limit)")}

    def gen_length(self, config: dict) -> int:
        return GAP_LENGTH

    def items(self, config: dict, limit: int | None, seed: int, paradigm: str) -> list[TaskItem]:
        """Diffusion fills the gap in place with the suffix's start fixed after it (the canvas the trained
        DiffusionGemma learnt); AR gets the suffix first (decoding/infill.py), as code_infill does."""
        from dgbench.decoding.infill import build_infill_prompt
        from dgbench.tasks.code_infill import CODE_SEPARATOR

        items = []
        for item in generate(count(config, limit), seed):
            def score(text, item=item):
                passed = passes(item, text)
                return gap_line(text), passed, {"exact_match": exact_match(item, text), "pass_at_1": passed}
            if paradigm == "diffusion":
                items.append(TaskItem(item.id, item.prefix, score, canvas_template(item, CANVAS_CONTEXT),
                                      tuple(range(GAP_LENGTH)), GAP_LENGTH, infill_mode="native-gap"))
            else:
                layout = build_infill_prompt(list(item.prefix), list(item.suffix), separator=list(CODE_SEPARATOR))
                items.append(TaskItem(item.id, "".join(layout.ids), score, infill_mode=layout.mode))
        return items

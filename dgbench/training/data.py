"""Task data for training and held-out evaluation, generated from dgbench's own task generators.

Four tasks, each an (instruction prompt, answer) pair in exactly the text the quality harness uses, so a
trained model sees at training time the prompts `dgbench run --suite quality` gives it:

  sudoku4, sudoku6  dgbench.tasks.sudoku puzzles (unique solutions); the answer is the solved grid
  mc                dgbench.tasks.multiple_choice procedural questions; the answer is the letter
  infill            an arithmetic sequence with a run of terms blanked out ("_"); the answer is the
                    missing terms. Defined here: deterministic by seed, checked exactly, and the blank
                    can sit at the start, so the model must read the terms after it.

Splits are kept apart by content, not only by seed: training draws from its own seeds and skips any item
whose key (the puzzle's givens; the question with its set of choices; the visible sequence) belongs to the
held-out set or to what the quality suite scores (its seed 0, the first QUALITY_ITEMS items).
"""

from __future__ import annotations

import random
import re
from functools import lru_cache

from dgbench.errors import ConfigError
from dgbench.training.items import Item, _mc_item, _sudoku_item  # noqa: F401  (Item re-exported)
from dgbench.validation import did_you_mean

TASKS = ("sudoku4", "sudoku6", "infill", "mc", "sudoku4all", "pyfill", "mcc", "mccwork")
# The v1 tasks (the masked pair was trained on them) and the v2 ones of dgbench/training/learnable.py.
V1_TASKS = TASKS[:4]
# Share of training batches per task (renormalised over the tasks asked for): 4x4 Sudoku is the task
# the pair must solve, so it gets the largest share.
MIX = {"sudoku4": 5, "sudoku6": 1, "infill": 1, "mc": 2, "sudoku4all": 5, "pyfill": 2, "mcc": 2,
       "mccwork": 2}
SUDOKU_SIZE = {"sudoku4": 4, "sudoku6": 6}
# Givens per puzzle: the quality suite's count (4x4: 8; 6x6: 18) for evaluation, a spread for training
# so the model also meets harder and easier grids.
EVAL_CLUES = {4: 8, 6: 18}
TRAIN_CLUES = {4: (5, 11), 6: (14, 24)}
# Answer positions per item: the quality harness's gen_length (dgbench.harness.sweep.task_gen_length:
# a grid with its newlines; 16 for MC); the masked-diffusion model is trained on answers padded with EOS
# to exactly this length, as LLaDA pads its SFT answers.
GEN_LENGTH = {"sudoku4": 20, "sudoku6": 42, "infill": 16, "mc": 16, "sudoku4all": 20, "pyfill": 16, "mcc": 16,
              "mccwork": 40}
HELDOUT_SEED = "dgbench-heldout"
QUALITY_SEED, QUALITY_ITEMS = 0, 200

INFILL_INSTRUCTION = ("Fill in the blanks: each '_' is one missing term of this arithmetic sequence (the same "
                      "step between neighbours). Write only the missing terms, separated by spaces.")


def parse_tasks(text: str) -> list[str]:
    tasks = [t.strip() for t in text.split(",") if t.strip()]
    if not tasks:
        raise ConfigError("--tasks is empty; give a comma-separated list from " + ",".join(TASKS))
    for t in tasks:
        if t not in TASKS:
            raise ConfigError(f"--tasks: unknown task {t!r}; {did_you_mean(t, list(TASKS))} "
                              f"(choose from {','.join(TASKS)})")
    if len(set(tasks)) != len(tasks):
        raise ConfigError(f"--tasks {text!r} names a task twice; list each once")
    return tasks


# ---------------------------------------------------------------- items of each task

def infill_item(rng: random.Random, item_id: str) -> Item:
    length, step, start = rng.randint(6, 8), rng.randint(1, 6), rng.randint(0, 20)
    terms = [start + step * k for k in range(length)]
    gap = rng.randint(1, 3)
    at = rng.randint(0, length - gap)
    shown = [("_" if at <= k < at + gap else str(v)) for k, v in enumerate(terms)]
    missing = terms[at:at + gap]

    def score(text, missing=tuple(missing)):
        lines = text.strip().splitlines()
        found = tuple(int(x) for x in re.findall(r"-?\d+", lines[0])) if lines else ()
        return list(found), found == missing

    visible = " ".join(shown)
    return Item("infill", item_id, visible, f"{INFILL_INSTRUCTION}\n{visible}\nMissing:",
                " " + " ".join(map(str, missing)), score)


# ---------------------------------------------------------------- splits

def heldout_items(task: str, n: int) -> list[Item]:
    """The first n held-out items of a task: fixed by HELDOUT_SEED, the same for every training run."""
    return _items(task, n, HELDOUT_SEED, eval_clues=True)


def _items(task: str, n: int, seed, eval_clues: bool) -> list[Item]:
    from dgbench.tasks import multiple_choice as mc
    from dgbench.tasks import sudoku
    from dgbench.training import learnable

    if task in learnable.V2_TASKS:
        return learnable.items(task, n, seed)
    if task in SUDOKU_SIZE:
        size = SUDOKU_SIZE[task]
        return [_sudoku_item(p) for p in sudoku.generate_puzzles(size, n, EVAL_CLUES[size], seed)]
    if task == "mc":
        return [_mc_item(i) for i in mc.procedural_items(n, seed)]
    return [infill_item(random.Random(f"infill:{seed}:{k}"), f"infill-{seed}-{k}") for k in range(n)]


@lru_cache(maxsize=None)
def reserved_keys(task: str, heldout_n: int = 500) -> frozenset:
    # v2 Sudoku: heldout_n and QUALITY_ITEMS count per clue count (8 of them), so 300 + 200 there.
    heldout_n = 300 if task == "sudoku4all" else heldout_n
    """Keys training must never use: the held-out items and the items the quality suite scores."""
    keys = {it.key for it in _items(task, heldout_n, HELDOUT_SEED, True)}
    keys |= {it.key for it in _items(task, QUALITY_ITEMS, QUALITY_SEED, True)}
    return frozenset(keys)


class TrainingStream:
    """Training items drawn on the fly, deterministic by (seed, batch index), never a reserved item."""

    def __init__(self, tasks: list[str], seed: int):
        self.tasks = tasks
        self.seed = seed
        self.weights = [MIX[t] for t in tasks]
        self.skipped = 0          # items dropped because they were held out (reported in the card)

    def batch(self, index: int, size: int) -> tuple[str, list[Item]]:
        rng = random.Random(f"dgbench-train:{self.seed}:{index}")
        task = rng.choices(self.tasks, self.weights)[0]
        reserved = reserved_keys(task)
        items: list[Item] = []
        k = 0
        while len(items) < size:
            item = self._draw(task, rng, f"train-{self.seed}-{index}-{k}")
            k += 1
            if item.key in reserved:
                self.skipped += 1
                continue
            items.append(item)
        return task, items

    @staticmethod
    def _draw(task: str, rng: random.Random, item_id: str) -> Item:
        from dgbench.tasks import multiple_choice as mc
        from dgbench.tasks import sudoku
        from dgbench.training import learnable

        if task in learnable.V2_TASKS:
            return learnable.draw(task, rng, item_id)
        if task in SUDOKU_SIZE:
            size = SUDOKU_SIZE[task]
            clues = rng.randint(*TRAIN_CLUES[size])
            return _sudoku_item(sudoku.generate_puzzles(size, 1, clues, item_id)[0])
        if task == "mc":
            return _mc_item(mc.procedural_items(1, item_id)[0])
        return infill_item(rng, item_id)

"""The multiple-choice item and its per-item choice shuffle, shared by every MC source (the GPQA CSV and the
procedural set in multiple_choice.py, the computable set in mc_computable.py)."""

from __future__ import annotations

import random
from dataclasses import dataclass

LETTERS = ("A", "B", "C", "D")


@dataclass(frozen=True)
class MCItem:
    id: str
    question: str
    choices: tuple[str, str, str, str]  # already shuffled; the letter of choices[i] is LETTERS[i]
    answer_index: int
    source: str

    @property
    def answer_letter(self) -> str:
        return LETTERS[self.answer_index]


def _shuffle(correct: str, wrong: list[str], seed: int, index: int) -> tuple[tuple[str, ...], int]:
    """Shuffle one item's choices with an RNG seeded by (seed, index).

    Per-item seeding keeps an item's order independent of which other rows are in the file, so a
    subset or a reordered file gives every shared item the same letters. The wrong answers are
    sorted first, so their column order does not matter either (write_gpqa_csv cannot know the
    original one). A string seed is hashed by `random` with SHA-512, stable across processes
    (unlike hash() of a tuple).
    """
    choices = [correct, *sorted(wrong)]
    order = list(range(4))
    random.Random(f"{seed}:{index}").shuffle(order)
    return tuple(choices[i] for i in order), order.index(0)

"""One training / held-out item (prompt, answer, scorer, in-place template) and the builders the v1 and v2
tasks share (data.py for the v1 tasks, learnable.py for the v2 ones)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable


@dataclass(frozen=True)
class Item:
    task: str
    id: str
    key: str                 # identity for split disjointness
    prompt: str
    answer: str              # the reference answer text (no EOS)
    score: Callable[[str], tuple[object, bool]]   # output text -> (extracted answer, correct)
    # Diffusion fills this in place where a task has one (Sudoku: the grid with '.' at the blanks), as
    # the quality harness does; None: the answer is generated after the prompt.
    template: str | None = None
    blanks: tuple[int, ...] = ()     # character offsets of the blanks in `template`
    # In place: only the first answer_span filled positions are the answer (pyfill: the gap, not the suffix).
    answer_span: int | None = None
    group: str = ""                  # a sub-table of the card (Sudoku: the number of givens)
    ar_prompt: str | None = None     # the AR member's prompt where it differs (pyfill: suffix first)
    choices: int = 0                 # multiple choice: number of choices and the right one (log-likelihood)
    answer_index: int = -1


# ---------------------------------------------------------------- items of each task

def _sudoku_item(puzzle, task: str | None = None, group: str = "") -> Item:
    from dgbench.tasks import sudoku

    def score(text, puzzle=puzzle):
        grid = sudoku.parse_grid(text, puzzle.size)
        return grid, sudoku.check(puzzle, grid).solved

    # The compact prompt: suites/quality.yaml scores the pair with `prompt: compact` (see sudoku.format_prompt).
    formatted = sudoku.format_prompt(puzzle, "diffusion", "compact")
    return Item(task or f"sudoku{puzzle.size}", puzzle.id, "".join(map(str, puzzle.grid)), formatted.prompt,
                sudoku.render_grid(puzzle.solution, puzzle.size), score,
                template=formatted.canvas_template, blanks=tuple(formatted.blank_positions), group=group)


def _mc_item(item, task: str = "mc") -> Item:
    from dgbench.tasks import multiple_choice as mc

    def score(text, item=item):
        letter = mc.extract_answer(text)
        return letter, letter == item.answer_letter

    # The choice *set* identifies a question: the same question with its choices reordered is the same item.
    key = item.question + "|" + "|".join(sorted(item.choices))
    return Item(task, item.id, key, mc.format_prompt(item, "zero_shot"), item.answer_letter, score)

"""The v2 training tasks, one per family, each learnable by a ~1M-parameter model in CPU-minutes:

  sudoku4all  4x4 Sudoku at every clue count 4..11 (training draws the count uniformly; held-out and the
              per-count card table have exactly that many givens); prompts are the compact style.
  pyfill      dgbench.tasks.pyfill: a generated function's first body line, fixed by the docstring before
              and the variable used after; diffusion fills it in place (the suffix fixed in the canvas),
              AR reads the suffix first (decoding/infill.py's suffix-first layout), scored in the sandbox.
  mcc         dgbench.tasks.mc_computable: GPQA-format questions whose letter follows from the content.
  mccwork     the same questions (same items, same held-out split), the answer written with its working
              first (mc_computable.worked_answer: a scratchpad), then "Answer: X".

Splits are by content as in data.py: a training draw whose key is held out, or is among what the quality
suite scores (seed 0, first QUALITY_ITEMS, every clue count for Sudoku), is skipped.
"""

from __future__ import annotations

import random

SUDOKU_CLUES = tuple(range(4, 12))
V2_TASKS = ("sudoku4all", "pyfill", "mcc", "mccwork")


def sudoku_item(puzzle):
    from dgbench.training.items import _sudoku_item

    return _sudoku_item(puzzle, task="sudoku4all", group=f"{puzzle.clues} givens")


def pyfill_item(item):
    from dgbench.decoding.infill import build_infill_prompt
    from dgbench.tasks.code_infill import CODE_SEPARATOR
    from dgbench.tasks import pyfill
    from dgbench.training.items import Item

    def score(text, item=item):
        return pyfill.gap_line(text), pyfill.passes(item, text)

    template = pyfill.canvas_template(item, pyfill.CANVAS_CONTEXT)
    layout = build_infill_prompt(list(item.prefix), list(item.suffix), separator=list(CODE_SEPARATOR))
    return Item("pyfill", item.id, item.key, item.prefix, item.middle, score, template=template,
                blanks=tuple(range(pyfill.GAP_LENGTH)), answer_span=pyfill.GAP_LENGTH,
                ar_prompt="".join(layout.ids))


# The answer both members are trained to write: what the quality harness's log-likelihood scoring appends
# to the prompt ("\nAnswer:", then " X"), so generation and log-likelihood read the same learned text;
# multiple_choice.extract_answer takes the letter from "Answer: X".
MCC_ANSWER = "\nAnswer: {letter}"


def mcc_item(item, task: str = "mcc"):
    import dataclasses

    from dgbench.tasks.mc_computable import worked_answer
    from dgbench.training.items import _mc_item

    answer = worked_answer(item) if task == "mccwork" else MCC_ANSWER.format(letter=item.answer_letter)
    return dataclasses.replace(_mc_item(item, task=task), answer=answer,
                               choices=len(item.choices), answer_index=item.answer_index)


def items(task: str, n: int, seed) -> list:
    """Evaluation items: Sudoku n per clue count (grouped), the others the first n of the seed."""
    from dgbench.tasks import mc_computable, pyfill, sudoku

    if task == "sudoku4all":
        return [sudoku_item(p) for c in SUDOKU_CLUES for p in sudoku.exact_clue_puzzles(n, c, seed)]
    if task == "pyfill":
        return [pyfill_item(i) for i in pyfill.generate(n, seed)]
    return [mcc_item(i, task) for i in mc_computable.computable_items(n, seed)]


def draw(task: str, rng: random.Random, item_id: str):
    """One training item."""
    from dgbench.tasks import mc_computable, pyfill, sudoku

    if task == "sudoku4all":
        clues = rng.choice(SUDOKU_CLUES)
        return sudoku_item(sudoku._make_puzzle(4, clues, rng, item_id))
    if task == "pyfill":
        return pyfill_item(pyfill.make_item(rng, item_id))
    return mcc_item(mc_computable.computable_items(1, item_id)[0], task)

"""Real task prompts for a latency row, instead of random ids (a decoder's `prompts:` in a suite).

Random prompts say what a step costs; they cannot show what a model that knows its answer does with its
step budget: a trained DiffusionGemma stops a canvas early (adaptive stop) where a random-weight one runs
to the cap. A decoder with `prompts: sudoku` is timed on the quality suite's own 4x4 puzzles (compact prompt,
seed 0, clue counts 4..11 in turn, all 42 bytes long so a batch needs no padding), byte-encoded as the
quality harness encodes them (dgbench.tasks.text). Repetition r, row b takes puzzle r * batch + b, so the
repetitions spread over clue counts and the pooled steps per canvas describe many puzzles, not one.
No torch at import: suite expansion asks for the prompt length. (dgbench/scenarios/generation.py uses it.)
"""

from __future__ import annotations

PROMPT_SETS = {"sudoku": "4x4 Sudoku, compact prompt, 4-11 givens in turn (the quality suite's puzzles)"}
_CLUES = tuple(range(4, 12))


def _sudoku_text(index: int) -> str:
    from dgbench.tasks import sudoku

    clues, k = _CLUES[index % len(_CLUES)], index // len(_CLUES)
    puzzle = sudoku.exact_clue_puzzles(k + 1, clues, 0)[k]
    return sudoku.format_prompt(puzzle, "autoregressive", "compact").prompt


def prompt_length(kind: str) -> int:
    return len(_sudoku_text(0).encode("utf-8"))


def task_prompts(kind: str, batch: int, rep: int, special_ids, device: str):
    """(ids, attention mask) of batch prompts for repetition `rep` (warmups are negative: they reuse the
    last puzzles of the cycle, so the timed ones are unchanged)."""
    import torch

    offset = max(int(t) for t in special_ids) + 1      # the byte codec's (dgbench.tasks.text.offset)
    start = (rep % 1000) * batch
    rows = [[b + offset for b in _sudoku_text(start + j).encode("utf-8")] for j in range(batch)]
    ids = torch.tensor(rows, dtype=torch.long, device=device)
    return ids, torch.ones_like(ids)

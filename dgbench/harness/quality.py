"""The quality scenario: run a decoder on task items, score each output, time the same generations.

One point per (decoder, task). Items go one at a time (batch 1) through the byte-level codec
(dgbench.tasks.text), so any embedded spec can run them; every scored sample is handed to `on_sample`
(the runner appends it to RUN_DIR/samples.jsonl) and the point record holds the accuracy with its 95%
Wilson interval plus speed summaries over the same generations. With synthetic (random) weights the
accuracy is about zero: the numbers exercise the pipeline, they say nothing about the architecture.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from dgbench.decoding.infill import build_infill_prompt
from dgbench.harness.scenario import per_rep_metrics
from dgbench.stats import summarize
from dgbench.tasks.scoring import accuracy_summary
from dgbench.telemetry.timing import Clock

SPEED_METRICS = ("e2e_s", "committed_tok_s", "nfe", "tokens_per_forward", "useful_tokens", "ttft_s", "cap_hit_share")
# Between the suffix (shown first) and the prefix in the AR suffix-first layout.
CODE_SEPARATOR = "\n# ---- the code above comes after the gap; the code below comes before it ----\n"


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


def _count(config: dict, limit: int | None) -> int:
    return config["n"] if limit is None else min(config["n"], limit)


def sudoku_items(config: dict, limit: int | None, seed: int, paradigm: str) -> list[TaskItem]:
    from dgbench.tasks import sudoku

    size = config["size"]
    if config.get("clues_max") is not None:
        puzzles = [p for c in range(config["clues"], config["clues_max"] + 1)
                   for p in sudoku.exact_clue_puzzles(_count(config, limit), c, seed)]
    else:
        puzzles = sudoku.generate_puzzles(size, _count(config, limit), config["clues"], seed)
    items = []
    for puzzle in puzzles:
        def score(text, puzzle=puzzle):
            grid = sudoku.parse_grid(text, size)
            result = sudoku.check(puzzle, grid)
            answer = sudoku.render_grid(grid, size) if grid is not None else None
            return answer, result.solved, {"cell_accuracy": result.cell_accuracy}
        # Diffusion gets the grid as its canvas with the givens fixed in place and fills the blanks;
        # AR writes the grid left to right after the prompt.
        formatted = sudoku.format_prompt(puzzle, paradigm, config["prompt"])
        items.append(TaskItem(puzzle.id, formatted.prompt, score, formatted.canvas_template,
                              tuple(formatted.blank_positions)))
    return items


def mc_items(config: dict, limit: int | None, seed: int) -> list[TaskItem]:
    from dgbench.tasks import multiple_choice as mc

    n = _count(config, limit)
    if config["source"] == "gpqa":
        source = mc.load_gpqa_csv(Path(config["path"] or "(tasks.mc.path is not set)").expanduser(), seed,
                                  "tasks.mc.path")[:n]
    elif config["source"] == "computable":
        from dgbench.tasks.mc_computable import computable_items

        source = computable_items(n, seed)
    else:
        source = mc.procedural_items(n, seed)
    items = []
    for item in source:
        def score(text, item=item):
            letter = mc.extract_answer(text)
            return letter, letter == item.answer_letter, {"reference": item.answer_letter}
        prompt = mc.format_prompt(item, config["style"])
        ll = None
        if config["scoring"] == "loglikelihood":
            # lm-eval's way for lettered choices: the letter after "Answer:", each scored as a continuation.
            ll = (prompt + "\nAnswer:", tuple(f" {letter}" for letter in "ABCD"[:len(item.choices)]),
                  item.answer_index)
        items.append(TaskItem(item.id, prompt, score, ll=ll))
    return items


# Diffusion infills code natively: the prefix is its prompt, and its canvas is a gap of this many blank
# positions followed by the start of the suffix, fixed in place, so the denoiser sees both sides of the
# gap. The gap's text up to the first EOS/pad is the answer (LLaDA and DiffusionGemma infill the same way).
CODE_GAP = 48
CODE_SUFFIX_CONTEXT = 64


def code_items(config: dict, limit: int | None, seed: int, paradigm: str = "autoregressive") -> list[TaskItem]:
    from dgbench.tasks import code_infill

    pool = code_infill.single_line_items() if config["set"] == "single" else code_infill.multi_line_items()
    # A seeded sample spreads the items over the HumanEval problems (the first ones all come from one).
    chosen = random.Random(f"code_infill:{config['set']}:{seed}").sample(pool, min(_count(config, limit), len(pool)))
    items = []
    for item in chosen:
        def score(text, item=item):
            # Single-line items take the first generated line; multi-line ones the whole text.
            middle = text.split("\n", 1)[0] + "\n" if config["set"] == "single" else text
            passed = code_infill.pass_at_1(item, middle, timeout_s=5)
            return middle, passed, {"exact_match": code_infill.exact_match(item, middle), "pass_at_1": passed}
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


def pyfill_items(config: dict, limit: int | None, seed: int, paradigm: str) -> list[TaskItem]:
    """Generated Python infill: diffusion fills the gap in place with the suffix's start fixed after it (the
    canvas the trained DiffusionGemma learnt), AR gets the suffix first (decoding/infill.py)."""
    from dgbench.tasks import pyfill

    items = []
    for item in pyfill.generate(_count(config, limit), seed):
        def score(text, item=item):
            passed = pyfill.passes(item, text)
            return pyfill.gap_line(text), passed, {"exact_match": pyfill.exact_match(item, text), "pass_at_1": passed}
        if paradigm == "diffusion":
            items.append(TaskItem(item.id, item.prefix, score, pyfill.canvas_template(item, pyfill.CANVAS_CONTEXT),
                                  tuple(range(pyfill.GAP_LENGTH)), pyfill.GAP_LENGTH, infill_mode="native-gap"))
        else:
            layout = build_infill_prompt(list(item.prefix), list(item.suffix), separator=list(CODE_SEPARATOR))
            items.append(TaskItem(item.id, "".join(layout.ids), score, infill_mode=layout.mode))
    return items


def task_items(task: str, config: dict, limit: int | None, seed: int, paradigm: str) -> list[TaskItem]:
    if task == "sudoku":
        return sudoku_items(config, limit, seed, paradigm)
    if task == "mc":
        return mc_items(config, limit, seed)
    if task == "code_infill":
        return code_items(config, limit, seed, paradigm)
    if task == "pyfill":
        return pyfill_items(config, limit, seed, paradigm)
    raise ValueError(f"unknown task {task!r}")


def run_quality_point(decoder, point, spec, device: str, measure: dict, seed: int, on_item=None,
                      on_sample=None) -> dict:
    import torch

    from dgbench.tasks.text import decode, encode, encode_template

    if point.task.startswith("lm_eval:"):   # lm-eval's own evaluator scores these (integrations/lm_eval_suite.py)
        from dgbench.integrations.lm_eval_suite import run_lm_eval_point

        return run_lm_eval_point(decoder, point, spec, device, measure, seed, on_item, on_sample)
    items = task_items(point.task, point.task_config, point.limit, seed, spec.paradigm)
    clock = Clock(device)

    def in_place(item: TaskItem) -> bool:
        return item.template is not None and hasattr(decoder, "fill_template")

    def score_ll(item: TaskItem):
        from dgbench.decoding.loglikelihood import loglikelihood
        from dgbench.tasks.multiple_choice import score_by_loglikelihood

        context, continuations, right = item.ll
        requests = [(encode(context, spec), encode(c, spec)) for c in continuations]
        clock.start()
        scores = loglikelihood(decoder.model, requests, pad_token_id=spec.special_tokens["pad"],
                               batch_size=len(requests))
        clock.stop()
        best = score_by_loglikelihood([lp for lp, _ in scores])
        metrics = {"e2e_s": clock.elapsed, "nfe": 1, "useful_tokens": 0, "committed_tok_s": None,
                   "tokens_per_forward": None, "ttft_s": None}
        return continuations[best].strip(), best == right, {"logprobs": [round(lp, 4) for lp, _ in scores]}, metrics

    def call(item: TaskItem, call_seed: int):
        ids = torch.tensor([encode(item.prompt, spec)], dtype=torch.long, device=device)
        if in_place(item):
            # The byte codec maps each ASCII character of the template to one id; blanks become None.
            template = encode_template(item.template, item.blanks, spec)
            return decoder.fill_template(ids, torch.ones_like(ids), template, call_seed, clock)
        return decoder.generate(ids, torch.ones_like(ids), point.gen_length, False, call_seed, clock)

    for w in range(measure["warmup"] if items else 0):  # untimed, unscored: first-call costs stay out
        if items[0].ll is not None:
            score_ll(items[0])
        else:
            call(items[0], seed + 500 + w)

    correct: list[bool] = []
    reps: dict[str, list] = {m: [] for m in SPEED_METRICS}
    extras: dict[str, list] = {}
    for k, item in enumerate(items):
        if item.ll is not None:
            answer, ok, extra, metrics = score_ll(item)
            text = ""
        else:
            rec = call(item, seed + 1000 + k)
            tokens = rec.tokens[0]
            if in_place(item) and item.answer_span is not None:
                tokens = tokens[:item.answer_span]
            text = decode(tokens, spec)
            answer, ok, extra = item.score(text)
            metrics = per_rep_metrics(rec, 1)
        for m in SPEED_METRICS:
            reps[m].append(metrics.get(m))
        for key, value in extra.items():
            if isinstance(value, (bool, int, float)):
                extras.setdefault(key, []).append(float(value))
        correct.append(bool(ok))
        if on_sample:
            on_sample({"point_id": point.point_id, "decoder": point.decoder, "model": point.model,
                       "engine": point.engine, "task": point.task, "item_id": item.id, "index": k,
                       "prompt": item.prompt, "output": text, "extracted": answer, "correct": bool(ok),
                       "fill": ("loglikelihood" if item.ll is not None else
                                "in-place" if in_place(item) else "after-prompt"),
                       **({"infill_mode": item.infill_mode} if item.infill_mode else {}),
                       **extra,
                       "e2e_s": metrics["e2e_s"], "nfe": metrics["nfe"],
                       "useful_tokens": metrics["useful_tokens"], "committed_tok_s": metrics["committed_tok_s"],
                       "tokens_per_forward": metrics["tokens_per_forward"]})
        if on_item:
            on_item(k + 1)
    reps = {k: v for k, v in reps.items() if any(x is not None for x in v)}
    summary = {k: summarize([x for x in v if x is not None]) for k, v in reps.items()}
    return {
        "task": point.task,
        "task_config": point.task_config,
        "limit": point.limit,
        "quality": accuracy_summary(correct),
        "quality_extra": {k: sum(v) / len(v) for k, v in extras.items() if v},
        "correct": correct,
        "item_ids": [item.id for item in items],
        "reps": reps,
        "summary": summary,
        "memory": None,
        "n_warmup": measure["warmup"],
    }

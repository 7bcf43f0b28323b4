"""The v2 learnable tasks: pyfill (generated Python infill scored in the sandbox), computable GPQA-format MC,
4x4 Sudoku at exact clue counts; their training items, content-disjoint splits and quality-suite wiring."""

import re

import pytest

from dgbench.errors import ConfigError
from dgbench.tasks import TASKS
from dgbench.harness.suite import load_suite, validate_suite
from dgbench.harness.sweep import expand
from dgbench.tasks import mc_computable, pyfill, sudoku
from dgbench.tasks.multiple_choice import LETTERS, extract_answer, format_prompt
from dgbench.training import data
from dgbench.validation import Location


def test_pyfill_reference_passes_and_wrong_lines_fail_in_the_sandbox():
    items = pyfill.generate(6, 0)
    assert [i.key for i in items] == [i.key for i in pyfill.generate(6, 0)]          # deterministic by seed
    assert pyfill.generate(3, 0)[2].key == items[2].key                              # prefix-stable in n
    item = items[0]
    assert pyfill.passes(item, item.middle + "\n")
    var = re.match(r"\s*(\w+) =", item.middle).group(1)
    assert not pyfill.passes(item, f"{pyfill.INDENT}{var} = 12345")                  # right name, wrong value
    assert not pyfill.passes(item, f"{pyfill.INDENT}zz_other = 0")                   # NameError after the gap
    assert pyfill.exact_match(item, item.middle + "   \nignored second line")


def test_pyfill_gap_needs_the_code_on_both_sides():
    for item in pyfill.generate(40, 1):
        var = re.match(r"\s*(\w+) =", item.middle).group(1)
        # The assigned name appears after the gap and nowhere before it: a prefix-only model cannot know it.
        assert re.search(rf"\b{var}\b", item.suffix) and not re.search(rf"\b{var}\b", item.prefix)
        # The operation and constant are stated only before it.
        expr = item.middle.split("=", 1)[1].strip()
        assert expr in item.prefix and expr not in item.suffix
        assert len(item.middle) <= pyfill.GAP_LENGTH
        template = pyfill.canvas_template(item, pyfill.CANVAS_CONTEXT)
        assert re.search(rf"\b{var}\b", template[pyfill.GAP_LENGTH:])                # visible in the canvas


def test_computable_mc_letter_follows_from_the_question():
    for item in mc_computable.computable_items(200, 5):
        values = [int(c) for c in item.choices]
        q = item.question
        if "largest" in q:
            want = values.index(max(values))
        elif "smallest" in q:
            want = values.index(min(values))
        elif "parity" in q:
            want = next(i for i, v in enumerate(values) if sum(w % 2 == v % 2 for w in values) == 1)
        else:
            a, b = map(int, re.findall(r"(\d+) \+ (\d+)", q)[0])
            want = values.index(a + b)
        assert item.answer_index == want and len(set(values)) == 4
    prompt = format_prompt(mc_computable.computable_items(1, 0)[0])
    assert prompt.endswith("Answer with the letter.") and "(A) " in prompt and "(D) " in prompt
    assert extract_answer("\nAnswer: C") == "C"                                     # what the models are trained to write


def test_exact_clue_puzzles_have_exactly_that_many_givens_and_unique_solutions():
    for clues in (4, 7, 11):
        puzzles = sudoku.exact_clue_puzzles(5, clues, 0)
        assert all(p.clues == clues and sum(g != 0 for g in p.grid) == clues for p in puzzles)
        assert all(sudoku.count_solutions(list(p.grid), 4) == 1 for p in puzzles)


@pytest.mark.parametrize("task", ["sudoku4all", "pyfill", "mcc", "mccwork"])
def test_v2_training_never_draws_heldout_or_quality_items(task):
    reserved = data.reserved_keys(task)
    heldout = {it.key for it in data.heldout_items(task, 20)}
    assert heldout <= reserved
    stream = data.TrainingStream([task], seed=0)
    drawn = [it for k in range(12) for it in stream.batch(k, 16)[1]]
    assert not {it.key for it in drawn} & reserved
    assert all(it.task == task for it in drawn)


def test_worked_mc_answers_show_each_step_and_end_in_the_right_letter():
    """mccwork: the mcc items (same questions, same split) with the working written before the letter;
    the scorer reads the letter after it, and the working is recomputed here from the choices."""
    from dgbench.tasks.multiple_choice import extract_answer

    plain, worked = data.heldout_items("mcc", 60), data.heldout_items("mccwork", 60)
    assert [p.key for p in plain] == [w.key for w in worked]
    kinds = set()
    for p, w in zip(plain, worked):
        values = [int(line.split(") ", 1)[1]) for line in w.prompt.splitlines() if line[:1] == "("]
        work, last = w.answer.strip().splitlines()
        assert last == p.answer.strip() and extract_answer(w.answer) == p.answer.strip()[-1]
        assert w.score(w.answer)[1] and not w.score(w.answer[:-1] + ("B" if w.answer[-1] != "B" else "C"))[1]
        kind, _, rest = work.partition(": ")
        if kind in ("max", "min"):
            pick = max if kind == "max" else min
            assert rest.split() == [str(pick(values[:k + 1])) for k in range(4)]
        elif kind == "parity":
            assert rest.split() == ["odd" if v % 2 else "even" for v in values]
        else:
            a, b = work.split(" = ")[0].split(" + ")
            assert int(work.split(" = ")[1]) == int(a) + int(b) and f"{a} + {b}" in w.prompt
            kind = "sum"
        kinds.add(kind)
    assert kinds == {"max", "min", "parity", "sum"}
    assert max(len(w.answer) for w in worked) <= data.GEN_LENGTH["mccwork"]


def test_sudoku4all_heldout_has_every_clue_count():
    items = data.heldout_items("sudoku4all", 3)
    assert sorted({it.group for it in items}) == sorted(f"{c} givens" for c in range(4, 12))
    assert len(items) == 24


def test_quality_suite_runs_all_three_families_on_every_member():
    suite = load_suite("quality")
    points = expand(suite)
    models = {d["model"] for d in suite["decoders"]}
    assert models == {"ref-diffusiongemma", "ref-gemma4", "ref-diffusion", "ref-ar"}
    assert {(p.model, p.task) for p in points} == {(m, t) for m in models for t in ("sudoku", "pyfill", "mc")}
    sudoku_cfg = suite["tasks"]["sudoku"]
    assert (sudoku_cfg["clues"], sudoku_cfg["clues_max"]) == (4, 11) and suite["tasks"]["mc"]["source"] == "computable"
    # What the suite scores is what training held out (quality seed 0, at most QUALITY_ITEMS).
    items = TASKS["sudoku"].items(sudoku_cfg, None, suite["seed"], "diffusion")
    reserved = data.reserved_keys("sudoku4all")
    assert len(items) == 8 * sudoku_cfg["n"] and sudoku_cfg["n"] <= data.QUALITY_ITEMS
    grids = {"".join(str(int(c)) if c != "." else "0" for c in it.template.replace("\n", "")) for it in items}
    assert grids <= reserved
    for paradigm in ("diffusion", "autoregressive"):
        (item,) = TASKS["pyfill"].items({"n": 1}, None, 0, paradigm)
        assert (item.template is not None) == (paradigm == "diffusion")
        assert " return " in (item.template if paradigm == "diffusion" else item.prompt)


def test_clues_max_needs_a_4x4_grid_and_an_ordered_range():
    base = {"name": "q", "scenario": "quality", "decoders": [{"name": "a", "model": "gemma4-tiny",
                                                              "engine": "dgbench-autoregressive"}]}
    with pytest.raises(ConfigError, match="clues_max: 3 needs size 4 and clues <= clues_max"):
        validate_suite({**base, "tasks": {"sudoku": {"size": 4, "clues": 5, "clues_max": 3}}}, Location("q.yaml"))
    with pytest.raises(ConfigError, match="clues_max: 20 needs size 4"):
        validate_suite({**base, "tasks": {"sudoku": {"size": 6, "clues": 18, "clues_max": 20}}}, Location("q.yaml"))
    assert LETTERS == ("A", "B", "C", "D")


def test_latency_rows_on_real_sudoku_prompts():
    from dgbench.backends import ENGINES
    from dgbench.scenarios.generation import run_point
    from dgbench.scenarios.task_prompts import task_prompts
    from dgbench.models.registry import get
    from dgbench.models.synthetic import build_synthetic
    from dgbench.tasks.text import decode

    suite = validate_suite({"name": "lat", "scenario": "latency",
                            "decoders": [{"name": "d", "model": "diffusiongemma-tiny", "engine": "dgbench-diffusion",
                                          "prompts": "sudoku", "prompt_fit": "items",
                                          "knobs": {"max_denoising_steps": 3}},
                                         {"name": "r", "model": "diffusiongemma-tiny", "engine": "dgbench-diffusion"}],
                            "sweep": {"gen_length": [16], "prompt_length": [8]},
                            "measure": {"warmup": 0, "min_repetitions": 2, "max_repetitions": 2, "min_time_s": 0,
                                        "memory": False}}, Location("lat.yaml"))
    real, rand = expand(suite)
    assert real.prompt_length == 42 and real.params["prompts"] == "sudoku" and rand.prompt_length == 8
    assert "prompts" not in rand.params and real.point_id != rand.point_id
    spec = get("diffusiongemma-tiny")
    ids, _ = task_prompts("sudoku", 2, 1, spec.special_tokens.values(), "cpu")
    # Repetition 1, rows 0 and 1: puzzles 2 and 3 of the cycle (6 and 7 givens), as the quality suite has them.
    want = [sudoku.format_prompt(sudoku.exact_clue_puzzles(1, c, 0)[0], "ar", "compact").prompt for c in (6, 7)]
    assert [decode(row, spec) for row in ids.tolist()] == want
    model = build_synthetic(spec)
    decoder = ENGINES["dgbench-diffusion"].factory(model, spec, real.knobs)
    record = run_point(decoder, real, spec.text_config["vocab_size"], spec.special_tokens.values(), "cpu",
                       suite["measure"], 0)
    assert record["pooled"]["steps_per_canvas"] and record["summary"]["cap_hit_share"]["n"] == 2


def test_shipped_mc_pair_writes_its_working_and_gets_the_letter():
    """ref-mcc-ar (card: 89.5% on 200 held-out mccwork items) answers with the working, then the letter."""
    from dgbench.models.loading import load_model
    from dgbench.models.registry import get
    from dgbench.training.evaluate import evaluate

    result = evaluate(load_model(get("ref-mcc-ar")), "autoregressive", ["mccwork"], n=20)["mccwork"]
    assert result["correct"] >= 15, result["outputs"]
    assert all(o.strip().splitlines()[-1].startswith("Answer: ") for o in result["outputs"]), result["outputs"]
    diff, ar = get("ref-mcc-diffusion"), get("ref-mcc-ar")
    assert diff.text_config == ar.text_config and diff.paradigm == "diffusion" and ar.paradigm == "autoregressive"


def test_quality_mc_suite_runs_the_mc_pair_with_room_for_the_working():
    suite = load_suite("quality-mc")
    points = expand(suite)
    assert {p.model for p in points} == {"ref-mcc-diffusion", "ref-mcc-ar", "ref-ar"}
    assert {p.task for p in points} == {"mc"} and all(p.gen_length == 40 for p in points)

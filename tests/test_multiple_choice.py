"""GPQA-style multiple choice: loader, procedural set, prompts, answer extraction and the statistics."""

import csv
import math

import pytest

from dgbench.errors import ConfigError
from dgbench.tasks.multiple_choice import (
    LETTERS, MCItem, extract_answer, format_prompt, load_arrow, load_gpqa_csv, procedural_items,
    score_by_loglikelihood, write_gpqa_csv)
from dgbench.stats import accuracy_summary, bootstrap_interval, mcnemar, wilson_interval

ROWS = [
    {"Pre-Revision Question": "x", "Question": "What is the charge of an electron?", "Correct Answer": "-1 e",
     "Incorrect Answer 1": "+1 e", "Incorrect Answer 2": "0", "Incorrect Answer 3": "+2 e", "Record ID": "rec1",
     "Subdomain": "Physics"},
    {"Pre-Revision Question": "y", "Question": "Which gas is most abundant in air?", "Correct Answer": "Nitrogen",
     "Incorrect Answer 1": "Oxygen", "Incorrect Answer 2": "Argon", "Incorrect Answer 3": "Carbon dioxide",
     "Record ID": "", "Subdomain": "Chemistry"},
    {"Pre-Revision Question": "z", "Question": "Powerhouse of the cell? (é, ünïcode)",
     "Correct Answer": "Mitochondrion",
     "Incorrect Answer 1": "Ribosome", "Incorrect Answer 2": "Golgi body", "Incorrect Answer 3": "Nucleus",
     "Record ID": "rec3", "Subdomain": "Biology"},
]


def write_rows(path, rows, columns=None):
    columns = columns or list(rows[0])
    with path.open("w", newline="", encoding="utf-8") as fh:
        w = csv.DictWriter(fh, fieldnames=columns, extrasaction="ignore")
        w.writeheader()
        w.writerows(rows)
    return path


def test_gpqa_loader_shuffles_deterministically_and_tracks_the_answer(tmp_path):
    path = write_rows(tmp_path / "gpqa_diamond.csv", ROWS)
    items = load_gpqa_csv(path, seed=0)
    assert [it.id for it in items] == ["rec1", "gpqa-1", "rec3"]
    for it, row in zip(items, ROWS):
        assert it.question == row["Question"] and it.source == "gpqa:gpqa_diamond.csv"
        assert it.choices[it.answer_index] == row["Correct Answer"]
        assert sorted(it.choices) == sorted(row[c] for c in ("Correct Answer", "Incorrect Answer 1",
                                                             "Incorrect Answer 2", "Incorrect Answer 3"))
    assert load_gpqa_csv(path, seed=0) == items
    # Over many rows, a different seed changes some orders and the answer is not always in one slot.
    many = write_rows(tmp_path / "many.csv", ROWS * 20)
    a, b = load_gpqa_csv(many, seed=0), load_gpqa_csv(many, seed=1)
    assert [x.choices for x in a] != [x.choices for x in b]
    assert len({x.answer_index for x in a}) == 4


def test_missing_gpqa_file_says_where_to_get_it(tmp_path):
    with pytest.raises(ConfigError) as exc:
        load_gpqa_csv(tmp_path / "nope.csv", seed=0)
    msg = str(exc.value)
    assert "\n" not in msg
    assert "nope.csv" in msg and "Idavidrein/gpqa" in msg and "tasks.gpqa.path" in msg and "gpqa_diamond.csv" in msg


def test_missing_column_names_file_and_column(tmp_path):
    cols = [c for c in ROWS[0] if c != "Incorrect Answer 2"]
    path = write_rows(tmp_path / "broken.csv", ROWS, cols)
    with pytest.raises(ConfigError, match=r"broken\.csv.*'Incorrect Answer 2'"):
        load_gpqa_csv(path, seed=0)


def test_procedural_set_is_deterministic_and_round_trips(tmp_path):
    items = procedural_items(300, seed=7)
    assert items == procedural_items(300, seed=7)
    assert items != procedural_items(300, seed=8)
    assert all(len(set(it.choices)) == 4 and 0 <= it.answer_index < 4 for it in items)
    assert len({it.answer_index for it in items}) == 4 and len({it.question.split()[0] for it in items}) > 3
    back = load_gpqa_csv(write_gpqa_csv(items, tmp_path / "proc.csv"), seed=7)
    assert [(b.id, b.question, b.choices, b.answer_index) for b in back] == \
        [(a.id, a.question, a.choices, a.answer_index) for a in items]


def test_prompt_formats():
    item = MCItem("x", "What is 2+2?", ("3", "4", "5", "22"), 1, "t")
    zs = format_prompt(item, "zero_shot")
    assert "(A) 3\n(B) 4\n(C) 5\n(D) 22" in zs and zs.endswith("Answer with the letter.")
    cot = format_prompt(item, "cot")
    assert "step by step" in cot and "Answer: X" in cot
    with pytest.raises(ConfigError):
        format_prompt(item, "few_shot")


EXTRACT_CASES = [
    ("(B)", "B"),
    ("B", "B"),
    ("b", "B"),
    ("B. 12 m/s", "B"),
    ("C) Nitrogen", "C"),
    ("Answer: B", "B"),
    ("The answer is (D).", "D"),
    ("the answer is b", "B"),
    ("**Answer:** (C)", "C"),
    ("The correct answer is **A**: the electron.", "A"),
    ("Let's compute: 5 m/s * 4 s = 20 m. That matches (C).\n\nAnswer: C", "C"),
    ("At first the answer is B, but rechecking units... so the final answer is D.", "D"),
    ("<think>Option A seems wrong. Maybe the answer is B? No wait.</think>\nThe answer is C.", "C"),
    ("<think>The answer is A... hmm, let me keep going and check the units", None),
    ("Checking the units carefully.</think>\n\nAnswer: (D)", "D"),
    ("Thinking...\nThe answer could be A.\nActually (B).\n...done thinking.\n\nThe answer is B.", "B"),
    ("Thinking...\nI think the answer is A", None),
    ("The final answer is $\\boxed{C}$", "C"),
    ("The answer is a bit subtle; it depends on the frame. I'd pick (A).", "A"),
    ("The answer is A or B, I cannot tell.", None),
    ("(A) 3 m\n(B) 4 m\n(C) 5 m\n(D) 6 m", None),
    ("A ball dropped from rest falls 4.9 m in the first second.", None),
    ("I am not sure.", None),
    ("", None),
    ("Answer: option c", "C"),
    ("B\n\nExplanation: (A) is wrong because it ignores friction.", "B"),
    ("the answer is b because the field doubles", "B"),
    ("The answer is B and D is clearly wrong.", "B"),
    ("Answer: A/C", None),
    ("A. 5 m\nB. 6 m", None),
    ("I choose (C) since (C) conserves energy.", "C"),
]


@pytest.mark.parametrize("text, expected", EXTRACT_CASES)
def test_extract_answer(text, expected):
    assert extract_answer(text) == expected


def test_extract_answer_on_procedural_prompts_round_trip():
    for it in procedural_items(20, seed=3):
        assert extract_answer(f"Working... so Answer: {it.answer_letter}") == LETTERS[it.answer_index]


def test_loglikelihood_argmax_ties_to_lowest():
    assert score_by_loglikelihood([-3.0, -1.0, -2.0, -5.0]) == 1
    assert score_by_loglikelihood([-1.0, -0.5, -0.5, -0.5]) == 1
    assert score_by_loglikelihood([-2.0, -2.0, -2.0, -2.0]) == 0
    with pytest.raises(ValueError):
        score_by_loglikelihood([])


def test_wilson_interval_known_values():
    low, high = wilson_interval(8, 10)
    assert (round(low, 3), round(high, 3)) == (0.490, 0.943)
    low, high = wilson_interval(0, 10)
    assert low == 0.0 and round(high, 3) == 0.278
    low, high = wilson_interval(10, 10)
    assert round(low, 3) == 0.722 and high == 1.0
    assert wilson_interval(0, 0) == (0.0, 1.0)
    with pytest.raises(ValueError):
        wilson_interval(3, 2)


def test_accuracy_summary():
    s = accuracy_summary([True] * 8 + [False] * 2)
    assert (s["n"], s["k"], s["accuracy"], s["method"]) == (10, 8, 0.8, "wilson")
    assert round(s["low"], 3) == 0.490 and round(s["high"], 3) == 0.943
    assert math.isnan(accuracy_summary([])["accuracy"])


def test_mcnemar_exact_and_chi_square():
    # 10 discordant pairs, 2 one way and 8 the other: exact p = 2 * (C(10,0)+C(10,1)+C(10,2)) / 2^10 = 112/1024.
    a = [False] * 2 + [True] * 8 + [True] * 5 + [False] * 5
    b = [True] * 2 + [False] * 8 + [True] * 5 + [False] * 5
    r = mcnemar(a, b)
    assert (r["b01"], r["b10"]) == (2, 8) and r["p_value"] == pytest.approx(112 / 1024)
    # 35 discordant pairs (10 vs 25): chi2 = (|10-25|-1)^2/35 = 5.6, p = P(chi2_1 > 5.6) = 0.017960.
    a = [False] * 10 + [True] * 25
    b = [True] * 10 + [False] * 25
    r = mcnemar(a, b)
    assert (r["b01"], r["b10"]) == (10, 25) and r["statistic"] == pytest.approx(5.6)
    assert r["p_value"] == pytest.approx(0.017960, abs=1e-5)
    assert mcnemar([True, False], [True, False])["p_value"] == 1.0
    with pytest.raises(ValueError):
        mcnemar([True], [True, False])


def test_bootstrap_interval_is_deterministic_and_brackets_the_mean():
    values = [0.1 * i for i in range(30)]
    lo, hi = bootstrap_interval(values, seed=0, n_boot=500)
    assert (lo, hi) == bootstrap_interval(values, seed=0, n_boot=500)
    assert lo < sum(values) / len(values) < hi
    assert bootstrap_interval([1.0, 1.0], seed=0, n_boot=50) == (1.0, 1.0)


def test_load_arrow_errors(tmp_path):
    with pytest.raises(ConfigError, match="not found"):
        load_arrow(tmp_path / "missing", "arc")
    with pytest.raises(ConfigError, match="unknown kind"):
        load_arrow(tmp_path, "hellaswag")

"""GPQA-format multiple choice whose answer letter is computable from the question's content.

dgbench's procedural science questions (multiple_choice.procedural_items) need arithmetic with units that
a ~1M-parameter model does not learn in CPU-minutes: trained on them, the reference pair stayed at chance.
These questions keep GPQA's shape (a question, four choices (A)-(D), "Answer with the letter.") but the
right choice follows from comparing or counting what the question shows, so a small model can learn the
rule and the benchmark can see whether a decoder reads it:

  largest / smallest   four distinct two-digit numbers; which is the largest (smallest)?
  odd one out (parity) three even numbers and one odd (or the reverse); which differs?
  sum                  which choice equals a + b (one-digit a, b)? distractors a + b +- 1..3

Items are MCItem (mc_items), so format_prompt, extract_answer and log-likelihood scoring apply
unchanged; choices are shuffled with the same per-item rule (multiple_choice._shuffle).
"""

from __future__ import annotations

import random

from dgbench.tasks.mc_items import MCItem, _shuffle


def _extreme(rng: random.Random, largest: bool):
    values = rng.sample(range(10, 100), 4)
    right = max(values) if largest else min(values)
    word = "largest" if largest else "smallest"
    return f"Which of the following numbers is the {word}?", right, [v for v in values if v != right]


def _parity(rng: random.Random):
    odd_one_is_odd = rng.random() < 0.5
    evens, odds = range(10, 100, 2), range(11, 100, 2)
    common = rng.sample(evens if odd_one_is_odd else odds, 3)
    right = rng.choice(odds if odd_one_is_odd else evens)
    return "Which of the following numbers differs from the others in parity (odd or even)?", right, common


def _sum(rng: random.Random):
    a, b = rng.randint(1, 9), rng.randint(1, 9)
    offsets = rng.sample([-3, -2, -1, 1, 2, 3], 3)
    return f"Which of the following equals {a} + {b}?", a + b, [a + b + d for d in offsets]


_KINDS = (lambda r: _extreme(r, True), lambda r: _extreme(r, False), _parity, _sum)


def computable_items(n: int, seed) -> list[MCItem]:
    """n questions, item k from its own RNG seeded by (seed, k), so the first k are the same for any n."""
    items = []
    for k in range(n):
        rng = random.Random(f"mc-computable:{seed}:{k}")
        question, right, wrong = rng.choice(_KINDS)(rng)
        choices, answer = _shuffle(str(right), [str(w) for w in wrong], f"computable-{seed}", k)
        items.append(MCItem(f"mcc-{seed}-{k}", question, choices, answer, "computable"))
    return items


def worked_answer(item: MCItem) -> str:
    """The answer with its working shown before the letter, one easy step per token, as a scratchpad
    (Nye et al. 2021, "Show Your Work: Scratchpads for Intermediate Computation with Language Models"; the
    chain-of-thought answers GPQA's own baselines are scored with). A ~1M-parameter model trained on the
    bare letter learns largest/smallest but stays at chance on parity and the sum (dgbench's ref-ar card):
    each needs two hops in one token (every choice's parity, then the odd one; a + b, then which choice
    equals it). Written out, each token is one hop:
      largest / smallest   the running max (min) after each choice A..D: "max: 58 58 58 58"
      parity               each choice's parity in order: "parity: even even odd even"
      sum                  the sum itself: "7 + 5 = 12"
    then "Answer: X" on its own line, which multiple_choice.extract_answer reads (the last statement wins)."""
    values = [int(c) for c in item.choices]
    q = item.question
    if "largest" in q or "smallest" in q:
        pick, word = (max, "max") if "largest" in q else (min, "min")
        running = [pick(values[:k + 1]) for k in range(len(values))]
        work = f"{word}: " + " ".join(map(str, running))
    elif "parity" in q:
        work = "parity: " + " ".join("odd" if v % 2 else "even" for v in values)
    else:
        a, b = (int(x) for x in q.rsplit("equals ", 1)[1].rstrip("?").split(" + "))
        work = f"{a} + {b} = {a + b}"
    return f"\n{work}\nAnswer: {item.answer_letter}"

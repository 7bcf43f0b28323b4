"""Monte Carlo check of the gate's rules on synthetic repetitions: how often a real change is caught
(power) and how often noise alone is flagged (false alarms). Used by tests/test_gate_power.py and
benchmarks/gate_power.py; pure Python, seeded, so the rates are reproducible.

Noise model for timings: each repetition is median * (1 + CV * z), z standard normal, independent
(the gate's Mann-Whitney test assumes independent repetitions; drift between two CI jobs on a shared
machine is not modelled, which is what the threshold is for). Accuracy model: see accuracy_power.
"""

from __future__ import annotations

import math
import random

from dgbench.gate.rules import (IMPROVEMENT, REGRESSION, MetricRule, accuracy_verdict, apply_family,
                                 timing_comparison, timing_verdict)


def timing_rates(slowdown: float, cv: float, reps: int, trials: int, seed: int, threshold: float = 0.05,
                 alpha: float = 0.05) -> dict:
    """Share of simulated baseline/candidate pairs the gate calls a regression, and an improvement.

    The metric is a latency (lower is better): the candidate's true median is (1 + slowdown) x the
    baseline's. committed tok/s is its reciprocal, so its verdicts agree.
    """
    rng = random.Random(seed)
    rule = MetricRule("e2e_s", higher_is_better=False, threshold=threshold)
    regress = improve = 0
    for _ in range(trials):
        base = [1.0 * (1 + cv * rng.gauss(0, 1)) for _ in range(reps)]
        cand = [(1 + slowdown) * (1 + cv * rng.gauss(0, 1)) for _ in range(reps)]
        verdict, _, _ = timing_verdict(rule, base, cand, alpha)
        regress += verdict == REGRESSION
        improve += verdict == IMPROVEMENT
    return {"regression_rate": regress / trials, "improvement_rate": improve / trials, "trials": trials,
            "slowdown": slowdown, "cv": cv, "reps": reps, "threshold": threshold, "alpha": alpha}


def paired_rates(slowdown: float, drift: float, cv: float, blocks: int, block_reps: int, trials: int, seed: int,
                 threshold: float = 0.05, alpha: float = 0.05, spike_rate: float = 0.05) -> dict:
    """The interleaved gate (`dgbench gate --measure`) on simulated blocks: its regression and improvement rates.

    Noise model: block i runs under a load factor exp(drift * z_i) shared by both sides (they run seconds
    apart), each repetition adds independent noise cv * z, and with probability spike_rate a repetition
    is hit by a load spike (x 1.5 to 3). The paired test sees only what differs inside a pair of blocks.
    """
    rng = random.Random(seed)
    rule = MetricRule("e2e_s", higher_is_better=False, threshold=threshold)
    regress = improve = 0

    def rep(level):
        spike = rng.uniform(1.5, 3.0) if rng.random() < spike_rate else 1.0
        return level * (1 + cv * rng.gauss(0, 1)) * spike

    for t in range(trials):
        loads = [math.exp(drift * rng.gauss(0, 1)) for _ in range(blocks)]
        base = [[rep(load) for _ in range(block_reps)] for load in loads]
        cand = [[rep(load * (1 + slowdown)) for _ in range(block_reps)] for load in loads]
        flat_b, flat_c = [v for b in base for v in b], [v for b in cand for v in b]
        comp = apply_family([timing_comparison(rule, flat_b, flat_c, (base, cand), alpha, seed=t)], alpha)[0]
        regress += comp.verdict == REGRESSION
        improve += comp.verdict == IMPROVEMENT
    return {"regression_rate": regress / trials, "improvement_rate": improve / trials, "trials": trials,
            "slowdown": slowdown, "drift": drift, "cv": cv, "blocks": blocks, "block_reps": block_reps,
            "threshold": threshold, "alpha": alpha}


def accuracy_power(items: int, drop_points: float, reversed_rate: float, trials: int, seed: int,
                   base_accuracy: float = 0.6, alpha: float = 0.05, deterministic: bool = False) -> dict:
    """Share of simulated runs in which a net accuracy drop of `drop_points` (e.g. 0.05) is caught.

    Discordance assumption: the change breaks drop_points x items items outright (right -> wrong) and,
    besides, flips each baseline-wrong item to right with probability `reversed_rate`, and as many
    further baseline-right items to wrong, so the net drop stays exactly drop_points. Every discordant
    pair counts against the paired test, so more churn at the same net drop is harder to detect.
    """
    rng = random.Random(seed)
    rule = MetricRule("accuracy", higher_is_better=True, threshold=0.0)
    net = round(drop_points * items)
    caught = 0
    discordant_total = 0
    for _ in range(trials):
        base = [rng.random() < base_accuracy for _ in range(items)]
        wrong = [i for i, c in enumerate(base) if not c]
        right = [i for i, c in enumerate(base) if c]
        rng.shuffle(right)
        up = [i for i in wrong if rng.random() < reversed_rate]
        down = right[:net + len(up)]
        cand = list(base)
        for i in up:
            cand[i] = True
        for i in down:
            cand[i] = False
        verdict, _, _, b01, b10 = accuracy_verdict(rule, base, cand, alpha, deterministic)
        caught += verdict == REGRESSION
        discordant_total += b01 + b10
    return {"caught_rate": caught / trials, "trials": trials, "items": items, "drop_points": drop_points,
            "reversed_rate": reversed_rate, "mean_discordant": discordant_total / trials, "alpha": alpha}

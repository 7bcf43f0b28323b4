"""Expand a suite's grid into sweep points, each with a stable id (so --resume can recognise it).

The suite's scenario lays its points out (dgbench/scenarios/); Point is defined with the contract.
"""

from __future__ import annotations

import dataclasses

from dgbench.scenarios import for_suite
from dgbench.scenarios.base import Point

__all__ = ["Point", "expand"]


def expand(suite: dict) -> list[Point]:
    return over_seeds(for_suite(suite).expand(suite), suite.get("seeds"))


def over_seeds(points: list[Point], seeds: list[int] | None) -> list[Point]:
    """With a suite's `seeds`, each point of a stochastic decoder (its engine says so from the knobs) becomes
    one point per seed; deterministic ones stay one point, with the id they always had."""
    if not seeds:
        return points
    from dgbench.backends import ENGINES

    out = []
    for p in points:
        if ENGINES[p.engine].factory.stochastic(p.knobs):
            out += [dataclasses.replace(p, seed=s) for s in seeds]
        else:
            out.append(p)
    return out

"""Expand a suite's grid into sweep points, each with a stable id (so --resume can recognise it).

The suite's scenario lays its points out (dgbench/scenarios/); Point is defined with the contract.
"""

from __future__ import annotations

from dgbench.scenarios import for_suite
from dgbench.scenarios.base import Point

__all__ = ["Point", "expand"]


def expand(suite: dict) -> list[Point]:
    return for_suite(suite).expand(suite)

"""Scenarios: how a suite's points are laid out and measured. Importing this registers the built-in ones
(dgbench/scenarios/base.py has the contract): generation (latency, throughput), quality, lm_eval, serve."""

from dgbench.scenarios import generation, lm_eval, quality, serve  # noqa: F401  (registration; order = schema order)
from dgbench.scenarios.base import SCENARIOS, MeasureContext, Point, Scenario, for_point, for_suite, register_scenario

__all__ = ["SCENARIOS", "MeasureContext", "Point", "Scenario", "for_point", "for_suite", "register_scenario"]

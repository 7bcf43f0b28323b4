"""The Scenario contract: how the points of a suite are laid out and how one point is measured.

A scenario is one module with one class, registered with @register_scenario in that module and imported
once in dgbench/scenarios/__init__.py. The sweep asks the scenario named by the suite's `scenario:` for
its points; the runner asks the scenario named by each point (`Point.scenario`) to measure it, so the
runner holds no per-scenario branches.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Callable, ClassVar


@dataclass(frozen=True)
class Point:
    decoder: str
    model: str
    engine: str
    dtype: str
    batch_size: int
    gen_length: int
    prompt_length: int
    knobs: dict            # every knob of the engine, defaults filled, sweep values applied
    swept_knobs: tuple     # names of the knobs that vary in this suite (shown in tables)
    # Quality scenario only: one point per (decoder, task); prompts come from the task's items.
    task: str | None = None
    task_config: dict | None = None
    limit: int | None = None   # --limit: items per task at most
    scenario: str = "generation"   # the registered scenario that measures this point (not in the id)
    # Generation only: real task prompts (scenarios/task_prompts.py) instead of random ids; None: random.
    prompts: str | None = None

    @property
    def params(self) -> dict:
        if self.task is not None:
            return {"task": self.task, "gen_length": self.gen_length, **{k: self.knobs[k] for k in self.swept_knobs}}
        return {"batch_size": self.batch_size, "gen_length": self.gen_length, "prompt_length": self.prompt_length,
                **({"prompts": self.prompts} if self.prompts else {}), **{k: self.knobs[k] for k in self.swept_knobs}}

    @property
    def point_id(self) -> str:
        key = {"decoder": self.decoder, "model": self.model, "engine": self.engine, "dtype": self.dtype,
               "batch_size": self.batch_size, "gen_length": self.gen_length, "prompt_length": self.prompt_length,
               "knobs": self.knobs}
        if self.task is not None:  # only quality points carry these, so other ids stay as they were
            key.update(task=self.task, task_config=self.task_config, limit=self.limit)
        if self.prompts is not None:  # likewise: ids of random-prompt points stay as they were
            key.update(prompts=self.prompts)
        return hashlib.sha1(json.dumps(key, sort_keys=True).encode()).hexdigest()[:12]

    def label(self) -> str:
        parts = [f"{k}={v}" for k, v in self.params.items()]
        return f"{self.decoder} " + " ".join(parts)


@dataclass
class MeasureContext:
    """What every scenario's measure() gets besides the decoder and the point."""

    device: str
    measure: dict                  # the suite's `measure:` section
    seed: int
    on_rep: Callable | None = None       # progress: on_rep(n) after each repetition or item
    on_sample: Callable | None = None    # one scored sample -> RUN_DIR/samples.jsonl
    mark: Callable | None = None         # telemetry window marks for this point
    suite: dict | None = None            # the whole validated suite (serve reads its endpoint/load/prompts)
    on_request: Callable | None = None   # serve: one request sent -> RUN_DIR/requests.jsonl


class Scenario:
    name: ClassVar[str]
    suite_names: ClassVar[tuple[str, ...]] = ()   # the suite `scenario:` values whose points it lays out
    runs_tasks: ClassVar[bool] = False    # its suites need a `tasks:` section (and --limit applies)
    progress_unit: ClassVar[str] = "rep"
    # Telemetry window at the start of a point: "empty" when measure() marks its own repetitions,
    # "rep" when the whole point is one window.
    telemetry_window: ClassVar[str] = "empty"
    # False for a scenario that measures something outside this process (serve: an endpoint): the runner then
    # loads no model and calls measure(None, point, None, ctx); its suites have no decoders, and it validates
    # its own sections (validate) and prints its own dry run (dry_run).
    loads_model: ClassVar[bool] = True
    suite_sections: ClassVar[tuple[str, ...]] = ()   # top-level suite keys only this scenario reads

    def validate(self, suite: dict, loc) -> None:
        """Check and fill in the scenario's own suite sections (scenarios that load no model)."""

    def dry_run(self, suite: dict, points: list, console) -> None:   # pragma: no cover - contract
        """Print `dgbench run --dry-run` for scenarios that load no model (no forward passes to price)."""
        raise NotImplementedError

    def expand(self, suite: dict) -> list[Point]:   # pragma: no cover - contract
        raise NotImplementedError

    def measure(self, decoder, point: Point, spec, ctx: MeasureContext) -> dict:   # pragma: no cover
        raise NotImplementedError

    def calls(self, point: Point, measure: dict) -> int:
        """Decoder calls one point makes at least (`dgbench run --dry-run`)."""
        return measure["warmup"] + measure["min_repetitions"] + (1 if measure["memory"] else 0)

    def dry_run_title(self, suite: dict, n_points: int) -> str:   # pragma: no cover - contract
        raise NotImplementedError

    def dry_run_note(self, measure: dict) -> str:   # pragma: no cover - contract
        raise NotImplementedError

    def console_summary(self, points: list[dict], title: str) -> list:   # pragma: no cover - contract
        """What `dgbench run` prints when the run ends (rich renderables)."""
        raise NotImplementedError


SCENARIOS: dict[str, Scenario] = {}


def register_scenario(cls: type[Scenario]) -> type[Scenario]:
    """Class decorator: register a scenario once under its `name`."""
    if cls.name in SCENARIOS:
        raise ValueError(f"scenario {cls.name!r} registered twice")
    SCENARIOS[cls.name] = cls()
    return cls


def suite_scenarios() -> list[str]:
    """Every value a suite's `scenario:` accepts, in registration order."""
    return [n for s in SCENARIOS.values() for n in s.suite_names]


def for_suite(suite: dict) -> Scenario:
    """The scenario that lays out a suite's points."""
    return next(s for s in SCENARIOS.values() if suite.get("scenario", "latency") in s.suite_names)


def for_point(point: Point) -> Scenario:
    return SCENARIOS[point.scenario]

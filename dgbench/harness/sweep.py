"""Expand a suite's grid into sweep points, each with a stable id (so --resume can recognise it)."""

from __future__ import annotations

import hashlib
import itertools
import json
from dataclasses import dataclass

from dgbench.harness.suite import COMMON_AXES


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

    @property
    def params(self) -> dict:
        return {"batch_size": self.batch_size, "gen_length": self.gen_length, "prompt_length": self.prompt_length,
                **{k: self.knobs[k] for k in self.swept_knobs}}

    @property
    def point_id(self) -> str:
        key = {"decoder": self.decoder, "model": self.model, "engine": self.engine, "dtype": self.dtype,
               "batch_size": self.batch_size, "gen_length": self.gen_length, "prompt_length": self.prompt_length,
               "knobs": self.knobs}
        return hashlib.sha1(json.dumps(key, sort_keys=True).encode()).hexdigest()[:12]

    def label(self) -> str:
        parts = [f"{k}={v}" for k, v in self.params.items()]
        return f"{self.decoder} " + " ".join(parts)


def expand(suite: dict) -> list[Point]:
    from dgbench.backends import ENGINES

    sweep = suite["sweep"]
    points = []
    for dec in suite["decoders"]:
        engine = ENGINES[dec["engine"]]
        axes = {a: sweep[a] for a in COMMON_AXES}
        knob_axes = {k: v for k, v in sweep["knobs"].items() if k in engine.knobs}
        names = list(axes) + list(knob_axes)
        for combo in itertools.product(*axes.values(), *knob_axes.values()):
            values = dict(zip(names, combo))
            knobs = {**dec["knobs"], **{k: values[k] for k in knob_axes}}
            points.append(Point(decoder=dec["name"], model=dec["model"], engine=dec["engine"], dtype=dec["dtype"],
                                batch_size=values["batch_size"], gen_length=values["gen_length"],
                                prompt_length=values["prompt_length"], knobs=knobs,
                                swept_knobs=tuple(knob_axes)))
    return points

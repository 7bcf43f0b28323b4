"""The generation scenario behind `latency` and `throughput`: time one sweep point, return raw values.

Raw per-repetition values go into the record; summaries (median, p10/p90, CV) are derived from them.
"""

from __future__ import annotations

import itertools

from dgbench.backends.base import GenerationRecord
from dgbench.scenarios.measure import MeasurePlan, repeat
from dgbench.metrics import per_rep_metrics
from dgbench.scenarios.base import MeasureContext, Point, Scenario, register_scenario
from dgbench.stats import summarize
from dgbench.telemetry.memory import PeakMemory
from dgbench.telemetry.timing import Clock

COMMON_AXES = ("batch_size", "gen_length", "prompt_length")


def synthetic_prompts(batch: int, length: int, vocab: int, special, seed: int, device: str):
    """Random prompt ids that avoid the special ids; the same for every repetition of a point.

    `special` is a count n (ids 0..n-1 are special) or the ids themselves: LLaDA's and Dream's mask ids
    sit near the top of the vocabulary, and a prompt holding the mask token would be half-masked already.
    """
    import torch

    excluded = sorted(set(range(special)) if isinstance(special, int) else {int(t) for t in special})
    gen = torch.Generator().manual_seed(seed)
    ids = torch.randint(0, vocab - len(excluded), (batch, length), generator=gen)
    for e in excluded:  # ascending: maps [0, V - k) one to one onto the ids that are not special
        ids += ids >= e
    return ids.to(device), torch.ones_like(ids, dtype=torch.long).to(device)


def run_point(decoder, point, vocab: int, special_ids, device: str, measure: dict, seed: int,
              on_rep=None, mark=None) -> dict:
    special_ids = list(special_ids)
    fixed = None if getattr(point, "prompts", None) else \
        synthetic_prompts(point.batch_size, point.prompt_length, vocab, special_ids, seed, device)
    clock = Clock(device)

    def call(rep: int) -> GenerationRecord:
        if fixed is None:   # real task prompts, a different item per repetition (scenarios/task_prompts.py)
            from dgbench.scenarios.task_prompts import task_prompts

            prompts, mask = task_prompts(point.prompts, point.batch_size, rep, special_ids, device)
        else:
            prompts, mask = fixed
        # Each repetition has its own seed so sampled trajectories are reproducible rep by rep.
        return decoder.generate(prompts, mask, point.gen_length, measure["fixed_length"], seed + 1000 + rep, clock)

    plan = MeasurePlan(measure["warmup"], measure["min_repetitions"], measure["max_repetitions"],
                       measure["min_time_s"])
    records = repeat(call, plan, lambda r: r.e2e_s, on_rep, mark)

    reps: dict[str, list] = {}
    for rec in records:
        for name, value in per_rep_metrics(rec, point.batch_size).items():
            reps.setdefault(name, []).append(value)
    pooled = {"itl_s": [b - a for rec in records for a, b in zip(rec.token_times_s, rec.token_times_s[1:])],
              "steps_per_canvas": [s for rec in records for s in rec.steps_per_canvas],
              "step_time_s": [s for rec in records for s in rec.step_times_s]}
    reps = {k: v for k, v in reps.items() if any(x is not None for x in v)}
    pooled = {k: v for k, v in pooled.items() if v}

    memory = None
    if measure["memory"]:
        if mark:
            mark("memory")
        with PeakMemory(device) as pm:
            call(10_000)
        if mark:
            mark("empty")
        memory = {"peak_mem_bytes": pm.reading.peak_bytes, "total_peak_bytes": pm.reading.total_bytes,
                  "method": pm.reading.method, "n": 1}

    summary = {k: summarize([x for x in v if x is not None]) for k, v in {**reps, **pooled}.items()}
    last = records[-1]
    return {
        "reps": reps,
        "pooled": pooled,
        "summary": summary,
        "memory": memory,
        "n_warmup": measure["warmup"],
        "step_cap": last.step_cap,
        "canvas_length": last.canvas_length,
        "sample_tokens": records[0].tokens[0][:64],  # rep 0: the same seed in every decoder
        # The denoising trajectory of rep 0's first sequence, when the engine was asked to record it.
        **({"trajectory": records[0].extra["trajectory"]} if records[0].extra.get("trajectory") else {}),
    }


@register_scenario
class GenerationScenario(Scenario):
    name = "generation"
    suite_names = ("latency", "throughput")

    def expand(self, suite: dict) -> list[Point]:
        from dgbench.backends import ENGINES

        sweep = suite["sweep"]
        points = []
        for dec in suite["decoders"]:
            engine = ENGINES[dec["engine"]]
            axes = {a: sweep[a] for a in COMMON_AXES}
            if dec.get("prompts"):   # task prompts have their own length: one value, the real one
                from dgbench.scenarios.task_prompts import prompt_length

                axes["prompt_length"] = [prompt_length(dec["prompts"])]
            knob_axes = {k: v for k, v in sweep["knobs"].items() if k in engine.knobs}
            names = list(axes) + list(knob_axes)
            for combo in itertools.product(*axes.values(), *knob_axes.values()):
                values = dict(zip(names, combo))
                knobs = {**dec["knobs"], **{k: values[k] for k in knob_axes}}
                points.append(Point(decoder=dec["name"], model=dec["model"], engine=dec["engine"], dtype=dec["dtype"],
                                    batch_size=values["batch_size"], gen_length=values["gen_length"],
                                    prompt_length=values["prompt_length"], knobs=knobs,
                                    swept_knobs=tuple(knob_axes), prompts=dec.get("prompts")))
        return points

    def measure(self, decoder, point: Point, spec, ctx: MeasureContext) -> dict:
        return run_point(decoder, point, spec.text_config["vocab_size"], spec.special_tokens.values(), ctx.device,
                         ctx.measure, ctx.seed, ctx.on_rep, mark=ctx.mark)

    def dry_run_title(self, suite: dict, n_points: int) -> str:
        m = suite["measure"]
        return (f"suite {suite['name']}: {n_points} points, {self.calls(None, m)} calls each at least "
                f"({m['warmup']} warmup + {m['min_repetitions']} timed + {int(m['memory'])} memory)")

    def dry_run_note(self, measure: dict) -> str:
        return f"more repetitions run until min_time_s={measure['min_time_s']} s per point"

    def console_summary(self, points: list[dict], title: str) -> list:
        from dgbench.report.console import definitions_footer, summary_table

        return [summary_table(points, title=title), definitions_footer(points)]

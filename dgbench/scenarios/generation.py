"""The generation scenario behind `latency` and `throughput`: time one sweep point, return raw values.

Raw per-repetition values go into the record; summaries (median, p10/p90, CV) are derived from them.
"""

from __future__ import annotations

import itertools

from dgbench.backends.base import GenerationRecord
from dgbench.scenarios.measure import MeasurePlan, repeat
from dgbench.metrics import per_rep_metrics
from dgbench.scenarios.base import MeasureContext, Point, Scenario, point_model, register_scenario
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


def point_prompts(point, spec, vocab: int, special_ids, seed: int, device: str):
    """(ids, mask, prompt_source record or None) of a point: text from its `prompts:` source through the
    model's codec, else synthetic ids."""
    if point.prompts is not None and point.prompt_fit == "items":
        ids, mask = rep_prompts(point, special_ids, 0, device)
        lengths = [int(x) for x in mask.sum(-1).tolist()]
        return ids, mask, {"source": point.prompts, "fit": "items", "codec": "task items, one per repetition",
                           "measured_tokens": lengths, "min_tokens": min(lengths), "max_tokens": max(lengths)}
    if point.prompts is not None and spec is not None:
        from dgbench.scenarios.prompts import text_prompts
        from dgbench.tasks.codec import codec_for

        return text_prompts(point.prompts, point.prompt_fit or "pack", codec_for(spec), point.batch_size,
                            point.prompt_length, spec.special_tokens["pad"], device)
    ids, mask = synthetic_prompts(point.batch_size, point.prompt_length, vocab, special_ids, seed, device)
    return ids, mask, None


def rep_prompts(point, special_ids, rep: int, device: str):
    """prompt_fit: items — whole task items as the model saw them in training, a different item per
    repetition (scenarios/task_prompts.py), so adaptive stopping meets varied real inputs."""
    from dgbench.scenarios.task_prompts import task_prompts

    return task_prompts(point.prompts, point.batch_size, rep, list(special_ids), device)


def run_point(decoder, point, vocab: int, special_ids, device: str, measure: dict, seed: int,
              on_rep=None, mark=None, spec=None, sample_seed: int | None = None) -> dict:
    prompts, mask, prompt_info = point_prompts(point, spec, vocab, special_ids, seed, device)
    clock = Clock(device)
    sample_seed = seed if sample_seed is None else sample_seed   # a `seeds` repeat: same prompts, other samples

    def call(rep: int) -> GenerationRecord:
        ids, attn = rep_prompts(point, special_ids, rep, device) if point.prompt_fit == "items" else (prompts, mask)
        # Each repetition has its own seed so sampled trajectories are reproducible rep by rep.
        rec = decoder.generate(ids, attn, point.gen_length, measure["fixed_length"], sample_seed + 1000 + rep,
                               clock)
        rec.extra.setdefault("cpu_s", clock.cpu_s)    # the call's own start/stop (telemetry/timing.py)
        return rec

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
        **({"prompt_source": prompt_info} if prompt_info else {}),
        "rep0_tokens": records[0].tokens,   # for the batch-invariance check; measure() drops it from the record
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
            fit = dec.get("prompt_fit") or suite.get("prompt_fit") or "pack"
            if fit == "items":   # whole task items have their own length: one value, the real one
                from dgbench.scenarios.task_prompts import prompt_length

                axes["prompt_length"] = [prompt_length(dec.get("prompts") or suite.get("prompts"))]
            knob_axes = {k: v for k, v in sweep["knobs"].items() if k in engine.knobs}
            names = list(axes) + list(knob_axes)
            for combo in itertools.product(*axes.values(), *knob_axes.values()):
                values = dict(zip(names, combo))
                knobs = {**dec["knobs"], **{k: values[k] for k in knob_axes}}
                source = dec.get("prompts") or suite.get("prompts")
                source = None if source in (None, "synthetic") else source
                points.append(Point(decoder=dec["name"], model=point_model(dec), engine=dec["engine"], dtype=dec["dtype"],
                                    batch_size=values["batch_size"], gen_length=values["gen_length"],
                                    prompt_length=values["prompt_length"], knobs=knobs,
                                    swept_knobs=tuple(knob_axes), prompts=source,
                                    prompt_fit=fit if source else None))
        return points

    def measure(self, decoder, point: Point, spec, ctx: MeasureContext) -> dict:
        result = run_point(decoder, point, spec.text_config["vocab_size"], spec.special_tokens.values(), ctx.device,
                           ctx.measure, ctx.seed, ctx.on_rep, mark=ctx.mark, spec=spec, sample_seed=ctx.sample_seed)
        tokens = result.pop("rep0_tokens")
        if point.batch_size > 1 and ctx.measure.get("batch_invariance"):
            from dgbench.scenarios.invariance import check_batch_invariance

            sample_seed = ctx.seed if ctx.sample_seed is None else ctx.sample_seed
            prompts, mask, _ = point_prompts(point, spec, spec.text_config["vocab_size"],   # the same batch
                                             spec.special_tokens.values(), ctx.seed, ctx.device)
            result["batch_invariance"] = check_batch_invariance(decoder, point, prompts, mask, ctx.device,
                                                                ctx.measure, sample_seed, tokens)
        return result

    def dry_run_title(self, suite: dict, n_points: int) -> str:
        m = suite["measure"]
        return (f"suite {suite['name']}: {n_points} points, {self.calls(None, m)} calls each at least "
                f"({m['warmup']} warmup + {m['min_repetitions']} timed + {int(m['memory'])} memory)")

    def dry_run_note(self, measure: dict) -> str:
        return f"more repetitions run until min_time_s={measure['min_time_s']} s per point"

    def console_summary(self, points: list[dict], title: str) -> list:
        from dgbench.report.console import definitions_footer, summary_table

        return [summary_table(points, title=title), definitions_footer(points)]

"""The quality scenario: run a decoder on task items, score each output, time the same generations.

One point per (decoder, task). Items go one at a time (batch 1) through the decoder's codec (its checkpoint's
tokenizer and chat template, or the byte-level codec dgbench.tasks.text for the embedded specs); every
rendered prompt is stored with its sample; every scored sample is handed to `on_sample`
(the runner appends it to RUN_DIR/samples.jsonl) and the point record holds the accuracy with its 95%
Wilson interval plus speed summaries over the same generations. With synthetic (random) weights the
accuracy is about zero: the numbers exercise the pipeline, they say nothing about the architecture.
"""

from __future__ import annotations

import itertools

from dgbench.metrics import per_rep_metrics
from dgbench.scenarios.base import MeasureContext, Point, Scenario, point_model, register_scenario
from dgbench.stats import accuracy_summary, summarize
from dgbench.tasks import TASKS, TaskItem, task_of
from dgbench.telemetry.timing import Clock

SPEED_METRICS = ("e2e_s", "committed_tok_s", "nfe", "tokens_per_forward", "useful_tokens", "ttft_s", "cap_hit_share")


@register_scenario
class QualityScenario(Scenario):
    name = "quality"
    suite_names = ("quality",)
    runs_tasks = True
    progress_unit = "item"
    telemetry_window = "rep"   # one window per point

    def expand(self, suite: dict) -> list[Point]:
        """One point per decoder x task (x swept knob values); batch 1, prompts from the task items."""
        from dgbench.backends import ENGINES

        sweep = suite["sweep"]
        points = []
        for dec in suite["decoders"]:
            knob_axes = {k: v for k, v in sweep["knobs"].items() if k in ENGINES[dec["engine"]].knobs}
            for combo in itertools.product(*knob_axes.values()):
                knobs = {**dec["knobs"], **dict(zip(knob_axes, combo))}
                for name, config in suite["tasks"].items():
                    task = TASKS[name]
                    for entry, entry_config in task.entries(config):
                        points.append(Point(decoder=dec["name"], model=point_model(dec), engine=dec["engine"],
                                            dtype=dec["dtype"], batch_size=1, gen_length=task.gen_length(entry_config),
                                            prompt_length=0, knobs=knobs, swept_knobs=tuple(knob_axes), task=entry,
                                            task_config=entry_config, limit=suite.get("limit"),
                                            scenario=task.scenario))
        return points

    def measure(self, decoder, point: Point, spec, ctx: MeasureContext) -> dict:
        return run_quality_point(decoder, point, spec, ctx.device, ctx.measure, ctx.seed, ctx.on_rep, ctx.on_sample,
                                 sample_seed=ctx.sample_seed)

    def calls(self, point: Point, measure: dict) -> int:   # warmup + one call per item
        n = point.task_config["n"] if point.limit is None else min(point.task_config["n"], point.limit)
        return measure["warmup"] + n

    def dry_run_title(self, suite: dict, n_points: int) -> str:
        m = suite["measure"]
        return (f"suite {suite['name']}: {n_points} points (decoder x task), {m['warmup']} warmup call + one "
                f"call per item each (prompt tokens not counted)")

    def dry_run_note(self, measure: dict) -> str:
        return "calls stop at EOS, so fewer may run"

    def console_summary(self, points: list[dict], title: str) -> list:
        from dgbench.report.console import quality_footer, quality_table

        return [quality_table(points, title=title), quality_footer(points)]


def run_quality_point(decoder, point, spec, device: str, measure: dict, seed: int, on_item=None,
                      on_sample=None, sample_seed: int | None = None) -> dict:
    import torch

    from dgbench.tasks.codec import codec_for

    codec = codec_for(spec)   # the checkpoint's tokenizer (and chat template), or the byte codec
    items = task_of(point.task).items(point.task_config, point.limit, seed, spec.paradigm)
    clock = Clock(device)
    sample_seed = seed if sample_seed is None else sample_seed   # a `seeds` repeat: same items, other samples

    def in_place(item: TaskItem) -> bool:
        return item.template is not None and hasattr(decoder, "fill_template")

    def score_ll(item: TaskItem):
        from dgbench.decoding.loglikelihood import loglikelihood
        from dgbench.tasks.multiple_choice import score_by_loglikelihood

        context, continuations, right = item.ll
        requests = [(codec.encode_prompt(context), codec.encode(c)) for c in continuations]
        clock.start()
        scores = loglikelihood(decoder.model, requests, pad_token_id=spec.special_tokens["pad"],
                               batch_size=len(requests))
        clock.stop()
        best = score_by_loglikelihood([lp for lp, _ in scores])
        metrics = {"e2e_s": clock.elapsed, "nfe": 1, "useful_tokens": 0, "committed_tok_s": None,
                   "tokens_per_forward": None, "ttft_s": None}
        return continuations[best].strip(), best == right, {"logprobs": [round(lp, 4) for lp, _ in scores]}, metrics

    def call(item: TaskItem, call_seed: int):
        ids = torch.tensor([codec.encode_prompt(item.prompt)], dtype=torch.long, device=device)
        if in_place(item):
            # The byte codec maps each ASCII character of the template to one id; a tokenizer encodes the
            # known runs on their own; blanks become None (one position each).
            template = codec.encode_template(item.template, item.blanks)
            return decoder.fill_template(ids, torch.ones_like(ids), template, call_seed, clock)
        return decoder.generate(ids, torch.ones_like(ids), point.gen_length, False, call_seed, clock)

    for w in range(measure["warmup"] if items else 0):  # untimed, unscored: first-call costs stay out
        if items[0].ll is not None:
            score_ll(items[0])
        else:
            call(items[0], seed + 500 + w)

    correct: list[bool] = []
    reps: dict[str, list] = {m: [] for m in SPEED_METRICS}
    extras: dict[str, list] = {}
    for k, item in enumerate(items):
        if item.ll is not None:
            answer, ok, extra, metrics = score_ll(item)
            text, output_ids = "", []
        else:
            rec = call(item, sample_seed + 1000 + k)
            tokens = rec.tokens[0]
            if in_place(item) and item.answer_span is not None:
                span = item.answer_span   # characters of the template -> its positions in the codec's ids
                tokens = tokens[:len(codec.encode_template(item.template[:span], [b for b in item.blanks if b < span]))]
            text = codec.decode(tokens)
            answer, ok, extra = item.score(text)
            metrics = per_rep_metrics(rec, 1)
            output_ids = codec.content(tokens)   # what `output` decodes: the ids before the first EOS/pad
        for m in SPEED_METRICS:
            reps[m].append(metrics.get(m))
        for key, value in extra.items():
            if isinstance(value, (bool, int, float)):
                extras.setdefault(key, []).append(float(value))
        correct.append(bool(ok))
        if on_sample:
            on_sample({"point_id": point.point_id, "decoder": point.decoder, "model": point.model,
                       "engine": point.engine, "task": point.task, "item_id": item.id, "index": k,
                       "prompt": item.prompt, "rendered_prompt": codec.render(item.prompt),
                       "prompt_tokens": len(codec.encode_prompt(item.prompt)), "codec": codec.name, "output": text,
                       "output_ids": output_ids, "extracted": answer, "correct": bool(ok),
                       "fill": ("loglikelihood" if item.ll is not None else
                                "in-place" if in_place(item) else "after-prompt"),
                       **({"infill_mode": item.infill_mode} if item.infill_mode else {}),
                       **extra,
                       "e2e_s": metrics["e2e_s"], "nfe": metrics["nfe"],
                       "useful_tokens": metrics["useful_tokens"], "committed_tok_s": metrics["committed_tok_s"],
                       "tokens_per_forward": metrics["tokens_per_forward"]})
        if on_item:
            on_item(k + 1)
    reps = {k: v for k, v in reps.items() if any(x is not None for x in v)}
    summary = {k: summarize([x for x in v if x is not None]) for k, v in reps.items()}
    return {
        "task": point.task,
        "task_config": point.task_config,
        "limit": point.limit,
        "quality": accuracy_summary(correct),
        "quality_extra": {k: sum(v) / len(v) for k, v in extras.items() if v},
        "correct": correct,
        "item_ids": [item.id for item in items],
        "reps": reps,
        "summary": summary,
        "memory": None,
        "n_warmup": measure["warmup"],
        "tokenization": codec.describe(),
    }

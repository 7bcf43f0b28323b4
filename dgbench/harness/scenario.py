"""The generation scenario behind `latency` and `throughput`: time one sweep point, return raw values.

Raw per-repetition values go into the record; summaries (median, p10/p90, CV) are derived from them.
"""

from __future__ import annotations

from dgbench.backends.base import GenerationRecord
from dgbench.harness.measure import MeasurePlan, repeat
from dgbench.stats import summarize
from dgbench.telemetry.memory import PeakMemory
from dgbench.telemetry.timing import Clock


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


def per_rep_metrics(rec: GenerationRecord, batch: int) -> dict[str, float | None]:
    useful = sum(rec.useful_tokens)
    ttft = rec.first_output_s
    out: dict[str, float | None] = {
        "e2e_s": rec.e2e_s,
        "useful_tokens": useful,
        "committed_tok_s": useful / rec.e2e_s if rec.e2e_s > 0 else None,
        "ttft_s": ttft,
        "nfe": rec.nfe,
        "tokens_per_forward": sum(u / max(n, 1) for u, n in zip(rec.useful_tokens, rec.nfe_per_sequence)) / batch,
        "tpot_s": None,
    }
    if rec.token_times_s:  # autoregressive
        steps = len(rec.token_times_s)
        out["tpot_s"] = (rec.e2e_s - ttft) / (steps - 1) if steps > 1 else None
    for key in ("acceptance_rate", "mean_accepted_length"):  # speculative decoding, when the engine drafts
        if key in rec.extra:
            out[key] = rec.extra[key]
    if rec.canvas_times_s:  # diffusion
        n = len(rec.canvas_times_s)
        out["tpot_s"] = (rec.e2e_s - ttft) / (n - 1) if n > 1 else ttft
        steps = rec.step_times_s
        if steps:
            out["in_step_tok_s"] = rec.canvas_length * batch / (sum(steps) / len(steps))
        out["cap_hit_share"] = (sum(s >= rec.step_cap for s in rec.steps_per_canvas) / len(rec.steps_per_canvas)
                                if rec.steps_per_canvas else None)
    return out


def run_point(decoder, point, vocab: int, special_ids, device: str, measure: dict, seed: int,
              on_rep=None, mark=None) -> dict:
    special_ids = list(special_ids)
    fixed = None if getattr(point, "prompts", None) else \
        synthetic_prompts(point.batch_size, point.prompt_length, vocab, special_ids, seed, device)
    clock = Clock(device)

    def call(rep: int) -> GenerationRecord:
        if fixed is None:   # real task prompts, a different item per repetition (harness/task_prompts.py)
            from dgbench.harness.task_prompts import task_prompts

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

"""Metric definitions: name, unit, direction and the sentence every report prints.

The gate reads `higher_is_better` from here, so a suite cannot gate a metric in the wrong direction.
Imports nothing heavy: report/ and gate/ use it without torch.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Metric:
    name: str
    unit: str
    higher_is_better: bool
    definition: str
    # Deterministic counters (NFE at a fixed seed) are compared exactly, timings statistically.
    deterministic: bool = False


_ALL = [
    Metric("committed_tok_s", "tok/s", True,
           "useful tokens / wall time of the whole generate call, after warmup, device synchronized"),
    Metric("e2e_s", "s", False, "wall time of one whole generate call (all sequences of the batch)"),
    Metric("ttft_s", "s", False,
           "time to first token (AR) or to the first committed canvas (diffusion, TTFC), from the call's start"),
    Metric("tpot_s", "s", False,
           "AR: (end-to-end - TTFT) / (decode steps - 1); diffusion: time per canvas, "
           "(end-to-end - TTFC) / (canvases - 1), or TTFC when there is one canvas"),
    Metric("itl_s", "s", False, "AR inter-token latency: time between consecutive generated tokens (per step)"),
    Metric("cpu_s_per_tok", "s/tok", False,
           "host CPU time of the whole generate call (user + system, all threads of the process: "
           "time.process_time between the call's start and stop) / useful tokens; the work a call costs the "
           "host, nearly blind to a shared machine's load, which wall time is not"),
    Metric("useful_tokens", "tok", True,
           "generated tokens up to and excluding the first EOS/pad, summed over the batch; the prompt never counts",
           deterministic=True),
    Metric("nfe", "passes", False,
           "forward passes of the network that produces tokens (denoiser or causal LM); a batched pass counts once",
           deterministic=True),
    Metric("tokens_per_forward", "tok/pass", True,
           "mean over sequences of useful tokens / forward passes that sequence took part in", deterministic=True),
    Metric("in_step_tok_s", "tok/s", True,
           "diffusion only: canvas length x batch / mean denoising-step time; shown beside committed tok/s, "
           "never instead of it"),
    Metric("steps_per_canvas", "steps", False, "denoising steps spent on one canvas (diffusion)", deterministic=True),
    Metric("cap_hit_share", "fraction", False,
           "share of canvases whose denoising ran to the step cap (diffusion)", deterministic=True),
    Metric("acceptance_rate", "fraction", True,
           "speculative decoding: draft tokens the target accepted / draft tokens proposed", deterministic=True),
    Metric("mean_accepted_length", "tok", True,
           "speculative decoding: draft tokens accepted per verification step that had a draft",
           deterministic=True),
    Metric("peak_mem_bytes", "B", False,
           "peak device memory during the call above the level before it (CUDA: max_memory_allocated; "
           "CPU: sampled process RSS)"),
    # Serve scenario (dgbench/scenarios/serve/aggregate.py): one value per successful request.
    Metric("per_user_tok_s", "tok/s", True, "serve: one request's output tokens / its end-to-end time"),
    Metric("chunk_gap_s", "s", False,
           "serve: time between consecutive streamed chunks of a request (diffusion: between committed canvases; "
           "AR: inter-token latency), pooled over requests"),
    Metric("chunk_tokens", "tok", True, "serve: tokens in one streamed chunk (server token_ids, tokenizer or usage)"),
    Metric("accuracy", "fraction", True,
           "quality: share of items scored correct (sudoku solved, multiple-choice letter, code pass@1), with "
           "its 95% Wilson interval (Wilson 1927); the gate pairs it item by item (McNemar)"),
]

METRICS: dict[str, Metric] = {m.name: m for m in _ALL}


def direction(name: str) -> str:
    return "higher" if METRICS[name].higher_is_better else "lower"


def per_rep_metrics(rec, batch: int) -> dict[str, float | None]:
    """The per-repetition values of one generate call (a backends.base.GenerationRecord) over `batch`
    sequences, as defined in METRICS above."""
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
    cpu = rec.extra.get("cpu_s")
    out["cpu_s_per_tok"] = cpu / useful if cpu is not None and useful > 0 else None
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

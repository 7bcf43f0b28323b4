"""Serve points under `vllm bench serve` result keys (its --save-result JSON), so a dgbench run can be set
beside vLLM's own output. `dgbench export --format vllm` writes one object per serve point.

The definitions match vLLM's where the names are the same: duration from the first request to the last
reply; TTFT, TPOT = (e2e - TTFT) / (output tokens - 1), ITL = time between streamed chunks, E2EL, all in ms
with mean/median/std/p90/p99 over requests (ITL over chunks). The one deliberate difference: output tokens
are counted per chunk (server token_ids or a tokenizer), never one per chunk, so a diffusion endpoint's
canvas-sized chunks are not read as single tokens. What vLLM has no key for goes under `dgbench_*`.
"""

from __future__ import annotations

import math

from dgbench.stats import percentile

PERCENTILES = (50, 90, 99)
LATENCY_KEYS = {"ttft": "ttft_s", "tpot": "tpot_s", "itl": "chunk_gap_s", "e2el": "e2e_s"}


def _stats(prefix: str, values: list[float]) -> dict:
    xs = [v * 1e3 for v in values if v is not None]
    if not xs:
        return {}
    mean = sum(xs) / len(xs)
    std = math.sqrt(sum((x - mean) ** 2 for x in xs) / len(xs))   # numpy's default (ddof 0), as vLLM uses
    out = {f"mean_{prefix}_ms": mean, f"median_{prefix}_ms": percentile(xs, 50), f"std_{prefix}_ms": std}
    out.update({f"p{q}_{prefix}_ms": percentile(xs, q) for q in PERCENTILES})
    return out


def vllm_serve_record(point: dict, run_meta: dict | None = None) -> dict | None:
    """One serve point as a `vllm bench serve` result object; None for points that are not serve points."""
    s = point.get("serve")
    if s is None:
        return None
    params = point.get("params", {})
    raw = {**(point.get("reps") or {}), **(point.get("pooled") or {})}
    rate = params.get("request_rate")
    record = {
        "backend": "openai-chat" if point.get("engine") == "openai-chat" else "openai",
        "model_id": point.get("model"),
        "date": (run_meta or {}).get("created_utc"),
        "num_prompts": s["requests"],
        "request_rate": "inf" if rate in ("inf", None) else rate,
        "max_concurrency": params.get("concurrency"),
        "duration": s["duration_s"],
        "completed": s["succeeded"],
        "failed": s["failed"],
        "total_output_tokens": s["output_tokens"],
        "request_throughput": s["request_throughput_rps"],
        "request_goodput": s["goodput_rps"] if s.get("slo") else None,
        "output_throughput": s["output_tok_s"],
        "errors": s["errors"],
    }
    for prefix, key in LATENCY_KEYS.items():
        record.update(_stats(prefix, raw.get(key) or []))
    record.update({
        "dgbench_point_id": point.get("point_id"), "dgbench_endpoint": point.get("decoder"),
        "dgbench_paradigm": point.get("paradigm"), "dgbench_token_source": s.get("token_source"),
        "dgbench_chunk_tokens_histogram": s.get("chunk_tokens_histogram"),
        "dgbench_median_per_user_tok_s": percentile([x for x in raw.get("per_user_tok_s") or [] if x is not None], 50)
        if raw.get("per_user_tok_s") else None,
        "dgbench_slo": s.get("slo"), "dgbench_status": point.get("status"),
    })
    return record

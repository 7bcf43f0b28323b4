"""Per-point serving metrics from per-request records; the same definitions for diffusion and AR endpoints.

  output tok/s (aggregate) = output tokens of the successful requests / point duration (first send to last
                             byte), the figure `vllm bench serve` prints as output token throughput
  per-user tok/s           = one request's output tokens / its e2e (DESIGN.md), median over requests
  request throughput       = successful requests / point duration
  goodput                  = successful requests meeting every set SLO / point duration
  TTFT                     = send to the first chunk with content (diffusion: the first committed canvas)
  TPOT                     = (e2e - TTFT) / (output tokens - 1), as vLLM defines it, for both paradigms
  time between chunks      = gaps between consecutive content chunks of a request (diffusion: between
                             committed canvases; AR: inter-token latency), pooled over requests
  tokens per chunk         = token count of each content chunk, pooled; its distribution as {size: count}

Percentiles are linear-interpolation p50/p90/p99 with their n. Pure Python: report and gate read these.
"""

from __future__ import annotations

from collections import Counter

from dgbench.stats import percentile, summarize

LATENCIES = ("ttft_s", "e2e_s", "tpot_s", "chunk_gap_s")


def request_tpot(rec: dict) -> float | None:
    n = rec.get("output_tokens")
    if rec.get("status") != "ok" or not n or n < 2:
        return None
    return (rec["e2e_s"] - rec["ttft_s"]) / (n - 1)


def meets_slo(rec: dict, slo: dict) -> bool:
    if rec.get("status") != "ok":
        return False
    for key, value in (("ttft_ms", rec["ttft_s"]), ("e2e_ms", rec["e2e_s"]), ("tpot_ms", rec.get("tpot_s"))):
        limit = slo.get(key)
        if limit is not None and value is not None and value * 1000.0 > limit:
            return False
    return True


def _pct(values: list[float]) -> dict:
    return {"n": len(values), "p50": percentile(values, 50), "p90": percentile(values, 90),
            "p99": percentile(values, 99), "mean": sum(values) / len(values) if values else None}


def aggregate(requests: list[dict], duration_s: float, slo: dict) -> dict:
    """The point record's measured part: reps (one value per successful request), pooled chunk values,
    summaries, percentiles and the serve block (throughputs, goodput, errors, chunk sizes, token source)."""
    ok = [r for r in requests if r["status"] == "ok"]
    for r in ok:
        r["tpot_s"] = request_tpot(r)
    tokens = [r["output_tokens"] for r in ok if r.get("output_tokens") is not None]
    reps = {
        "ttft_s": [r["ttft_s"] for r in ok],
        "e2e_s": [r["e2e_s"] for r in ok],
        "tpot_s": [r["tpot_s"] for r in ok],
        "useful_tokens": [r.get("output_tokens") for r in ok],
        "per_user_tok_s": [r["output_tokens"] / r["e2e_s"] if r.get("output_tokens") is not None and r["e2e_s"] > 0
                           else None for r in ok],
    }
    pooled = {
        "chunk_gap_s": [b - a for r in ok for a, b in zip(r["chunk_times_s"], r["chunk_times_s"][1:])],
        "chunk_tokens": [t for r in ok for t in r["chunk_tokens"] if t is not None],
    }
    reps = {k: v for k, v in reps.items() if any(x is not None for x in v)}
    pooled = {k: v for k, v in pooled.items() if v}
    clean = {k: [x for x in v if x is not None] for k, v in {**reps, **pooled}.items()}
    good = [r for r in ok if meets_slo(r, slo)]
    errors = Counter(_cause(r["error"]) for r in requests if r["status"] != "ok")
    sources = Counter(r.get("token_source") for r in ok)
    mismatched = sum(1 for r in ok if r.get("usage_tokens") is not None and None not in r["chunk_tokens"]
                     and sum(r["chunk_tokens"]) != r["usage_tokens"])
    serve = {
        "requests": len(requests), "succeeded": len(ok), "failed": len(requests) - len(ok),
        "errors": dict(errors.most_common()),
        "duration_s": duration_s,
        "output_tokens": sum(tokens),
        "output_tok_s": sum(tokens) / duration_s if duration_s > 0 else None,
        "request_throughput_rps": len(ok) / duration_s if duration_s > 0 else None,
        "goodput_rps": len(good) / duration_s if duration_s > 0 else None,
        "goodput_requests": len(good),
        "slo": {k: v for k, v in slo.items() if v is not None},
        "token_source": dict(sources.most_common()),
        "usage_mismatches": mismatched,
        "chunk_tokens_histogram": {str(k): v for k, v in sorted(Counter(clean.get("chunk_tokens", [])).items())},
        "percentiles": {k: _pct(clean[k]) for k in (*LATENCIES, "chunk_tokens", "per_user_tok_s") if clean.get(k)},
    }
    return {"reps": reps, "pooled": pooled, "summary": {k: summarize(v) for k, v in clean.items()}, "serve": serve}


def _cause(error: str | None) -> str:
    """The cause without request-specific detail, so failures count by kind."""
    if not error:
        return "unknown"
    return error.split(":", 1)[0]

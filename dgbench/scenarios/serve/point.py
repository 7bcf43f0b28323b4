"""Serve sweep points (endpoint x concurrency x request rate) and measuring one of them.

A point is measured by one load run; every request it sent goes to RUN_DIR/requests.jsonl (through
`on_request`) and the point record holds the aggregates (aggregate.py). A point whose requests all
failed is a failed point (its error: the commonest cause) and the sweep goes on, as for any point.
"""

from __future__ import annotations

import asyncio
import hashlib
import itertools
import json
import math
from dataclasses import dataclass

from dgbench.scenarios.serve.aggregate import aggregate
from dgbench.scenarios.serve.config import endpoint_url


@dataclass(frozen=True)
class ServePoint:
    endpoint: dict
    concurrency: int | None
    request_rate: float
    load: dict
    task = None            # the runner's loop asks; serve points are not quality points
    scenario = "serve"     # the registered scenario that measures it

    @property
    def decoder(self) -> str:
        return self.endpoint["name"]

    @property
    def model(self) -> str:
        return self.endpoint["model"]

    @property
    def engine(self) -> str:
        return f"openai-{self.endpoint['api']}"

    @property
    def params(self) -> dict:
        return {"concurrency": self.concurrency, "request_rate": _rate(self.request_rate),
                "max_tokens": self.load["max_tokens"],
                **({"num_requests": self.load["num_requests"]} if self.load["num_requests"] is not None
                   else {"duration_s": self.load["duration_s"]})}

    @property
    def point_id(self) -> str:
        key = {"scenario": "serve", "endpoint": {k: v for k, v in self.endpoint.items() if k != "headers_env"},
               "concurrency": self.concurrency, "request_rate": _rate(self.request_rate), "load": self.load}
        return hashlib.sha1(json.dumps(key, sort_keys=True, default=str).encode()).hexdigest()[:12]

    def label(self) -> str:
        return f"{self.decoder} " + " ".join(f"{k}={v}" for k, v in self.params.items())


def _rate(rate: float):
    return "inf" if math.isinf(rate) else rate


def expand_serve(suite: dict) -> list[ServePoint]:
    load = suite["load"]
    return [ServePoint(ep, c, float(r), load) for ep in suite["endpoints"]
            for c, r in itertools.product(load["concurrency"], load["request_rate"])]


def token_counter(endpoint: dict):
    """A text -> token count function from endpoint.tokenizer, or None (then the server's ids or usage)."""
    name = endpoint.get("tokenizer")
    if not name:
        return None
    from pathlib import Path

    from dgbench.models.registry import SPECS
    from dgbench.tasks.codec import ByteCodec, TokenizerCodec, codec_for

    if name in SPECS:
        codec = codec_for(SPECS[name])
    elif Path(name).expanduser().is_dir():
        codec = TokenizerCodec(Path(name).expanduser())
    else:
        from dgbench.errors import ConfigError

        raise ConfigError(f"endpoint.tokenizer: {name!r} is neither a dgbench model nor a tokenizer folder")
    if isinstance(codec, ByteCodec):
        return lambda text: len(text.encode("utf-8"))
    return lambda text: len(codec.encode(text))


async def _paradigm(url: str, model: str, timeout_s: float) -> str:
    """What dgbench serve reports at /v1/models (other servers do not say: unknown)."""
    import aiohttp

    try:
        async with aiohttp.ClientSession(trust_env=False, timeout=aiohttp.ClientTimeout(total=timeout_s)) as s:
            async with s.get(url.rstrip("/") + "/models") as resp:
                data = (await resp.json(content_type=None)).get("data") or []
        for entry in data:
            if entry.get("id") == model and entry.get("paradigm") in ("diffusion", "autoregressive"):
                return entry["paradigm"]
    except Exception:  # any failure here only means "not said"; the load run reports real errors
        pass
    return "unknown"


def run_serve_point(point: ServePoint, suite: dict, seed: int, on_request=None) -> dict:
    from dgbench.scenarios.serve.loadgen import run_load
    from dgbench.scenarios.serve.prompts import load_prompts

    ep, load = point.endpoint, point.load
    prompts = load_prompts(suite["prompts"], seed)
    paradigm = ep["paradigm"]
    if paradigm == "auto":
        paradigm = asyncio.run(_paradigm(ep["url"], ep["model"], min(5.0, load["timeout_s"])))
    # The schedule's seed depends on the load only, so every endpoint gets the same arrivals.
    schedule_seed = int(hashlib.sha1(f"{seed}:{point.concurrency}:{_rate(point.request_rate)}".encode())
                        .hexdigest()[:8], 16)
    result = asyncio.run(run_load(
        ep, endpoint_url(ep), prompts, concurrency=point.concurrency, rate=point.request_rate,
        arrival=load["arrival"], num_requests=load["num_requests"], duration_s=load["duration_s"],
        max_requests=load["max_requests"], timeout_s=load["timeout_s"], max_tokens=load["max_tokens"],
        ignore_eos=load["ignore_eos"], warmup=load["warmup_requests"], seed=schedule_seed,
        count_tokens=token_counter(ep)))
    for rec in result["requests"]:
        rec["point_id"] = point.point_id
        rec["decoder"] = point.decoder
        if on_request:
            on_request(rec)
    measured = aggregate(result["requests"], result["duration_s"], suite["slo"])
    record = {"paradigm": paradigm, "endpoint": {k: v for k, v in ep.items() if k != "headers_env"},
              "load": {"arrival": load["arrival"], "timeout_s": load["timeout_s"],
                       "ignore_eos": load["ignore_eos"], "warmup_requests": load["warmup_requests"],
                       "prompts": suite["prompts"]["source"], "distinct_prompts": len(prompts)},
              "memory": None, "n_warmup": load["warmup_requests"], **measured}
    serve = measured["serve"]
    if serve["succeeded"] == 0:
        cause = next(iter(serve["errors"]), "no requests")
        first = next((r["error"] for r in result["requests"] if r["error"]), cause)
        record["status"] = "failed"
        record["error"] = {"kind": "serve_requests_failed",
                           "message": f"all {serve['requests']} requests failed; first: {first}"}
    else:
        record["status"] = "ok"
    return record

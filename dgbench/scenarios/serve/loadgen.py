"""The load generator: streamed OpenAI requests on an arrival schedule, each timed chunk by chunk (aiohttp).

Arrivals follow `vllm bench serve`: request i is due at the i-th arrival time (all at 0 for rate inf;
exponential gaps for poisson, 1/rate for constant, from a seeded generator so every endpoint gets the same
schedule), then waits for one of `concurrency` slots. Every request is bounded by `timeout_s` from the
moment it is sent to its last byte, so a hanging server costs at most that, and each failure is recorded
with its cause (refused, HTTP status, not an event stream, stream cut, timeout) instead of stopping the point.

Per request: when it was due and sent, TTFT (send to the first chunk with content), every content chunk's
arrival time and token count, e2e (send to `[DONE]`), the server's `usage` when it sends one. A chunk's
tokens are counted from the `token_ids` the chunk carries (dgbench serve, vLLM with return_token_ids),
else with the configured tokenizer, else only the total from `usage` is known; the record names the source.
"""

from __future__ import annotations

import asyncio
import json
import math
import os
import random
import time

import aiohttp
from aiohttp.http_exceptions import HttpProcessingError

MAX_ERROR_CHARS = 200


def arrival_times(n: int, rate: float, arrival: str, seed: int, horizon_s: float | None = None) -> list[float]:
    """Seconds from the point's start at which each request is due (n of them, or all within horizon_s)."""
    rng = random.Random(seed)
    times, t = [], 0.0
    while len(times) < n:
        if horizon_s is not None and t > horizon_s:
            break
        times.append(t)
        if math.isinf(rate):
            continue
        t += rng.expovariate(rate) if arrival == "poisson" else 1.0 / rate
    return times


def headers_from_env(headers_env: dict) -> dict:
    """Header values read from the environment now (never written to the results)."""
    from dgbench.errors import ConfigError

    out = {}
    for header, var in headers_env.items():
        value = os.environ.get(var)
        if value is None:
            raise ConfigError(f"endpoint.headers_env.{header}: environment variable {var} is not set")
        if header.lower() == "authorization" and " " not in value.strip():
            value = "Bearer " + value.strip()
        out[header] = value
    return out


def request_body(endpoint: dict, prompt, max_tokens: int, ignore_eos: bool) -> dict:
    body = {"model": endpoint["model"], "max_tokens": max_tokens, "stream": True,
            "stream_options": {"include_usage": True}, "temperature": 0.0}
    if ignore_eos:
        body["ignore_eos"] = True
    if endpoint["api"] == "chat":
        body["messages"] = prompt if isinstance(prompt, list) else [{"role": "user", "content": prompt}]
    else:
        body["prompt"] = prompt if isinstance(prompt, str) else "\n".join(m.get("content", "") for m in prompt)
    return {**body, **endpoint["extra_body"]}


def _short(text: str) -> str:
    """One line of at most MAX_ERROR_CHARS, control characters dropped: the text comes from the server (an
    escape sequence in an error body must not reach a terminal through the results)."""
    text = "".join(c for c in str(text) if c.isprintable() or c.isspace())
    text = " ".join(text.split())
    return text if len(text) <= MAX_ERROR_CHARS else text[:MAX_ERROR_CHARS] + "..."


def _chunk_content(obj: dict, api: str):
    """(text, token_ids or None, finish_reason) of the first choice of one streamed event."""
    choices = obj.get("choices")
    if not isinstance(choices, list):
        raise ValueError("event without a choices list")
    if not choices:
        return "", None, None
    choice = choices[0] if isinstance(choices[0], dict) else {}
    if api == "chat":
        delta = choice.get("delta") or {}
        text = delta.get("content") or "" if isinstance(delta, dict) else ""
    else:
        text = choice.get("text") or ""
    ids = choice.get("token_ids")
    return str(text), (list(ids) if isinstance(ids, list) else None), choice.get("finish_reason")


async def one_request(session, url: str, headers: dict, endpoint: dict, body: dict, timeout_s: float,
                      count_tokens) -> dict:
    rec = {"status": "failed", "error": None, "ttft_s": None, "e2e_s": None, "chunk_times_s": [],
           "chunk_tokens": [], "usage_tokens": None, "finish_reason": None, "token_source": None}
    sent = time.perf_counter()
    rec["sent"] = sent

    async def run():
        async with session.post(url, json=body, headers=headers) as resp:
            if resp.status != 200:
                text = await resp.text(errors="replace")
                try:
                    message = json.loads(text)["error"]["message"]
                except (ValueError, KeyError, TypeError):
                    message = text
                return f"HTTP {resp.status}: {_short(message) or resp.reason}"
            ctype = resp.headers.get("Content-Type", "")
            if "text/event-stream" not in ctype:
                return f"not an OpenAI event stream (Content-Type {ctype or 'missing'!r}): " \
                       f"{_short(await resp.text(errors='replace'))}"
            done = False
            async for raw in resp.content:
                line = raw.decode("utf-8", errors="replace").strip()
                if not line or line.startswith(":"):
                    continue
                if not line.startswith("data:"):
                    continue                          # other SSE fields (event:, id:) carry nothing here
                data = line[5:].strip()
                if data == "[DONE]":
                    done = True
                    break
                try:
                    obj = json.loads(data)
                    if not isinstance(obj, dict):
                        raise ValueError("not an object")
                    if "error" in obj:
                        err = obj["error"]
                        message = err.get("message") if isinstance(err, dict) else err
                        return f"server error mid-stream: {_short(message)}"
                    text, ids, finish = _chunk_content(obj, endpoint["api"])
                except ValueError as exc:
                    return f"non-OpenAI event ({exc}): {_short(data)}"
                usage = obj.get("usage")
                if isinstance(usage, dict) and isinstance(usage.get("completion_tokens"), int):
                    rec["usage_tokens"] = usage["completion_tokens"]
                if finish:
                    rec["finish_reason"] = finish
                if text or ids:
                    now = time.perf_counter() - sent
                    if rec["ttft_s"] is None:
                        rec["ttft_s"] = now
                    rec["chunk_times_s"].append(now)
                    if ids is not None:
                        rec["chunk_tokens"].append(len(ids))
                        rec["token_source"] = "server token_ids"
                    elif count_tokens is not None:
                        rec["chunk_tokens"].append(count_tokens(text))
                        rec["token_source"] = "tokenizer"
                    else:
                        rec["chunk_tokens"].append(None)
            if not done:
                return "stream ended before [DONE] (server closed the connection)"
            return None

    try:
        error = await asyncio.wait_for(run(), timeout=timeout_s)
    except asyncio.TimeoutError:
        error = f"timeout: no complete reply within {timeout_s:g} s"
    except aiohttp.ClientConnectorError as exc:
        error = f"cannot connect: {_short(exc.os_error or exc)}"
    except (aiohttp.ServerDisconnectedError, aiohttp.ClientPayloadError, aiohttp.ClientOSError) as exc:
        error = f"connection lost mid-reply: {_short(type(exc).__name__ + ': ' + str(exc))}"
    except aiohttp.ClientError as exc:
        error = f"{type(exc).__name__}: {_short(exc)}"
    except (ValueError, HttpProcessingError) as exc:   # e.g. an event line beyond aiohttp's limit (LineTooLong)
        error = f"malformed reply: {_short(type(exc).__name__ + ': ' + str(exc))}"
    end = time.perf_counter()
    rec["e2e_s"] = end - sent
    if error is None and rec["ttft_s"] is None:
        error = "reply had no content (no chunk with text or tokens)"
    if error is not None:
        rec["error"] = error
        return rec
    rec["status"] = "ok"
    if rec["token_source"] is None or None in rec["chunk_tokens"]:
        rec["token_source"] = "usage" if rec["usage_tokens"] is not None else "unknown"
    known = None not in rec["chunk_tokens"]
    rec["output_tokens"] = sum(rec["chunk_tokens"]) if known else rec["usage_tokens"]
    return rec


async def run_load(endpoint: dict, url: str, prompts: list, *, concurrency, rate: float, arrival: str,
                   num_requests: int | None, duration_s: float | None, max_requests: int, timeout_s: float,
                   max_tokens: int, ignore_eos: bool, warmup: int, seed: int, count_tokens=None) -> dict:
    headers = headers_from_env(endpoint["headers_env"])
    n = num_requests if num_requests is not None else max_requests
    schedule = arrival_times(n, rate, arrival, seed, horizon_s=duration_s)
    if duration_s is not None and math.isinf(rate):
        schedule = None                 # closed loop: `concurrency` workers send back to back until the horizon
    connector = aiohttp.TCPConnector(limit=0, force_close=False)
    # trust_env=False: no proxy from the environment, traffic goes exactly where the URL says.
    async with aiohttp.ClientSession(connector=connector, trust_env=False,
                                     timeout=aiohttp.ClientTimeout(total=None)) as session:
        for w in range(warmup):
            await one_request(session, url, headers, endpoint,
                              request_body(endpoint, prompts[w % len(prompts)], max_tokens, ignore_eos),
                              timeout_s, count_tokens)
        records: list[dict] = []
        start = time.perf_counter()
        slots = asyncio.Semaphore(concurrency) if concurrency else None

        async def send(i: int, due: float) -> None:
            delay = start + due - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            body = request_body(endpoint, prompts[i % len(prompts)], max_tokens, ignore_eos)
            if slots is None:
                rec = await one_request(session, url, headers, endpoint, body, timeout_s, count_tokens)
            else:
                async with slots:
                    rec = await one_request(session, url, headers, endpoint, body, timeout_s, count_tokens)
            rec.update(index=i, due_s=due, sent_s=rec.pop("sent") - start)
            records.append(rec)

        if schedule is not None:
            await asyncio.gather(*(send(i, due) for i, due in enumerate(schedule)))
        else:
            counter = iter(range(max_requests))

            async def worker() -> None:
                for i in counter:
                    if time.perf_counter() - start >= duration_s:
                        return
                    await send(i, time.perf_counter() - start)

            await asyncio.gather(*(worker() for _ in range(concurrency)))
        duration = time.perf_counter() - start
    records.sort(key=lambda r: r["index"])
    return {"requests": records, "duration_s": duration, "scheduled": len(records)}

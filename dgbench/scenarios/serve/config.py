"""The serve scenario's suite sections: endpoint(s), load, prompts, SLOs; validated before any traffic.

    scenario: serve
    endpoint: {url: http://127.0.0.1:8000/v1, model: ref-ar, api: completions}   # or endpoints: [...]
    load: {concurrency: [1, 4], request_rate: [inf], arrival: poisson, num_requests: 16, timeout_s: 30}
    prompts: {source: task, task: sudoku}      # or {source: file, path: prompts.jsonl} / {source: synthetic}
    slo: {ttft_ms: 500, e2e_ms: 5000, tpot_ms: 50}

The sections have no defaults at the suite level, so suites of other scenarios keep their config hash.
"""

from __future__ import annotations

import math
import os
import re

from dgbench.errors import ConfigError
from dgbench.validation import Field, Location, dotted, validate, validate_mapping

APIS = ("completions", "chat")
PARADIGMS = ("auto", "diffusion", "autoregressive", "unknown")

ENDPOINT = {
    "name": Field(str, default=None, allow_none=True, help="row label (default: the model name)"),
    "url": Field(str, required=True, help="base URL of an OpenAI-compatible API, e.g. http://127.0.0.1:8000/v1"),
    "model": Field(str, required=True, help="the model name the server expects in requests"),
    "api": Field(str, default="completions", choices=list(APIS),
                 help="completions: POST /completions; chat: POST /chat/completions"),
    "headers_env": Field(dict, default=dict, values=Field(str),
                         help="request headers read from environment variables, e.g. {Authorization: OPENAI_API_KEY}"
                              " (an Authorization value without a scheme gets 'Bearer '); values are never stored"),
    "paradigm": Field(str, default="auto", choices=list(PARADIGMS),
                      help="diffusion or autoregressive (auto: ask dgbench serve's /v1/models, else unknown)"),
    "tokenizer": Field(str, default=None, allow_none=True,
                       help="count chunk tokens with this: a dgbench model name (its codec) or a local tokenizer "
                            "folder; unset: the server's token_ids, else its usage"),
    "extra_body": Field(dict, default=dict, help="fields added to every request body (e.g. vLLM's top_k)"),
}

LOAD = {
    "concurrency": Field(list, default=lambda: [1], scalar_ok=True, item=Field(int, min=1, allow_none=True),
                         help="requests in flight at most (a sweep axis); null: unbounded (rate only)"),
    "request_rate": Field(list, default=lambda: [math.inf], scalar_ok=True, item=Field(float, min=0.0),
                          help="requests per second (a sweep axis); inf: send as fast as concurrency allows"),
    "arrival": Field(str, default="poisson", choices=["poisson", "constant"],
                     help="inter-arrival times: exponential (seeded) or 1/rate"),
    "num_requests": Field(int, default=None, allow_none=True, min=1, help="requests per point"),
    "duration_s": Field(float, default=None, allow_none=True, min=0.0,
                        help="instead of num_requests: send for this long (bounded by max_requests)"),
    "max_requests": Field(int, default=1000, min=1, help="a duration-bound point sends at most this many"),
    "timeout_s": Field(float, default=60.0, min=0.001, help="per request, connect to last byte"),
    "max_tokens": Field(int, default=64, min=1, help="tokens asked per request"),
    "ignore_eos": Field(bool, default=True, help="ask the server to generate max_tokens (vLLM's ignore_eos)"),
    "warmup_requests": Field(int, default=1, min=0, help="untimed requests before each point"),
}

PROMPTS = {
    "source": Field(str, default="task", choices=["task", "file", "synthetic"]),
    "task": Field(str, default="sudoku", choices=lambda: _prompt_tasks(),
                  help="source task: prompts of this quality task"),
    "task_config": Field(dict, default=dict, help="the task's settings, as in a quality suite's tasks section"),
    "path": Field(str, default=None, allow_none=True,
                  help="source file: .jsonl with a 'prompt' (or 'messages') field per line, or .txt one per line"),
    "n": Field(int, default=64, min=1, help="distinct prompts (cycled through)"),
    "length": Field(int, default=32, min=1, help="source synthetic: characters per prompt"),
}

SLO = {
    "ttft_ms": Field(float, default=None, allow_none=True, min=0.0),
    "e2e_ms": Field(float, default=None, allow_none=True, min=0.0),
    "tpot_ms": Field(float, default=None, allow_none=True, min=0.0),
}

SECTIONS = ("endpoint", "endpoints", "load", "prompts", "slo")


def validate_serve(suite: dict, loc: Location) -> None:
    """Fill in and check the serve sections of a `scenario: serve` suite in place (harness/suite.py refuses
    them in suites of other scenarios: ServeScenario.suite_sections)."""
    if suite.get("decoders"):
        raise ConfigError(f"{loc.at(('decoders',))}: decoders: scenario serve measures endpoints, not in-process "
                          "decoders; describe the server under endpoint: {url, model} (start one with dgbench serve)")
    if ("endpoint" in suite) == ("endpoints" in suite):
        raise ConfigError(f"{loc.at(())}: scenario serve needs exactly one of endpoint: {{url, model}} or "
                          "endpoints: [{name, url, model}, ...]")
    if "endpoint" in suite:
        endpoints = [validate(suite["endpoint"], Field(dict, fields=ENDPOINT), loc, ("endpoint",))]
        paths = [("endpoint",)]
    else:
        raw = validate(suite["endpoints"], Field(list), loc, ("endpoints",))
        if not raw:
            raise ConfigError(f"{loc.at(('endpoints',))}: endpoints: at least one endpoint is needed")
        endpoints = [validate(e, Field(dict, fields=ENDPOINT), loc, ("endpoints", i)) for i, e in enumerate(raw)]
        paths = [("endpoints", i) for i in range(len(raw))]
    names = set()
    for ep, path in zip(endpoints, paths):
        _check_url(ep["url"], loc, path)
        ep["name"] = ep["name"] or ep["model"]
        if ep["name"] in names:
            raise ConfigError(f"{loc.at(path + ('name',))}: {dotted(path + ('name',))}: {ep['name']!r} is used "
                              "twice; give each endpoint its own name (it labels result rows)")
        names.add(ep["name"])
    suite["endpoints"] = endpoints
    suite.pop("endpoint", None)
    raw_load = dict(suite.get("load") or {}) if isinstance(suite.get("load") or {}, dict) else suite["load"]
    if isinstance(raw_load, dict) and "request_rate" in raw_load:
        rates = raw_load["request_rate"]
        raw_load["request_rate"] = [_rate_value(r) for r in rates] if isinstance(rates, list) else _rate_value(rates)
    load = validate(raw_load, Field(dict, fields=LOAD), loc, ("load",))
    if load["num_requests"] is None and load["duration_s"] is None:
        load["num_requests"] = 16
    if load["num_requests"] is not None and load["duration_s"] is not None:
        raise ConfigError(f"{loc.at(('load',))}: load: give num_requests or duration_s, not both")
    if any(math.isnan(r) for r in load["request_rate"]):
        raise ConfigError(f"{loc.at(('load', 'request_rate'))}: load.request_rate: nan is no rate")
    for c in load["concurrency"]:
        for r in load["request_rate"]:
            if c is None and math.isinf(r):
                raise ConfigError(f"{loc.at(('load', 'concurrency'))}: load: concurrency null with request_rate inf "
                                  "would send every request at once without bound; give one of them a number")
    if any(r == 0 for r in load["request_rate"]):
        raise ConfigError(f"{loc.at(('load', 'request_rate'))}: load.request_rate: 0 sends nothing; use a positive "
                          "rate or inf")
    # Stored as "inf": run.json and the config hash stay strict JSON (json writes float inf as Infinity).
    load["request_rate"] = ["inf" if math.isinf(r) else r for r in load["request_rate"]]
    suite["load"] = load
    prompts = validate_mapping(suite.get("prompts") or {}, PROMPTS, loc, ("prompts",))
    if prompts["source"] == "file" and not prompts["path"]:
        raise ConfigError(f"{loc.at(('prompts',))}: prompts.path: source file needs a path (.jsonl or .txt)")
    from dgbench.scenarios.serve.prompts import load_prompts

    load_prompts(prompts, suite["seed"])         # a bad file or task setting fails here, before any traffic
    suite["prompts"] = prompts
    for ep, path in zip(endpoints, paths):
        tokenizer = ep["tokenizer"]
        if tokenizer and not _is_tokenizer(tokenizer):
            raise ConfigError(f"{loc.at(path + ('tokenizer',))}: {dotted(path + ('tokenizer',))}: {tokenizer!r} is "
                              "neither a dgbench model (`dgbench list models`) nor a local tokenizer folder")
        for header, var in ep["headers_env"].items():
            if var not in os.environ:
                raise ConfigError(f"{loc.at(path + ('headers_env', header))}: {dotted(path + ('headers_env', header))}"
                                  f": environment variable {var} is not set; export it (its value is sent, never "
                                  "stored)")
    suite["slo"] = validate_mapping(suite.get("slo") or {}, SLO, loc, ("slo",))


def _is_tokenizer(name: str) -> bool:
    from pathlib import Path

    from dgbench.models.registry import SPECS

    return name in SPECS or Path(name).expanduser().is_dir()


def _prompt_tasks() -> list[str]:
    """Tasks whose items are prompts (lm-eval tasks are run by lm-eval itself)."""
    from dgbench.tasks import TASKS

    return [name for name, task in TASKS.items() if task.scenario == "quality"]


def _rate_value(value):
    """YAML spells infinity .inf; "inf" (what people type, and --set request_rate=inf) means it too."""
    if isinstance(value, str) and value.strip().lower() in ("inf", "+inf", ".inf", "infinity"):
        return math.inf
    return value


def _check_url(url: str, loc: Location, path: tuple) -> None:
    if not re.match(r"^https?://[^/\s:]+(:\d{1,5})?(/\S*)?$", url):
        hint = f"did you mean 'http://{url}'?" if "://" not in url else "e.g. http://127.0.0.1:8000/v1"
        raise ConfigError(f"{loc.at(path + ('url',))}: {dotted(path + ('url',))}: {url!r} is not an http(s) URL; "
                          f"{hint}")
    port = re.search(r"://[^/]+:(\d+)", url)
    if port and not 0 < int(port.group(1)) < 65536:
        raise ConfigError(f"{loc.at(path + ('url',))}: {dotted(path + ('url',))}: port {port.group(1)} is out of range")


def endpoint_url(endpoint: dict) -> str:
    base = endpoint["url"].rstrip("/")
    suffix = "/chat/completions" if endpoint["api"] == "chat" else "/completions"
    if base.endswith(suffix):      # the full route given: keep it
        return base
    return base + suffix


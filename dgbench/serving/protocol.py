"""The OpenAI wire format dgbench serve speaks: request parsing, response and SSE chunk shapes.

Follows OpenAI's `/v1/completions` and `/v1/chat/completions` (and vLLM's extensions that benchmarks send:
`ignore_eos`, `min_tokens` is ignored). A request field dgbench cannot honour (n > 1, logprobs, tools)
is refused with a 400 naming the field rather than silently ignored. Sampling is the server's: the engine's
knobs (`--knob`) decide temperature and the rest; a request's `temperature`/`top_p` are accepted and not
applied, and the model list says so (`sampling: server knobs`).

Every streamed choice also carries `token_ids`, the ids of exactly the tokens in that chunk (vLLM returns
the same field with `return_token_ids`), so a client counts tokens per chunk without a tokenizer.
"""

from __future__ import annotations

import json
import time
import uuid
from dataclasses import dataclass

DEFAULT_MAX_TOKENS = 16        # OpenAI's default for /v1/completions
MAX_TOKENS_LIMIT = 65536
UNSUPPORTED = ("logprobs", "top_logprobs", "tools", "functions", "best_of", "echo", "suffix")


class RequestError(ValueError):
    """A request the server refuses: HTTP status + OpenAI error body."""

    def __init__(self, message: str, status: int = 400, code: str = "invalid_request_error", param=None):
        super().__init__(message)
        self.status, self.code, self.param = status, code, param

    def body(self) -> dict:
        return {"error": {"message": str(self), "type": self.code, "param": self.param, "code": self.status}}


@dataclass
class ParsedRequest:
    kind: str                      # "completion" | "chat"
    prompt_text: str | None        # None when the prompt came as token ids
    prompt_ids: list[int] | None
    max_tokens: int
    stream: bool
    include_usage: bool
    ignore_eos: bool
    seed: int | None
    model: str


def parse_request(body, kind: str, served_model: str) -> ParsedRequest:
    if not isinstance(body, dict):
        raise RequestError("request body must be a JSON object")
    model = body.get("model", served_model)
    if model != served_model:
        raise RequestError(f"model {model!r} is not served here; this server serves {served_model!r}", 404,
                           "model_not_found", "model")
    for key in UNSUPPORTED:
        if body.get(key) not in (None, False, 0, [], ""):
            raise RequestError(f"{key}: not supported by dgbench serve", param=key)
    if body.get("n", 1) != 1:
        raise RequestError("n: only n=1 is supported", param="n")
    prompt_text, prompt_ids = None, None
    if kind == "chat":
        messages = body.get("messages")
        if not isinstance(messages, list) or not messages:
            raise RequestError("messages: a non-empty list of {role, content} is required", param="messages")
        parts = []
        for i, m in enumerate(messages):
            content = m.get("content") if isinstance(m, dict) else None
            if isinstance(content, list):   # content parts: keep the text ones
                content = "".join(p.get("text", "") for p in content if isinstance(p, dict))
            if not isinstance(content, str):
                raise RequestError(f"messages[{i}].content: a string is required", param="messages")
            parts.append(content)
        # No chat template: the embedded models were trained on bare text, so the turns are joined as is.
        prompt_text = "\n".join(parts)
        max_tokens = body.get("max_completion_tokens", body.get("max_tokens"))
    else:
        prompt = body.get("prompt")
        if isinstance(prompt, list) and len(prompt) == 1 and isinstance(prompt[0], (str, list)):
            prompt = prompt[0]
        if isinstance(prompt, str):
            prompt_text = prompt
        elif isinstance(prompt, list) and prompt and all(isinstance(t, int) and not isinstance(t, bool)
                                                         for t in prompt):
            prompt_ids = list(prompt)
        else:
            raise RequestError("prompt: a string, or a list of token ids (one prompt per request)", param="prompt")
        max_tokens = body.get("max_tokens")
    if max_tokens is None:
        max_tokens = DEFAULT_MAX_TOKENS
    if not isinstance(max_tokens, int) or isinstance(max_tokens, bool) or not 1 <= max_tokens <= MAX_TOKENS_LIMIT:
        raise RequestError(f"max_tokens: an integer in [1, {MAX_TOKENS_LIMIT}], got {max_tokens!r}",
                           param="max_tokens")
    seed = body.get("seed")
    if seed is not None and (not isinstance(seed, int) or isinstance(seed, bool)):
        raise RequestError("seed: an integer", param="seed")
    options = body.get("stream_options") or {}
    return ParsedRequest(kind, prompt_text, prompt_ids, max_tokens, bool(body.get("stream", False)),
                         bool(options.get("include_usage", False)) if isinstance(options, dict) else False,
                         bool(body.get("ignore_eos", False)), seed, served_model)


class ResponseShape:
    """Builds one request's response objects (ids and timestamps fixed at creation)."""

    def __init__(self, req: ParsedRequest):
        self.req = req
        self.id = ("chatcmpl-" if req.kind == "chat" else "cmpl-") + uuid.uuid4().hex[:24]
        self.created = int(time.time())
        self.object = "chat.completion" if req.kind == "chat" else "text_completion"

    def _choice(self, text: str, token_ids: list[int], finish_reason, delta: bool) -> dict:
        if self.req.kind == "chat":
            key = "delta" if delta else "message"
            body = {"role": "assistant", "content": text} if not delta or text else {"content": text}
            return {"index": 0, key: body, "finish_reason": finish_reason, "token_ids": token_ids}
        return {"index": 0, "text": text, "finish_reason": finish_reason, "logprobs": None, "token_ids": token_ids}

    def chunk(self, text: str, token_ids: list[int], finish_reason=None) -> dict:
        obj = self.object + ".chunk" if self.req.kind == "chat" else self.object
        return {"id": self.id, "object": obj, "created": self.created, "model": self.req.model,
                "choices": [self._choice(text, token_ids, finish_reason, delta=True)]}

    def usage_chunk(self, usage: dict, extra: dict) -> dict:
        obj = self.object + ".chunk" if self.req.kind == "chat" else self.object
        return {"id": self.id, "object": obj, "created": self.created, "model": self.req.model, "choices": [],
                "usage": usage, "dgbench": extra}

    def full(self, text: str, token_ids: list[int], finish_reason: str, usage: dict, extra: dict) -> dict:
        return {"id": self.id, "object": self.object, "created": self.created, "model": self.req.model,
                "choices": [self._choice(text, token_ids, finish_reason, delta=False)], "usage": usage,
                "dgbench": extra}


def sse(obj) -> bytes:
    """One server-sent event (the `data: ...` framing OpenAI streams use)."""
    return b"data: " + json.dumps(obj, separators=(",", ":")).encode() + b"\n\n"


SSE_DONE = b"data: [DONE]\n\n"

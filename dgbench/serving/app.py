"""The ASGI app of dgbench serve (FastAPI): OpenAI-compatible completions, health, Prometheus metrics.

Each request becomes a batcher Job; the worker thread pushes chunks into the request's asyncio queue with
`call_soon_threadsafe`, and the response streams them as server-sent events (one event per committed
canvas or token) or gathers them into one JSON body. The last streamed event before `[DONE]` carries
`usage` (always for non-streaming replies; with `stream_options.include_usage` for streams, as OpenAI
does) and a `dgbench` object with the server-side timing: queue wait, batch size, each chunk's time.
"""

import asyncio
from contextlib import asynccontextmanager
from dataclasses import dataclass

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, PlainTextResponse, StreamingResponse

from dgbench.serving.batcher import Batcher, Job
from dgbench.serving.metrics import ServerStats
from dgbench.serving.protocol import SSE_DONE, RequestError, ResponseShape, parse_request, sse


@dataclass
class ServedModel:
    name: str              # the `model` clients send (the spec name unless --served-name)
    spec: object
    engine: str
    paradigm: str
    codec: object
    batcher: Batcher
    stats: ServerStats
    knobs: dict
    max_prompt_tokens: int


def create_app(served: ServedModel):
    state = {"shutting_down": False}

    @asynccontextmanager
    async def lifespan(_app):
        served.batcher.start()
        yield
        # Graceful shutdown (uvicorn stops accepting, finishes open responses, then runs this): refuse new
        # work, let the batch in flight end, fail whatever is still queued.
        state["shutting_down"] = True
        await asyncio.to_thread(served.batcher.stop)

    app = FastAPI(title="dgbench serve", docs_url=None, redoc_url=None, openapi_url=None, lifespan=lifespan)

    @app.exception_handler(RequestError)
    async def _refused(_request, exc: RequestError):
        served.stats.rejected()
        return JSONResponse(exc.body(), status_code=exc.status)

    @app.get("/health")
    async def health():
        if state["shutting_down"]:
            return JSONResponse({"status": "shutting down"}, status_code=503)
        return {"status": "ok", "model": served.name, "engine": served.engine, "paradigm": served.paradigm}

    @app.get("/v1/models")
    async def models():
        return {"object": "list", "data": [{
            "id": served.name, "object": "model", "owned_by": "dgbench", "engine": served.engine,
            "paradigm": served.paradigm, "knobs": served.knobs, "streaming": (
                ("canvas" if served.paradigm == "diffusion" else "token") if served.batcher.streams else "final"),
            "sampling": "server knobs", "tokenizer": served.codec.name,
            "batching": {"window_s": served.batcher.window_s, "max_batch": served.batcher.max_batch}}]}

    @app.get("/metrics")
    async def metrics():
        return PlainTextResponse(served.stats.render(), media_type="text/plain; version=0.0.4; charset=utf-8")

    async def handle(request: Request, kind: str):
        try:
            body = await request.json()
        except Exception:
            raise RequestError("request body is not valid JSON") from None
        req = parse_request(body, kind, served.name)
        if state["shutting_down"]:
            raise RequestError("server is shutting down", 503, "unavailable")
        ids = req.prompt_ids if req.prompt_ids is not None else served.codec.encode(req.prompt_text)
        if not ids:
            raise RequestError("prompt: empty after tokenization", param="prompt")
        if len(ids) > served.max_prompt_tokens:
            raise RequestError(f"prompt: {len(ids)} tokens, this server takes at most {served.max_prompt_tokens}",
                               param="prompt")
        loop = asyncio.get_running_loop()
        events: asyncio.Queue = asyncio.Queue()
        job = Job(ids, req.max_tokens, req.ignore_eos, req.seed,
                  on_chunk=lambda t, at: loop.call_soon_threadsafe(events.put_nowait, ("chunk", t)),
                  on_done=lambda result: loop.call_soon_threadsafe(events.put_nowait, ("done", result)))
        served.stats.request_started()
        served.batcher.submit(job)
        shape = ResponseShape(req)
        piece = served.codec.stream()

        def usage(n: int) -> dict:
            return {"prompt_tokens": len(ids), "completion_tokens": n, "total_tokens": len(ids) + n}

        if not req.stream:
            status = "error"
            try:
                while True:
                    what, value = await events.get()
                    if what == "done":
                        break
                if "error" in value:
                    return JSONResponse({"error": {"message": value["error"], "type": "server_error",
                                                   "param": None, "code": 500}}, status_code=500)
                status = "ok"
                tokens = value["tokens"]
                return shape.full(piece(tokens, final=True), tokens, value["finish_reason"], usage(len(tokens)),
                                  value["timing"])
            finally:
                served.stats.request_ended(status)

        async def stream():
            status = "error"
            try:
                while True:
                    what, value = await events.get()
                    if what == "chunk":
                        yield sse(shape.chunk(piece(value), value))
                        continue
                    if "error" in value:   # mid-stream failure: an OpenAI error event, then the end
                        yield sse({"error": {"message": value["error"], "type": "server_error", "code": 500}})
                        break
                    yield sse(shape.chunk(piece([], final=True), [], value["finish_reason"]))
                    if req.include_usage:
                        yield sse(shape.usage_chunk(usage(len(value["tokens"])), value["timing"]))
                    status = "ok"
                    break
                yield SSE_DONE
            finally:   # also on client disconnect: the row keeps its place in the batch but is not sent
                job.cancelled = True
                served.stats.request_ended(status)

        return StreamingResponse(stream(), media_type="text/event-stream",
                                 headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})

    @app.post("/v1/completions")
    async def completions(request: Request):
        return await handle(request, "completion")

    @app.post("/v1/chat/completions")
    async def chat(request: Request):
        return await handle(request, "chat")

    return app

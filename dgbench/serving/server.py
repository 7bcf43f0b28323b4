"""Build and run dgbench serve: load the model, wrap it in its engine, serve it with uvicorn.

The listening socket is bound here, before uvicorn starts, so `--port 0` (any free port) prints the port
actually taken. uvicorn handles SIGINT and SIGTERM itself: it stops accepting, lets open responses
finish (at most `graceful_s`), runs the app's shutdown (the batcher lets its call end) and returns.
"""

from __future__ import annotations

import contextlib
import signal
import socket
import sys
import threading
from dataclasses import dataclass

from dgbench.errors import ConfigError


@dataclass
class ServeOptions:
    model: str
    engine: str | None = None
    knobs: dict | None = None
    device: str = "cpu"
    dtype: str = "auto"
    host: str = "127.0.0.1"
    port: int = 8000
    served_name: str | None = None
    window_ms: float = 10.0
    max_batch: int = 8
    seed: int = 0
    warmup: int = 1
    max_prompt_tokens: int = 2048
    graceful_s: float = 5.0
    log_level: str = "warning"



def pick_engine(spec, engine: str | None) -> str:
    from dgbench.backends import ENGINES

    if engine is None:
        candidates = [e.name for e in ENGINES.values() if e.paradigm == spec.paradigm and e.name.startswith("dgbench-")
                      and "on_output" in _params(e.factory.generate)]
        preferred = ("dgbench-diffusion" if spec.family == "diffusiongemma" else
                     "dgbench-masked" if spec.paradigm == "diffusion" else "dgbench-autoregressive")
        engine = preferred if preferred in candidates else (candidates[0] if candidates else None)
        if engine is None:
            raise ConfigError(f"--model {spec.name}: no streaming engine for {spec.paradigm} models; pass --engine")
    if engine not in ENGINES:
        from dgbench.validation import did_you_mean

        raise ConfigError(f"--engine {engine}: unknown engine; {did_you_mean(engine, sorted(ENGINES))}")
    if ENGINES[engine].paradigm != spec.paradigm:
        raise ConfigError(f"--engine {engine}: decodes {ENGINES[engine].paradigm} models but {spec.name!r} is "
                          f"{spec.paradigm}; see `dgbench list engines`")
    return engine


def _params(fn) -> set[str]:
    import inspect

    return set(inspect.signature(fn).parameters)


def build_served(opts: ServeOptions):
    """Everything but the socket: spec, engine, validated knobs, loaded model, codec, batcher (checked in
    this order, so a typo fails before minutes of loading)."""
    from dgbench.backends import ENGINES
    from dgbench.models.registry import SPECS, get
    from dgbench.serving.app import ServedModel
    from dgbench.serving.batcher import Batcher
    from dgbench.tasks.codec import codec_for
    from dgbench.serving.metrics import ServerStats
    from dgbench.validation import Location, did_you_mean, validate_mapping

    if opts.model not in SPECS:
        raise ConfigError(f"--model {opts.model}: unknown model; {did_you_mean(opts.model, sorted(SPECS))} "
                          "(see `dgbench list models`)")
    spec = get(opts.model)
    engine_name = pick_engine(spec, opts.engine)
    engine = ENGINES[engine_name]
    knobs = validate_mapping(dict(opts.knobs or {}), engine.knobs, Location("--knob"), ())
    if opts.max_batch < 1 or opts.window_ms < 0:
        raise ConfigError("--max-batch must be >= 1 and --batch-window-ms >= 0")
    codec = codec_for(spec)

    from dgbench.hardware.detect import resolve_dtype
    from dgbench.models.cache import ModelCache

    device = opts.device
    if device == "auto":
        import torch

        device = "cuda:0" if torch.cuda.is_available() else "cpu"
    model = ModelCache().get(spec, device, resolve_dtype(opts.dtype, device))
    decoder = engine.factory(model, spec, knobs)
    tokens = spec.special_tokens
    stop_ids = {int(tokens[k]) for k in ("eos", "pad") if k in tokens}
    # The masked engine needs gen_length to be a multiple of its block; round each batch's length up to it.
    multiple = knobs.get("block_length") or 1
    stats = ServerStats(opts.served_name or spec.name, engine_name)
    batcher = Batcher(decoder, int(tokens["pad"]), stop_ids, device, opts.window_ms / 1000.0, opts.max_batch,
                      opts.seed, multiple, stats)
    for w in range(opts.warmup):   # first-call costs (allocations, lazy init) stay out of the first request
        from dgbench.decoding.autoregressive import left_pad
        from dgbench.telemetry.timing import Clock

        ids, mask = left_pad([codec.encode("warmup")], int(tokens["pad"]), device=device)
        decoder.generate(ids, mask, max(multiple, 8), True, opts.seed + w, Clock(device))
    return ServedModel(opts.served_name or spec.name, spec, engine_name, spec.paradigm, codec, batcher, stats,
                       knobs, opts.max_prompt_tokens)


def bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise ConfigError(f"--host {host} --port {port}: cannot listen there ({exc.strerror}); "
                          "pick another port, or --port 0 for any free one") from None
    sock.listen(128)
    sock.set_inheritable(True)
    return sock


def serve(opts: ServeOptions) -> int:
    try:
        import uvicorn

        from dgbench.serving.app import create_app
    except ImportError as exc:
        raise ConfigError(f"dgbench serve needs the serve extra ({exc.name} is missing): "
                          "pip install 'dgbench[serve]'") from None
    sock = bind(opts.host, opts.port)   # before loading: a taken port fails fast
    # The decode loop runs in a worker thread and the event loop that sends its chunks needs the GIL too;
    # Python hands the GIL over every 5 ms by default, which would hold each streamed chunk back by up to
    # that. 1 ms keeps the delivery lag below the time of a decode step on small models.
    sys.setswitchinterval(0.001)
    served = build_served(opts)
    app = create_app(served)
    host, port = sock.getsockname()[:2]
    shown = f"[{host}]" if ":" in host else host
    print(f"dgbench serve: http://{shown}:{port}/v1 model={served.name} engine={served.engine} "
          f"streaming={'yes' if served.batcher.streams else 'final chunk only'} "
          f"batch window {opts.window_ms:g} ms, max batch {opts.max_batch}", flush=True)
    config = uvicorn.Config(app, log_level=opts.log_level, timeout_graceful_shutdown=opts.graceful_s,
                            access_log=False, lifespan="on")
    server = _QuietServer(config)
    try:
        server.run(sockets=[sock])
    finally:
        sock.close()
    print(f"dgbench serve: stopped ({server.stopped_by or 'server exited'})", file=sys.stderr, flush=True)
    return 0


def _quiet_server_class():
    import uvicorn

    class QuietServer(uvicorn.Server):
        """uvicorn's server with its own signal capture replaced: uvicorn re-raises a captured SIGTERM after
        shutting down (so the process dies by the signal); here a first SIGINT/SIGTERM shuts down gracefully
        and the command returns 0, a second one forces the exit."""

        stopped_by: str | None = None

        @contextlib.contextmanager
        def capture_signals(self):
            if threading.current_thread() is not threading.main_thread():
                yield
                return
            previous = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}

            def handler(signum, frame):
                if self.should_exit:
                    self.force_exit = True
                self.should_exit = True
                self.stopped_by = signal.Signals(signum).name

            for s in previous:
                signal.signal(s, handler)
            try:
                yield
            finally:
                for s, h in previous.items():
                    signal.signal(s, h)

    return QuietServer


def _QuietServer(config):  # noqa: N802 - a class built lazily (uvicorn is an optional extra)
    return _quiet_server_class()(config)

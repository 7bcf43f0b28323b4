"""`dgbench serve`: put any dgbench decoder behind an OpenAI-compatible HTTP server.

Exit codes: 0 stopped cleanly (Ctrl-C / SIGTERM), 2 bad input (model, engine, knob, port: one line).
Heavy imports (torch, fastapi, uvicorn) happen inside main(), so `dgbench --help` stays fast.
"""

from __future__ import annotations

from dgbench.errors import ConfigError

NAME = "serve"

SERVE_EPILOG = """\
examples:
  dgbench serve --model ref-ar --port 8000                 # AR, token by token
  dgbench serve --model ref-diffusion --knob block_length=8 # masked diffusion, one chunk per block
  dgbench serve --model diffusiongemma-tiny --knob max_denoising_steps=4 --port 0   # canvas per chunk
  dgbench run --suite serve --set endpoint.url=http://127.0.0.1:8000/v1 --set endpoint.model=ref-ar

endpoints: POST /v1/completions, POST /v1/chat/completions (stream: true for server-sent events, one event
per committed canvas or token, each carrying its token_ids), GET /v1/models, GET /health, GET /metrics
(Prometheus text). Batching: requests arriving within --batch-window-ms share one generate call (at most
--max-batch); a batch is fixed once its call starts (not continuous batching, see dgbench/serving/batcher.py).

exit codes: 0 stopped cleanly (SIGINT/SIGTERM), 2 bad input (model, engine, knob, host/port, missing extra)
"""


def add_parser(sub, formatter) -> None:
    p = sub.add_parser(NAME, help="serve a decoder over an OpenAI-compatible HTTP API", formatter_class=formatter,
                       epilog=SERVE_EPILOG,
                       description="Serve one model through one dgbench engine, OpenAI-compatible, streaming "
                                   "each committed canvas (diffusion) or token (autoregressive).")
    p.add_argument("--model", required=True, metavar="NAME", help="a model from `dgbench list models`")
    p.add_argument("--engine", metavar="NAME", help="decoding engine (default: dgbench's streaming engine for "
                                                     "the model's paradigm)")
    p.add_argument("--knob", dest="knobs", action="append", default=[], metavar="KEY=VALUE",
                   help="engine knob, value in YAML, e.g. --knob max_denoising_steps=8 (repeatable)")
    p.add_argument("--device", default="cpu", metavar="cpu|cuda[:N]|auto")
    p.add_argument("--dtype", default="auto", choices=["auto", "float32", "bfloat16", "float16"])
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1: this machine only)")
    p.add_argument("--port", type=int, default=8000, help="port (default 8000; 0: any free port, printed)")
    p.add_argument("--served-name", metavar="NAME", help="the model name clients send (default: the model's)")
    p.add_argument("--batch-window-ms", type=float, default=10.0, metavar="MS",
                   help="how long a batch waits for more requests after its first (default 10)")
    p.add_argument("--max-batch", type=int, default=8, metavar="N", help="requests per generate call (default 8)")
    p.add_argument("--seed", type=int, default=0, help="seed of the first batch; batch k uses seed + k")
    p.add_argument("--warmup", type=int, default=1, metavar="N", help="untimed generate calls before serving")
    p.add_argument("--max-prompt-tokens", type=int, default=2048, metavar="N", help="longer prompts get a 400")
    p.add_argument("--log-level", default="warning", choices=["critical", "error", "warning", "info", "debug"])


def parse_knobs(items: list[str]) -> dict:
    import yaml

    knobs = {}
    for item in items:
        key, sep, raw = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"--knob {item!r}: expected KEY=VALUE, e.g. --knob max_denoising_steps=8")
        try:
            knobs[key.strip()] = yaml.safe_load(raw)
        except yaml.YAMLError:
            raise ConfigError(f"--knob {key}: cannot parse {raw!r} as YAML") from None
    return knobs


def main(args) -> int:
    from dgbench.serving.server import ServeOptions, serve

    if not 0 <= args.port <= 65535:
        raise ConfigError(f"--port {args.port}: a port is 0..65535 (0: any free port)")
    return serve(ServeOptions(model=args.model, engine=args.engine, knobs=parse_knobs(args.knobs),
                              device=args.device, dtype=args.dtype, host=args.host, port=args.port,
                              served_name=args.served_name, window_ms=args.batch_window_ms,
                              max_batch=args.max_batch, seed=args.seed, warmup=args.warmup,
                              max_prompt_tokens=args.max_prompt_tokens, log_level=args.log_level))

"""Real loopback servers for the serve tests: `dgbench serve` subprocesses and tiny misbehaving HTTP servers."""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import threading
import time
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import yaml

from conftest import ROOT, dgbench_argv


class DgbenchServer:
    """`dgbench serve ... --port 0` in a subprocess; the port is read from the line it prints."""

    def __init__(self, *args: str, startup_s: float = 120.0):
        env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONUNBUFFERED": "1"}
        self.proc = subprocess.Popen([*dgbench_argv(), "serve", "--host", "127.0.0.1", "--port", "0", *args],
                                     cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.startup_s = startup_s
        self.url = None
        self.stderr = ""

    def wait_ready(self) -> "DgbenchServer":
        deadline = time.monotonic() + self.startup_s
        line = ""
        while time.monotonic() < deadline:   # the line comes once the model is loaded and warmed up
            line = self.proc.stdout.readline()
            if line.startswith("dgbench serve: http://") or not line and self.proc.poll() is not None:
                break
        match = re.search(r"http://127\.0\.0\.1:(\d+)/v1", line)
        if not match:
            self.kill()
            raise RuntimeError(f"dgbench serve did not start: {line!r} {self.proc.stderr.read()[-2000:]}")
        self.url = f"http://127.0.0.1:{match.group(1)}/v1"
        base = self.url[:-3]
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(base + "/health", timeout=2) as resp:
                    if resp.status == 200:
                        return self
            except OSError:
                time.sleep(0.1)
        raise RuntimeError("dgbench serve: /health never answered")

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)

    def terminate(self, timeout: float = 30.0) -> int:
        self.proc.terminate()
        rc = self.proc.wait(timeout)
        self.stderr = self.proc.stderr.read()
        return rc


class InProcessServer:
    """The same server (dgbench.serving) run by uvicorn in a thread of the test process: one model load without
    another interpreter importing torch. The subprocess servers above cover the command and its signals."""

    def __init__(self, **options):
        self.options = options
        self.server = None
        self.thread = None
        self.url = None

    def wait_ready(self) -> "InProcessServer":
        import uvicorn

        from dgbench.serving.app import create_app
        from dgbench.serving.server import ServeOptions, bind, build_served

        sock = bind("127.0.0.1", 0)
        app = create_app(build_served(ServeOptions(**self.options)))
        self.server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="on"))
        self.server.install_signal_handlers = lambda: None   # uvicorn < 0.29 asks; later ones skip off the main thread
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [sock]}, daemon=True)
        self.thread.start()
        self.url = f"http://127.0.0.1:{sock.getsockname()[1]}/v1"
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not self.server.started:
            time.sleep(0.05)
        return self

    def kill(self) -> None:
        if self.server is not None:
            self.server.should_exit = True
            self.thread.join(15)


def post(url: str, body: dict, timeout: float = 30.0):
    req = urllib.request.Request(url, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return resp.status, resp.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def sse_events(text: str) -> list:
    return [json.loads(line[6:]) for line in text.splitlines() if line.startswith("data: {")]


def write_suite(path: Path, endpoints: list[dict], **load) -> Path:
    suite = {"name": "serve-test", "scenario": "serve", "seed": 0, "endpoints": endpoints,
             "load": {"concurrency": [1, 4], "num_requests": 8, "max_tokens": 16, "timeout_s": 30,
                      "warmup_requests": 1, **load},
             "prompts": {"source": "task", "task": "sudoku", "task_config": {"size": 4, "prompt": "compact"}, "n": 8},
             "slo": {"ttft_ms": 5000, "e2e_ms": 20000}, "telemetry": {"enabled": False},
             "gate": {"metrics": [{"name": "ttft_s", "direction": "lower"}]}}
    path.write_text(yaml.safe_dump(suite))
    return path


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class TinyServer:
    """A real HTTP server on 127.0.0.1 whose POST handler misbehaves in one chosen way."""

    def __init__(self, mode: str):
        self.mode = mode
        self.hung = threading.Event()
        self.seen: list[tuple[str, dict, dict]] = []     # (path, headers, body) of every POST
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def do_GET(self):
                self._send(200, "application/json", b'{"data": []}')

            def _send(self, status, ctype, body: bytes):
                self.send_response(status)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))) or b"{}")
                outer.seen.append((self.path, dict(self.headers), body))
                if outer.mode == "ok":      # a plain OpenAI stream: text chunks without token ids, then usage
                    events = [{"choices": [{"index": 0, "text": t, "finish_reason": None}]} for t in ("ab", "cd", "e")]
                    if self.path.endswith("/chat/completions"):
                        events = [{"choices": [{"index": 0, "delta": {"content": t}, "finish_reason": None}]}
                                  for t in ("ab", "cd", "e")]
                    events.append({"choices": [], "usage": {"prompt_tokens": 3, "completion_tokens": 5}})
                    payload = b"".join(b"data: " + json.dumps(e).encode() + b"\n\n" for e in events)
                    self._send(200, "text/event-stream", payload + b"data: [DONE]\n\n")
                elif outer.mode == "500":
                    self._send(500, "application/json", b'{"error": {"message": "internal boom\\u001b[2J"}}')
                elif outer.mode == "html":
                    self._send(200, "text/html", b"<html><body>Welcome to nginx!</body></html>")
                elif outer.mode == "huge-line":   # one event line of 4 MB, never a valid event
                    self._send(200, "text/event-stream", b"data: " + b"x" * (4 << 20) + b"\n\ndata: [DONE]\n\n")
                elif outer.mode == "garbage-sse":
                    self._send(200, "text/event-stream", b"data: this is not json\n\ndata: [DONE]\n\n")
                elif outer.mode == "cut":   # one good chunk, then the connection closes without [DONE]
                    self.send_response(200)
                    self.send_header("Content-Type", "text/event-stream")
                    self.send_header("Connection", "close")
                    self.end_headers()
                    chunk = {"choices": [{"index": 0, "text": "ab", "finish_reason": None}]}
                    self.wfile.write(b"data: " + json.dumps(chunk).encode() + b"\n\n")
                    self.wfile.flush()
                    self.close_connection = True
                elif outer.mode == "hang":  # accept, read, never answer
                    outer.hung.wait(30)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.hung.set()
        self.httpd.shutdown()
        self.httpd.server_close()

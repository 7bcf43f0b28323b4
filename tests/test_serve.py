"""`dgbench serve` with the trained reference pair (and the tiny DiffusionGemma for canvas streaming) under a
real serve suite, all on 127.0.0.1 with bounded loads: accounting, streaming, metrics, kill and shutdown."""

from __future__ import annotations

import json
import threading
import time
import urllib.request

import pytest
from serve_helpers import DgbenchServer, InProcessServer, post, read_jsonl, sse_events, write_suite

from dgbench.cli import main
from dgbench.report.serve import crossover

BLOCK = 8


@pytest.fixture(scope="module")
def servers():
    # Started together so their model loading overlaps; each prints its port once it serves.
    pending = {"ar": DgbenchServer("--model", "ref-ar", "--max-batch", "4"),
               "diffusion": DgbenchServer("--model", "ref-diffusion", "--knob", f"block_length={BLOCK}",
                                          "--max-batch", "4"),
               "dg": InProcessServer(model="diffusiongemma-tiny", knobs={"max_denoising_steps": 4})}
    try:
        yield _Ready(pending)
    finally:
        for server in pending.values():
            server.kill()


class _Ready(dict):
    """servers[name] waits for that server only, so one that fails to start fails only its own tests."""

    def __init__(self, pending):
        super().__init__()
        self.pending = pending

    def __getitem__(self, name):
        if name not in self:
            self[name] = self.pending[name].wait_ready()
        return dict.__getitem__(self, name)

    def __contains__(self, name):
        return dict.__contains__(self, name)


def _ok_requests(metrics_url: str) -> float:
    with urllib.request.urlopen(metrics_url, timeout=5) as resp:
        text = resp.read().decode()
    return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
               if line.startswith("dgbench_requests_total") and 'status="ok"' in line)


def test_serve_suite_accounts_for_every_request(servers, tmp_path):
    suite = write_suite(tmp_path / "s.yaml", [{"name": "ar", "url": servers["ar"].url, "model": "ref-ar"},
                                              {"name": "diffusion", "url": servers["diffusion"].url,
                                               "model": "ref-diffusion"}])
    assert main(["run", "--suite", str(suite), "--out", str(tmp_path / "out")]) == 0
    run_dir = next((tmp_path / "out").iterdir())
    points, requests = read_jsonl(run_dir / "points.jsonl"), read_jsonl(run_dir / "requests.jsonl")
    assert len(points) == 4 and {p["params"]["concurrency"] for p in points} == {1, 4}
    assert {p["paradigm"] for p in points} == {"autoregressive", "diffusion"}   # asked from /v1/models
    for p in points:
        s = p["serve"]
        mine = [r for r in requests if r["point_id"] == p["point_id"]]
        assert s["requests"] == len(mine) == 8 and s["succeeded"] + s["failed"] == 8 and s["failed"] == 0
        assert sorted(r["index"] for r in mine) == list(range(8))
        assert s["goodput_rps"] <= s["request_throughput_rps"]
        assert s["usage_mismatches"] == 0
        for r in mine:
            assert sum(r["chunk_tokens"]) == r["output_tokens"] == r["usage_tokens"] == 16   # ignore_eos
            assert 0 < r["ttft_s"] <= r["e2e_s"]
            assert r["chunk_times_s"] == sorted(r["chunk_times_s"]) and r["token_source"] == "server token_ids"
        if p["paradigm"] == "diffusion":
            assert set(s["chunk_tokens_histogram"]) == {str(BLOCK)}      # one chunk per committed block
        else:
            assert set(s["chunk_tokens_histogram"]) == {"1"}             # one chunk per token
    entries = crossover(points)
    assert len(entries) == 1 and entries[0]["concurrencies"] == [1, 4] and entries[0]["verdict"]
    # report and gate read serve points like any others
    from dgbench.report.pages import write_report

    page = write_report([run_dir], tmp_path / "report").read_text()
    assert "Serving under load" in page and "crossover (output_tok_s" in page
    assert (tmp_path / "report" / "figures" / "serve-throughput-under-load.png").is_file()
    assert main(["gate", "--baseline", str(run_dir), "--candidate", str(run_dir),
                 "--json", str(tmp_path / "gate.json")]) == 0
    verdicts = json.loads((tmp_path / "gate.json").read_text())
    assert "ttft_s" in json.dumps(verdicts)


def _stream(url: str, body: dict) -> tuple[list, float, float]:
    started = time.perf_counter()
    req = urllib.request.Request(url, data=json.dumps(body).encode(),
                                 headers={"Content-Type": "application/json"})
    first = None
    text = []
    with urllib.request.urlopen(req, timeout=60) as resp:
        for raw in resp:
            line = raw.decode()
            has_tokens = '"token_ids":[' in line and '"token_ids":[]' not in line
            if line.startswith("data: {") and has_tokens and first is None:
                first = time.perf_counter() - started
            text.append(line)
    return sse_events("".join(text)), first, time.perf_counter() - started


@pytest.mark.parametrize("name, model, canvas", [("dg", "diffusiongemma-tiny", 16),
                                                 ("diffusion", "ref-diffusion", BLOCK)])
def test_diffusion_streams_one_chunk_per_committed_canvas(servers, name, model, canvas):
    events, first, e2e = _stream(servers[name].url + "/completions",
                                 {"model": model, "prompt": "1 2 3", "max_tokens": 3 * canvas, "stream": True,
                                  "ignore_eos": True, "stream_options": {"include_usage": True}})
    chunks = [e["choices"][0]["token_ids"] for e in events if e["choices"] and e["choices"][0]["token_ids"]]
    assert [len(c) for c in chunks] == [canvas] * 3
    final = events[-1]
    assert final["usage"]["completion_tokens"] == 3 * canvas and final["choices"] == []
    server_times = final["dgbench"]["chunk_times_s"]        # when each canvas committed, from arrival
    assert len(server_times) == 3 and server_times == sorted(server_times)
    # The first chunk reaches the client when the first canvas commits (plus loopback and framing), well
    # before the whole answer: the canvases are streamed, not sent together at the end.
    assert server_times[0] <= first + 0.005
    assert first - server_times[0] < 0.25
    assert first < e2e and server_times[0] < server_times[-1]


def test_openai_surface_health_metrics_and_errors(servers):
    url = servers["ar"].url
    status, body = post(url + "/completions", {"model": "ref-ar", "prompt": "12", "max_tokens": 5,
                                               "ignore_eos": True})
    reply = json.loads(body)
    assert status == 200 and reply["usage"]["completion_tokens"] == 5 == len(reply["choices"][0]["token_ids"])
    assert reply["choices"][0]["finish_reason"] == "length"
    status, body = post(url + "/chat/completions", {"messages": [{"role": "user", "content": "hi"}],
                                                    "max_tokens": 3, "ignore_eos": True})
    assert status == 200 and json.loads(body)["choices"][0]["message"]["role"] == "assistant"
    assert post(url + "/completions", {"model": "nope", "prompt": "a"})[0] == 404
    assert post(url + "/completions", {"prompt": "a", "max_tokens": 0})[0] == 400
    assert post(url + "/completions", {"prompt": "a", "n": 2})[0] == 400
    with urllib.request.urlopen(url[:-3] + "/metrics", timeout=10) as resp:
        metrics = resp.read().decode()
        assert resp.headers["Content-Type"].startswith("text/plain")
    samples = {}
    for line in metrics.splitlines():
        if line and not line.startswith("#"):
            key, value = line.rsplit(" ", 1)
            samples[key] = float(value)
    assert samples['dgbench_requests_total{model="ref-ar",engine="dgbench-autoregressive",status="ok"}'] >= 2
    assert samples['dgbench_requests_total{model="ref-ar",engine="dgbench-autoregressive",status="rejected"}'] >= 3
    assert samples["dgbench_batch_size_count"] >= 2


def test_sigterm_shuts_down_cleanly(servers):
    server = servers["diffusion"]
    assert server.terminate() == 0
    assert "dgbench serve: stopped (SIGTERM)" in server.stderr


def test_server_killed_mid_run_gives_failed_requests_and_the_sweep_goes_on(servers, tmp_path):
    server = servers["ar"]
    suite = write_suite(tmp_path / "s.yaml", [{"name": "ar", "url": server.url, "model": "ref-ar"}],
                        concurrency=[1, 2], num_requests=40, max_tokens=64, timeout_s=10)
    metrics_url = server.url[:-3] + "/metrics"
    before = _ok_requests(metrics_url)

    def kill_after_some_requests():
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if _ok_requests(metrics_url) >= before + 8:   # warmup + 7 measured requests done
                    break
            except OSError:
                pass
            time.sleep(0.05)
        server.kill()

    killer = threading.Thread(target=kill_after_some_requests)
    killer.start()
    rc = main(["run", "--suite", str(suite), "--out", str(tmp_path / "out")])
    killer.join()
    run_dir = next((tmp_path / "out").iterdir())
    points, requests = read_jsonl(run_dir / "points.jsonl"), read_jsonl(run_dir / "requests.jsonl")
    assert rc == 1 and len(points) == 2 and len(requests) == 80        # both points ran, every request counted
    first, second = points
    assert first["status"] == "ok" and 0 < first["serve"]["failed"] < 40
    assert second["status"] == "failed" and second["serve"]["failed"] == 40
    failed = [r for r in requests if r["status"] == "failed"]
    assert all(r["error"].startswith(("cannot connect", "connection lost", "stream ended")) for r in failed)

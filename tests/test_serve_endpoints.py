"""The serve scenario against malformed endpoints: real tiny servers on 127.0.0.1, no model loaded.

Each case must end in failed requests recorded with their cause (or one line of bad input), within the
configured per-request timeout: never a hang.
"""

from __future__ import annotations

import math
import time

import pytest
from serve_helpers import TinyServer, free_port, read_jsonl, write_suite

from dgbench.cli import main
from dgbench.scenarios.serve.aggregate import aggregate
from dgbench.scenarios.serve.loadgen import arrival_times


def _run(tmp_path, url: str, **load):
    suite = write_suite(tmp_path / "suite.yaml", [{"name": "bad", "url": url, "model": "m", "paradigm": "unknown"}],
                        **{"concurrency": [2], "num_requests": 3, "warmup_requests": 0, **load})
    started = time.monotonic()
    rc = main(["run", "--suite", str(suite), "--out", str(tmp_path / "out")])
    run_dir = next((tmp_path / "out").iterdir())
    return rc, time.monotonic() - started, read_jsonl(run_dir / "points.jsonl"), read_jsonl(run_dir / "requests.jsonl")


@pytest.mark.parametrize("mode, cause", [
    ("500", "HTTP 500: internal boom"),
    ("html", "not an OpenAI event stream (Content-Type 'text/html')"),
    ("garbage-sse", "non-OpenAI event"),
    ("cut", "stream ended before [DONE]"),
    ("huge-line", "malformed reply: LineTooLong"),
])
def test_misbehaving_server_gives_failed_requests_with_cause(tmp_path, mode, cause):
    with TinyServer(mode) as server:
        rc, _, points, requests = _run(tmp_path, server.url)
    assert rc == 1                                   # a failed point, recorded; not a crash
    assert len(requests) == 3 and all(r["status"] == "failed" for r in requests)
    assert all(r["error"].startswith(cause) for r in requests), requests[0]["error"]
    assert not any("\x1b" in r["error"] for r in requests)     # the server's text, control characters dropped
    assert points[0]["status"] == "failed" and cause.split(":")[0] in points[0]["error"]["message"]
    assert points[0]["serve"]["failed"] == 3


def test_hanging_server_is_cut_at_the_timeout(tmp_path):
    with TinyServer("hang") as server:
        rc, wall, points, requests = _run(tmp_path, server.url, timeout_s=0.5)
    assert rc == 1
    assert all(r["error"].startswith("timeout") and r["e2e_s"] < 2.0 for r in requests)
    assert wall < 30          # three 0.5 s requests on two slots, plus the process's own start-up


def test_nothing_listening_gives_connect_errors(tmp_path):
    rc, _, points, requests = _run(tmp_path, f"http://127.0.0.1:{free_port()}/v1")
    assert rc == 1 and points[0]["status"] == "failed"
    assert all(r["error"].startswith("cannot connect") for r in requests)


@pytest.mark.parametrize("url, words", [
    ("localhost:8000/v1", "did you mean 'http://localhost:8000/v1'"),
    ("ftp://127.0.0.1/v1", "is not an http(s) URL"),
    ("http://127.0.0.1:99999/v1", "port 99999 is out of range"),
])
def test_bad_url_is_one_line_and_exit_2(tmp_path, capsys, url, words):
    suite = write_suite(tmp_path / "s.yaml", [{"url": url, "model": "m"}])
    assert main(["run", "--suite", str(suite), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and words in err and "endpoints[0].url" in err
    assert not (tmp_path / "out").exists()           # refused before any run directory is made


def test_bad_load_sections_are_refused(tmp_path, capsys):
    suite = write_suite(tmp_path / "s.yaml", [{"url": "http://127.0.0.1:1/v1", "model": "m"}],
                        concurrency=[None], request_rate=["inf"])
    assert main(["run", "--suite", str(suite), "--dry-run"]) == 2
    assert "without bound" in capsys.readouterr().err
    suite = write_suite(tmp_path / "s.yaml", [{"url": "http://127.0.0.1:1/v1", "model": "m"}], concurency=[2])
    assert main(["run", "--suite", str(suite), "--dry-run"]) == 2
    assert "did you mean 'concurrency'" in capsys.readouterr().err


def test_arrivals_are_seeded_and_follow_the_rate():
    assert arrival_times(4, math.inf, "poisson", 0) == [0.0] * 4
    assert arrival_times(3, 2.0, "constant", 0) == [0.0, 0.5, 1.0]
    a, b = arrival_times(2000, 10.0, "poisson", 7), arrival_times(2000, 10.0, "poisson", 7)
    assert a == b and a != arrival_times(2000, 10.0, "poisson", 8)
    mean_gap = a[-1] / (len(a) - 1)
    assert 0.09 < mean_gap < 0.11                     # exponential gaps with mean 1/rate
    assert arrival_times(100, 10.0, "constant", 0, horizon_s=1.0)[-1] <= 1.0


def test_aggregate_definitions():
    ok = {"status": "ok", "error": None, "ttft_s": 0.1, "e2e_s": 0.5, "chunk_times_s": [0.1, 0.3, 0.5],
          "chunk_tokens": [4, 4, 2], "usage_tokens": 10, "token_source": "server token_ids", "output_tokens": 10}
    slow = {**ok, "ttft_s": 0.4, "chunk_times_s": [0.4, 0.5]}
    bad = {"status": "failed", "error": "HTTP 500: boom", "ttft_s": None, "e2e_s": 0.01, "chunk_times_s": [],
           "chunk_tokens": []}
    out = aggregate([ok, slow, bad], 2.0, {"ttft_ms": 200, "e2e_ms": None, "tpot_ms": None})
    s = out["serve"]
    assert (s["requests"], s["succeeded"], s["failed"], s["errors"]) == (3, 2, 1, {"HTTP 500": 1})
    assert s["output_tok_s"] == 10.0 and s["request_throughput_rps"] == 1.0 and s["goodput_rps"] == 0.5
    assert out["reps"]["tpot_s"] == [pytest.approx(0.4 / 9), pytest.approx(0.1 / 9)]
    assert sorted(out["pooled"]["chunk_gap_s"]) == pytest.approx([0.1, 0.2, 0.2])
    assert s["chunk_tokens_histogram"] == {"2": 2, "4": 4}
    assert s["percentiles"]["ttft_s"]["n"] == 2 and s["usage_mismatches"] == 0


def test_vllm_keys_for_a_serve_point():
    from dgbench.report.serve_export import vllm_serve_record

    ok = {"status": "ok", "error": None, "ttft_s": 0.1, "e2e_s": 0.5, "chunk_times_s": [0.1, 0.3, 0.5],
          "chunk_tokens": [4, 4, 2], "usage_tokens": 10, "token_source": "server token_ids", "output_tokens": 10}
    point = {"point_id": "p", "decoder": "d", "model": "m", "engine": "openai-completions", "paradigm": "diffusion",
             "status": "ok", "params": {"concurrency": 4, "request_rate": "inf"},
             **aggregate([ok, dict(ok)], 1.0, {"ttft_ms": 500})}
    rec = vllm_serve_record(point)
    assert rec["completed"] == 2 and rec["total_output_tokens"] == 20 and rec["output_throughput"] == 20.0
    assert rec["median_ttft_ms"] == pytest.approx(100) and rec["p99_itl_ms"] == pytest.approx(200)
    assert rec["mean_tpot_ms"] == pytest.approx(400 / 9) and rec["max_concurrency"] == 4
    assert rec["request_goodput"] == 2.0 and vllm_serve_record({"summary": {}}) is None


def test_prompt_file_headers_chat_and_token_sources(tmp_path, monkeypatch):
    """A plain OpenAI server (no token_ids): chunk tokens come from the tokenizer when one is named, else only
    usage is known; prompts come from the user's file; header values from the environment, not stored."""
    prompts = tmp_path / "prompts.jsonl"
    prompts.write_text('{"prompt": "first prompt"}\n{"messages": [{"role": "user", "content": "second"}]}\n')
    monkeypatch.setenv("DGBENCH_TEST_KEY", "sk-secret")
    with TinyServer("ok") as server:
        suite = write_suite(tmp_path / "s.yaml", [
            {"name": "counted", "url": server.url, "model": "m", "api": "chat", "tokenizer": "ref-ar",
             "headers_env": {"Authorization": "DGBENCH_TEST_KEY"}},
            {"name": "usage-only", "url": server.url + "/completions", "model": "m"}],
            concurrency=[2], num_requests=4, warmup_requests=0)
        text = suite.read_text().replace("source: task", f"source: file\n  path: {prompts}")
        suite.write_text(text)
        assert main(["run", "--suite", str(suite), "--out", str(tmp_path / "out")]) == 0
        seen = list(server.seen)
    run_dir = next((tmp_path / "out").iterdir())
    requests = read_jsonl(run_dir / "requests.jsonl")
    counted = [r for r in requests if r["decoder"] == "counted"]
    usage_only = [r for r in requests if r["decoder"] == "usage-only"]
    assert all(r["chunk_tokens"] == [2, 2, 1] and r["token_source"] == "tokenizer" for r in counted)
    assert all(r["output_tokens"] == 5 and r["token_source"] == "usage" for r in usage_only)
    chat = [body for path, _, body in seen if path.endswith("/chat/completions")]
    assert {m["content"] for body in chat for m in body["messages"]} == {"first prompt", "second"}
    assert all(h.get("Authorization") == "Bearer sk-secret" for path, h, _ in seen
               if path.endswith("/chat/completions"))
    assert all(body["prompt"] in ("first prompt", "second") for path, _, body in seen
               if path.endswith("/v1/completions"))
    assert "sk-secret" not in (run_dir / "run.json").read_text()


def test_missing_header_variable_is_refused_before_any_traffic(tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("DGBENCH_TEST_KEY", raising=False)
    suite = write_suite(tmp_path / "s.yaml", [{"url": "http://127.0.0.1:1/v1", "model": "m",
                                               "headers_env": {"Authorization": "DGBENCH_TEST_KEY"}}])
    assert main(["run", "--suite", str(suite), "--out", str(tmp_path / "out")]) == 2
    assert "DGBENCH_TEST_KEY is not set" in capsys.readouterr().err and not (tmp_path / "out").exists()


def test_crossover_interpolates_between_the_bracketing_concurrencies():
    from dgbench.report.serve import crossover

    def pt(name, paradigm, c, tok_s):
        return {"status": "ok", "decoder": name, "paradigm": paradigm,
                "params": {"concurrency": c, "request_rate": "inf"},
                "serve": {"output_tok_s": tok_s, "goodput_rps": tok_s / 10}}
    points = [pt("d", "diffusion", c, v) for c, v in ((1, 300), (2, 320), (4, 330), (8, 340))]
    points += [pt("a", "autoregressive", c, v) for c, v in ((1, 100), (2, 200), (4, 430), (8, 800))]
    (entry,) = crossover(points)
    assert entry["bracket"] == [2, 4] and entry["crossover"] == pytest.approx(2 + 2 * 120 / 220)
    assert entry["sign_changes"] == 1 and "overtakes" in entry["verdict"]
    never = [p for p in points if p["decoder"] == "d"] + [pt("a", "autoregressive", c, 10) for c in (1, 2, 4, 8)]
    assert "stays ahead" in crossover(never)[0]["verdict"]
    noisy = [p for p in points if p["decoder"] == "d"] + [pt("a", "autoregressive", c, v)
                                                          for c, v in ((1, 400), (2, 100), (4, 500), (8, 900))]
    assert crossover(noisy)[0]["sign_changes"] == 2 and "noisy" in crossover(noisy)[0]["verdict"]


@pytest.mark.parametrize("args, words", [
    (["--model", "nope"], "--model nope: unknown model"),
    (["--model", "ref-ar", "--engine", "dgbench-masked"], "decodes diffusion models but 'ref-ar' is autoregressive"),
    (["--model", "ref-ar", "--knob", "cache=weird"], "--knob: cache: unknown value 'weird'"),
    (["--model", "ref-ar", "--knob", "cache"], "expected KEY=VALUE"),
    (["--model", "ref-ar", "--port", "70000"], "a port is 0..65535"),
])
def test_serve_bad_input_is_one_line_and_exit_2(capsys, args, words):
    assert main(["serve", "--port", "0", *args] if "--port" not in args else ["serve", *args]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and words in err


def test_serve_on_a_taken_port_is_one_line(capsys):
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        assert main(["serve", "--model", "ref-ar", "--port", str(port)]) == 2
    assert f"--port {port}: cannot listen there" in capsys.readouterr().err


def test_token_counters_agree_and_stream_decoding_keeps_split_characters():
    from dgbench.models.registry import get
    from dgbench.scenarios.serve.point import token_counter
    from dgbench.tasks.codec import ByteCodec

    folder = str(get("ref-ar").checkpoint)      # its tokenizer.json: the byte codec as a transformers tokenizer
    by_name, by_folder = token_counter({"tokenizer": "ref-ar"}), token_counter({"tokenizer": folder})
    for text in ("1 2 3\n4", "héllo €"):
        assert by_name(text) == by_folder(text) == len(text.encode("utf-8"))
    assert token_counter({"tokenizer": None}) is None
    codec = ByteCodec(get("ref-ar"))
    piece = codec.stream()
    ids = codec.encode("é€ok")
    parts = [piece([i]) for i in ids] + [piece([], final=True)]
    assert "".join(parts) == "é€ok" and "\ufffd" not in "".join(parts)   # a character split over chunks waits


def test_duration_bound_points_stop_at_the_horizon(tmp_path):
    with TinyServer("ok") as server:
        suite = write_suite(tmp_path / "s.yaml", [{"name": "e", "url": server.url, "model": "m"}],
                            concurrency=[2], request_rate=[20.0, "inf"], arrival="constant", num_requests=None,
                            duration_s=0.5, max_requests=40, warmup_requests=0)
        started = time.monotonic()
        assert main(["run", "--suite", str(suite), "--out", str(tmp_path / "out")]) == 0
        wall = time.monotonic() - started
    points = read_jsonl(next((tmp_path / "out").iterdir()) / "points.jsonl")
    by_rate = {p["params"]["request_rate"]: p["serve"] for p in points}
    assert by_rate[20.0]["requests"] == 11            # constant arrivals at 0, 0.05, ..., 0.5 s
    assert 2 < by_rate["inf"]["requests"] <= 40       # closed loop until the horizon, capped by max_requests
    assert all(s["failed"] == 0 for s in by_rate.values()) and wall < 60


def test_unknown_tokenizer_is_refused_at_load(tmp_path, capsys):
    suite = write_suite(tmp_path / "s.yaml", [{"url": "http://127.0.0.1:1/v1", "model": "m", "tokenizer": "nope"}])
    assert main(["run", "--suite", str(suite), "--dry-run"]) == 2
    assert "endpoints[0].tokenizer: 'nope' is neither a dgbench model" in capsys.readouterr().err

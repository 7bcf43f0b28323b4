"""Server counters in the Prometheus text exposition format (version 0.0.4), written by hand.

Names follow Prometheus conventions (`_total` counters, base units in seconds) with a `dgbench_` prefix;
histograms have cumulative `le` buckets plus `_sum` and `_count`, as the format requires.
"""

from __future__ import annotations

import threading

LATENCY_BUCKETS_S = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128)


class _Histogram:
    def __init__(self, buckets):
        self.buckets = tuple(buckets)
        self.counts = [0] * len(self.buckets)
        self.sum = 0.0
        self.count = 0

    def observe(self, value: float) -> None:
        self.sum += value
        self.count += 1
        for i, bound in enumerate(self.buckets):
            if value <= bound:
                self.counts[i] += 1

    def lines(self, name: str) -> list[str]:
        out = [f'{name}_bucket{{le="{b}"}} {c}' for b, c in zip(self.buckets, self.counts)]
        return out + [f'{name}_bucket{{le="+Inf"}} {self.count}', f"{name}_sum {self.sum:.6f}",
                      f"{name}_count {self.count}"]


class ServerStats:
    def __init__(self, model: str, engine: str):
        self.model, self.engine = model, engine
        self._lock = threading.Lock()
        self.requests = {"ok": 0, "error": 0, "rejected": 0}
        self.prompt_tokens = 0
        self.generation_tokens = 0
        self.waiting = 0
        self.running = 0
        self.e2e = _Histogram(LATENCY_BUCKETS_S)
        self.ttft = _Histogram(LATENCY_BUCKETS_S)
        self.queue = _Histogram(LATENCY_BUCKETS_S)
        self.batch_size = _Histogram(BATCH_BUCKETS)
        self.batch_time = _Histogram(LATENCY_BUCKETS_S)

    def queue_depth(self, n: int) -> None:
        with self._lock:
            self.waiting = n

    def request_started(self) -> None:
        with self._lock:
            self.running += 1

    def request_ended(self, status: str) -> None:
        with self._lock:
            self.running -= 1
            self.requests[status] = self.requests.get(status, 0) + 1

    def rejected(self) -> None:
        with self._lock:
            self.requests["rejected"] += 1

    def request_done(self, prompt_tokens: int, generated: int, timing: dict) -> None:
        with self._lock:
            self.prompt_tokens += prompt_tokens
            self.generation_tokens += generated
            self.e2e.observe(timing["e2e_s"])
            self.queue.observe(timing["queue_s"])
            if timing["chunk_times_s"]:
                self.ttft.observe(timing["chunk_times_s"][0])

    def batch(self, size: int, seconds: float) -> None:
        with self._lock:
            self.batch_size.observe(size)
            self.batch_time.observe(seconds)
            self.waiting = max(0, self.waiting - size)

    def render(self) -> str:
        label = f'model="{self.model}",engine="{self.engine}"'
        with self._lock:
            lines = ["# HELP dgbench_requests_total Requests finished, by outcome.",
                     "# TYPE dgbench_requests_total counter"]
            lines += [f'dgbench_requests_total{{{label},status="{k}"}} {v}' for k, v in sorted(self.requests.items())]
            for name, value, kind, text in (
                    ("dgbench_prompt_tokens_total", self.prompt_tokens, "counter", "Prompt tokens processed."),
                    ("dgbench_generation_tokens_total", self.generation_tokens, "counter", "Tokens generated."),
                    ("dgbench_requests_running", self.running, "gauge", "Requests being served now."),
                    ("dgbench_requests_waiting", self.waiting, "gauge", "Requests waiting for a batch.")):
                lines += [f"# HELP {name} {text}", f"# TYPE {name} {kind}", f"{name}{{{label}}} {value}"]
            for name, hist, text in (
                    ("dgbench_e2e_request_latency_seconds", self.e2e, "Arrival to last token."),
                    ("dgbench_time_to_first_token_seconds", self.ttft, "Arrival to first streamed chunk."),
                    ("dgbench_queue_time_seconds", self.queue, "Arrival to the start of its batch's call."),
                    ("dgbench_batch_size", self.batch_size, "Requests per generate call."),
                    ("dgbench_batch_seconds", self.batch_time, "Duration of one generate call.")):
                lines += [f"# HELP {name} {text}", f"# TYPE {name} histogram"] + hist.lines(name)
        return "\n".join(lines) + "\n"

"""Request batching for dgbench serve: a short collection window, then one generate call per batch.

One worker thread owns the decoder. It waits for a request, keeps collecting for `window_s` (or until
`max_batch` are waiting), left-pads the prompts and runs one generate call for all of them with
gen_length = the largest max_tokens in the batch. Each committed canvas (diffusion) or token (AR) is
handed to its request as it is produced; a request finishes as soon as it has its own max_tokens or its
EOS, even while the batch runs on.

How this differs from continuous batching (vLLM, SGLang, TGI): there, a new request joins the running
batch at the next decode step and a finished one leaves it at once. Here a batch is fixed when its call
starts: a request that arrives during a call waits for the call to end (its TTFT includes that wait), and
rows that finished early keep occupying the batch until the longest one is done. Under load that shows as
higher TTFT and lower aggregate throughput than a continuous-batching server at the same concurrency; a
diffusion canvas loop batches at canvas granularity anyway, so the gap is smaller there. Requests with
different `ignore_eos` are not batched together (fixed length is one setting of the call).
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass
class Job:
    prompt_ids: list[int]
    max_tokens: int
    ignore_eos: bool
    seed: int | None
    on_chunk: Callable[[list[int], float], None]       # (ids, seconds since arrival); called from the worker
    on_done: Callable[[dict], None]                     # {"finish_reason", "tokens", "timing"} or {"error"}
    arrived: float = field(default_factory=time.perf_counter)
    generated: list[int] = field(default_factory=list)
    finished: str | None = None                         # "length" | "stop" once complete
    cancelled: bool = False
    chunk_times: list[float] = field(default_factory=list)
    batch_size: int = 0
    started: float | None = None


class Batcher:
    def __init__(self, decoder, pad_id: int, stop_ids: set[int], device: str, window_s: float, max_batch: int,
                 seed: int, length_multiple: int = 1, stats=None):
        self.decoder = decoder
        self.pad_id = pad_id
        self.stop_ids = stop_ids
        self.device = device
        self.window_s = window_s
        self.max_batch = max_batch
        self.seed = seed
        self.length_multiple = max(1, length_multiple)
        self.stats = stats
        self.streams = "on_output" in _parameters(decoder.generate)
        self._queue: queue.Queue[Job] = queue.Queue()
        self._held: list[Job] = []
        self._stop = threading.Event()
        self._batches = 0
        self._thread = threading.Thread(target=self._loop, name="dgbench-batcher", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        self._thread.join(timeout)
        for job in self._drain():
            job.on_done({"error": "server shutting down"})

    def submit(self, job: Job) -> None:
        if self._stop.is_set():
            job.on_done({"error": "server shutting down"})
            return
        self._queue.put(job)
        if self.stats:
            self.stats.queue_depth(self._queue.qsize() + len(self._held))

    def _drain(self) -> list[Job]:
        jobs, self._held = self._held, []
        while True:
            try:
                jobs.append(self._queue.get_nowait())
            except queue.Empty:
                return jobs

    def _collect(self) -> list[Job]:
        """The next batch: the first waiting job, then whatever arrives within the window (same ignore_eos)."""
        if self._held:
            first = self._held.pop(0)
        else:
            try:
                first = self._queue.get(timeout=0.1)
            except queue.Empty:
                return []
        batch = [first]
        deadline = time.perf_counter() + self.window_s
        held = [j for j in self._held if j.ignore_eos != first.ignore_eos]
        for job in [j for j in self._held if j.ignore_eos == first.ignore_eos]:
            if len(batch) < self.max_batch:
                batch.append(job)
            else:
                held.append(job)
        self._held = held
        while len(batch) < self.max_batch:
            left = deadline - time.perf_counter()
            if left <= 0:
                break
            try:
                job = self._queue.get(timeout=left)
            except queue.Empty:
                break
            (batch if job.ignore_eos == first.ignore_eos else self._held).append(job)
        return batch

    def _loop(self) -> None:
        while not self._stop.is_set():
            batch = self._collect()
            if batch:
                self._run(batch)

    def _run(self, batch: list[Job]) -> None:
        from dgbench.decoding.autoregressive import left_pad
        from dgbench.telemetry.timing import Clock

        started = time.perf_counter()
        for job in batch:
            job.started, job.batch_size = started, len(batch)
        gen_length = max(j.max_tokens for j in batch)
        gen_length = -(-gen_length // self.length_multiple) * self.length_multiple
        fixed = batch[0].ignore_eos
        seed = self.seed + self._batches if batch[0].seed is None else batch[0].seed
        self._batches += 1

        def on_output(rows: list[list[int]]) -> None:
            now = time.perf_counter()
            for job, ids in zip(batch, rows):
                self._deliver(job, ids, fixed, now)

        try:
            ids, mask = left_pad([j.prompt_ids for j in batch], self.pad_id, device=self.device)
            kwargs = {"on_output": on_output} if self.streams else {}
            rec = self.decoder.generate(ids, mask, gen_length, fixed, seed, Clock(self.device), **kwargs)
            now = time.perf_counter()
            for job, tokens in zip(batch, rec.tokens):
                if job.finished is None:        # engine without streaming, or a row shorter than its budget
                    self._deliver(job, tokens[len(job.generated):], fixed, now)
                if job.finished is None:
                    self._finish(job, "length")
        except Exception as exc:  # a failed call fails its requests, never the server
            message = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            for job in batch:
                if job.finished is None:
                    job.finished = "error"
                    job.on_done({"error": f"generation failed: {message}"})
        if self.stats:
            self.stats.batch(len(batch), time.perf_counter() - started)

    def _deliver(self, job: Job, ids: list[int], fixed: bool, now: float) -> None:
        """Hand `ids` (the row's newest tokens) to the job, cut at its budget and (unless fixed) its EOS."""
        if job.finished is not None:
            return
        ids = ids[:job.max_tokens - len(job.generated)]
        reason = None
        if not fixed:
            for i, t in enumerate(ids):
                if t in self.stop_ids:
                    ids, reason = ids[:i], "stop"
                    break
        if ids:
            job.generated.extend(ids)
            job.chunk_times.append(now - job.arrived)
            if not job.cancelled:
                job.on_chunk(ids, now - job.arrived)
        if reason is None and len(job.generated) >= job.max_tokens:
            reason = "length"
        if reason:
            self._finish(job, reason)

    def _finish(self, job: Job, reason: str) -> None:
        job.finished = reason
        now = time.perf_counter()
        timing = {"queue_s": job.started - job.arrived, "batch_size": job.batch_size,
                  "chunk_times_s": [round(t, 6) for t in job.chunk_times], "e2e_s": now - job.arrived}
        if self.stats:
            self.stats.request_done(len(job.prompt_ids), len(job.generated), timing)
        job.on_done({"finish_reason": reason, "tokens": list(job.generated), "timing": timing})


def _parameters(fn) -> set[str]:
    import inspect

    try:
        return set(inspect.signature(fn).parameters)
    except (TypeError, ValueError):
        return set()

"""The Ray executor's driver: a pool of worker actors (executors/ray_worker.py), each asking Ray for
`cpus_per_point` CPUs and `gpus_per_point` GPUs, so Ray places them on free devices of any node.

The driver hands each idle worker its next point, preferring the model that worker already holds (one
load per worker and model, not one per point), and is the only writer of the run directory: a finished
point comes back with its samples and telemetry rows, and is appended to points.jsonl / samples.jsonl /
telemetry.csv through the same RunStore as a local run, so the files, their durability and `--resume`
are exactly a local run's.

Faults. A worker that dies mid-point (the OOM killer, a lost node, a kill) fails that point with the cause
in its error record, a fresh worker takes its place, and the sweep goes on. Ray's own retries are off by
default (executor.max_restarts = max_task_retries = 0): a point that killed its worker usually kills the
next one too; set both above 0 to let Ray restart the actor and re-run the point (docs.ray.io, "Actor
Fault Tolerance"), e.g. on spot nodes. Ctrl-C kills the workers (which ends their running points) and
keeps every finished point; the run is then marked interrupted and resumable.
"""

from __future__ import annotations

import csv
import logging
import time
from dataclasses import dataclass, field

from dgbench.errors import ConfigError
from dgbench.harness.executors import import_ray
from dgbench.telemetry.recorder import COLUMNS, TELEMETRY_FILE

POLL_S = 0.5   # how often the driver looks up from ray.wait to notice Ctrl-C


@dataclass
class _Slot:
    actor: object
    describe: object                      # ObjectRef of the worker's placement (filled once it started)
    model: tuple | None = None            # (model, dtype) the worker has loaded
    busy: bool = False
    placement: dict | None = field(default=None)


def run_on_ray(points: list, done: set, suite: dict, executor: dict, store, meta: dict, outcome, progress,
               profile: str | None, check_interrupt) -> None:
    """Measure `points` (those not in `done`) on Ray, appending each to `store` as it finishes."""
    ray = import_ray()
    total = len(points)
    todo = []
    for i, point in enumerate(points):
        if point.point_id in done:
            outcome.skipped += 1
            if progress:
                progress(point, i, total, "skipped")
        else:
            todo.append(point)
    if not todo:   # a resumed run with nothing left: no cluster to start
        return
    started_here = connect(ray, executor["address"])
    pool, in_flight, telemetry = None, {}, None
    try:
        gpus = gpus_per_point(ray, executor)
        workers = worker_count(ray, executor, gpus, len(todo))
        meta["executor"] = {**executor, "gpus_per_point": gpus, "workers": workers, "ray_version": ray.__version__,
                            "cluster_resources": _resources(ray)}
        if (suite.get("telemetry") or {}).get("enabled", True):
            telemetry = _TelemetryCsv(store.path / TELEMETRY_FILE)
            meta["telemetry"] = {"file": TELEMETRY_FILE, "rate_hz": (suite.get("telemetry") or {}).get("rate_hz", 10.0),
                                 "sources": "sampled on each worker's node; device column = NODE_IP/DEVICE"}
        store.write_meta(meta)
        pool = _Pool(ray, suite, executor, gpus, profile, min(workers, len(todo)))
        queue = _Queue(todo)
        finished = outcome.skipped
        while queue or in_flight:
            check_interrupt()
            for slot in pool.idle():
                point = queue.take(slot.model, pool.held())
                if point is None:
                    break
                slot.busy, slot.model = True, _model_key(point)
                in_flight[slot.actor.measure.remote(point)] = (slot, point)
                if progress:
                    progress(point, finished, total, "start")
            ready, _ = ray.wait(list(in_flight), num_returns=1, timeout=POLL_S)
            for ref in ready:
                slot, point = in_flight.pop(ref)
                slot.busy = False
                result = _result(ray, ref, slot, point, pool, gpus)
                for sample in result["samples"]:
                    store.append_sample(sample)
                if telemetry is not None:
                    telemetry.write(result["telemetry_rows"])
                store.append_point(result["record"])
                outcome.failed += result["record"]["status"] != "ok"
                finished += 1
                if progress:
                    progress(point, finished - 1, total, result["record"]["status"])
    finally:
        if pool is not None:
            pool.stop()   # on Ctrl-C this also ends the points still running: they are simply not done
        if telemetry is not None:
            telemetry.close()
        _hardware_of_points(store.read_points(), meta)
        if started_here:
            ray.shutdown()


def connect(ray, address: str) -> bool:
    """Join (or start) the Ray cluster; True when this call started it (and so shuts it down)."""
    if ray.is_initialized():   # a caller (a test, a notebook) already connected: use that cluster
        return False
    kwargs = {"include_dashboard": False, "log_to_driver": False, "logging_level": logging.WARNING}
    if address.startswith("ray://"):
        kwargs = {"logging_level": logging.WARNING}   # Ray Client takes no head-node options
    try:
        ray.init(address=address, **kwargs)
    except (ConnectionError, RuntimeError) as exc:
        hint = ("start one with `ray start --head`, or use --set executor.address=local" if address == "auto"
                else "check the address and that the cluster runs the same Ray version")
        raise ConfigError(f"executor.address={address}: cannot reach a Ray cluster ({str(exc).splitlines()[0]}); "
                          f"{hint}") from None
    return True


def gpus_per_point(ray, executor: dict) -> float:
    """The suite's value, or one GPU per point when the cluster has any (none otherwise)."""
    if executor["gpus_per_point"] is not None:
        return float(executor["gpus_per_point"])
    return 1.0 if ray.cluster_resources().get("GPU", 0) > 0 else 0.0


def worker_count(ray, executor: dict, gpus: float, n_points: int) -> int:
    """As many workers as the cluster's CPUs and GPUs fit at the requested sizes (capped by executor.workers)."""
    res = ray.cluster_resources()
    cpus = executor["cpus_per_point"]
    fits = []
    if gpus > 0:
        fits.append(int(res.get("GPU", 0) // gpus))
    if cpus > 0:
        fits.append(int(res.get("CPU", 0) // cpus))
    capacity = min(fits) if fits else int(res.get("CPU", 1))
    if capacity < 1:
        raise ConfigError(f"executor: a point asks for {cpus:g} CPU and {gpus:g} GPU, and the Ray cluster has "
                          f"{res.get('CPU', 0):g} CPU and {res.get('GPU', 0):g} GPU in all; lower "
                          "executor.cpus_per_point / gpus_per_point or add nodes")
    if executor["workers"] is not None:
        capacity = min(capacity, executor["workers"])
    return max(1, min(capacity, max(n_points, 1)))


def _resources(ray) -> dict:
    return {k: v for k, v in ray.cluster_resources().items() if k in ("CPU", "GPU", "memory")}


def _model_key(point) -> tuple:
    return (point.model, point.dtype)


class _Pool:
    def __init__(self, ray, suite, executor, gpus, profile, n):
        from dgbench.harness.executors.ray_worker import PointWorker

        self.ray = ray
        self.actor_class = ray.remote(PointWorker).options(
            num_cpus=executor["cpus_per_point"], num_gpus=gpus, max_restarts=executor["max_restarts"],
            max_task_retries=executor["max_task_retries"], max_concurrency=1)
        self.args = (suite, gpus, executor["cpus_per_point"], profile, time.time())
        self.slots = [self._new_slot() for _ in range(n)]

    def _new_slot(self) -> _Slot:
        actor = self.actor_class.remote(*self.args)
        return _Slot(actor, actor.describe.remote())

    def idle(self) -> list[_Slot]:
        return [s for s in self.slots if not s.busy]

    def held(self) -> set:
        return {s.model for s in self.slots if s.model is not None}

    def placement(self, slot: _Slot) -> dict | None:
        """Where `slot`'s worker ran, if it started far enough to say."""
        if slot.placement is None:
            try:
                slot.placement = self.ray.get(slot.describe, timeout=0)
            except Exception:  # it died before describing itself (or is still starting): no placement to record
                return None
        return slot.placement

    def replace(self, slot: _Slot) -> None:
        self.ray.kill(slot.actor, no_restart=True)
        fresh = self._new_slot()
        slot.actor, slot.describe, slot.model, slot.placement = fresh.actor, fresh.describe, None, None

    def stop(self) -> None:
        for slot in self.slots:
            try:
                self.ray.kill(slot.actor, no_restart=True)
            except Exception:  # already gone
                pass


class _Queue:
    """Points waiting for a worker, by model: a worker keeps its model while that model has points, a fresh
    one takes a model no worker holds (else the one with the most points left)."""

    def __init__(self, points: list):
        self.by_model: dict[tuple, list] = {}
        for p in points:
            self.by_model.setdefault(_model_key(p), []).append(p)

    def __bool__(self) -> bool:
        return any(self.by_model.values())

    def take(self, held_model, held_by_any: set):
        if held_model in self.by_model and self.by_model[held_model]:
            return self.by_model[held_model].pop(0)
        left = [(m, ps) for m, ps in self.by_model.items() if ps]
        if not left:
            return None
        free = [(m, ps) for m, ps in left if m not in held_by_any]
        model, points = max(free or left, key=lambda e: len(e[1]))   # max keeps the first of equals
        return points.pop(0)


def _result(ray, ref, slot: _Slot, point, pool: _Pool, gpus: float) -> dict:
    """The worker's answer, or a failed record when the worker died or Ray could not run the call."""
    try:
        result = ray.get(ref)
        slot.placement = result["record"].get("placement") or slot.placement
        return result
    except ray.exceptions.RayActorError as exc:   # the worker process is gone: OOM-killed, node lost, killed
        placement = pool.placement(slot)
        pool.replace(slot)
        return {"record": _failed_record(point, gpus, "worker_died", exc, placement), "samples": [],
                "telemetry_rows": []}
    except ray.exceptions.RayError as exc:   # Ray itself failed the call (e.g. the point did not deserialize)
        return {"record": _failed_record(point, gpus, type(exc).__name__, exc, pool.placement(slot)), "samples": [],
                "telemetry_rows": []}


def _failed_record(point, gpus: float, kind: str, exc: BaseException, placement: dict | None) -> dict:
    from dgbench.hardware.detect import resolve_dtype
    from dgbench.harness.point import point_header
    from dgbench.models.registry import get

    device = "cuda:0" if gpus > 0 else "cpu"
    text = str(exc)
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    if "running low on memory" in text:
        kind = "out_of_memory"   # Ray's memory monitor killed it (ray: "Task was killed due to the node running low on memory")
    # "The actor died unexpectedly ..." plus Ray's "Worker exit type: ... Worker exit detail: ..." sentence
    cause = next((ln.split(". Some common causes")[0] for ln in lines if ln.startswith("The actor is dead")), "")
    message = " ".join(x for x in (lines[0] if lines else type(exc).__name__, cause) if x)
    record = point_header(point, get(point.model), resolve_dtype(point.dtype, device), device)
    record.update(status="failed", wall_s=None,
                  error={"kind": kind, "message": message[:500],
                         "detail": "\n".join(lines[:12])[:4000], "traceback": ""})
    if placement is not None:
        record["placement"] = placement
    return record


class _TelemetryCsv:
    """Appends the workers' telemetry rows to RUN_DIR/telemetry.csv (header once, as a local run writes it)."""

    def __init__(self, path):
        new = not path.exists()
        self.fh = open(path, "a", newline="", encoding="utf-8")
        self.writer = csv.writer(self.fh)
        if new:
            self.writer.writerow(COLUMNS)

    def write(self, rows: list[list[str]]) -> None:
        self.writer.writerows(rows)
        self.fh.flush()

    def close(self) -> None:
        self.fh.close()


def _hardware_of_points(points: list[dict], meta: dict) -> None:
    """run.json's hardware: the fingerprint every point was measured on; a mixed cluster lists them all in
    `hardware_keys`, and the report and gate then group points by their own placement."""
    placed = [p["placement"] for p in points if p.get("placement", {}).get("fingerprint")]
    if not placed:
        return
    keys = sorted({p["fingerprint_key"] for p in placed})
    meta["hardware"] = placed[0]["fingerprint"]
    meta["hardware_profile"] = placed[0].get("hardware_profile")
    meta["hardware_keys"] = keys
    meta["nodes"] = sorted({p["node_id"] for p in placed})

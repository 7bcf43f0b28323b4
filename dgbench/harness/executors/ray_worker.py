"""The Ray worker: one actor measures points one at a time, keeping its loaded model between points of the
same model (the runner's ModelCache), and sends back each finished point with its placement (node, GPU,
that node's hardware fingerprint), its quality samples and its telemetry rows. It writes no result file:
the driver (executors/ray_pool.py) is the one writer of the run directory.

Imports no Ray at module level; ray_pool wraps the class with ray.remote. Ray sets CUDA_VISIBLE_DEVICES
to the GPUs it granted the actor, so its device is always cuda:0 (or cpu when it asked for no GPU).
"""

from __future__ import annotations

import os
import platform
import time

from dgbench.telemetry.recorder import csv_row


class PointWorker:
    def __init__(self, suite: dict, gpus: float, cpus: float, profile: str | None, run_t0: float):
        import torch

        from dgbench.hardware.detect import fingerprint, fingerprint_key
        from dgbench.hardware.profiles import match_profile
        from dgbench.harness.point import RooflineContext, start_telemetry
        from dgbench.models.cache import ModelCache

        self.suite = suite
        self.device = "cuda:0" if gpus > 0 else "cpu"
        if self.device == "cpu":
            # Ray sets OMP_NUM_THREADS to the CPUs it granted; torch is told the same, so two workers on one
            # node do not each spin up a thread per core and fight over them.
            torch.set_num_threads(max(1, int(cpus)))
        self.fp = fingerprint(self.device)
        self.profile = profile or match_profile(self.fp)
        self.cache = ModelCache()
        self.roof = RooflineContext(self.profile, self.device)
        self.placement = {**_ray_placement(self.device), "fingerprint": self.fp,
                          "fingerprint_key": fingerprint_key(self.fp), "hardware_profile": self.profile}
        # Telemetry rows are stamped on the driver's clock (wall time since the run started there), so the
        # rows of several workers line up in one telemetry.csv; nodes are assumed NTP-synchronised.
        self.t_offset = time.time() - run_t0
        self.telemetry = start_telemetry(suite, self.device, None)   # rows kept in memory, shipped per point

    def describe(self) -> dict:
        import dgbench

        return {**self.placement, "dgbench": dgbench.__version__}

    def measure(self, point) -> dict:
        """{record, samples, telemetry_rows} of one finished (or failed) point."""
        from dgbench.harness.point import measure_point

        samples: list[dict] = []
        record = measure_point(point, self.device, self.suite, self.cache, self.telemetry, self.roof,
                               on_sample=samples.append)
        record["placement"] = self.placement
        rows = []
        recorder = self.telemetry[0]
        if recorder is not None:
            node = self.placement["node_ip"]
            for r in recorder.take_rows():
                # t_s on the driver's clock; device prefixed with the node, so two nodes' GPU 0 stay apart.
                r = {**r, "t_s": r["t_s"] + self.t_offset, "device": f"{node}/{r['device']}"}
                rows.append(csv_row(r))
        return {"record": record, "samples": samples, "telemetry_rows": rows}

    def stop(self) -> None:
        if self.telemetry[0] is not None:
            self.telemetry[0].stop()


def _ray_placement(device: str) -> dict:
    """Where this actor runs: Ray's node id, the node's address and host name, the GPUs Ray granted it (their
    ids as Ray counts them and their UUIDs, which name one physical GPU across reboots and renumbering)."""
    import ray

    ctx = ray.get_runtime_context()
    gpu_ids = [str(g) for g in ray.get_gpu_ids()]
    return {"node_id": ctx.get_node_id(), "node_ip": ray.util.get_node_ip_address(), "hostname": platform.node(),
            "pid": os.getpid(), "actor_id": ctx.get_actor_id(), "device": device, "gpu_ids": gpu_ids,
            "gpu_uuids": _gpu_uuids(len(gpu_ids))}


def _gpu_uuids(n: int) -> list[str]:
    if n == 0:
        return []
    try:
        import torch

        return [str(torch.cuda.get_device_properties(i).uuid) for i in range(min(n, torch.cuda.device_count()))]
    except Exception:  # a torch without the uuid field, or no CUDA after all: the ids above still say which
        return []

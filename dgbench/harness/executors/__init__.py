"""Executors: where a suite's points run. `local` measures them one by one in this process (the runner's
own loop); `ray` spreads them over the free CPUs/GPUs of a Ray cluster (executors/ray_pool.py, with the
worker in executors/ray_worker.py).

The suite field `executor:` picks one. It says how points are dispatched, not what is measured, so it is
left out of the config hash (harness/suite.py): a Ray run can be resumed locally, and shards run with
different executors still merge. Nothing here imports Ray; only the Ray executor does, when it runs.
"""

from __future__ import annotations

import re

from dgbench.errors import ConfigError
from dgbench.validation import Field

KINDS = ("local", "ray")
# ray.init addresses: "local" starts a private Ray instance on this machine, "auto" joins the cluster that
# `ray start` runs here, "ray://host:port" goes through Ray Client, "host:port" names a cluster's GCS.
ADDRESS = re.compile(r"local|auto|ray://[^\s/]+(:\d+)?|[A-Za-z0-9_.\-\[\]:]+:\d+")

EXECUTOR_FIELDS = {
    "kind": Field(str, default="local", choices=list(KINDS), help="local (this process) or ray"),
    "address": Field(str, default="local",
                     help="ray only: local (a private Ray on this machine), auto (the cluster `ray start` runs), "
                          "ray://HOST:10001 (Ray Client) or HOST:6379"),
    "gpus_per_point": Field(float, default=None, allow_none=True, min=0.0,
                            help="GPUs a point's worker asks Ray for (default: 1 when the cluster has GPUs, else 0)"),
    "cpus_per_point": Field(float, default=1.0, min=0.0,
                            help="CPUs a point's worker asks Ray for (a CPU worker runs that many torch threads)"),
    "workers": Field(int, default=None, allow_none=True, min=1,
                     help="Ray actors at most (default: as many as the cluster's resources fit)"),
    # Ray's own fault tolerance, passed to the actor options as they are (docs.ray.io: "Actor Fault
    # Tolerance"). 0/0: a point whose worker dies is recorded failed and not run again; -1 means unlimited.
    "max_restarts": Field(int, default=0, min=-1, help="times Ray restarts a dead worker actor in place"),
    "max_task_retries": Field(int, default=0, min=-1,
                              help="times Ray re-runs a point whose worker died (needs max_restarts > 0)"),
}


def executor_settings(suite: dict, kind: str | None = None) -> dict:
    """The suite's executor block with defaults filled (suites and run.json files older than the field
    have none), `kind` from `--executor` taking precedence."""
    from dgbench.validation import Location, validate_mapping

    settings = validate_mapping(dict(suite.get("executor") or {}), EXECUTOR_FIELDS, Location("executor"),
                                ("executor",))
    if kind is not None:
        if kind not in KINDS:
            raise ConfigError(f"--executor {kind!r}: use one of {', '.join(KINDS)}")
        settings["kind"] = kind
    check_address(settings["address"], "executor.address")
    if settings["max_task_retries"] != 0 and settings["max_restarts"] == 0:
        raise ConfigError(f"executor.max_task_retries={settings['max_task_retries']} needs executor.max_restarts "
                          "above 0 (Ray retries a point only on a restarted actor); set both, e.g. --set "
                          "executor.max_restarts=1 --set executor.max_task_retries=1")
    return settings


def check_address(address: str, where: str) -> None:
    if not ADDRESS.fullmatch(address):
        raise ConfigError(f"{where}: {address!r} is not a Ray address; use local, auto, ray://HOST:PORT or HOST:PORT")


def import_ray():
    """Ray, or the one-line error saying how to install it."""
    try:
        import ray
    except ImportError:
        raise ConfigError("--executor ray needs Ray, which is not installed: pip install 'dgbench[ray]' "
                          "(or pip install ray)") from None
    return ray

"""What the Ray executor buys on this machine: wall time of one CPU sweep with 1 worker vs 2 workers (and the
local executor beside them), interleaved in one process on one Ray cluster.

Each round runs the same sweep four ways in rotating order (local, local-1t, ray-1, ray-2; then local-1t,
ray-1, ray-2, local; ...) so drift on a shared machine hits every arm alike, each into a fresh run directory. Wall time is the
whole `run_suite` call: worker start-up (each Ray worker imports torch and builds its model once) plus every
point. Prints per arm the median [min-max] wall time over n rounds, and the per-round ratios 1-worker /
2-worker and local / 2-worker (median [min-max] over n). A ratio of 2.0 would be perfect scaling.

    python benchmarks/ray_scaling.py                        # 2 CPUs, tiny AR twin, 8 points, 3 rounds
    python benchmarks/ray_scaling.py --rounds 5 --gen 8,16,24,32 --cpus 4

On a multi-GPU node the same sweep with executor.gpus_per_point=1 runs one worker per GPU (Ray sets each
worker's CUDA_VISIBLE_DEVICES), so N GPUs measure N points at once and each point still owns a whole device:
its timings are those of a single-GPU run, and the sweep's wall time drops close to 1/N (minus one model load
per worker). On CPUs the workers share cores, memory bandwidth and caches, so the gain is smaller and per-point
timings are NOT those of a lone run: use Ray on a CPU box to get through a sweep, not to compare timings
against a local run.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--cpus", type=int, default=2, help="CPUs of the local Ray cluster")
    ap.add_argument("--gen", default="8,16,24,32", help="generation lengths of the sweep (x 2 decoders)")
    args = ap.parse_args()

    import ray
    import torch

    from dgbench.harness.executors import executor_settings
    from dgbench.harness.runner import run_suite
    from dgbench.harness.suite import load_suite

    overrides = ["decoders=[{name: ar, model: gemma4-tiny, engine: hf-autoregressive}, "
                 "{name: greedy, model: gemma4-tiny, engine: hf-autoregressive, knobs: {do_sample: false}}]",
                 f"sweep.gen_length=[{args.gen}]", "measure.warmup=1", "measure.min_repetitions=3",
                 "measure.max_repetitions=3", "measure.min_time_s=0", "measure.memory=false"]
    suite = load_suite("smoke", overrides)
    n_points = 2 * len(args.gen.split(","))
    threads = torch.get_num_threads()
    ray.init(num_cpus=args.cpus, include_dashboard=False, log_to_driver=False, logging_level="WARNING")
    # local-1t: the local executor with one torch thread, as each Ray worker runs (cpus_per_point 1): it
    # separates Ray's own cost from the thread count's effect on a loaded machine.
    arms = {"local": None, "local-1t": None, "ray-1": 1, "ray-2": 2}
    walls: dict[str, list[float]] = {a: [] for a in arms}
    try:
        with tempfile.TemporaryDirectory() as tmp:
            for r in range(args.rounds):
                order = list(arms)[r % len(arms):] + list(arms)[:r % len(arms)]
                for arm in order:
                    torch.set_num_threads(1 if arm == "local-1t" else threads)
                    if arms[arm] is None:
                        executor = executor_settings(suite, "local")
                    else:
                        executor = executor_settings({**suite, "executor": {**suite["executor"], "workers": arms[arm]}},
                                                     "ray")
                    started = time.perf_counter()
                    outcome = run_suite(suite, device="cpu", out_root=Path(tmp) / f"{arm}-{r}", profile="h100-sxm",
                                        executor=executor)
                    walls[arm].append(time.perf_counter() - started)
                    ok = sum(p["status"] == "ok" for p in outcome.points)
                    print(f"round {r + 1} {arm:8s} {walls[arm][-1]:7.1f} s  ({ok}/{n_points} points ok)", flush=True)
    finally:
        ray.shutdown()

    def spread(xs):
        return f"{statistics.median(xs):.2f} [{min(xs):.2f}-{max(xs):.2f}]"

    print(f"\nsweep: {n_points} points (tiny AR twin, gen {args.gen}, warmup 1 + 3 reps), Ray cluster of "
          f"{args.cpus} CPUs, cpus_per_point 1, n = {args.rounds} rounds")
    for arm, xs in walls.items():
        print(f"  {arm:8s} wall time (s): median [min-max] {spread(xs)}")
    one_two = [a / b for a, b in zip(walls["ray-1"], walls["ray-2"])]
    local_two = [a / b for a, b in zip(walls["local"], walls["ray-2"])]
    print(f"  ratio ray-1 / ray-2 wall time: {spread(one_two)}   (2.0 = perfect scaling)")
    print(f"  ratio local / ray-2 wall time: {spread(local_two)}")
    local1_one = [a / b for a, b in zip(walls["local-1t"], walls["ray-1"])]
    print(f"  ratio local-1t / ray-1 wall time: {spread(local1_one)}   (Ray's own cost: below 1.0)")


if __name__ == "__main__":
    main()

"""What the telemetry sampler costs: throughput with and without it running, interleaved in one process.

The same model and seed generate the same tokens with the sampler off and on (a background thread at
--rate-hz, 10 by default, as `dgbench run` uses), in alternating order (off-on, on-off, ...) so drift on a
shared machine hits both alike. On a CPU machine the sampler reads the CPU source (os.times and
/proc/self/statm, RAPL when readable; periodic rate capped at 2 Hz); where NVML loads it also samples every
GPU. Prints committed tok/s for each (median [p10-p90] over n calls), the per-pair ratio on/off (median
[p10-p90] over n pairs; 1.00 means no cost), the ratio of medians with a bootstrap interval, and the
sampling thread's own CPU time over the wall time it sampled: the cost counted directly, which stays
readable where the A/B ratio's interval (about ±2% here) is wider than the cost itself.

    python benchmarks/telemetry_overhead.py                      # CPU, gemma4-small, 20 pairs
    python benchmarks/telemetry_overhead.py --device cuda --pairs 30 --model gemma4-26b-a4b
"""

from __future__ import annotations

import argparse
import os
import time

import torch

from dgbench.backends import ENGINES
from dgbench.scenarios.generation import synthetic_prompts
from dgbench.models.registry import get
from dgbench.models.synthetic import build_synthetic
from dgbench.stats import bootstrap_ratio_of_medians, summarize
from dgbench.telemetry.recorder import TelemetryRecorder, open_sources
from dgbench.telemetry.timing import Clock
from dgbench.validation import Location, validate_mapping


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--model", default="gemma4-small")
    ap.add_argument("--engine", default="dgbench-autoregressive")
    ap.add_argument("--gen", type=int, default=128)
    ap.add_argument("--pairs", type=int, default=20)
    ap.add_argument("--rate-hz", type=float, default=10.0)
    args = ap.parse_args()
    torch.set_grad_enabled(False)
    spec = get(args.model)
    model = build_synthetic(spec, device=args.device, dtype="float32" if args.device == "cpu" else "bfloat16")
    engine = ENGINES[args.engine]
    decoder = engine.factory(model, spec, validate_mapping({}, engine.knobs, Location("bench")))
    ids, mask = synthetic_prompts(1, 32, spec.text_config["vocab_size"], spec.special_tokens.values(), 0, args.device)
    clock = Clock(args.device)

    def call() -> float:
        rec = decoder.generate(ids, mask, args.gen, True, 1234, clock)
        return sum(rec.useful_tokens) / rec.e2e_s

    for _ in range(2):   # warmup
        call()
    sources, src, dev = open_sources(args.device)
    names = sorted({s.name for s in sources})
    tok_s = {"off": [], "on": []}
    ratios = []
    sampler_cpu_s = on_wall_s = 0.0
    load_start = os.getloadavg()[0]
    started = time.time()
    for i in range(args.pairs):
        pair = {}
        for state in (("off", "on") if i % 2 == 0 else ("on", "off")):
            if state == "on":
                rec = TelemetryRecorder(sources, None, rate_hz=args.rate_hz)
                effective_hz = rec.rate_hz
                t0 = time.perf_counter()
                rec.start()
                pair[state] = call()
                rec.stop(close_sources=False)
                on_wall_s += time.perf_counter() - t0
                sampler_cpu_s += rec.sampler_cpu_s
            else:
                pair[state] = call()
            tok_s[state].append(pair[state])
        ratios.append(pair["on"] / pair["off"])
    for s in sources:
        s.close()
    print(f"device={args.device} model={args.model} engine={args.engine} gen={args.gen} torch threads="
          f"{torch.get_num_threads()} sampler sources={','.join(names)} rate={args.rate_hz:g} Hz requested, "
          f"{effective_hz:g} Hz effective ({time.time() - started:.0f} s; load average {load_start:.1f} at start, "
          f"{os.getloadavg()[0]:.1f} at end, {os.cpu_count()} CPUs)")
    print("committed tok/s, median [p10-p90] over n calls; ratio = on/off per interleaved pair")
    for state, values in tok_s.items():
        s = summarize(values)
        print(f"  sampler {state:3}  {s['median']:8.1f} [{s['p10']:.1f}-{s['p90']:.1f}] tok/s  n={s['n']}")
    r = summarize(ratios)
    print(f"  ratio on/off  {r['median']:.4f} [{r['p10']:.4f}-{r['p90']:.4f}]  n={r['n']} pairs "
          f"(cost {100 * (1 - r['median']):+.2f}% of throughput)")
    ratio, lo, hi = bootstrap_ratio_of_medians(tok_s["off"], tok_s["on"], seed=0)
    print(f"  ratio of medians on/off {ratio:.4f} [bootstrap 95% {lo:.4f}-{hi:.4f}] "
          f"(cost {100 * (1 - ratio):+.2f}% [{100 * (1 - hi):+.2f}, {100 * (1 - lo):+.2f}])")
    # The direct count: CPU time of the sampling thread over the wall time it sampled. With one torch
    # thread pinned to one core it is an upper bound on what the sampler took from the measured thread
    # (start/stop boundary samples run on the caller's thread and are outside it).
    print(f"  sampler thread CPU {1e3 * sampler_cpu_s:.2f} ms over {on_wall_s:.1f} s sampled = "
          f"{100 * sampler_cpu_s / on_wall_s:.3f}% of one core")


if __name__ == "__main__":
    main()

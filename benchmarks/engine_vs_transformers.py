"""dgbench's engines against transformers' `generate`, in one process: diffusion and autoregressive.

Same model, same settings, same seeds; calls interleaved (A B C A B C ...) so drift on a shared machine
hits every variant alike. Every repetition's tokens are compared with transformers'; a ratio counts only
for a variant whose tokens were identical in every repetition. Prints committed tok/s per variant
(median and p10/p90 over repetitions), the ratio of medians to transformers' with a bootstrap 95%
interval (dgbench.stats.bootstrap_ratio_of_medians), the identity count, the torch thread count and the
machine's load average before and after (this benchmark is often run on a shared machine: say so). Beside
the wall-time ratio it prints the ratio of process CPU seconds per call: on a core shared with another
job the other job's time slices land in one variant's wall time and not another's, and CPU time is the
steadier measure of the work each variant does.

Measured 2026-12-02 (issue 23; 2-core CPU, `OMP_NUM_THREADS=1 taskset -c 1`, load average 0.8-1.0, identical
tokens in every repetition), dgbench-diffusion / transformers: batch 1 1.65x [bootstrap 95% 1.61-1.68] (16
reps), 1.68x [1.46-1.81] (12 reps); batch 4 1.99x [1.88-2.07]; CPU-time ratios the same. AR (`--kind ar
--compile`, 12 reps): static cache + compiled decode_one_token 1.54x [1.50-1.62], eager 1.05x. Before
first_argmax and the compiled MT19937 row draw (same machine, idle): diffusion batch 1 1.47x [1.42-1.52].

    python benchmarks/engine_vs_transformers.py                         # CPU: diffusion and AR cases
    python benchmarks/engine_vs_transformers.py --kind ar --reps 20
    python benchmarks/engine_vs_transformers.py --kind diffusion --compile --device cuda --reps 30
"""

from __future__ import annotations

import argparse
import os
import time

import torch

from dgbench.backends import ENGINES
from dgbench.decoding import mt19937
from dgbench.scenarios.generation import synthetic_prompts
from dgbench.models.registry import get
from dgbench.models.synthetic import build_synthetic
from dgbench.stats import bootstrap_ratio_of_medians, summarize
from dgbench.telemetry.timing import Clock
from dgbench.validation import Location, validate_mapping

# (model, batch, prompt, gen, knobs shared by every variant)
DIFFUSION_CASES = [("diffusiongemma-small", 1, 32, 128, {"max_denoising_steps": 16}),
                   ("diffusiongemma-small", 4, 32, 128, {"max_denoising_steps": 16})]
AR_CASES = [("gemma4-small", 1, 32, 128, {})]


def variants(kind: str, device: str, with_compile: bool) -> dict[str, tuple[str, dict]]:
    """label -> (engine, knobs); the first is the reference."""
    if kind == "diffusion":
        out = {"transformers": ("hf-diffusion", {}), "dgbench": ("dgbench-diffusion", {})}
        if with_compile:
            out["dgbench+compile"] = ("dgbench-diffusion", {"compile": True})
        return out
    out = {"transformers": ("hf-autoregressive", {}), "dgbench": ("dgbench-autoregressive", {}),
           "dgbench+static": ("dgbench-autoregressive", {"cache": "static"})}
    if with_compile:
        out["dgbench+static+compile"] = ("dgbench-autoregressive", {"cache": "static", "compile": True})
    return out


def bench(kind: str, case: tuple, device: str, reps: int, with_compile: bool, model=None) -> dict:
    model_name, batch, prompt, gen, knobs = case
    spec = get(model_name)
    if model is None:
        model = build_synthetic(spec, device=device, dtype="float32" if device == "cpu" else "bfloat16")
    decoders = {label: ENGINES[engine].factory(model, spec, validate_mapping(
        {**knobs, **extra}, ENGINES[engine].knobs, Location("bench")))
        for label, (engine, extra) in variants(kind, device, with_compile).items()}
    ids, mask = synthetic_prompts(batch, prompt, spec.text_config["vocab_size"], spec.special_tokens.values(),
                                  seed=0, device=device)
    clock = Clock(device)
    tok_s = {name: [] for name in decoders}
    cpu_s = {name: [] for name in decoders}
    identical = {name: 0 for name in decoders}
    agree = {name: [0, 0] for name in decoders}       # token positions equal to transformers', of all compared
    warm_s = {}
    for rep in range(-1, reps):  # one warmup round (compiles)
        outs = {}
        for name, dec in decoders.items():
            t0, c0 = time.perf_counter(), time.process_time()
            rec = dec.generate(ids, mask, gen, fixed_length=True, seed=rep + 100, clock=clock)
            cpu = time.process_time() - c0
            outs[name] = rec.tokens
            if rep < 0:
                warm_s[name] = time.perf_counter() - t0
            else:
                tok_s[name].append(sum(rec.useful_tokens) / rec.e2e_s)
                cpu_s[name].append(cpu)
                identical[name] += outs[name] == outs["transformers"]
                same, total = _positions_equal(outs[name], outs["transformers"])
                agree[name][0] += same
                agree[name][1] += total
    s = {name: summarize(v) for name, v in tok_s.items()}
    ratio = {name: bootstrap_ratio_of_medians(tok_s["transformers"], v, seed=0) for name, v in tok_s.items()}
    # Process CPU seconds per call (user + system, this process only): on a shared core, where another job's
    # time slices land in one variant's wall time and not another's, the CPU-time ratio is the steadier one.
    cpu_ratio = {name: bootstrap_ratio_of_medians(v, cpu_s["transformers"], seed=0) for name, v in cpu_s.items()}
    return {"model": model_name, "batch": batch, "prompt": prompt, "gen": gen, "knobs": knobs, "summary": s,
            "warmup_s": warm_s, "identical": identical, "ratio": ratio, "tok_s": tok_s, "cpu_s": cpu_s,
            "cpu_ratio": cpu_ratio,
            "agreement": {name: same / total if total else 1.0 for name, (same, total) in agree.items()}}


def _positions_equal(a: list[list[int]], b: list[list[int]]) -> tuple[int, int]:
    """Token positions where two runs agree, and how many were compared (a variant whose tokens differ still
    says how far: one flipped acceptance early in a canvas changes the random stream from there on)."""
    pairs = [(x, y) for row_a, row_b in zip(a, b) for x, y in zip(row_a, row_b)]
    return sum(x == y for x, y in pairs), len(pairs)


def print_case(kind: str, r: dict) -> None:
    print(f"[{kind}] {r['model']} batch={r['batch']} prompt={r['prompt']} gen={r['gen']} knobs={r['knobs']} "
          f"(warmup s: {', '.join(f'{k} {v:.1f}' for k, v in r['warmup_s'].items())})")
    for label, s in r["summary"].items():
        same = r["identical"][label]
        ratio, lo, hi = r["ratio"][label]
        cpu_ratio, cpu_lo, cpu_hi = r["cpu_ratio"][label]
        verdict = "" if same == s["n"] else (f"  (NOT at identical output: ratio does not count; tokens equal at "
                                             f"{100 * r['agreement'][label]:.1f}% of positions)")
        print(f"  {label:24} {s['median']:8.1f} [{s['p10']:7.1f}-{s['p90']:7.1f}] tok/s n={s['n']}  "
              f"{ratio:.2f}x [{lo:.2f}-{hi:.2f}]  CPU time {cpu_ratio:.2f}x [{cpu_lo:.2f}-{cpu_hi:.2f}]  "
              f"identical tokens in {same}/{s['n']} reps{verdict}", flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--kind", choices=["diffusion", "ar", "both"], default="both")
    ap.add_argument("--reps", type=int, default=10)
    ap.add_argument("--compile", action="store_true", help="add the torch.compile variants")
    ap.add_argument("--batch", type=int, nargs="*", help="only these batch sizes")
    args = ap.parse_args()
    torch.set_grad_enabled(False)
    print(f"device={args.device} torch={torch.__version__} threads={torch.get_num_threads()} "
          f"OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', 'unset')} reps={args.reps} "
          f"load average at start={os.getloadavg()[0]:.1f} ({os.cpu_count()} CPUs) "
          f"compiled row draw={'on' if mt19937.available() else 'off (ATen draws the same bits)'}")
    print("committed tok/s, median [p10-p90] over n interleaved repetitions; "
          "ratio = median / transformers' median [bootstrap 95%]")
    started = time.time()
    kinds = ["diffusion", "ar"] if args.kind == "both" else [args.kind]
    for kind in kinds:
        for case in DIFFUSION_CASES if kind == "diffusion" else AR_CASES:
            if args.batch and case[1] not in args.batch:
                continue
            print_case(kind, bench(kind, case, args.device, args.reps, args.compile))
    print(f"{time.time() - started:.0f} s; load average at end={os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()

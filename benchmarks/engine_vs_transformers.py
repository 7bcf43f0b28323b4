"""dgbench's diffusion engine against transformers' DiffusionGemma generate, in one process.

Same model, same settings, same seeds; calls interleaved (A B A B ...) so drift on a shared machine
hits both alike. Every repetition's tokens are compared with transformers'; a ratio counts only for a
variant whose tokens were identical in every repetition. Prints committed tok/s per implementation
(median and p10/p90 over repetitions) and the ratio of medians.

    python benchmarks/engine_vs_transformers.py                  # CPU, the two small specs
    python benchmarks/engine_vs_transformers.py --device cuda --reps 30
"""

from __future__ import annotations

import argparse
import time

import torch

from dgbench.backends import ENGINES
from dgbench.scenarios.generation import synthetic_prompts
from dgbench.models.registry import get
from dgbench.models.synthetic import build_synthetic
from dgbench.stats import summarize
from dgbench.telemetry.timing import Clock
from dgbench.validation import Location, validate_mapping


def bench(model_name: str, device: str, batch: int, prompt: int, gen: int, steps: int, reps: int,
          adaptive: bool) -> dict:
    spec = get(model_name)
    model = build_synthetic(spec, device=device, dtype="float32" if device == "cpu" else "bfloat16")
    knobs = {"max_denoising_steps": steps, "adaptive_stopping": adaptive}
    variants = {"transformers": ("hf-diffusion", {}), "dgbench": ("dgbench-diffusion", {}),
                "dgbench+compile": ("dgbench-diffusion", {"compile": True})}
    decoders = {label: ENGINES[engine].factory(model, spec, validate_mapping(
        {**knobs, **extra}, ENGINES[engine].knobs, Location("bench")))
        for label, (engine, extra) in variants.items()}
    ids, mask = synthetic_prompts(batch, prompt, spec.text_config["vocab_size"], 3, seed=0, device=device)
    clock = Clock(device)
    tok_s = {name: [] for name in decoders}
    identical = {name: 0 for name in decoders}
    compile_started = time.time()
    for rep in range(-2, reps):  # two warmup rounds (the first compiles)
        if rep == -1:
            compile_s = time.time() - compile_started
        outs = {}
        for name, dec in decoders.items():
            rec = dec.generate(ids, mask, gen, fixed_length=True, seed=rep + 100, clock=clock)
            outs[name] = rec.tokens
            if rep >= 0:
                tok_s[name].append(sum(rec.useful_tokens) / rec.e2e_s)
        for label in outs:
            if rep >= 0:
                identical[label] += outs[label] == outs["transformers"]
    s = {name: summarize(v) for name, v in tok_s.items()}
    return {"model": model_name, "batch": batch, "gen": gen, "steps": steps, "summary": s, "first_round_s": compile_s,
            "identical": identical,
            "ratio": {label: s[label]["median"] / s["transformers"]["median"] for label in s}}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--reps", type=int, default=10)
    args = ap.parse_args()
    torch.set_grad_enabled(False)
    cases = [("diffusiongemma-tiny", 1, 16, 64, 8), ("diffusiongemma-tiny", 4, 16, 64, 8),
             ("diffusiongemma-small", 1, 32, 128, 16), ("diffusiongemma-small", 4, 32, 128, 16)]
    print(f"device={args.device} torch={torch.__version__} threads={torch.get_num_threads()} reps={args.reps}")
    print("committed tok/s, median [p10-p90] over n interleaved repetitions; ratio = median / transformers' median")
    started = time.time()
    for model_name, batch, prompt, gen, steps in cases:
        r = bench(model_name, args.device, batch, prompt, gen, steps, args.reps, adaptive=True)
        print(f"{model_name} batch={batch} prompt={prompt} gen={gen} steps/canvas={steps} "
              f"(first round incl. compile: {r['first_round_s']:.1f} s)")
        for label, s in r["summary"].items():
            same = r["identical"][label]
            print(f"  {label:16} {s['median']:8.1f} [{s['p10']:7.1f}-{s['p90']:7.1f}] n={s['n']}  "
                  f"{r['ratio'][label]:.2f}x  identical tokens in {same}/{s['n']} reps"
                  f"{'' if same == s['n'] else '  (NOT at identical output: ratio does not count)'}", flush=True)
    print(f"{time.time() - started:.0f} s")


if __name__ == "__main__":
    main()

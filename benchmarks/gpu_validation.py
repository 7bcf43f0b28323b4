"""One GPU run that checks dgbench's instruments and the seeds' headline claims, in about 8 minutes.

    python benchmarks/gpu_validation.py                       # CUDA device 0: full-size models, bf16
    python benchmarks/gpu_validation.py --device cpu --tiny   # the same code on the tiny specs (CI, < 1 min)

Writes reports/gpu/<fingerprint>-<date>/validation.json and README.md (or under --out). Sections, each
recorded even when another fails (a failed section holds its error, nothing measured is lost):

1. telemetry: NVML's energy-counter delta over a timed GPU workload against the integral of the power
   samples taken meanwhile (the README's check: within 10%), SM/memory clocks and throttle reasons seen;
   and the sampler's overhead on a short AR decode (interleaved on/off pairs, ratio of medians).
2. timing: CUDA-event (dgbench.telemetry.timing.Clock) against host perf_counter of the same calls.
3. engines: dgbench's diffusion and AR engines against transformers' generate at identical tokens
   (benchmarks/engine_vs_transformers.py), eager and compiled (on CUDA the static-cache AR step compiles
   with CUDA graphs, "reduce-overhead").
4. full size: DiffusionGemma 26B-A4B with random weights built on the device in bf16, batch 1, canvas 256,
   16 steps per canvas forced (adaptive stop off), prompt 4,096, 512 new tokens (vLLM's benchmark shape):
   committed and in-step tok/s, TTFC, denoise-step MFU; then Gemma 4 26B-A4B greedy at the same prompt:
   tok/s and MBU. Their ratio is the seeds' "~4x" measured structurally. Each beside `dgbench fit`'s
   estimate of its peak memory and the measured peak.
Definitions as in the README (committed throughput, in-step throughput, TTFC, MFU, MBU).
"""

from __future__ import annotations

import argparse
import datetime
import gc
import json
import os
import sys
import time
import traceback
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import engine_vs_transformers as evt  # noqa: E402  (the benchmark beside this file)

from dgbench.backends import ENGINES  # noqa: E402
from dgbench.hardware.detect import fingerprint, fingerprint_key  # noqa: E402
from dgbench.hardware.profiles import load_profiles, match_profile  # noqa: E402
from dgbench.hardware.roofline import DTYPE_BYTES, Forward, forward_cost, geometry  # noqa: E402
from dgbench.scenarios.generation import synthetic_prompts  # noqa: E402
from dgbench.models.memory import estimate, measure_peak_bytes  # noqa: E402
from dgbench.models.registry import get  # noqa: E402
from dgbench.models.synthetic import build_synthetic  # noqa: E402
from dgbench.stats import bootstrap_ratio_of_medians, summarize  # noqa: E402
from dgbench.telemetry.energy import integrate_power  # noqa: E402
from dgbench.telemetry.recorder import TelemetryRecorder, open_sources  # noqa: E402
from dgbench.telemetry.timing import Clock  # noqa: E402
from dgbench.validation import Location, validate_mapping  # noqa: E402

# Full size: vLLM's DiffusionGemma benchmark shape (H100, batch 1, 16 forced steps, 4,096 in, 512 out).
FULL = {"diffusion": "diffusiongemma-26b-a4b", "ar": "gemma4-26b-a4b", "prompt": 4096, "gen": 512,
        "canvas": 256, "steps": 16, "engine_models": ("diffusiongemma-small", "gemma4-small"), "reps": 5,
        "workload_s": 3.0, "pairs": 6}
SECTIONS = ("telemetry", "sampler", "timing", "full_diffusion", "full_ar", "engines")   # in the order they run
TINY = {"diffusion": "diffusiongemma-tiny", "ar": "gemma4-tiny", "prompt": 16, "gen": 32, "canvas": 16,
        "steps": 4, "engine_models": ("diffusiongemma-tiny", "gemma4-tiny"), "reps": 2, "workload_s": 0.3,
        "pairs": 2}


def _sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize(device)


def _decoder(model, spec, engine: str, knobs: dict):
    return ENGINES[engine].factory(model, spec, validate_mapping(knobs, ENGINES[engine].knobs, Location("gpu")))


def _dtype(device: str) -> str:
    return "bfloat16" if device.startswith("cuda") else "float32"


def _setup(model_name: str, device: str, cfg: dict, engine: str, knobs: dict):
    """(spec, model, decoder, prompt ids, mask, clock, build seconds) for one model at the config's prompt."""
    spec = get(model_name)
    t0 = time.perf_counter()
    model = build_synthetic(spec, device=device, dtype=_dtype(device))
    build_s = time.perf_counter() - t0
    ids, mask = synthetic_prompts(1, cfg["prompt"], spec.text_config["vocab_size"], spec.special_tokens.values(),
                                  0, device)
    return spec, model, _decoder(model, spec, engine, knobs), ids, mask, Clock(device), build_s


# ---------------------------------------------------------------- 1. telemetry

def telemetry_check(device: str, cfg: dict) -> dict:
    """Energy counter vs integrated power over a matmul workload; clocks and throttle reasons."""
    sources, source, dev = open_sources(device)
    n = 4096 if device.startswith("cuda") else 256
    a = torch.randn(n, n, device=device, dtype=getattr(torch, _dtype(device)))
    rec = TelemetryRecorder(sources, None, rate_hz=20.0)
    with rec:
        rec.mark("work", "rep", 0)
        t0, calls = time.perf_counter(), 0
        while time.perf_counter() - t0 < cfg["workload_s"]:
            a = torch.tanh(a @ a)
            calls += 1
            if calls % 8 == 0:
                _sync(device)
        _sync(device)
        rec.mark("work", "empty")
    summary = rec.point_summary("work", source, dev, useful_tokens=None)
    (start, end), = rec.rep_windows("work")
    inside = [r for r in rec.rows if r["source"] == source and r["device"] == dev and start.t_s <= r["t_s"] <= end.t_s]
    integrated = integrate_power([r["t_s"] for r in inside], [r.get("power_w") for r in inside])
    counter = summary["energy_j"] if summary["energy_method"] in ("energy-counter", "rapl") else None
    agreement = counter / integrated if counter and integrated else None
    clocks = [r.get("sm_clock_mhz") for r in inside if r.get("sm_clock_mhz") is not None]
    return {"source": source, "device": dev, "window_s": end.t_s - start.t_s, "samples": len(inside),
            "rate_hz": rec.rate_hz, "energy_counter_j": counter, "energy_method": summary["energy_method"],
            "integrated_power_j": integrated, "counter_over_integral": agreement,
            "within_10pct": None if agreement is None else abs(agreement - 1) <= 0.10,
            "sm_clock_mhz": summarize(clocks) if clocks else None, "throttle_reasons": summary["throttle_reasons"],
            "power_w": summary["power_w"]}


def sampler_overhead(device: str, cfg: dict) -> dict:
    """Throughput with the sampler off and on, interleaved pairs on one AR decoder (as the benchmark)."""
    spec, _, dec, ids, mask, clock, _ = _setup(cfg["engine_models"][1], device, cfg, "dgbench-autoregressive", {})
    call = lambda: (lambda r: sum(r.useful_tokens) / r.e2e_s)(dec.generate(ids, mask, cfg["gen"], True, 1, clock))  # noqa: E731
    call()
    sources, _, _ = open_sources(device)
    tok_s = {"off": [], "on": []}
    rate = None
    for i in range(cfg["pairs"]):
        for state in (("off", "on") if i % 2 == 0 else ("on", "off")):
            if state == "on":
                with TelemetryRecorder(sources, None, rate_hz=10.0) as rec:
                    rate = rec.rate_hz
                    tok_s["on"].append(call())
            else:
                tok_s["off"].append(call())
    ratio, lo, hi = bootstrap_ratio_of_medians(tok_s["off"], tok_s["on"], seed=0)
    return {"model": spec.name, "pairs": cfg["pairs"], "rate_hz": rate, "ratio_on_off": ratio, "interval": [lo, hi],
            "cost_pct": 100 * (1 - ratio), "tok_s": {k: summarize(v) for k, v in tok_s.items()}}


# ---------------------------------------------------------------- 2. timing

def timing_check(device: str, cfg: dict) -> dict:
    """The same generate calls timed by dgbench's Clock (CUDA events on a GPU) and by the host around a
    synchronized call: their difference is what event timing leaves out (launch latency, Python)."""
    _, _, dec, ids, mask, clock, _ = _setup(cfg["engine_models"][1], device, cfg, "dgbench-autoregressive", {})
    dec.generate(ids, mask, cfg["gen"], True, 0, clock)
    event_s, host_s = [], []
    for rep in range(max(3, cfg["reps"])):
        _sync(device)
        t0 = time.perf_counter()
        rec = dec.generate(ids, mask, cfg["gen"], True, rep, clock)
        _sync(device)
        host_s.append(time.perf_counter() - t0)
        event_s.append(rec.e2e_s)
    diffs = [100 * (h - e) / h for e, h in zip(event_s, host_s)]
    return {"clock": "cuda-events" if clock.is_cuda else "perf_counter", "event_s": summarize(event_s),
            "host_s": summarize(host_s), "host_minus_event_pct": summarize(diffs)}


# ---------------------------------------------------------------- 3. engines vs transformers

def engines_check(device: str, cfg: dict, with_compile: bool) -> dict:
    out = {}
    dm, am = cfg["engine_models"]
    cases = {"diffusion": (dm, 1, cfg["prompt"], cfg["gen"], {"max_denoising_steps": cfg["steps"]}),
             "ar": (am, 1, cfg["prompt"], cfg["gen"], {})}
    for kind, case in cases.items():
        r = evt.bench(kind, case, device, cfg["reps"], with_compile)
        out[kind] = {"model": case[0], "summary": r["summary"], "identical": r["identical"], "reps": cfg["reps"],
                     "ratio": {k: list(v) for k, v in r["ratio"].items()}, "warmup_s": r["warmup_s"]}
    return out


# ---------------------------------------------------------------- 4. full size

def _peak_profile(device: str):
    fp = fingerprint(device)
    name = match_profile(fp, load_profiles())
    return fp, name, (load_profiles().get(name) if name else None)


def _measured_peak(device: str, model, fn):
    """(result, measured peak bytes including the weights, how)."""
    if device.startswith("cuda"):
        torch.cuda.synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)
        result = fn()
        torch.cuda.synchronize(device)
        return result, torch.cuda.max_memory_allocated(device), "cuda max_memory_allocated"
    weights = sum(p.numel() * p.element_size() for p in model.parameters())
    peak, result = measure_peak_bytes(fn)
    return result, weights + peak, "parameter bytes + torch.profiler allocator peak of the call"


def full_size_diffusion(device: str, cfg: dict, profile: dict | None) -> dict:
    knobs = {"max_denoising_steps": cfg["steps"], "adaptive_stopping": False, "canvas_length": cfg["canvas"]}
    spec, model, dec, ids, mask, clock, build_s = _setup(cfg["diffusion"], device, cfg, "dgbench-diffusion", knobs)
    dec.generate(ids, mask, cfg["canvas"], True, 0, clock)          # warmup: one canvas
    rec, peak, how = _measured_peak(device, model, lambda: dec.generate(ids, mask, cfg["gen"], True, 1, clock))
    step_s = summarize(rec.step_times_s)
    g = geometry(spec)
    wb = DTYPE_BYTES[_dtype(device)]
    flops, _ = forward_cost(g, Forward("denoise", cfg["canvas"], cfg["prompt"], False, cfg["canvas"], self_cond=True),
                            1, wb, wb)
    peak_flops = ((profile or {}).get("peak_flops") or {}).get("bf16" if wb == 2 else "fp32")
    est = estimate(spec, batch=1, context=cfg["prompt"] + cfg["gen"], dtype="bf16" if wb == 2 else "fp32",
                   prompt=cfg["prompt"])
    out = {"model": spec.name, "build_s": build_s, "prompt": cfg["prompt"], "gen": cfg["gen"],
           "canvas": cfg["canvas"], "steps_per_canvas": rec.steps_per_canvas, "nfe": rec.nfe,
           "committed_tok_s": sum(rec.useful_tokens) / rec.e2e_s, "e2e_s": rec.e2e_s,
           "in_step_tok_s": cfg["canvas"] / step_s["median"], "step_s": step_s, "ttfc_s": rec.first_output_s,
           "denoise_step_flops": flops, "mfu": flops / step_s["median"] / peak_flops if peak_flops else None,
           "fit_estimate_bytes": est.peak, "measured_peak_bytes": peak, "peak_method": how,
           "estimate_over_measured": est.peak / peak if peak else None}
    del dec, model
    _free(device)
    return out


def full_size_ar(device: str, cfg: dict, profile: dict | None, compile_step: bool) -> dict:
    knobs = {"cache": "static", "compile": compile_step}
    spec, model, dec, ids, mask, clock, build_s = _setup(cfg["ar"], device, cfg, "dgbench-autoregressive", knobs)
    t0 = time.perf_counter()
    dec.generate(ids, mask, cfg["gen"], True, 0, clock)             # warmup (compiles, records graphs)
    warm_s = time.perf_counter() - t0
    rec, peak, how = _measured_peak(device, model, lambda: dec.generate(ids, mask, cfg["gen"], True, 1, clock))
    tpot = (rec.e2e_s - rec.first_output_s) / max(1, len(rec.tokens[0]) - 1)
    g = geometry(spec)
    wb = DTYPE_BYTES[_dtype(device)]
    _, step_bytes = forward_cost(g, Forward("decode", 1, cfg["prompt"] + cfg["gen"] // 2, True, 1), 1, wb, wb)
    bandwidth = (profile or {}).get("memory_bandwidth_bytes_s")
    est = estimate(spec, batch=1, context=cfg["prompt"] + cfg["gen"], dtype="bf16" if wb == 2 else "fp32",
                   prompt=cfg["prompt"])
    out = {"model": spec.name, "build_s": build_s, "knobs": knobs, "warmup_s": warm_s,
           "tok_s": sum(rec.useful_tokens) / rec.e2e_s, "e2e_s": rec.e2e_s, "ttft_s": rec.first_output_s,
           "tpot_s": tpot, "decode_step_bytes": step_bytes,
           "mbu": step_bytes / tpot / bandwidth if bandwidth else None,
           "fit_estimate_bytes": est.peak, "measured_peak_bytes": peak, "peak_method": how,
           "estimate_over_measured": est.peak / peak if peak else None}
    del dec, model
    _free(device)
    return out


def _free(device: str) -> None:
    gc.collect()
    if device.startswith("cuda"):
        torch.cuda.empty_cache()


# ---------------------------------------------------------------- run, write

def _section(results: dict, name: str, fn, *args) -> None:
    """Run one section and record its result, its error, or that the time budget was spent before it."""
    spent = time.perf_counter() - results["_started"]
    if spent >= results["budget_s"]:
        results[name] = {"skipped": f"time budget of {results['budget_s']:.0f} s spent ({spent:.0f} s) before it"}
        print(f"  {name}: skipped ({results[name]['skipped']})", flush=True)
        return
    t0 = time.perf_counter()
    try:
        results[name] = fn(*args)
    except Exception as exc:  # noqa: BLE001 - a failed section is recorded, the others still run
        results[name] = {"error": f"{type(exc).__name__}: {exc}", "traceback": traceback.format_exc(limit=4)}
    results.setdefault("section_s", {})[name] = time.perf_counter() - t0
    failed = f" (FAILED: {results[name]['error']})" if "error" in results[name] else ""
    print(f"  {name}: {results['section_s'][name]:.1f} s{failed}", flush=True)


def _write(r: dict, folder: Path) -> None:
    """The report as it stands: written after every section, so a run cut short (a device lease ending, a
    timeout) still leaves what it measured."""
    d, a = (r.get("full_diffusion") or {}).get("committed_tok_s"), (r.get("full_ar") or {}).get("tok_s")
    r["diffusion_over_ar"] = d / a if d and a else None
    r["total_s"] = time.perf_counter() - r["_started"]
    public = {k: v for k, v in r.items() if not k.startswith("_")}
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "validation.json").write_text(json.dumps(public, indent=1, default=str) + "\n", encoding="utf-8")
    (folder / "README.md").write_text(markdown(public), encoding="utf-8")


def _fmt(v, spec=".3g"):
    return "—" if v is None else format(v, spec)


def markdown(r: dict) -> str:
    from dgbench.report.markdown import cell as esc   # GPU and profile names go into table cells escaped
    fs, ar = r.get("full_diffusion", {}), r.get("full_ar", {})
    lines = [f"# GPU validation: {esc(r['fingerprint_key'])}, {r['date']}", "",
             f"torch {r['torch']}, transformers {r['transformers']}, device {r['device']}, tiny={r['tiny']}, "
             f"profile {r['profile'] or 'none'}; total {r['total_s']:.0f} s.", "",
             "| check | value |", "|---|---|"]
    tel = r.get("telemetry", {})
    lines += [f"| energy counter / integrated power | {_fmt(tel.get('counter_over_integral'))} "
              f"(within 10%: {tel.get('within_10pct')}) |",
              f"| throttle reasons | {esc(', '.join(tel.get('throttle_reasons') or []) or 'none')} |",
              f"| sampler cost | {_fmt(r.get('sampler', {}).get('cost_pct'), '+.2f')} % |",
              f"| host − event timing | {_fmt((r.get('timing', {}).get('host_minus_event_pct') or {}).get('median'))} % |",
              f"| diffusion committed tok/s | {_fmt(fs.get('committed_tok_s'))} (in-step {_fmt(fs.get('in_step_tok_s'))}) |",
              f"| diffusion TTFC s | {_fmt(fs.get('ttfc_s'))} |", f"| denoise-step MFU | {_fmt(fs.get('mfu'))} |",
              f"| AR greedy tok/s | {_fmt(ar.get('tok_s'))} (MBU {_fmt(ar.get('mbu'))}) |",
              f"| diffusion ÷ AR (committed) | {_fmt(r.get('diffusion_over_ar'))} |",
              f"| fit estimate / measured peak (diffusion, AR) | {_fmt(fs.get('estimate_over_measured'))}, "
              f"{_fmt(ar.get('estimate_over_measured'))} |"]
    for kind, e in (r.get("engines") or {}).items():
        if isinstance(e, dict) and "summary" in e:
            for label, s in e["summary"].items():
                lines.append(f"| {kind} {esc(label)} tok/s | {s['median']:.1f} ({e['ratio'][label][0]:.2f}x, identical "
                             f"{e['identical'][label]}/{e['reps']}) |")
    failed = [k for k, v in r.items() if isinstance(v, dict) and "error" in v]
    skipped = [k for k, v in r.items() if isinstance(v, dict) and "skipped" in v]
    pending = [s for s in SECTIONS if s not in r]
    lines += ["", f"Failed sections: {', '.join(failed) or 'none'}. Skipped for time: {', '.join(skipped) or 'none'}. "
              f"Not yet run: {', '.join(pending) or 'none'}. Definitions: README (Metrics).", ""]
    return "\n".join(lines)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--device", default="cuda:0")
    ap.add_argument("--tiny", action="store_true", help="tiny specs and shapes: the CI check of this script")
    ap.add_argument("--out", default="reports/gpu", help="parent folder of the report folder")
    ap.add_argument("--no-compile", action="store_true", help="skip the compiled variants")
    ap.add_argument("--budget-s", type=float, default=480.0,
                    help="start no section after this many seconds (default 480: the 8-minute run); the report is "
                         "written after every section either way")
    args = ap.parse_args(argv)
    if args.device == "cuda":
        args.device = "cuda:0"
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        print(f"--device {args.device}: no CUDA device here; use --device cpu --tiny", file=sys.stderr)
        return 2
    cfg = TINY if args.tiny else FULL
    torch.set_grad_enabled(False)
    compile_on = not args.no_compile and args.device.startswith("cuda")   # CPU compile takes minutes
    fp, profile_name, profile = _peak_profile(args.device)
    import transformers
    r = {"device": args.device, "tiny": args.tiny, "fingerprint": fp, "fingerprint_key": fingerprint_key(fp),
         "profile": profile_name, "date": datetime.date.today().isoformat(), "torch": torch.__version__,
         "transformers": transformers.__version__, "config": cfg, "compile": compile_on}
    slug = "".join(c if c.isalnum() else "-" for c in r["fingerprint_key"].lower()).strip("-")
    folder = Path(args.out) / f"{slug}-{r['date']}"
    r["_started"], r["budget_s"] = time.perf_counter(), args.budget_s
    print(f"gpu_validation on {r['fingerprint_key']} ({args.device}, tiny={args.tiny}, budget {args.budget_s:.0f} s)",
          flush=True)
    # The headline (full size) comes right after the cheap instrument checks, before the engine comparisons
    # and their compiles: on a lent card with minutes to spare, the seeds' claims are measured first.
    steps = {"telemetry": (telemetry_check, args.device, cfg), "sampler": (sampler_overhead, args.device, cfg),
             "timing": (timing_check, args.device, cfg),
             "full_diffusion": (full_size_diffusion, args.device, cfg, profile),
             "full_ar": (full_size_ar, args.device, cfg, profile, compile_on),
             "engines": (engines_check, args.device, cfg, compile_on)}
    for name in SECTIONS:
        fn, *fn_args = steps[name]
        _section(r, name, fn, *fn_args)
        _write(r, folder)
    print(f"wrote {folder} in {r['total_s']:.0f} s; diffusion/AR = {_fmt(r['diffusion_over_ar'])}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

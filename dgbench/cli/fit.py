"""`dgbench fit MODEL --profile NAME`: does one generate call fit in the device's memory?

Exit codes: 0 fits, 1 does not fit, 2 bad input (unknown model, profile or dtype: one line with a
"did you mean"). The numbers come from dgbench.models.memory; the table says what each one assumes.
"""

from __future__ import annotations

import sys

from dgbench.errors import EXIT_DOES_NOT_FIT, EXIT_OK, ConfigError

NAME = "fit"

FIT_EPILOG = """\
examples:
  dgbench fit diffusiongemma-26b-a4b --profile h100-sxm --batch 1 --context 8192 --dtype bf16
  dgbench fit diffusiongemma-26b-a4b --profile rtx-5090 --batch 1 --context 8192 --dtype int4
  dgbench fit gemma4-26b-a4b --profile rtx-5090 --context 32768 --dtype nvfp4 --prefill-chunk 4096

exit codes: 0 fits, 1 does not fit, 2 bad input (model, profile, dtype, numbers)
"""


def add_parser(sub, formatter) -> None:
    from dgbench.models.memory import ATTENTION, WEIGHT_FORMATS

    fit = sub.add_parser("fit", help="estimate peak memory of a model on a hardware profile",
                         formatter_class=formatter, epilog=FIT_EPILOG,
                         description="Estimate the peak memory of one generate call (weights, KV cache, "
                                     "activations, logits buffers) and compare it with a hardware profile's "
                                     "memory. Nothing is loaded or run.")
    fit.add_argument("model", help="a name from `dgbench list models`")
    fit.add_argument("--profile", required=True, metavar="NAME", help="a name from `dgbench list profiles`")
    fit.add_argument("--batch", type=int, default=1, metavar="N", help="sequences generated together (default 1)")
    fit.add_argument("--context", type=int, required=True, metavar="N",
                     help="tokens per sequence at the end: prompt + generated")
    fit.add_argument("--prompt", type=int, metavar="N", help="prompt tokens (default: the whole context, worst case)")
    fit.add_argument("--dtype", default="bf16", metavar="|".join(WEIGHT_FORMATS),
                     help="weight format (default bf16); activations and KV stay bf16 (fp32 for fp32)")
    fit.add_argument("--attention", default="sdpa", choices=ATTENTION,
                     help="sdpa (transformers' default: materialised masks) or flash (no masks)")
    fit.add_argument("--prefill-chunk", type=int, metavar="N",
                     help="model a chunked prefill of N tokens (transformers' generate does not chunk)")
    fit.add_argument("--reserve-gib", type=float, metavar="GIB",
                     help="memory the runtime holds outside tensors (default 1 GiB on a GPU: CUDA context, "
                          "library workspaces, allocator slack; 0 on a CPU)")


def _check(args):
    from dgbench.hardware.profiles import load_profiles
    from dgbench.models.memory import WEIGHT_FORMATS
    from dgbench.models.registry import get
    from dgbench.validation import did_you_mean

    spec = get(args.model)
    profiles = load_profiles()
    if args.profile not in profiles:
        raise ConfigError(f"unknown profile {args.profile!r}; {did_you_mean(args.profile, sorted(profiles))} "
                          "(see `dgbench list profiles`)")
    if args.dtype not in WEIGHT_FORMATS:
        raise ConfigError(f"unknown dtype {args.dtype!r}; {did_you_mean(args.dtype, list(WEIGHT_FORMATS))}")
    for flag in ("batch", "context", "prompt", "prefill_chunk"):
        value = getattr(args, flag)
        if value is not None and value < 1:
            raise ConfigError(f"--{flag.replace('_', '-')} must be at least 1, got {value}")
    if args.prompt is not None and args.prompt > args.context:
        raise ConfigError(f"--prompt {args.prompt} is longer than --context {args.context} (context = prompt + "
                          "generated)")
    return spec, profiles[args.profile]


def _capacity(profile: dict) -> tuple[int, str]:
    if profile.get("memory_bytes"):
        return int(profile["memory_bytes"]), f"profile {profile['name']} memory_bytes"
    import psutil

    return psutil.virtual_memory().total, f"profile {profile['name']} has no memory_bytes: this machine's RAM"


def main(args) -> int:
    from rich.console import Console
    from rich.table import Table

    from dgbench.models.memory import estimate, human_bytes
    from dgbench.models.params import formula, human

    spec, profile = _check(args)
    est = estimate(spec, batch=args.batch, context=args.context, dtype=args.dtype, prompt=args.prompt,
                   attention=args.attention, prefill_chunk=args.prefill_chunk)
    capacity, where = _capacity(profile)
    reserve_gib = args.reserve_gib if args.reserve_gib is not None else (1.0 if profile.get("kind") == "gpu" else 0.0)
    reserve = int(reserve_gib * 2**30)
    needed = est.peak + reserve
    counts = formula(spec)

    console = Console(width=None if sys.stdout.isatty() else 150)
    table = Table(title=f"{spec.name} ({human(counts.total)} parameters, {human(counts.active)} active) "
                        f"on {profile['name']}: batch {est.batch}, context {est.context} (prompt {est.prompt}), "
                        f"{est.dtype} weights, {est.attention} attention")
    for col, justify in (("memory", "left"), ("bytes", "right"), ("", "right"), ("assumes", "left")):
        table.add_column(col, justify=justify)
    for name, value, note in est.rows():
        table.add_row(name, f"{value:,}", human_bytes(value), note, style="bold" if name == "peak" else None)
    table.add_row("runtime reserve", f"{reserve:,}", human_bytes(reserve), "outside tensors (--reserve-gib)")
    table.add_row("capacity", f"{capacity:,}", human_bytes(capacity), where)
    if "attention" in est.notes:
        table.caption = est.notes["attention"]
    console.print(table)
    if needed <= capacity:
        console.print(f"fits: needs {human_bytes(needed)} of {human_bytes(capacity)} "
                      f"({100 * needed / capacity:.0f}%, {human_bytes(capacity - needed)} free)")
        return EXIT_OK
    console.print(f"does not fit: needs {human_bytes(needed)}, {profile['name']} has {human_bytes(capacity)} "
                  f"({human_bytes(needed - capacity)} short)")
    return EXIT_DOES_NOT_FIT

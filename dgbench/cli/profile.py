"""`dgbench profile`: the detected hardware profile (published numbers and their sources) and this
machine's measured ceilings (matmul FLOP/s, copy bandwidth) beside them.

Exit codes: 0 shown, 2 bad input (unknown profile, unavailable device).
"""

from __future__ import annotations

import json
import sys

NAME = "profile"

PROFILE_EPILOG = """\
examples:
  dgbench profile                      # detect this machine, measure its ceilings (cached), compare
  dgbench profile --device cuda        # the GPU: published peaks vs measured matmul and copy bandwidth
  dgbench profile --remeasure          # ignore the cache under ~/.cache/dgbench and measure again
  dgbench profile --profile h100-sxm   # compare with a named profile instead of the detected one
  dgbench profile --json               # machine-readable

Measured figures are the best of n runs (a ceiling), shown with the median and p10-p90 of the n runs.
A CPU without a profile of its own is described by its measured profile, which `dgbench run` uses for
the roofline (labelled "measured").

exit codes: 0 shown, 2 bad input (unknown profile, device not available)
"""


def add_parser(sub, formatter) -> None:
    p = sub.add_parser("profile", help="show the detected hardware profile and measured ceilings",
                       formatter_class=formatter, epilog=PROFILE_EPILOG,
                       description="Detect the device, show its hardware profile (peak FLOP/s per dtype, memory "
                                   "bandwidth, capacity, power, each with its source) and measure this machine's "
                                   "ceilings: dense matmul FLOP/s in fp32 and bf16, and copy bandwidth.")
    p.add_argument("--device", default="auto", metavar="auto|cpu|cuda[:N]", help="device to profile (default: auto)")
    p.add_argument("--profile", metavar="NAME", help="compare with this profile instead of the detected one")
    p.add_argument("--remeasure", action="store_true", help="measure again instead of reading the cache")
    p.add_argument("--json", action="store_true", help="print JSON instead of tables")


def _fmt(value, unit: str) -> str:
    if value is None:
        return "-"
    scale = {"FLOP/s": (1e12, "TFLOP/s"), "B/s": (1e9, "GB/s"), "B": (2**30, "GiB"), "W": (1, "W")}[unit]
    return f"{value / scale[0]:.4g} {scale[1]}"


def main(args) -> int:
    from rich.console import Console
    from rich.table import Table

    from dgbench.hardware.detect import fingerprint, resolve_device
    from dgbench.hardware.measure import measured_profile
    from dgbench.hardware.profiles import get_profile, load_profiles, match_profile

    device = resolve_device(args.device)
    profiles = load_profiles()
    fp = fingerprint(device)
    name = args.profile or match_profile(fp, profiles)
    prof = get_profile(name, profiles) if name else None
    measured = measured_profile(device, remeasure=args.remeasure)
    if args.json:
        print(json.dumps({"device": device, "fingerprint": fp, "profile": prof, "measured": measured},
                         indent=2, sort_keys=True, default=str))
        return 0

    console = Console(width=None if sys.stdout.isatty() else 160)
    where = fp.get("gpu_name") or fp.get("cpu_model")
    source = "--profile" if args.profile else "detected"
    console.print(f"device {device} ({where}); profile: {name or 'none'} ({source})"
                  + (f", file {prof['file']}" if prof else ""))
    if prof:
        sources = prof.get("sources") or {}
        t = Table(title=f"profile {name} (published)")
        for col in ("figure", "value", "source"):
            t.add_column(col)
        rows = [(f"peak {k} (dense)", v, "FLOP/s", f"peak_flops.{k}") for k, v in (prof.get("peak_flops") or {}).items()]
        rows += [("memory bandwidth", prof.get("memory_bandwidth_bytes_s"), "B/s", "memory_bandwidth_bytes_s"),
                 ("memory capacity", prof.get("memory_bytes"), "B", "memory_bytes"),
                 ("power limit", prof.get("power_limit_w"), "W", "power_limit_w")]
        for label, value, unit, key in rows:
            t.add_row(label, _fmt(value, unit), sources.get(key) or sources.get("all") or
                      ("not published / unknown" if value is None else ""))
        console.print(t)
    t = Table(title=f"measured on this machine ({measured['name']}; cache {measured.get('file')})")
    for col in ("ceiling", "measured (best)", "median [p10-p90]", "n", "published", "measured / published", "method"):
        t.add_column(col)
    for key, label, unit, pub_key in (("fp32", "matmul fp32", "FLOP/s", "fp32"), ("bf16", "matmul bf16", "FLOP/s", "bf16"),
                                      ("copy", "copy bandwidth", "B/s", None)):
        m = measured["measurements"][key]
        pub = ((prof or {}).get("peak_flops") or {}).get(pub_key) if pub_key else (prof or {}).get("memory_bandwidth_bytes_s")
        t.add_row(label, _fmt(m["value"], unit), f"{_fmt(m['median'], unit)} [{_fmt(m['p10'], unit)}-{_fmt(m['p90'], unit)}]",
                  str(m["n"]), _fmt(pub, unit), f"{m['value'] / pub:.2f}" if pub else "-", m["method"])
    console.print(t)
    console.print("Copy bandwidth counts bytes read + written (STREAM copy). On a CPU, `dgbench run` also measures a "
                  "per-forward floor for each model shape in every run (stored in run.json under roofline_profile).",
                  highlight=False)
    return 0

"""`dgbench baseline save RUN_DIR NAME` / `list` / `check NAME`: baselines kept in a folder you commit.

Exit codes: 0 done (check: the baseline was recorded on this machine's hardware), 1 check: other
hardware, 2 bad input (run not finished or corrupted, bad name, no such baseline).
"""

from __future__ import annotations

NAME = "baseline"

BASELINE_EPILOG = """\
examples:
  dgbench baseline save results/20261122T093830Z-smoke smoke     # -> ./baselines/smoke/{run.json,points.jsonl}
  dgbench baseline save results/20261122T093830Z-smoke smoke --dir ci/baselines
  dgbench baseline list                                           # names, suites, machines, commits
  dgbench baseline check smoke && echo "recorded on this machine's hardware"   # exit 1 if not (CI)
  dgbench gate --baseline smoke --candidate results/<new run>     # gate against it

The folder defaults to ./baselines under the current directory (or $DGBENCH_BASELINES); commit it.
A baseline holds timings of one machine: the gate refuses a candidate from other hardware.

exit codes: 0 done (check: same hardware), 1 check: different hardware,
            2 bad input (unfinished or corrupted run, bad name, no such baseline)
"""


def add_parser(sub, formatter) -> None:
    p = sub.add_parser("baseline", help="save a run as a named baseline for `dgbench gate`, or list them",
                       formatter_class=formatter, epilog=BASELINE_EPILOG,
                       description="Save a finished run under a name in a baselines folder that can be "
                                   "committed, list the saved baselines, or check whether one was recorded on "
                                   "this machine's hardware (what CI asks before gating against it).")
    p.add_argument("action", choices=["save", "list", "check"],
                   help="save RUN_DIR NAME | list | check NAME (was it recorded on this machine's hardware?)")
    p.add_argument("run_dir", nargs="?", metavar="RUN_DIR|NAME", help="save: the finished run to keep; check: NAME")
    p.add_argument("name", nargs="?", metavar="NAME", help="save: the baseline's name (replaces one of that name)")
    p.add_argument("--dir", dest="baselines_dir", metavar="DIR",
                   help="folder of saved baselines (default: $DGBENCH_BASELINES or ./baselines)")


def main(args) -> int:
    from pathlib import Path

    from dgbench.errors import ConfigError
    from dgbench.gate.baselines import baselines_dir, save_baseline, saved_names
    from dgbench.hardware.detect import fingerprint_key
    from dgbench.results import RunStore

    folder = baselines_dir(args.baselines_dir)
    if args.action == "check":
        return _check(args.run_dir, folder)
    if args.action == "save":
        if not args.run_dir or not args.name:
            raise ConfigError("baseline save needs RUN_DIR and NAME, e.g. `dgbench baseline save results/<run> smoke`")
        target = save_baseline(Path(args.run_dir), args.name, folder)
        meta = RunStore(target).read_meta()
        print(f"saved baseline {args.name!r} in {target} (suite {meta.get('suite_name')}, hardware "
              f"{fingerprint_key(meta.get('hardware') or {})}, commit {meta.get('git_commit')})")
        return 0
    names = saved_names(folder)
    if not names:
        print(f"no baselines in {folder}; save one with `dgbench baseline save RUN_DIR NAME`")
    for name in names:
        meta = RunStore(folder / name).read_meta()
        print(f"{name}\tsuite {meta.get('suite_name')}\thardware {fingerprint_key(meta.get('hardware') or {})}\t"
              f"commit {meta.get('git_commit')}\tcreated {meta.get('created_utc')}")
    return 0


def _check(name: str | None, folder) -> int:
    """0 when baseline `name` was recorded on hardware with this machine's fingerprint key, else 1."""
    from dgbench.errors import ConfigError
    from dgbench.gate.rules import FINGERPRINT_FIELDS
    from dgbench.gate.baselines import resolve_baseline
    from dgbench.hardware.detect import fingerprint, fingerprint_key
    from dgbench.results import RunStore

    if not name:
        raise ConfigError("baseline check needs NAME, e.g. `dgbench baseline check smoke`")
    path, _ = resolve_baseline(name, folder)
    saved = RunStore(path).read_meta().get("hardware") or {}
    device = saved.get("device") or "cpu"
    if device.startswith("cuda"):
        import torch

        if not torch.cuda.is_available():
            print(f"baseline {name!r} was recorded on other hardware: {saved.get('gpu_name')!r}, and this machine "
                  "has no CUDA device")
            return 1
    here = fingerprint(device if device.startswith("cuda:") else "cpu")
    if fingerprint_key(saved) == fingerprint_key(here):
        print(f"baseline {name!r} was recorded on this hardware ({fingerprint_key(here)})")
        return 0
    diffs = ", ".join(f"{f}: {saved.get(f)!r} (baseline) vs {here.get(f)!r} (here)" for f in FINGERPRINT_FIELDS
                      if saved.get(f) != here.get(f))
    print(f"baseline {name!r} was recorded on other hardware: {diffs}")
    return 1

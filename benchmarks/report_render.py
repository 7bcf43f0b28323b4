"""How long does `dgbench report` take for a run of 1,000 points? (issue 8: must stay under 30 s here)

The 1,000 points are synthetic: copies of one real point record (from RUN_DIR, or from a fresh
`dgbench run --suite smoke` when none is given), spread over 4 decoders x 5 batch sizes x 5 generation
lengths x 10 canvas lengths, with their repetitions rescaled and jittered so every figure and table has
real work to do. One point keeps a denoising trajectory when the source has one. Prints the render time
of each repetition, then the median with min-max over n renders, and the ratio to the 30 s budget.

    python benchmarks/report_render.py [RUN_DIR] [--points 1000] [--repeat 3]
"""

from __future__ import annotations

import argparse
import copy
import json
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BUDGET_S = 30.0


def template_run(run_dir: str | None, scratch: Path) -> Path:
    if run_dir:
        return Path(run_dir)
    out = scratch / "source"
    subprocess.run([sys.executable, "-m", "dgbench.cli", "run", "--suite", "smoke", "--out", str(out)], check=True,
                   capture_output=True)
    return next(d for d in out.iterdir() if d.is_dir())


def synthesize(source: Path, dest: Path, n_points: int, seed: int = 0) -> None:
    from dgbench.results import RunStore
    from dgbench.stats import summarize

    store = RunStore(source)
    meta, points = store.read_meta(), [p for p in store.read_points() if p.get("status") == "ok"]
    if not points:
        raise SystemExit(f"{source}: no measured point to copy")
    rng = random.Random(seed)
    decoders = ["diffusion", "diffusion-hf", "ar", "ar-spec"]
    grid = [(d, b, g, c) for d in decoders for b in (1, 2, 4, 8, 16) for g in (32, 64, 128, 256, 512)
            for c in (8, 16, 24, 32, 48, 64, 96, 128, 192, 256)]
    out = RunStore(dest)
    out.create({k: v for k, v in meta.items() if k != "schema_version"})
    kept_trajectory = False
    for i, (dec, batch, gen, canvas) in enumerate(grid[:n_points]):
        base = copy.deepcopy(points[i % len(points)])
        scale = batch * gen / 32 * rng.uniform(0.8, 1.25)
        base.update(decoder=dec, point_id=f"synthetic{i:05d}",
                    params={"batch_size": batch, "gen_length": gen, "prompt_length": 8, "canvas_length": canvas})
        for name, values in (base.get("reps") or {}).items():
            factor = scale if name.endswith("_s") and "tok" not in name else (1 / scale if "tok_s" in name else 1)
            base["reps"][name] = [None if v is None else v * factor * rng.uniform(0.9, 1.1) for v in values]
        base["summary"] = {k: summarize([x for x in v if x is not None])
                           for k, v in {**base.get("reps", {}), **base.get("pooled", {})}.items()}
        if base.get("trajectory") and kept_trajectory:
            del base["trajectory"]
        kept_trajectory = kept_trajectory or bool(base.get("trajectory"))
        out.append_point(base)
    out.close()
    if (source / "telemetry.csv").exists():  # the timeline then has a real run's samples to draw
        (dest / "telemetry.csv").write_bytes((source / "telemetry.csv").read_bytes())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run_dir", nargs="?", help="a real run directory whose point records are copied")
    parser.add_argument("--points", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        scratch = Path(tmp)
        source = template_run(args.run_dir, scratch)
        run = scratch / "synthetic-run"
        synthesize(source, run, args.points)
        n_points = sum(1 for _ in open(run / "points.jsonl", encoding="utf-8"))
        from dgbench.report.pages import write_report

        times = []
        for rep in range(args.repeat):
            site = scratch / f"site{rep}"
            start = time.perf_counter()
            write_report([run], site)
            times.append(time.perf_counter() - start)
            size = sum(f.stat().st_size for f in site.rglob("*") if f.is_file())
            print(f"render {rep + 1}: {times[-1]:.2f} s ({n_points} points, {len(list(site.rglob('*.png')))} "
                  f"figures, {size / 2**20:.1f} MiB)")
        med = statistics.median(times)
        print(json.dumps({"points": n_points, "n": len(times), "median_s": round(med, 2),
                          "min_s": round(min(times), 2), "max_s": round(max(times), 2), "budget_s": BUDGET_S}))
        print(f"report of {n_points} points: median {med:.2f} s [min {min(times):.2f} - max {max(times):.2f}] over "
              f"n={len(times)} renders = {med / BUDGET_S:.2f} x the {BUDGET_S:.0f} s budget "
              f"({'within' if max(times) < BUDGET_S else 'OVER'} budget)")
        return 0 if max(times) < BUDGET_S else 1


if __name__ == "__main__":
    sys.exit(main())

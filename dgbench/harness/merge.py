"""`dgbench merge RUN_DIR... -o MERGED`: the shard directories of one suite (`--shard I/N` runs, or any
runs of the same suite that measured disjoint points) combined into one run directory.

Refused: runs of different suites (config hashes differ: they measured different things) and a point
present in two inputs (which measurement would be the run's?). Every merged point keeps the hardware it
was measured on (its `placement`; a local shard's points get their shard's fingerprint), so shards from
different machines are never pooled into one median (report/ and gate/ group points by it). When points
of the suite are missing (a shard not merged, or interrupted), the merged run is marked interrupted, and
`dgbench run --resume MERGED` measures only those. Imports no torch.
"""

from __future__ import annotations

import csv
from pathlib import Path

from dgbench.errors import ResultsError
from dgbench.results import RunStore, fingerprint_key, utc_stamp
from dgbench.telemetry.recorder import TELEMETRY_FILE


def merge_runs(run_dirs: list[Path], out: Path) -> dict:
    """Write the merged run to `out`; returns {run_dir, points, missing, failed, status, notes}."""
    from dgbench.harness.sweep import expand

    if not run_dirs:
        raise ResultsError("merge needs at least one RUN_DIR")
    out = Path(out)
    inputs = []
    for d in map(Path, run_dirs):
        if d.resolve() == out.resolve():
            raise ResultsError(f"{d}: the output -o {out} is also an input; write the merge to a new directory")
        store = RunStore(d)
        inputs.append((d, store.read_meta(), store.read_points(), store.read_samples()))
    first_dir, first_meta = inputs[0][0], inputs[0][1]
    for d, meta, _, _ in inputs[1:]:
        if meta.get("config_hash") != first_meta.get("config_hash"):
            raise ResultsError(f"{d}: suite {meta.get('suite_name')!r} with config hash {meta.get('config_hash')}, but "
                               f"{first_dir} has {first_meta.get('config_hash')} ({first_meta.get('suite_name')!r}); "
                               "only shards of one suite with the same --set options merge")
    owner: dict[str, Path] = {}
    for d, _, points, _ in inputs:
        for p in points:
            if p["point_id"] in owner:
                raise ResultsError(f"point {p['point_id']} ({p.get('decoder')} {p.get('params')}) is in both "
                                   f"{owner[p['point_id']]} and {d}; merge runs with disjoint points (the shards "
                                   "of one --shard I/N split), or resume the run that lacks it instead")
            owner[p["point_id"]] = d
    if (out / "run.json").exists():
        raise ResultsError(f"{out}: already holds a run; give -o a new directory")

    expected = [p.point_id for p in expand(first_meta["suite"])]
    merged_points = []
    for d, meta, points, _ in inputs:
        for p in points:
            merged_points.append({**p, "placement": _placement(p, meta, d)})
    unknown = [p for p in merged_points if p["point_id"] not in set(expected)]
    if unknown:
        raise ResultsError(f"{owner[unknown[0]['point_id']]}: point {unknown[0]['point_id']} is not a point of suite "
                           f"{first_meta.get('suite_name')!r} as run.json stores it; the run directory was edited")
    order = {pid: i for i, pid in enumerate(expected)}
    merged_points.sort(key=lambda p: order[p["point_id"]])   # sweep order, as one run would have written them
    present = {p["point_id"] for p in merged_points}
    missing = [pid for pid in expected if pid not in present]
    failed = sum(p.get("status") != "ok" for p in merged_points)
    status = "interrupted" if missing else ("completed" if failed == 0 else "completed_with_failures")

    notes = []
    for field in ("git_commit",):
        values = {m.get(field) for _, m, _, _ in inputs}
        if len(values) > 1:
            notes.append(f"inputs differ in {field}: {', '.join(sorted(map(str, values)))}")
    keys = sorted({p["placement"]["fingerprint_key"] for p in merged_points if p["placement"].get("fingerprint_key")})
    if len(keys) > 1:
        notes.append(f"points were measured on {len(keys)} kinds of hardware ({'; '.join(keys)}): reports and "
                     "gates keep them apart")

    meta = {k: v for k, v in first_meta.items() if k not in ("schema_version", "shard", "resumed_utc")}
    meta.update(status=status, created_utc=min(str(m.get("created_utc") or "") for _, m, _, _ in inputs),
                finished_utc=utc_stamp(), hardware_keys=keys, notes=notes,
                merged_from=[{"run_dir": str(d), "shard": _shard_label(m), "status": m.get("status"),
                              "git_commit": m.get("git_commit"), "points": len(pts),
                              "hardware_key": fingerprint_key(m.get("hardware") or {})}
                             for d, m, pts, _ in inputs])
    store = RunStore(out)
    store.create(meta)
    try:
        for d, _, _, samples in inputs:
            for s in samples:
                store.append_sample(s)
        for p in merged_points:
            store.append_point(p)
    finally:
        store.close()
    _merge_telemetry([d for d, *_ in inputs], out)
    return {"run_dir": out, "points": len(merged_points), "missing": missing, "failed": failed, "status": status,
            "notes": notes}


def _shard_label(meta: dict) -> str | None:
    shard = meta.get("shard")
    return f"{shard['index']}/{shard['count']}" if shard else None


def _placement(point: dict, meta: dict, run_dir: Path) -> dict:
    """The point's own placement (a Ray run's), else its run's hardware; plus which input it came from."""
    placement = dict(point.get("placement") or {})
    if not placement.get("fingerprint"):
        hw = meta.get("hardware") or {}
        placement.update(fingerprint=hw, fingerprint_key=fingerprint_key(hw),
                         hardware_profile=meta.get("hardware_profile"))
    placement["run_dir"] = str(run_dir)
    return placement


def _merge_telemetry(run_dirs: list[Path], out: Path) -> None:
    """Concatenate the inputs' telemetry.csv rows under one header (each input's t_s starts at its own 0)."""
    header, rows = None, []
    for d in run_dirs:
        path = d / TELEMETRY_FILE
        if not path.is_file():
            continue
        with open(path, newline="", encoding="utf-8") as f:
            reader = csv.reader(f)
            head = next(reader, None)
            if head is None:
                continue
            if header is not None and head != header:
                raise ResultsError(f"{path}: its columns differ from the other inputs' telemetry.csv; the runs were "
                                   "made by different dgbench versions")
            header = head
            rows.extend(reader)
    if header is None:
        return
    with open(out / TELEMETRY_FILE, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(header)
        writer.writerows(rows)

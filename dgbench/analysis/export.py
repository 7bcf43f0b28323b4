"""`dgbench export`: tidy tables of one run through pandas, and `vllm bench serve`-style result keys.

Two tables (Wickham's "tidy data": one observation per row, one variable per column):
- repetitions: one row per timed repetition (per item in a quality run) of every measured point, with the
  point's identity (run, point_id, decoder, model, engine, paradigm, label), its params and knobs flattened
  into columns (`knob.threshold`, ...), and every per-repetition metric in its stored unit;
- points: one row per point with n, median, p10, p50, p90, p99 per metric, accuracy with its interval.
csv and parquet write repetitions.<ext> and points.<ext>; json writes both as records in one file.
vllm writes vllm.json: one object per point with the keys `vllm bench serve --save-result` uses where the
meaning matches (a point's repetitions stand in for its requests), and dgbench's diffusion keys beside them.
Imports no torch.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

from dgbench.analysis.points import op_label, task_of
from dgbench.analysis.percentiles import tail
from dgbench.errors import ConfigError

FORMATS = ("csv", "parquet", "json", "vllm")
ID_COLUMNS = ("run", "point_id", "decoder", "label", "model", "engine", "paradigm", "dtype", "device", "weights",
              "status")


def _flat(prefix: str, d: dict | None) -> dict:
    out = {}
    for k, v in (d or {}).items():
        out[f"{prefix}{k}"] = json.dumps(v, sort_keys=True) if isinstance(v, (dict, list)) else v
    return out


def _identity(run: str, p: dict) -> dict:
    row = {c: p.get(c) for c in ID_COLUMNS if c not in ("run", "label")}
    row.update(run=run, label=op_label(p), task=task_of(p))
    params = dict(p.get("params") or {})
    params.pop("task", None)
    row.update(_flat("", params))
    row.update(_flat("knob.", p.get("knobs")))
    return row


def repetition_records(run: str, points: list[dict]) -> list[dict]:
    rows = []
    for p in points:
        if p.get("status") != "ok":
            continue
        reps = p.get("reps") or {}
        n = max((len(v) for v in reps.values()), default=0)
        base = _identity(run, p)
        ids = p.get("item_ids") or []
        correct = p.get("correct") or []
        for i in range(n):
            row = {**base, "rep": i}
            if len(ids) == n:
                row["item_id"] = ids[i]
            if len(correct) == n:
                row["correct"] = bool(correct[i])
            for metric, values in reps.items():
                row[metric] = values[i] if i < len(values) else None
            rows.append(row)
    return rows


def point_records(run: str, points: list[dict]) -> list[dict]:
    rows = []
    for p in points:
        row = _identity(run, p)
        if p.get("status") != "ok":
            row["error"] = str((p.get("error") or {}).get("message", ""))[:300]
            rows.append(row)
            continue
        for metric in (p.get("reps") or {}):
            t = tail(p, metric)
            if t:
                row.update({f"{metric}.{k}": t[k] for k in ("n", "p10", "p50", "p90", "p99")})
        q = p.get("quality") or {}
        if q:
            row.update({"accuracy": q.get("accuracy"), "accuracy.low": q.get("low"),
                        "accuracy.high": q.get("high"), "accuracy.n": q.get("n")})
        mem = p.get("memory") or {}
        if mem.get("peak_mem_bytes") is not None:
            row["peak_mem_bytes"] = mem["peak_mem_bytes"]
        rows.append(row)
    return rows


# vLLM's `vllm bench serve` result keys (vllm/benchmarks/serve.py) -> dgbench metric, per statistic. Only
# keys whose meaning matches are written: TTFT (diffusion: the first committed canvas is the first output a
# client could see), e2e latency (e2el), and for AR decoders TPOT and ITL. Diffusion's per-canvas TPOT is
# not vLLM's per-token TPOT, so it goes under its own name. #22 (serve) extends this table.
VLLM_LATENCY = {"ttft": "ttft_s", "e2el": "e2e_s"}
VLLM_AR_ONLY = {"tpot": "tpot_s", "itl": "itl_s"}
DIFFUSION_LATENCY = {"time_per_canvas": "tpot_s"}
DIFFUSION_EXTRA = ("nfe", "tokens_per_forward", "steps_per_canvas", "cap_hit_share", "in_step_tok_s")


def _stats_ms(values: list[float]) -> dict:
    from dgbench.stats import percentile

    xs = [v * 1e3 for v in values]
    mean = sum(xs) / len(xs)
    std = math.sqrt(sum((x - mean) ** 2 for x in xs) / len(xs))   # vLLM uses numpy's std (ddof=0)
    return {"mean": mean, "median": percentile(xs, 50), "std": std, "p90": percentile(xs, 90),
            "p99": percentile(xs, 99)}


def _values(p: dict, metric: str) -> list[float]:
    src = (p.get("reps") or {}).get(metric) or (p.get("pooled") or {}).get(metric) or []
    return [float(v) for v in src if v is not None]


def vllm_record(p: dict) -> dict:
    params = p.get("params") or {}
    batch = int(params.get("batch_size") or 1)
    e2e = _values(p, "e2e_s")
    useful = _values(p, "useful_tokens")
    duration = sum(e2e)
    out_tokens = sum(useful)
    completed = len(e2e) * batch
    in_tokens = int(params.get("prompt_length") or 0) * completed
    rec = {"backend": f"dgbench:{p.get('engine')}", "model_id": p.get("model"), "label": op_label(p),
           "point_id": p.get("point_id"), "paradigm": p.get("paradigm"), "max_concurrency": batch,
           "num_prompts": completed, "completed": completed, "duration": duration,
           "total_input_tokens": in_tokens, "total_output_tokens": out_tokens,
           "request_throughput": completed / duration if duration else None,
           "output_throughput": out_tokens / duration if duration else None,
           "total_token_throughput": (in_tokens + out_tokens) / duration if duration else None}
    latency = dict(VLLM_LATENCY)
    if p.get("paradigm") == "diffusion":
        latency.update(DIFFUSION_LATENCY)
    else:
        latency.update(VLLM_AR_ONLY)
    for key, metric in latency.items():
        xs = _values(p, metric)
        if xs:
            for stat, v in _stats_ms(xs).items():
                rec[f"{stat}_{key}_ms"] = v
    if p.get("paradigm") == "diffusion":
        for metric in DIFFUSION_EXTRA:
            xs = _values(p, metric)
            if xs:
                rec[f"mean_{metric}"] = sum(xs) / len(xs)
    return rec


def frames(run_dir: Path):
    import pandas as pd

    from dgbench.results import load_run

    _, points = load_run(run_dir)
    run = run_dir.name
    return pd.DataFrame(repetition_records(run, points)), pd.DataFrame(point_records(run, points)), points


def export(run_dir: str | Path, fmt: str, out: str | Path | None = None) -> list[Path]:
    """Write the run's tables in `fmt` under `out` (default RUN_DIR/export); returns the files written."""
    if fmt not in FORMATS:
        raise ConfigError(f"--format {fmt!r}: choose one of {', '.join(FORMATS)}")
    run_dir = Path(run_dir)
    reps, pts, points = frames(run_dir)
    out = Path(out) if out else run_dir / "export"
    out.mkdir(parents=True, exist_ok=True)
    if fmt == "csv":
        files = [out / "repetitions.csv", out / "points.csv"]
        reps.to_csv(files[0], index=False)
        pts.to_csv(files[1], index=False)
    elif fmt == "parquet":
        try:
            import pyarrow  # noqa: F401
        except ImportError:
            raise ConfigError("--format parquet needs pyarrow: pip install 'dgbench[parquet]' (or pyarrow)") from None
        files = [out / "repetitions.parquet", out / "points.parquet"]
        # Knob columns may mix types across engines (a threshold here, None there): store them as given
        # where arrow can, else as text.
        for frame, path in ((reps, files[0]), (pts, files[1])):
            frame = frame.copy()
            for col in frame.columns:
                if frame[col].dtype == object:
                    kinds = {type(v) for v in frame[col] if v is not None and not (isinstance(v, float) and math.isnan(v))}
                    if len(kinds) > 1:
                        frame[col] = frame[col].map(lambda v: None if v is None else str(v))
            frame.to_parquet(path, index=False)
    elif fmt == "json":
        files = [out / "export.json"]
        files[0].write_text(json.dumps({"run": run_dir.name, "repetitions": json.loads(reps.to_json(orient="records")),
                                        "points": json.loads(pts.to_json(orient="records"))}, indent=1),
                            encoding="utf-8")
    else:
        files = [out / "vllm.json"]
        from dgbench.analysis.serve_export import vllm_serve_record

        # Serve points (load against an endpoint) have their own record: vLLM's per-request definitions.
        records = [vllm_serve_record(p) if p.get("serve") is not None else vllm_record(p)
                   for p in points if p.get("status") == "ok"]
        files[0].write_text(json.dumps(records, indent=1, default=str), encoding="utf-8")
    return files

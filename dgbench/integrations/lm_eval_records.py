"""Per-request decode statistics of the lm-eval models, and their summary as a dgbench run directory.

Every decoder call an lm-eval model makes (one batch of requests) is logged request by request: the call's
wall time, NFE and first-output time, and per request the useful tokens, the passes it took part in,
tokens per forward, the tokens kept after the stop sequence. With `dgbench_out=DIR` the records go to
DIR/dgbench_requests.jsonl as they happen (beside lm-eval's own results when DIR is its --output_path).

`write_run_dir` joins them with lm-eval's results (accuracy per task) into dgbench's results format
(dgbench/results.py: run.json + points.jsonl + samples.jsonl), one quality point per lm-eval task, so
`dgbench report` can plot accuracy against speed for any lm-eval task. Speed repetitions are decoder calls,
the unit dgbench's own scenarios time.
"""

from __future__ import annotations

import atexit
import hashlib
import json
import math
import time
import uuid
from pathlib import Path

REQUESTS_FILE = "dgbench_requests.jsonl"
RUN_SUBDIR = "dgbench_run"
SPEED_METRICS = ("e2e_s", "committed_tok_s", "nfe", "tokens_per_forward", "useful_tokens", "ttft_s")
# lm-eval metrics that are a mean of 0/1 per document: an accuracy with a Wilson interval.
ACCURACY_METRICS = ("acc", "exact_match", "acc_norm", "pass@1", "em")


class RequestLog:
    """Records of one lm-eval model instance, optionally appended to OUT/dgbench_requests.jsonl."""

    def __init__(self, out_dir: Path | None, meta: dict):
        self.out_dir = out_dir
        self.meta = dict(meta)
        self.records: list[dict] = []
        self.instance = uuid.uuid4().hex[:12]
        self.started = time.time()
        self._fh = None
        if out_dir is not None:
            out_dir.mkdir(parents=True, exist_ok=True)
            self._fh = open(out_dir / REQUESTS_FILE, "a", encoding="utf-8")

    def add(self, record: dict) -> None:
        record = {"instance": self.instance, "model": self.meta.get("model"), "engine": self.meta.get("engine"),
                  **record}
        self.records.append(record)
        if self._fh is not None:
            self._fh.write(json.dumps(record, sort_keys=True, default=str) + "\n")
            self._fh.flush()

    def summarize_at_exit(self) -> None:
        """After lm-eval's command line has written its results into out_dir, turn them into a run directory.
        (lm-eval gives a model no hook at the end of an evaluation; the process exit is the first moment
        both files exist.)"""
        atexit.register(self._summarize_newest)

    def _summarize_newest(self) -> None:
        if self._fh is not None:
            self._fh.close()
            self._fh = None
        found = sorted((p for p in self.out_dir.rglob("results_*.json") if p.stat().st_mtime >= self.started),
                       key=lambda p: p.stat().st_mtime)
        if not found or not self.records:
            return
        try:
            results = json.loads(found[-1].read_text(encoding="utf-8"))
            run_dir = write_run_dir(results, self.records, self.meta, self.out_dir / RUN_SUBDIR, source=str(found[-1]))
            from dgbench.results import load_run

            print(results_table(load_run(run_dir)[1]))
            print(f"dgbench: per-request speed in {self.out_dir / REQUESTS_FILE}; dgbench run directory {run_dir}")
        except Exception as exc:  # at exit a traceback helps nobody: say what failed in one line
            print(f"dgbench: could not summarise {found[-1]} into a dgbench run directory: {exc}")


# ---------------------------------------------------------------------------------------------- summary

def primary_metric(metrics: dict) -> tuple[str, str, float] | None:
    """(metric, filter, value) of the task's headline number: the first accuracy-like metric, else the first."""
    entries = []
    for key, value in metrics.items():
        if "," not in key or "_stderr" in key or not isinstance(value, (int, float)):
            continue
        name, filt = key.split(",", 1)
        entries.append((name, filt, float(value)))
    for wanted in ACCURACY_METRICS:
        for entry in entries:
            if entry[0] == wanted:
                return entry
    return entries[0] if entries else None


def per_doc_correct(samples: list[dict] | None, metric: str, filt: str) -> tuple[list[int], list[bool]] | None:
    """Doc ids and 0/1 outcomes from lm-eval's logged samples (--log_samples), or None without them."""
    if not samples:
        return None
    ids, correct = [], []
    for s in sorted(samples, key=lambda s: s["doc_id"]):
        if s.get("filter", filt) != filt or metric not in s:
            continue
        value = float(s[metric])
        if value not in (0.0, 1.0):
            return None
        ids.append(s["doc_id"])
        correct.append(value == 1.0)
    return (ids, correct) if ids else None


def call_reps(records: list[dict]) -> dict[str, list]:
    """One repetition per decoder call (a batch): dgbench's unit of timing."""
    calls: dict[int, list[dict]] = {}
    for r in records:
        calls.setdefault(r["call"], []).append(r)
    reps: dict[str, list] = {m: [] for m in SPEED_METRICS}
    for _, rows in sorted(calls.items()):
        first = rows[0]
        if "call_metrics" in first:          # generation: the harness's own per-call metrics
            metrics = first["call_metrics"]
        else:                                # scoring: no tokens are generated
            metrics = {"e2e_s": first["e2e_s"], "nfe": first["nfe"], "committed_tok_s": None,
                       "tokens_per_forward": None, "useful_tokens": 0, "ttft_s": None}
        for m in SPEED_METRICS:
            reps[m].append(metrics.get(m))
    return {k: v for k, v in reps.items() if any(x is not None for x in v)}


def point_result(task: str, results: dict, records: list[dict], samples: list[dict] | None = None) -> dict:
    """The quality-point fields (dgbench/scenarios/quality.py's shape) of one lm-eval task."""
    from dgbench.stats import summarize
    from dgbench.stats import accuracy_summary, wilson_interval

    metrics = results["results"].get(task, {})
    head = primary_metric(metrics)
    n = int(results.get("n-samples", {}).get(task, {}).get("effective", 0))
    quality, correct, doc_ids = None, None, None
    if head is not None and head[0] in ACCURACY_METRICS:
        per_doc = per_doc_correct(samples, head[0], head[1])
        if per_doc is not None:
            doc_ids, correct = per_doc
            quality = accuracy_summary(correct)
        elif n:
            k = round(head[2] * n)
            low, high = wilson_interval(k, n)
            quality = {"n": n, "k": k, "accuracy": k / n, "low": low, "high": high, "method": "wilson"}
    reps = call_reps(records)
    numeric = {k: v for k, v in metrics.items() if isinstance(v, (int, float)) and not isinstance(v, bool)
               and not (isinstance(v, float) and math.isnan(v))}
    return {
        "task": f"lm_eval:{task}",
        "task_config": {"task": task},
        "quality": quality,
        "quality_extra": {},
        "lm_eval_metric": {"name": head[0], "filter": head[1], "value": head[2]} if head else None,
        "lm_eval_metrics": numeric,
        "correct": correct,
        "item_ids": doc_ids,
        "requests": len(records),
        "request_types": sorted({r["request_type"] for r in records}),
        "reps": reps,
        "summary": {k: summarize([x for x in v if x is not None]) for k, v in reps.items()},
        "memory": None,
    }


def _spread(summary: dict | None, digits: int = 3) -> str:
    if not summary or not summary.get("n"):
        return "-"
    med, lo, hi = (f"{summary[k]:.{digits}g}" for k in ("median", "p10", "p90"))
    return med if lo == hi == med else f"{med} [{lo}-{hi}]"


def results_table(points: list[dict]) -> str:
    """lm-eval's results beside dgbench's speed, as a markdown table (the shape of lm-eval's make_table).
    Accuracy: value with its Wilson 95% interval over n documents; speed: median [p10-p90] over decoder calls."""
    head = ("| decoder | task | metric | value | 95% interval | n docs | committed tok/s | e2e s/call | "
            "NFE/call | tok/forward | calls |")
    lines = [head, "|" + "|".join("---" for _ in range(11)) + "|"]
    for p in points:
        metric, q, s = p.get("lm_eval_metric") or {}, p.get("quality") or {}, p.get("summary") or {}
        name = f"{metric.get('name', '-')},{metric.get('filter', '-')}"
        value = f"{metric['value']:.4f}" if "value" in metric else "-"
        interval = f"[{q['low']:.3f}, {q['high']:.3f}]" if q else "-"
        calls = (s.get("e2e_s") or {}).get("n", 0)
        lines.append(f"| {p['decoder']} | {p['task'].removeprefix('lm_eval:')} | {name} | {value} | {interval} | "
                     f"{q.get('n', '-')} | {_spread(s.get('committed_tok_s'))} | {_spread(s.get('e2e_s'))} | "
                     f"{_spread(s.get('nfe'))} | {_spread(s.get('tokens_per_forward'))} | {calls} |")
    return "\n".join(lines)


def task_names(results: dict) -> list[str]:
    """Leaf tasks (groups aggregate their subtasks and are left out)."""
    groups = set(results.get("groups", {}))
    return [t for t in results.get("results", {}) if t not in groups]


def sample_records(task: str, samples: list[dict] | None, point_id: str, metric: str | None = None) -> list[dict]:
    """One samples.jsonl line per logged lm-eval document: its target, the (filtered) output, its metrics,
    and `correct` when the headline metric is 0/1."""
    out = []
    for s in samples or []:
        resps = s.get("filtered_resps")
        value = s.get(metric) if metric else None
        out.append({"point_id": point_id, "task": f"lm_eval:{task}", "item_id": s.get("doc_id"),
                    "filter": s.get("filter"), "target": s.get("target"),
                    "output": resps[0] if isinstance(resps, list) and resps else resps,
                    "correct": bool(value == 1.0) if value in (0.0, 1.0) else None,
                    **{m: s.get(m) for m in s.get("metrics", []) if m in s}})
    return out


def write_run_dir(results: dict, records: list[dict], meta: dict, run_dir: Path, samples: dict | None = None,
                  source: str | None = None, n_warmup: int = 1) -> Path:
    """A dgbench run directory (run.json, points.jsonl, samples.jsonl) for one lm-eval evaluation."""
    from dgbench.hardware.detect import fingerprint
    from dgbench.hardware.profiles import match_profile
    from dgbench.metadata import run_metadata
    from dgbench.results import RunStore, default_run_dir

    samples = samples if samples is not None else results.get("samples")
    label = f"{meta['lm_eval_model']}:{meta['model']}"
    decoder = {"name": label, "model": meta["model"], "engine": meta["engine"], "knobs": meta.get("knobs", {}),
               "dtype": meta.get("dtype") or "auto"}
    tasks = task_names(results)
    suite = {"name": "lm_eval", "description": f"lm-evaluation-harness tasks {', '.join(tasks)} through {label}",
             "scenario": "quality", "seed": meta.get("seed", 0), "decoders": [decoder],
             "tasks": {"lm_eval": {"task": tasks, "source": source}},
             "measure": {"warmup": n_warmup}, "gate": {"threshold": 0.10, "metrics": []},
             "lm_eval": {"version": results.get("lm_eval_version"), "loglikelihood": meta.get("loglikelihood")}}
    device = meta.get("device") or "cpu"
    fp = fingerprint(device)
    store = RunStore(run_dir if not (run_dir / "run.json").exists() else default_run_dir(run_dir, "lm_eval"))
    run_meta = run_metadata(suite, device, suite["seed"], fp, match_profile(fp), "completed",
                            meta.get("weights", "synthetic"))
    store.create(run_meta)
    from dgbench.models.registry import get

    paradigm = get(meta["model"]).paradigm
    for task in tasks:
        mine = [r for r in records if r.get("task") == task]
        key = json.dumps({"decoder": decoder, "task": task}, sort_keys=True)
        point_id = hashlib.sha1(key.encode()).hexdigest()[:12]
        result = point_result(task, results, mine, (samples or {}).get(task))
        store.append_point({"point_id": point_id, "decoder": label, "model": meta["model"], "engine": meta["engine"],
                            "paradigm": paradigm, "dtype": decoder["dtype"], "device": device,
                            "params": {"task": f"lm_eval:{task}"}, "knobs": decoder["knobs"],
                            "weights": meta.get("weights", "synthetic"), "status": "ok", "n_warmup": n_warmup,
                            **({"loglikelihood": meta.get("loglikelihood")}
                               if any(t.startswith("loglikelihood") for t in result["request_types"]) else {}),
                            **result})
        head = result["lm_eval_metric"]
        for sample in sample_records(task, (samples or {}).get(task), point_id, head["name"] if head else None):
            store.append_sample(sample)
    store.close()
    return store.path

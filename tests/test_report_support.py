"""Support for the report tests (no tests here): real runs (smoke, quality, a run with failed points) and
copies of them with one thing changed. Where a field cannot be produced on a CPU machine (NVML telemetry
rows, a throttled GPU), it is appended to a copy of a real record and the copy says so in its run.json."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

from conftest import only_run_dir, run_cli

TELEMETRY_COLUMNS = ("t_s", "source", "device", "point_id", "phase", "rep", "power_w", "energy_j", "gpu_util_pct",
                     "mem_util_pct", "mem_used_bytes", "sm_clock_mhz", "mem_clock_mhz", "temp_c", "throttle",
                     "cpu_util_pct", "rss_bytes")
PAYLOADS = ["<script>window.__xss = 1</script>", "<img src=x onerror=\"window.__xss = 2\">", "</table><h1>pwned</h1>"]


def _limit_memory():  # a batch of 3,000,000 then fails to allocate instead of swapping the machine
    import resource

    resource.setrlimit(resource.RLIMIT_AS, (8 * 2**30, 8 * 2**30))


def real_run(out: Path, *args) -> Path:
    proc = run_cli("run", *args, "--out", out, preexec_fn=_limit_memory)
    assert proc.returncode in (0, 1), proc.stderr[-2000:]
    return only_run_dir(out)


def quality_run(out: Path) -> Path:
    """The random-weight twins on Sudoku and multiple choice, two items each: samples.jsonl, accuracy with
    Wilson intervals, McNemar pairs. (Code infill is left out: its sandboxed runs cost the most time.)"""
    return real_run(out, "--suite", "quality-synthetic", "--limit", "2", "--set", "measure.warmup=0",
                    "--set", "tasks={sudoku: {size: 4, clues: 8, n: 50}, mc: {source: procedural, n: 50}}")


FAILED_DECODER = ("[{name: diffusion, model: diffusiongemma-tiny, engine: dgbench-diffusion, "
                  "knobs: {max_denoising_steps: 4, record_trajectory: true}}]")


def failed_points_run(out: Path) -> Path:
    """Real failures: batch 3,000,000 cannot be allocated under the memory limit. The one decoder records its
    denoising trajectory, so the same run feeds the trajectory figure. A published profile (not this CPU's
    measured one) keeps the roofline from timing forward floors first: the report only reads its fields."""
    return real_run(out, "--suite", "smoke", "--set", f"decoders={FAILED_DECODER}", "--profile", "h100-sxm",
                    "--set", "sweep.batch_size=[1,3000000]", "--set", "sweep.gen_length=[16]",
                    "--set", "measure.min_repetitions=2", "--set", "measure.warmup=0", "--set", "measure.min_time_s=0")


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def write_jsonl(path: Path, records: list[dict]) -> None:
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")


def copy_run(src: Path, dst: Path, points=None, samples=None, meta=None, telemetry=True, note="") -> Path:
    """A copy of a real run; `points`/`samples`/`meta` edit the records (functions over the list / dict)."""
    shutil.copytree(src, dst)
    if not telemetry and (dst / "telemetry.csv").exists():
        (dst / "telemetry.csv").unlink()
    if points:
        write_jsonl(dst / "points.jsonl", points(read_jsonl(dst / "points.jsonl")))
    if samples:
        write_jsonl(dst / "samples.jsonl", samples(read_jsonl(dst / "samples.jsonl")))
    data = json.loads((dst / "run.json").read_text(encoding="utf-8"))
    if meta:
        data = meta(data)
    if note:
        data["test_fixture_note"] = note
    (dst / "run.json").write_text(json.dumps(data), encoding="utf-8")
    return dst


def write_telemetry(path: Path, rows: list[dict]) -> None:
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.DictWriter(f, TELEMETRY_COLUMNS)
        w.writeheader()
        for r in rows:
            w.writerow({c: "" if r.get(c) is None else r[c] for c in TELEMETRY_COLUMNS})


def nvml_rows(point_ids: list[str], throttle_at: int = 7) -> list[dict]:
    """GPU samples as NVML would give them (CI has no GPU): 10 Hz, one point after another, one throttled stretch."""
    rows, t = [], 0.0
    for pid in point_ids:
        for i in range(12):
            phase = "warmup" if i < 2 else ("rep" if i < 11 else "memory")
            rows.append({"t_s": round(t, 3), "source": "nvml", "device": "cuda:0", "point_id": pid, "phase": phase,
                         "rep": (i - 2) // 3 if phase == "rep" else "", "power_w": 250 + 10 * (i % 5),
                         "energy_j": round(t * 260, 3), "gpu_util_pct": 90 - i, "mem_util_pct": 40,
                         "mem_used_bytes": 2**33, "sm_clock_mhz": 1980 - (300 if i == throttle_at else 0),
                         "mem_clock_mhz": 2619, "temp_c": 60 + i,
                         "throttle": "hw_slowdown;sw_thermal" if i == throttle_at else ""})
            t += 0.1
    return rows


def gpu_point_fields(p: dict) -> dict:
    """The telemetry and roofline blocks a GPU run writes per point, appended to a real CPU record."""
    tok = (p.get("summary", {}).get("useful_tokens") or {}).get("median") or 1
    e2e = (p.get("summary", {}).get("e2e_s") or {}).get("median") or 1.0
    flops, nbytes = 2.0e9 * tok, 4.0e8 * tok
    p["telemetry"] = {"source": "nvml", "device": "cuda:0", "n_samples": 9, "energy_j": 12.5,
                      "energy_per_token_j": 12.5 / tok, "energy_method": "energy-counter",
                      "power_w": {"n": 9, "median": 270.0, "p10": 250.0, "p90": 290.0},
                      "throttled": True, "throttle_reasons": ["hw_slowdown", "sw_thermal"]}
    p["roofline"] = {"profile": "h100-sxm", "profile_kind": "published", "flops_per_call": flops,
                     "bytes_per_call": nbytes, "arithmetic_intensity": flops / nbytes, "achieved_flop_s": flops / e2e,
                     "achieved_bytes_s": nbytes / e2e, "mfu": flops / e2e / 989.4e12, "mbu": nbytes / e2e / 3.35e12,
                     "predicted_s": nbytes / 3.35e12, "bound": "memory",
                     "projected": {"h100-sxm": {"tok_s": tok / (nbytes / 3.35e12), "bound": "memory"},
                                   "rtx-5090": {"tok_s": tok / (nbytes / 1.79e12), "bound": "memory"},
                                   "dgx-spark": {"tok_s": None, "bound": None, "why": "profile has no bf16 peak"}}}
    return p


# ---------------------------------------------------------------- shared fixtures and page helpers

import pytest  # noqa: E402


# Both report test modules import these fixtures; pytest would then run each once per module, so the
# real runs are cached here (one per session).
_RUNS: dict[str, Path] = {}


def _cached(name: str, make, tmp_path_factory) -> Path:
    if name not in _RUNS:
        _RUNS[name] = make(tmp_path_factory.mktemp(name))
    return _RUNS[name]


@pytest.fixture(scope="session")
def quality_dir(tmp_path_factory) -> Path:
    return _cached("quality", quality_run, tmp_path_factory)


@pytest.fixture(scope="session")
def failed_dir(tmp_path_factory) -> Path:
    return _cached("failed", failed_points_run, tmp_path_factory)


@pytest.fixture(scope="session")
def smoke_dir(smoke_run) -> Path:
    proc, run_dir = smoke_run
    assert run_dir is not None, proc.stderr[-2000:]
    return run_dir


def _render_smoke_site(out: Path, run_dir: Path) -> Path:
    proc = run_cli("report", run_dir, "-o", out / "site")
    assert proc.returncode == 0, proc.stderr[-2000:]
    return out / "site"


@pytest.fixture(scope="session")
def smoke_site(smoke_dir, tmp_path_factory) -> Path:
    """`dgbench report` of the smoke run, through the real CLI, once per session (read-only for tests)."""
    return _cached("smoke-site", lambda out: _render_smoke_site(out, smoke_dir), tmp_path_factory)


class Page:
    """Tags and text of a rendered page (html.parser: what a browser's DOM would hold, minus layout)."""

    def __init__(self, text: str):
        from html.parser import HTMLParser

        self.html = text
        self.tags: list[tuple[str, dict]] = []
        self.text_parts: list[str] = []
        page = self

        class Parser(HTMLParser):
            def handle_starttag(self, tag, attrs):
                page.tags.append((tag, dict(attrs)))

            def handle_data(self, data):
                page.text_parts.append(data)

        Parser(convert_charrefs=True).feed(text)
        self.text = " ".join(" ".join(self.text_parts).split())

    def all(self, tag: str) -> list[dict]:
        return [a for t, a in self.tags if t == tag]

    def section(self, sid: str) -> "Page":
        import re

        m = re.search(rf'<section id="{sid}">(.*?)</section>', self.html, re.S)
        assert m, f"no section {sid}"
        return Page(m.group(1))


def read_page(path: Path) -> Page:
    return Page(path.read_text(encoding="utf-8"))

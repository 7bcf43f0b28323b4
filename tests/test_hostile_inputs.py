"""Hostile and malformed input, the way a hostile user tries it: every case ends in exit 2 with one line on
stderr, naming the file/key/value, and never a traceback (dgbench/boundary.py).

Cases run through dgbench.cli.main in this process (fast); a few run the real `dgbench` command in a
subprocess, to show the boundary holds at the entry point too.
"""

import json
import os
from pathlib import Path

import pytest

from conftest import run_cli
from dgbench.cli import main

SUITE = """name: hostile
decoders:
  - {name: ar, model: gemma4-tiny, engine: hf-autoregressive}
sweep: {gen_length: [8], prompt_length: [4]}
measure: {warmup: 0, min_repetitions: 1, min_time_s: 0.0, memory: false}
telemetry: {enabled: false}
"""


def write(tmp: Path, name: str, content) -> str:
    path = tmp / name
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content, encoding="utf-8")
    return str(path)


def suite_with(tmp: Path, name: str, **replace) -> str:
    text = SUITE
    for old, new in replace.items():
        text = text.replace(old, new)
    return write(tmp, name, text)


def run_dir(tmp: Path, meta=None, points=None, raw_meta: bytes | None = None, raw_points: bytes | None = None) -> str:
    d = tmp / "run"
    d.mkdir(parents=True, exist_ok=True)
    base = {"schema_version": 1, "status": "completed", "suite_name": "s", "config_hash": "abc",
            "hardware": {"device": "cpu", "cpu_model": "Test CPU"},
            "suite": {"name": "s", "gate": {"threshold": 0.05, "metrics": [
                {"name": "committed_tok_s", "direction": "higher", "threshold": None}]}}}
    (d / "run.json").write_bytes(raw_meta if raw_meta is not None else json.dumps(
        base if meta is None else meta).encode())
    good = {"point_id": "p1", "status": "ok", "decoder": "ar", "model": "m", "engine": "e",
            "params": {"batch_size": 1, "gen_length": 8}, "reps": {"committed_tok_s": [100, 101, 99, 100, 102]}}
    if raw_points is None:
        raw_points = "".join(json.dumps(p) + "\n" for p in (points if points is not None else [good])).encode()
    (d / "points.jsonl").write_bytes(raw_points)
    return str(d)


def with_file(run: str, name: str, content: bytes) -> str:
    (Path(run) / name).write_bytes(content)
    return run


GOOD_POINT = {"point_id": "p1", "status": "ok", "decoder": "ar", "model": "m",
              "reps": {"committed_tok_s": [100, 101, 99, 100, 102]}}
BOMB = "a: &a [x, x, x, x, x, x, x, x, x]\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]\n" \
       "c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b]\nd: [*c, *c, *c, *c, *c, *c, *c, *c, *c]\n"


def dry(path):
    return ["run", "--suite", path, "--dry-run"]


def smoke_set(*sets):
    return ["run", "--suite", "smoke", "--dry-run", *[a for s in sets for a in ("--set", s)]]


# (id, argv builder(tmp) -> argv, text the one line must contain)
CASES = [
    # ---- suite files
    ("suite-not-utf8", lambda t: dry(write(t, "a.yaml", b"name: caf\xe9\n")), "not UTF-8"),
    ("suite-binary-garbage", lambda t: dry(write(t, "a.yaml", bytes(range(256)) * 4)), "a.yaml"),
    ("suite-self-alias", lambda t: dry(write(t, "a.yaml", "a: &a [*a]\n")), "alias"),
    ("suite-alias-bomb", lambda t: dry(write(t, "a.yaml", BOMB)), "alias"),
    ("suite-merge-key-alias", lambda t: dry(write(t, "a.yaml", "x: &x {a: 1}\nname: s\ny: {<<: *x}\n")), "alias"),
    ("suite-20000-brackets", lambda t: dry(write(t, "a.yaml", "name: x\ndecoders: " + "[" * 20000 + "]" * 20000)),
     "nested deeper"),
    ("suite-deep-mapping", lambda t: dry(write(t, "a.yaml", "".join("  " * i + f"k{i}:\n" for i in range(200)))),
     "nested deeper"),
    ("suite-oversized", lambda t: dry(write(t, "a.yaml", "name: x\n" + "#" * (2 << 20) + "\n")), "KiB"),
    ("suite-empty", lambda t: dry(write(t, "a.yaml", "")), "YAML mapping"),
    ("suite-top-level-list", lambda t: dry(write(t, "a.yaml", "- 1\n- 2\n")), "YAML mapping"),
    ("suite-syntax-error", lambda t: dry(write(t, "a.yaml", "name: [unclosed\n")), "YAML syntax error"),
    ("suite-complex-key", lambda t: dry(write(t, "a.yaml", SUITE + "? [a, b]\n: 1\n")), "a.yaml"),
    ("suite-int-key-in-knobs", lambda t: dry(suite_with(t, "a.yaml", **{"engine: hf-autoregressive}":
                                                         "engine: hf-autoregressive, knobs: {1: 2}}"})), "a.yaml"),
    ("suite-nan-min-time", lambda t: dry(suite_with(t, "a.yaml", **{"min_time_s: 0.0": "min_time_s: .nan"})),
     "finite"),
    ("suite-inf-threshold", lambda t: dry(write(t, "a.yaml", SUITE + "gate: {threshold: .inf}\n")), "finite"),
    ("suite-huge-seed", lambda t: dry(write(t, "a.yaml", SUITE + "seed: 10000000000000000000000\n")), "seed"),
    ("suite-negative-seed", lambda t: dry(write(t, "a.yaml", SUITE + "seed: -1\n")), "seed"),
    ("suite-huge-gen-length", lambda t: dry(suite_with(t, "a.yaml", **{"gen_length: [8]": "gen_length: [1e400]"})),
     "gen_length"),
    ("suite-int-overflow", lambda t: dry(suite_with(t, "a.yaml", **{"gen_length: [8]": "gen_length: [99999999999999999999999]"})),
     "at most"),
    ("suite-ansi-decoder-name", lambda t: dry(suite_with(t, "a.yaml", **{"name: ar": 'name: "ar\\e]0;pwned\\a\\e[2J"'})),
     "control"),
    ("suite-is-a-folder", lambda t: dry(str(t) + "/"), "not found"),
    ("suite-missing", lambda t: dry(str(t / "nope.yaml")), "not found"),
    ("suite-proc-file", lambda t: dry("/proc/self/status"), "status"),
    # ---- --set overrides and flags
    ("set-through-scalar", lambda t: smoke_set("seed.x=1"), "seed"),
    ("set-through-list-item", lambda t: smoke_set("sweep.gen_length.0.x=1"), "gen_length.0"),
    ("set-index-out-of-range", lambda t: smoke_set("decoders.99.name=x"), "index"),
    ("set-name-on-list", lambda t: smoke_set("decoders.name=x"), "decoders"),
    ("set-empty-step", lambda t: smoke_set("measure..warmup=1"), "empty step"),
    ("set-no-equals", lambda t: smoke_set("measure.warmup"), "key=value"),
    ("set-value-alias", lambda t: smoke_set("description=&a [*a]"), "alias"),
    ("set-value-deep", lambda t: smoke_set("description=" + "[" * 5000 + "]" * 5000), "nested"),
    ("set-nan", lambda t: smoke_set("measure.min_time_s=.nan"), "finite"),
    ("set-knob-nan", lambda t: smoke_set("decoders.0.knobs.max_denoising_steps=.nan"), "max_denoising_steps"),
    ("seed-flag-huge", lambda t: ["run", "--suite", "smoke", "--dry-run", "--seed", str(10**22)], "seed"),
    ("unknown-flag", lambda t: ["run", "--bogus"], "unrecognized"),
    ("unknown-command-ansi", lambda t: ["\x1b[2Jboom"], "invalid choice"),
    # ---- results files
    ("report-run-json-list", lambda t: ["report", "--format", "md", run_dir(t, meta=[1, 2])], "JSON object"),
    ("report-run-json-no-suite", lambda t: ["report", "--format", "md", run_dir(t, meta={"schema_version": 1})],
     "suite"),
    ("report-run-json-not-utf8", lambda t: ["report", "--format", "md", run_dir(t, raw_meta=b'{"a": "\xff"}')],
     "UTF-8"),
    ("report-run-json-deep", lambda t: ["report", "--format", "md", run_dir(t, raw_meta=b"[" * 100000)], "run.json"),
    ("report-run-json-suite-is-string", lambda t: ["report", "--format", "md",
                                                   run_dir(t, meta={"schema_version": 1, "suite": "x"})], "suite"),
    ("report-point-is-list", lambda t: ["report", "--format", "md", run_dir(t, raw_points=b"[1, 2]\n")], ":1"),
    ("report-point-no-id", lambda t: ["report", "--format", "md", run_dir(t, points=[{"status": "ok"}])],
     "point_id"),
    ("report-point-not-utf8", lambda t: ["report", "--format", "md",
                                         run_dir(t, raw_points=b'{"point_id": "\xff"}\n{"point_id": "b"}\n')], "UTF-8"),
    ("report-summary-is-string", lambda t: ["report", "--format", "md",
                                            run_dir(t, points=[{**GOOD_POINT, "summary": {"e2e_s": "fast"}}])],
     "summary"),
    ("report-telemetry-not-utf8", lambda t: ["report", "--format", "md", with_file(run_dir(t), "telemetry.csv",
                                                                                  b"t_s,source\n1,\xff\xfe\n")],
     "telemetry.csv"),
    ("report-samples-line-is-list", lambda t: ["report", "--format", "md", with_file(run_dir(t), "samples.jsonl",
                                                                                    b"[1]\n")], "samples.jsonl:1"),
    ("report-missing-run", lambda t: ["report", "--format", "md", str(t / "nothing")], "no such run directory"),
    ("gate-metric-is-string", lambda t: ["gate", "--baseline", run_dir(t / "b", points=[
        {**GOOD_POINT, "reps": {"committed_tok_s": "fast"}}]), "--candidate", run_dir(t / "c")], "committed_tok_s"),
    ("gate-reps-not-a-mapping", lambda t: ["gate", "--baseline", run_dir(t / "b", points=[
        {**GOOD_POINT, "reps": [1, 2]}]), "--candidate", run_dir(t / "c")], "reps"),
    ("resume-run-json-list", lambda t: ["run", "--resume", run_dir(t, meta=[])], "JSON object"),
    ("resume-no-hardware", lambda t: ["run", "--resume", run_dir(t, meta={"schema_version": 1, "config_hash": "abc", "suite": {
        "name": "s", "source": "smoke"}})], "hardware"),
    ("resume-not-a-run", lambda t: ["run", "--resume", str(t)], "no such file"),
    # ---- filesystem
    ("out-under-proc", lambda t: ["run", "--suite", write(t, "a.yaml", SUITE), "--out", "/proc/dgbench-results"],
     "--out"),
    ("out-through-a-file", lambda t: ["run", "--suite", write(t, "a.yaml", SUITE), "--out", write(t, "f", "x") + "/sub"],
     "--out"),
    ("out-name-too-long", lambda t: ["run", "--suite", write(t, "a.yaml", SUITE), "--out", str(t / ("x" * 300))],
     "too long"),
    ("report-out-is-a-file", lambda t: ["report", run_dir(t), "-o", write(t, "existing.html", "x")], "--out"),
    ("gate-markdown-unwritable", lambda t: ["gate", "--baseline", run_dir(t / "b"), "--candidate", run_dir(t / "c"),
                                            "--markdown", "/proc/dgbench/gate.md"], "--markdown"),
    ("gate-markdown-is-a-folder", lambda t: ["gate", "--baseline", run_dir(t / "b"), "--candidate", run_dir(t / "c"),
                                             "--markdown", str(t)], "folder"),
    ("train-out-unwritable", lambda t: ["train", "--objective", "autoregressive", "--out", "/proc/dgbench-train", "--steps", "1"], "--out"),
]


@pytest.mark.parametrize("build,expect", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_hostile_input_is_one_clean_line(build, expect, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("DGBENCH_DEBUG", raising=False)
    code = main(build(tmp_path))
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.strip()]
    assert code == 2, err
    assert len(lines) == 1, err
    assert "Traceback" not in err and "\x1b" not in err, err
    assert expect in lines[0], lines[0]


@pytest.mark.parametrize("case", ["suite-alias-bomb", "report-point-is-list", "out-under-proc"])
def test_the_real_command_line_is_just_as_clean(case, tmp_path):
    build, expect = next(c[1:] for c in CASES if c[0] == case)
    proc = run_cli(*build(tmp_path), cwd=tmp_path, timeout=120)
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert proc.returncode == 2 and len(lines) == 1 and "Traceback" not in proc.stderr, proc.stderr
    assert expect in lines[0]


def test_a_bug_is_an_internal_error_with_its_traceback_saved(tmp_path, capsys, monkeypatch):
    import dgbench.cli.listing as cli_list

    def broken(what):
        raise KeyError("a bug, not bad input")

    monkeypatch.setattr(cli_list, "cmd_list", broken)
    monkeypatch.setenv("DGBENCH_CRASH_DIR", str(tmp_path))
    monkeypatch.delenv("DGBENCH_DEBUG", raising=False)
    assert main(["list", "models"]) == 3
    err = capsys.readouterr().err
    assert "internal error, please report" in err and "Traceback" not in err and len(err.splitlines()) == 1
    saved = list(tmp_path.glob("dgbench-crash-*.txt"))
    assert len(saved) == 1 and str(saved[0]) in err
    assert "KeyError" in saved[0].read_text() and "Traceback" in saved[0].read_text()
    # --debug (anywhere on the line) and DGBENCH_DEBUG show the traceback instead
    assert main(["list", "models", "--debug"]) == 3
    assert "Traceback" in capsys.readouterr().err
    monkeypatch.setenv("DGBENCH_DEBUG", "1")
    assert main(["run", "--suite", str(tmp_path / "missing.yaml"), "--dry-run"]) == 2
    assert "Traceback" in capsys.readouterr().err


def test_os_errors_anywhere_are_one_line(tmp_path, capsys, monkeypatch):
    """The boundary is general: an OSError, UnicodeDecodeError, RecursionError or MemoryError from any
    command (here injected into `list`) is one line and exit 2."""
    import dgbench.cli.listing as cli_list

    errors = [PermissionError(13, "Permission denied", "/some/file"),
              UnicodeDecodeError("utf-8", b"\xff", 0, 1, "invalid start byte"),
              RecursionError("maximum recursion depth exceeded"), MemoryError(), OSError(28, "No space left on device")]
    for exc in errors:
        def failing(what, exc=exc):
            raise exc
        monkeypatch.setattr(cli_list, "cmd_list", failing)
        assert main(["list", "models"]) == 2, exc
        err = capsys.readouterr().err
        assert len(err.strip().splitlines()) == 1 and "Traceback" not in err, err


def test_list_suites_survives_a_broken_local_suite(tmp_path, capsys, monkeypatch):
    (tmp_path / "suites").mkdir()
    (tmp_path / "suites" / "bad.yaml").write_bytes(b"a: &a [*a]\n")
    (tmp_path / "suites" / "evil\x1b[2J.yaml").write_text("name: x\ndescription: \"\\e]0;title\\a\"\n")
    monkeypatch.chdir(tmp_path)
    assert main(["list", "suites"]) == 0
    out = capsys.readouterr().out
    assert "cannot be read" in out and "\x1b" not in out and "\x07" not in out


def test_every_case_id_is_unique():
    ids = [c[0] for c in CASES]
    assert len(ids) == len(set(ids)) and len(ids) >= 50
    assert os.environ.get("DGBENCH_DEBUG") in (None, "", "0")


def test_an_undecodable_file_read_anywhere_is_named(tmp_path, capsys, monkeypatch):
    """A reader that lets a UnicodeDecodeError out still gets a line naming the file it was reading."""
    import dgbench.cli.listing as cli_list

    bad = tmp_path / "notes.txt"
    bad.write_bytes(b"\xff\xfe")

    def reads(what):
        path = bad
        return len(path.read_text(encoding="utf-8"))

    monkeypatch.setattr(cli_list, "cmd_list", reads)
    assert main(["list", "models"]) == 2
    err = capsys.readouterr().err
    assert str(bad) in err and "not utf-8 text" in err and len(err.strip().splitlines()) == 1


def test_publish_links_are_relative_and_encoded(tmp_path, capsys):
    for name in ("javascript:alert(1)", 'a"b<c>#?', "ok"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "report.json").write_text(json.dumps({"created_utc": "x\x1b[2J", "headline": ["h"]}))
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "report.json").write_bytes(b"\xff\xfe")
    assert main(["publish", str(tmp_path)]) == 0
    html = (tmp_path / "index.html").read_text()
    import re

    hrefs = [h for h in re.findall(r'href="([^"]*)"', html) if not h.startswith("data:")]
    assert len(hrefs) == 3 and all(h.startswith("./") and h.endswith("/index.html") for h in hrefs), hrefs
    assert "./javascript%3Aalert%281%29/index.html" in hrefs and "could not be read" in html


def test_a_long_suite_name_still_makes_a_valid_run_directory(tmp_path):
    from dgbench.results import new_run_dir

    path = new_run_dir(tmp_path, "x" * 1000 + "\x1b[2J/../..")
    assert path.is_dir() and path.parent == tmp_path and len(path.name.encode()) < 255


EVIL = "ar\x1b]0;pwned\x07\x1b[2J\r\u202e|[bold]x[/bold]"


def test_terminal_escapes_in_names_never_reach_the_output(tmp_path, capsys):
    """A decoder named with OSC/CSI escapes, a carriage return and a bidi override: the run table,
    `report --format md` and `gate` show it escaped, never raw."""
    import io

    from rich.console import Console

    from dgbench.report.console import summary_table

    p = {**GOOD_POINT, "decoder": EVIL, "model": EVIL, "params": {"batch_size": 1, "gen_length": 8, EVIL: EVIL},
         "summary": {"committed_tok_s": {"n": 5, "median": 100.0, "p10": 99.0, "p90": 101.0}}}
    buf = io.StringIO()
    Console(file=buf, width=300, force_terminal=False).print(summary_table([p], title=EVIL))
    outputs = {"run table": buf.getvalue()}
    base, cand = run_dir(tmp_path / "b", points=[p]), run_dir(tmp_path / "c", points=[p])
    assert main(["report", "--format", "md", cand]) == 0
    outputs["report md"] = capsys.readouterr().out
    md = tmp_path / "gate.md"
    assert main(["gate", "--baseline", base, "--candidate", cand, "--markdown", str(md)]) in (0, 1)
    outputs["gate"] = capsys.readouterr().out
    outputs["gate markdown"] = md.read_text()
    for where, text in outputs.items():
        assert "\\x1b" in text, (where, text)   # shown, escaped
        for raw in ("\x1b", "\x07", "\r", "\u202e"):
            assert raw not in text, (where, repr(raw))

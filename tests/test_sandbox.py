"""The sandbox contains what generated code may do: loops, fork bombs, memory hogs, network, writes.

Each test also checks that the mechanism it relies on is the one reported in `mechanisms`.
"""

import os
import socket
import subprocess
import uuid
from pathlib import Path

import pytest

from dgbench.tasks.sandbox import _uid_alive, capabilities, run_python

ROOT = os.geteuid() == 0
needs_root = pytest.mark.skipif(not ROOT, reason="uid drop, NPROC and mount namespaces need root")


def test_runs_code_and_reports_mechanisms():
    ok = run_python("import os, sys\nprint((sorted(os.environ), sys.flags.isolated, os.getcwd()))")
    assert ok.status == "passed" and ok.returncode == 0, ok
    env, isolated, cwd = eval(ok.stdout_tail)
    assert set(env) <= {"PATH", "HOME", "TMPDIR", "LANG", "LC_CTYPE"} and isolated == 1
    assert not Path(cwd).exists()  # fresh work dir, deleted afterwards
    print("\nsandbox mechanisms:", ok.mechanisms)
    assert ok.mechanisms["process"] == "subprocess"
    bad = run_python("assert 1 == 2, 'nope'")
    assert bad.status == "failed" and "AssertionError: nope" in bad.detail


def test_writes_inside_the_work_dir_work():
    r = run_python("open('out.txt', 'w').write('hi'); print(open('out.txt').read())")
    assert r.status == "passed" and r.stdout_tail.strip() == "hi"


def test_infinite_loop_times_out():
    r = run_python("while True:\n    pass\n", timeout_s=2)
    assert r.status == "timeout" and r.elapsed_s < 2 + 2, r


@needs_root
def test_process_limit_is_enforced():
    code = ("import os, time\nn = 0\nfor _ in range(100):\n    try:\n        pid = os.fork()\n"
            "    except OSError as e:\n        print(n, type(e).__name__); break\n"
            "    if pid == 0:\n        time.sleep(30); os._exit(0)\n    n += 1\n")
    r = run_python(code, timeout_s=10, max_procs=8)
    assert r.mechanisms["nproc_enforced"]
    forked, err = r.stdout_tail.split()
    assert int(forked) < 8 and err == "BlockingIOError", r
    assert r.elapsed_s < 10 and not _uid_alive(r.mechanisms["uid"])  # sleepers killed by uid


@needs_root
def test_fork_bomb_is_contained():
    # Only run after the bounded test above shows the limit holds (same module, runs first).
    bomb = ("import os\nwhile True:\n    try:\n        os.fork()\n    except OSError:\n        pass\n")
    r = run_python(bomb, timeout_s=3)
    assert r.status == "timeout" and r.elapsed_s < 3 + 2, r
    assert not _uid_alive(r.mechanisms["uid"])
    assert subprocess.run(["true"]).returncode == 0  # the machine can still fork


@needs_root
def test_children_that_leave_the_process_group_are_killed():
    code = ("import os, time\nfor _ in range(5):\n    if os.fork() == 0:\n        os.setsid(); time.sleep(60)\n"
            "        os._exit(0)\nprint('parent done')\n")
    r = run_python(code, timeout_s=5)
    assert r.status == "passed" and not _uid_alive(r.mechanisms["uid"])


def test_memory_hog_is_stopped():
    r = run_python("chunks = []\nwhile True:\n    chunks.append(bytearray(50 * 2**20))\n",
                   timeout_s=10, memory_mb=256)
    assert r.status == "killed" and r.status != "passed", r
    assert "MemoryError" in r.stderr_tail or r.returncode < 0


def test_output_size_is_capped():
    r = run_python("import sys\nwhile True:\n    sys.stdout.write('x' * 2**20)\n", timeout_s=10)
    assert r.status == "killed" and "RLIMIT_FSIZE" in r.detail, r


@pytest.mark.parametrize("network", ["auto", "audit"])
def test_network_is_blocked(network):
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    server.setblocking(False)
    port = server.getsockname()[1]
    try:
        code = (f"import socket\ns = socket.socket()\ns.settimeout(3)\ntry:\n"
                f"    s.connect(('127.0.0.1', {port})); print('CONNECTED')\n"
                f"except OSError as e:\n    print('BLOCKED', type(e).__name__, e)\n")
        r = run_python(code, timeout_s=10, network=network)
        assert r.status == "passed" and r.stdout_tail.startswith("BLOCKED"), r
        with pytest.raises(BlockingIOError):
            server.accept()  # nothing ever reached the listener
    finally:
        server.close()
    expected = "netns" if network == "auto" and ROOT and capabilities()["namespaces"] else "audit-hook"
    assert r.mechanisms["network"] == expected


@needs_root
def test_writes_outside_the_work_dir_fail(tmp_path):
    private = tmp_path / "escape.txt"  # writable by the test process (root), under a 0700 dir
    shared = Path("/tmp") / f"dgbench-escape-{uuid.uuid4().hex}"  # world-writable /tmp
    code = "\n".join(f"try:\n    open({str(p)!r}, 'w').write('x'); print('WROTE')\n"
                     f"except OSError as e:\n    print('DENIED', e.errno)" for p in (private, shared))
    r = run_python(code)
    assert r.status == "passed" and "WROTE" not in r.stdout_tail, r
    assert not private.exists() and not shared.exists()
    if r.mechanisms["network"] == "netns":
        assert "read-only" in r.mechanisms["filesystem"]

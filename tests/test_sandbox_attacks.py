"""Generated code attacking the sandbox: each attack runs inside it and must be stopped, and the host checks
that nothing it guards was touched. (Loops, fork bombs, memory hogs, output floods and TCP are in
test_sandbox.py.) One sandboxed program per attack family keeps the module fast.
"""

import json
import os
import socket
import uuid
from pathlib import Path

import pytest

from conftest import ROOT
from dgbench.tasks import sandbox
from dgbench.tasks.sandbox import capabilities, run_python

IS_ROOT = os.geteuid() == 0
needs_mount_ns = pytest.mark.skipif(not (IS_ROOT and capabilities()["mount_namespace"]),
                                    reason="the hidden filesystem and tmpfs work dir need a mount namespace (root)")

PROBE = r'''
import ctypes, json, os, socket
results = {}
def attack(name, fn):
    try:
        results[name] = "NOT STOPPED: " + repr(fn())[:100]
    except BaseException as e:
        results[name] = "stopped: " + type(e).__name__ + ": " + str(e)[:100]
'''
REPORT = "\nprint(json.dumps(results))\n"


def attacks(body: str, **kw) -> tuple[dict, object]:
    r = run_python(PROBE + body + REPORT, **kw)
    assert r.status == "passed", r
    return json.loads(r.stdout_tail.strip().splitlines()[-1]), r


def assert_all_stopped(results: dict) -> None:
    escaped = {k: v for k, v in results.items() if not v.startswith("stopped")}
    assert not escaped, escaped


@needs_mount_ns
def test_reading_outside_the_work_dir_is_stopped(tmp_path):
    secret = tmp_path / "results" / "points.jsonl"
    secret.parent.mkdir()
    secret.write_text("secret results\n")
    os.chmod(tmp_path, 0o755)
    os.chmod(secret.parent, 0o755)
    os.chmod(secret, 0o644)  # readable by anyone on the host: only hiding stops it
    body = f'''
attack("project source", lambda: open({str(ROOT / "dgbench" / "results.py")!r}).read(50))
attack("project folder listing", lambda: os.listdir({str(ROOT)!r}))
attack("results file", lambda: open({str(secret)!r}).read())
attack("parent command line", lambda: open("/proc/%d/cmdline" % os.getppid(), "rb").read())
attack("any /proc", lambda: os.listdir("/proc"))
attack("passwd", lambda: open("/etc/passwd").read(20))
attack("home", lambda: os.listdir("/root"))
attack("host tmp", lambda: os.listdir("/tmp/.."))
attack("ssh keys", lambda: open("/root/.ssh/id_rsa").read(20))
'''
    results, r = attacks(body)
    assert_all_stopped(results)
    assert "everything else hidden" in r.mechanisms["filesystem"]


@needs_mount_ns
def test_symlink_and_hardlink_escapes_are_stopped(tmp_path):
    target = tmp_path / "host-file.txt"
    target.write_text("host data")
    os.chmod(tmp_path, 0o755)
    os.chmod(target, 0o666)
    body = f'''
def via_symlink(path, name):
    os.symlink(path, name)
    return open(name).read()
attack("symlink to host file", lambda: via_symlink({str(target)!r}, "a"))
attack("symlink to /etc/shadow", lambda: via_symlink("/etc/shadow", "b"))
attack("symlink to parent dirs", lambda: via_symlink("../../../../../../" + {str(target)!r}, "c"))
attack("hardlink to a system file", lambda: os.link("/usr/bin/env", "d"))
def write_through_symlink():
    os.symlink({str(target)!r}, "e")
    open("e", "w").write("pwned")
attack("write through symlink", write_through_symlink)
attack("write to the read-only root", lambda: open("/usr/lib/evil", "w"))
attack("write to /etc", lambda: open("/etc/evil", "w"))
attack("chmod a system file", lambda: os.chmod("/usr/bin/env", 0o777))
'''
    results, _ = attacks(body)
    assert_all_stopped(results)
    assert target.read_text() == "host data"


def test_unix_socket_connects_are_stopped(tmp_path):
    path = tmp_path / f"host-{uuid.uuid4().hex[:8]}.sock"
    os.chmod(tmp_path, 0o755)
    server = socket.socket(socket.AF_UNIX)
    server.bind(str(path))
    os.chmod(path, 0o777)  # any uid could connect: only the sandbox stops it
    server.listen(1)
    server.setblocking(False)
    abstract = socket.socket(socket.AF_UNIX)
    name = f"\0dgbench-test-{uuid.uuid4().hex}"
    abstract.bind(name)
    abstract.listen(1)
    abstract.setblocking(False)
    try:
        body = f'''
def connect(addr):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.connect(addr)
    return "connected"
attack("filesystem socket", lambda: connect({str(path)!r}))
attack("abstract socket", lambda: connect({name!r}))
attack("datagram socket", lambda: socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM).sendto(b"x", {str(path)!r}))
attack("netlink", lambda: socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, 0))
attack("packet", lambda: socket.socket(socket.AF_PACKET, socket.SOCK_RAW, 0))
attack("dbus system bus", lambda: connect("/run/dbus/system_bus_socket"))
'''
        results, r = attacks(body)
        if not capabilities()["seccomp"]:
            pytest.skip("no seccomp on this host: " + json.dumps(results))
        assert_all_stopped(results)
        for listener in (server, abstract):
            with pytest.raises(BlockingIOError):
                listener.accept()  # nothing ever reached the host's sockets
        assert "AF_INET/AF_INET6" in r.mechanisms["seccomp"]
    finally:
        server.close()
        abstract.close()


def test_other_network_routes_are_stopped():
    body = '''
attack("udp to host", lambda: socket.socket(socket.AF_INET, socket.SOCK_DGRAM).sendto(b"x", ("127.0.0.1", 53)))
attack("tcp ipv6", lambda: socket.create_connection(("::1", 22), timeout=2))
attack("dns", lambda: socket.getaddrinfo("example.com", 80))
'''
    results, r = attacks(body)
    assert_all_stopped(results)


@needs_mount_ns
def test_a_disk_flood_is_bounded_in_total_bytes_and_files():
    body = '''
def flood_one():
    with open("big", "wb") as f:
        for _ in range(200):
            f.write(b"x" * 2**20)
    return "wrote 200 MiB"
def flood_many():
    for i in range(100):
        with open("f%d" % i, "wb") as f:
            f.write(b"x" * 2**20)
    return "wrote 100 files of 1 MiB"
def many_files():
    for i in range(100000):
        open("n%d" % i, "w").close()
    return "made 100000 files"
attack("one big file", flood_one)
for name in os.listdir("."):
    if name.startswith("big"):
        os.unlink(name)
attack("many 1 MiB files", flood_many)
for name in os.listdir("."):
    if name.startswith("f"):
        os.unlink(name)
attack("inode flood", many_files)
attack("/dev/shm", lambda: open("/dev/shm/x", "wb").write(b"x"))
'''
    results, r = attacks(body, disk_mb=32, timeout_s=60)
    assert_all_stopped(results)
    assert "No space left" in results["many 1 MiB files"] and "32 MiB" in r.mechanisms["disk"]


@needs_mount_ns
def test_privilege_and_namespace_escapes_are_stopped():
    body = '''
libc = ctypes.CDLL(None, use_errno=True)
def call(name, *args):
    if getattr(libc, name)(*args) != 0:
        raise OSError(ctypes.get_errno(), os.strerror(ctypes.get_errno()))
    return "returned 0"
attack("user namespace", lambda: call("unshare", 0x10000000))
attack("mount namespace", lambda: call("unshare", 0x00020000))
attack("mount", lambda: call("mount", b"none", b"/tmp", b"tmpfs", 0, None))
attack("ptrace parent", lambda: call("ptrace", 16, os.getppid(), None, None))
attack("chroot", lambda: call("chroot", b"/"))
attack("setuid root", lambda: os.setuid(0))
attack("io_uring", lambda: call("syscall", 425, 8, ctypes.create_string_buffer(120)))
attack("signal pid 1", lambda: os.kill(1, 0))
'''
    results, _ = attacks(body)
    assert_all_stopped(results)


def test_without_a_mount_namespace_landlock_still_hides_the_project(capsys):
    """The weaker fallback (what a non-root host gets): no namespaces, Landlock + seccomp + rlimits. It is
    said once on stderr and recorded in the result's mechanisms."""
    caps = capabilities()
    if not caps["landlock_abi"]:
        pytest.skip("no Landlock on this kernel")
    sandbox._WARNED.clear()
    code = PROBE + f'''
attack("project source", lambda: open({str(ROOT / "dgbench" / "results.py")!r}).read(50))
attack("passwd", lambda: open("/etc/passwd").read(20))
attack("unix socket", lambda: socket.socket(socket.AF_UNIX))
open("ok.txt", "w").write("work dir is writable")
''' + REPORT
    python, ro_paths = sandbox.find_python(dict(caps), use_ns=False)
    if python is None:
        pytest.skip("no interpreter the private uid can start without a mount namespace")
    r = sandbox._launch(code, python, ro_paths, use_ns=False, netns=False, caps=caps,
                        timeout_s=20, memory_mb=512, max_procs=32, disk_mb=16)
    assert r.status == "passed", r
    results = json.loads(r.stdout_tail.strip().splitlines()[-1])
    assert_all_stopped(results)
    assert r.mechanisms["filesystem"].startswith("landlock") and r.mechanisms["weaker"]
    sandbox._warn_once(r.mechanisms["weaker"])
    sandbox._warn_once(r.mechanisms["weaker"])
    err = capsys.readouterr().err
    assert err.count("weaker isolation") == 1 and "no mount namespace" in err


def test_a_failed_lock_down_step_is_a_sandbox_error_not_a_pass():
    caps = capabilities()
    r = sandbox._launch("print('ran anyway')", "/nonexistent/python3", caps["ro_paths"], use_ns=False,
                        netns=False, caps=caps, timeout_s=20, memory_mb=512, max_procs=32, disk_mb=16)
    assert r.status == "error" and "setup failed" in r.detail and "ran anyway" not in r.stdout_tail, r


def test_each_code_sample_records_how_it_was_isolated():
    from dgbench.tasks import code_infill

    item = code_infill.single_line_items()[0]
    summary = code_infill.sandbox_summary(code_infill.run_item(item, item.middle))
    assert summary["status"] == "passed" and set(summary["isolation"]) >= {"filesystem", "network", "seccomp", "disk"}
    assert isinstance(summary["weaker"], list)
    if IS_ROOT and capabilities()["mount_namespace"] and capabilities()["seccomp"]:
        assert summary["weaker"] == []

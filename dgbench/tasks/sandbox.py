"""Run untrusted, model-generated Python in a separate, locked-down process.

Generated code is never imported or exec'd in the dgbench process: it runs as `python -I` in a child
with wall-clock, memory, file-size and process limits, no network, and a fresh working directory
that is deleted afterwards. Which isolation mechanisms actually took effect depends on the host
(root or not, namespaces or not), so every result reports them in `mechanisms`.

Layers, strongest first (each one measured in tests/test_sandbox.py):
- unprivileged uid: as root, the child drops to a fresh uid of its own. This is what makes
  RLIMIT_NPROC bite (the kernel does not enforce it for root), makes writes outside the
  uid-owned work dir fail with EACCES, and lets us kill every process the run left behind by uid
  (a fork bomb's children can setsid() out of the process group).
- namespaces (as root): unshare(CLONE_NEWNET) leaves only a down loopback, so any connect fails;
  CLONE_NEWNS lets us remount the world-writable dirs (/tmp, /var/tmp, /dev/shm, /run/lock)
  read-only inside the child only, the work dir being bind-mounted back read-write.
- rlimits: RLIMIT_AS (memory), RLIMIT_NPROC (tasks), RLIMIT_FSIZE (file and captured-output size),
  RLIMIT_CORE=0.
- fallback without namespaces: an audit hook (PEP 578) installed before the user code refuses
  socket creation/connect/bind. It is weaker (ctypes can get around it), hence reported.
"""

from __future__ import annotations

import ctypes
import functools
import os
import random
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

CLONE_NEWNS, CLONE_NEWNET = 0x00020000, 0x40000000
MS_RDONLY, MS_REMOUNT, MS_BIND, MS_REC, MS_PRIVATE = 1, 32, 4096, 16384, 1 << 18
WORLD_WRITABLE = ("/tmp", "/var/tmp", "/dev/shm", "/run/lock")
TAIL_CHARS = 4000
FSIZE_MB = 16
# Fresh uids well above any real account, so a run shares its NPROC count and its kill-by-uid
# cleanup with nothing else (nobody=65534 would be shared by every concurrent sandbox).
UID_RANGE = (1_000_000, 1_000_000 + 2**20)

_LIBC = ctypes.CDLL(None, use_errno=True)

# Installed ahead of the user program when network namespaces are unavailable.
_AUDIT_BOOT = '''\
import sys
def _dgbench_no_net(event, args):
    if event in ("socket.connect", "socket.bind", "socket.sendto", "socket.sendmsg", "socket.getaddrinfo"):
        raise PermissionError("network access is disabled in the dgbench sandbox (" + event + ")")
sys.addaudithook(_dgbench_no_net)
del _dgbench_no_net
import runpy
sys.argv = ["main.py"]
runpy.run_path("main.py", run_name="__main__")
'''


@dataclass(frozen=True)
class SandboxResult:
    status: str  # "passed" | "failed" | "timeout" | "killed" | "error"
    returncode: int | None
    stdout_tail: str
    stderr_tail: str
    elapsed_s: float
    mechanisms: dict = field(default_factory=dict)
    detail: str = ""  # why it was killed / errored, in words


def _probe(cmd: list[str], preexec=None) -> tuple[bool, str]:
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=20, preexec_fn=preexec,
                              env={"PATH": "/usr/bin:/bin"}, cwd="/")
    except (OSError, subprocess.SubprocessError) as err:
        return False, f"{type(err).__name__}: {err}"
    return done.returncode == 0, (done.stdout + done.stderr).strip()[-300:]


def _drop_to(uid: int):
    def drop():
        os.setgroups([])
        os.setgid(uid)
        os.setuid(uid)
    return drop


@functools.lru_cache(maxsize=None)
def capabilities() -> dict:
    """What this host allows, probed once per process with throwaway children."""
    caps: dict = {"root": os.geteuid() == 0}
    unshare = ("import ctypes,os,sys; libc=ctypes.CDLL(None,use_errno=True); "
               f"r=libc.unshare({CLONE_NEWNET | CLONE_NEWNS}); "
               "sys.exit(0 if r==0 else os.strerror(ctypes.get_errno()))")
    caps["namespaces"], caps["namespaces_error"] = _probe([sys.executable, "-I", "-c", unshare])
    # The dgbench interpreter may live where an unprivileged uid cannot read (pyenv under /root,
    # mode 700), so pick the first candidate the sandbox uid can actually start.
    candidates = [sys.executable, getattr(sys, "_base_executable", ""), shutil.which("python3") or "",
                  "/usr/bin/python3", "/usr/local/bin/python3"]
    caps["python"], caps["python_errors"] = None, {}
    for exe in dict.fromkeys(c for c in candidates if c):
        ok, msg = _probe([exe, "-I", "-c", "import math, hashlib, re"],
                         _drop_to(UID_RANGE[0] - 1) if caps["root"] else None)
        if ok:
            caps["python"] = exe
            break
        caps["python_errors"][exe] = msg
    return caps


def _limits(memory_mb: int, max_procs: int) -> list[tuple[int, int]]:
    mem = memory_mb * 2**20
    return [(resource.RLIMIT_AS, mem), (resource.RLIMIT_NPROC, max_procs),
            (resource.RLIMIT_FSIZE, FSIZE_MB * 2**20), (resource.RLIMIT_CORE, 0)]


def _mount(src, dst, flags) -> None:
    if _LIBC.mount(src, dst, None, flags, None) != 0:
        raise OSError(ctypes.get_errno(), f"mount {dst!r}: {os.strerror(ctypes.get_errno())}")


def _make_preexec(workdir: str, uid: int | None, use_ns: bool, limits):
    """Runs in the forked child before exec, still as root: namespaces first (they need
    CAP_SYS_ADMIN), then limits, then the uid drop, which must come last."""
    wd = workdir.encode()
    ww = [d.encode() for d in WORLD_WRITABLE if os.path.isdir(d) and not os.path.islink(d)]

    def preexec():
        if use_ns:
            if _LIBC.unshare(CLONE_NEWNET | CLONE_NEWNS) != 0:
                raise OSError(ctypes.get_errno(), "unshare failed")
            _mount(b"none", b"/", MS_REC | MS_PRIVATE)  # keep our remounts out of the host
            # Bind the work dir onto itself first: the recursive bind of /tmp below then carries
            # it as a separate, still read-write mount under the read-only one.
            _mount(wd, wd, MS_BIND)
            for d in ww:
                _mount(d, d, MS_BIND | MS_REC)
                _mount(None, d, MS_BIND | MS_REMOUNT | MS_RDONLY)
        for which, value in limits:
            resource.setrlimit(which, (value, value))
        if uid is not None:
            _drop_to(uid)()
    return preexec


def _kill_uid(uid: int, python: str) -> None:
    """Kill every process of the run's private uid: kill(-1) sent *as that uid* reaches exactly
    its own processes, including any that left the process group."""
    for _ in range(5):
        if not _uid_alive(uid):
            return
        subprocess.run([python, "-I", "-c", "import os; os.kill(-1, 9)"], preexec_fn=_drop_to(uid),
                       capture_output=True, env={}, cwd="/")


def _uid_alive(uid: int) -> bool:
    """True while a live (non-zombie) process of `uid` exists. Zombies are skipped: they hold no
    resources, and orphans are reaped by pid 1 in its own time."""
    for status in Path("/proc").glob("[0-9]*/status"):
        try:
            fields = dict(line.split(":", 1) for line in status.read_text().splitlines() if ":" in line)
            if int(fields["Uid"].split()[1]) == uid and not fields["State"].strip().startswith("Z"):
                return True
        except (OSError, ValueError, KeyError, IndexError):
            continue
    return False


def _tail(f) -> str:
    f.seek(0, os.SEEK_END)
    f.seek(max(0, f.tell() - 4 * TAIL_CHARS))
    return f.read().decode("utf-8", "replace")[-TAIL_CHARS:]


def _classify(rc: int | None, stderr: str, timed_out: bool) -> tuple[str, str]:
    if timed_out:
        return "timeout", "wall-clock limit reached; process group killed"
    if rc == 0:
        return "passed", ""
    if rc is not None and rc < 0:
        name = signal.Signals(-rc).name if -rc in signal.Signals._value2member_map_ else str(-rc)
        why = {"SIGXFSZ": " (file size limit)", "SIGXCPU": " (cpu limit)"}.get(name, "")
        return "killed", f"killed by {name}{why}"
    last = stderr.strip().splitlines()[-1] if stderr.strip() else ""
    if last.startswith("MemoryError"):
        return "killed", "memory limit (RLIMIT_AS) hit: MemoryError"
    if "[Errno 27]" in last:  # EFBIG: Python ignores SIGXFSZ, so the limit surfaces as an OSError
        return "killed", "file size limit (RLIMIT_FSIZE) hit: " + last
    return "failed", last


def run_python(code: str, timeout_s: float = 10, memory_mb: int = 512, max_procs: int = 32,
               *, network: str = "auto") -> SandboxResult:
    """Run `code` as a script in a sandboxed child process and report how it ended.

    network: "auto" uses a network namespace where available, else the audit hook; "audit" forces
    the audit-hook fallback (used to test it on hosts that do have namespaces).
    """
    caps = capabilities()
    start = time.monotonic()
    python = caps["python"]
    if python is None:
        return SandboxResult("error", None, "", "", 0.0, {"python": None},
                             f"no interpreter the sandbox user can run: {caps['python_errors']}")
    use_ns = caps["root"] and caps["namespaces"] and network == "auto"
    uid = random.randrange(*UID_RANGE) if caps["root"] else None
    mechanisms = {
        "process": "subprocess", "python": python, "isolated_mode": "-I",
        "uid": uid if uid is not None else os.geteuid(),
        "user": "private unprivileged uid" if uid is not None else "unchanged (not root)",
        "network": "netns" if use_ns else "audit-hook",
        "filesystem": ("private uid + read-only world-writable dirs (mount ns)" if use_ns
                       else "private uid" if uid is not None else "cwd only by convention"),
        "rlimits": {"AS_mb": memory_mb, "NPROC": max_procs, "FSIZE_mb": FSIZE_MB, "CORE": 0},
        # Not root: the kernel enforces NPROC, but against all of this user's processes, not the run's.
        "nproc_enforced": "per-run uid" if uid is not None else "shared with the calling user",
        "timeout_s": timeout_s,
    }
    if not use_ns and caps["root"] and network == "auto":
        mechanisms["namespaces_error"] = caps["namespaces_error"]
    workdir = tempfile.mkdtemp(prefix="dgbench-sbx-")
    try:
        Path(workdir, "main.py").write_text(code)
        argv = [python, "-I", "-B", "main.py"]
        if not use_ns:
            Path(workdir, "_boot.py").write_text(_AUDIT_BOOT)
            argv = [python, "-I", "-B", "_boot.py"]
        if uid is not None:
            os.chown(workdir, uid, uid)
        os.chmod(workdir, 0o700)
        env = {"PATH": "/usr/bin:/bin", "HOME": workdir, "TMPDIR": workdir, "LANG": "C.UTF-8"}
        preexec = _make_preexec(workdir, uid, use_ns, _limits(memory_mb, max_procs))
        # Output goes to parent-owned files, not pipes: a chatty child cannot fill the parent's
        # memory (RLIMIT_FSIZE caps the files), and stray grandchildren holding the fd cannot
        # make us block on EOF.
        with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
            timed_out, rc = False, None
            try:
                proc = subprocess.Popen(argv, cwd=workdir, env=env, stdin=subprocess.DEVNULL,
                                        stdout=out, stderr=err, preexec_fn=preexec,
                                        start_new_session=True, close_fds=True)
            except (OSError, subprocess.SubprocessError) as e:
                return SandboxResult("error", None, "", "", time.monotonic() - start, mechanisms,
                                     f"could not start sandbox: {type(e).__name__}: {e}")
            try:
                rc = proc.wait(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                timed_out = True
            finally:
                try:
                    os.killpg(proc.pid, signal.SIGKILL)  # leftovers in the group, or the timed-out run
                except ProcessLookupError:
                    pass
                if uid is not None:
                    _kill_uid(uid, python)
                rc = proc.wait() if rc is None else rc
            elapsed = time.monotonic() - start
            stdout, stderr = _tail(out), _tail(err)
        status, detail = _classify(rc, stderr, timed_out)
        return SandboxResult(status, rc, stdout, stderr, elapsed, mechanisms, detail)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)

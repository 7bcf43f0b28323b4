"""Run untrusted, model-generated Python in a separate, locked-down process.

Generated code is never imported or exec'd in the dgbench process: it runs as `python -I` in a child
started through dgbench/tasks/sandbox_launch.py, which locks the child down before exec'ing the
interpreter. Which mechanisms took effect depends on the host (root or not, namespaces, Landlock,
seccomp), so every result lists them in `mechanisms`, with `weaker` naming what this host lacks (also
said once per process on stderr). Layers (each attacked in tests/test_sandbox*.py):
- filesystem: as root, a private mount namespace whose root is a small read-only tmpfs holding only
  read-only binds of the system's and the interpreter's files and the work dir; the project, results,
  /proc (the parent's command line), /home, /root and every socket file are not there at all. Without
  root, Landlock confines reads to those paths and writes to the work dir.
- disk: the work dir is a size-limited tmpfs (total bytes and files bounded); RLIMIT_FSIZE per file.
- sockets: a seccomp filter refuses socket() outside AF_INET/AF_INET6 (no UNIX-socket connect: D-Bus,
  X11, docker.sock) and namespace, mount, ptrace, bpf and io_uring calls.
- network: a network namespace (only a down loopback) as root; Landlock's TCP rules and, without
  namespaces, an audit hook (PEP 578) that refuses socket connect/bind (weaker: ctypes can get around
  it, hence reported).
- unprivileged uid: as root, the child drops to a fresh uid of its own, which makes RLIMIT_NPROC bite
  (the kernel does not enforce it for root) and lets us kill every process the run left behind by uid
  (a fork bomb's children can setsid() out of the process group).
- rlimits: RLIMIT_AS (memory), RLIMIT_NPROC (tasks), RLIMIT_FSIZE (file and captured-output size),
  RLIMIT_CORE=0; a wall-clock timeout.
"""

from __future__ import annotations

import ctypes
import functools
import json
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
TAIL_CHARS = 4000
FSIZE_MB = 16
DISK_MB = 64
MAX_FILES = 2048
SETUP_FAILED = 121  # sandbox_launch.py's exit code when a lock-down step fails
LAUNCHER = str(Path(__file__).with_name("sandbox_launch.py"))
# What the interpreter needs to start, bound read-only into the sandbox (plus its own prefix).
SYSTEM_PATHS = ("/usr", "/lib", "/lib64", "/lib32", "/libx32", "/bin", "/sbin", "/etc/ld.so.cache",
                "/etc/ld.so.conf", "/etc/ld.so.conf.d")
# Fresh uids well above any real account, so a run shares its NPROC count and its kill-by-uid
# cleanup with nothing else (nobody=65534 would be shared by every concurrent sandbox).
UID_RANGE = (1_000_000, 1_000_000 + 2**20)

_LIBC = ctypes.CDLL(None, use_errno=True)
_WARNED: set = set()

# Run ahead of the user program when there is no network namespace.
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


def _landlock_abi() -> int:
    """Landlock's ABI version (0: none). landlock_create_ruleset(NULL, 0, VERSION) is syscall 444 on
    every architecture."""
    try:
        abi = _LIBC.syscall(444, None, 0, 1)
    except (AttributeError, OSError):
        return 0
    return abi if abi > 0 else 0


def _seccomp_ok() -> bool:
    from dgbench.tasks.sandbox_launch import ARCHES

    return os.uname().machine in ARCHES and _LIBC.prctl(21, 0, 0, 0, 0) >= 0  # PR_GET_SECCOMP


def _ro_paths(python: str) -> list[str]:
    """System paths plus the interpreter's own prefix (a pyenv or /opt build lives outside /usr)."""
    ok, out = _probe([python, "-I", "-S", "-c", "import sys; print(sys.base_prefix); print(sys.base_exec_prefix)"])
    extra = (out.splitlines() if ok else []) + [os.path.dirname(python)]
    paths = [p for p in SYSTEM_PATHS if os.path.lexists(p)]
    for p in extra:
        p = os.path.realpath(p)
        if p and p != "/" and not any(p == q or p.startswith(q.rstrip("/") + "/") for q in paths):
            paths.append(p)
    return paths


@functools.lru_cache(maxsize=None)
def capabilities() -> dict:
    """What this host allows, probed once per process with throwaway children: each candidate
    interpreter is started through the real launcher, strongest mode first."""
    caps: dict = {"root": os.geteuid() == 0, "landlock_abi": _landlock_abi(), "seccomp": _seccomp_ok()}
    unshare = ("import ctypes,os,sys; libc=ctypes.CDLL(None,use_errno=True); "
               f"r=libc.unshare({CLONE_NEWNET | CLONE_NEWNS}); "
               "sys.exit(0 if r==0 else os.strerror(ctypes.get_errno()))")
    caps["namespaces"], caps["namespaces_error"] = _probe([sys.executable, "-I", "-c", unshare])
    caps["namespaces"] = caps["namespaces"] and caps["root"]
    caps["python"], caps["python_errors"], caps["ro_paths"] = None, {}, []
    for use_ns in ([True, False] if caps["namespaces"] else [False]):
        exe, ro = find_python(caps, use_ns)
        if exe:
            caps["python"], caps["ro_paths"], caps["mount_namespace"] = exe, ro, use_ns
            return caps
        if use_ns:
            caps["namespaces_error"] = "setup failed: " + "; ".join(caps["python_errors"].values())[:300]
    caps["mount_namespace"] = False
    return caps


def find_python(caps: dict, use_ns: bool) -> tuple[str | None, list[str]]:
    """The first interpreter that starts and runs inside the sandbox in this mode, and its read-only
    paths. Without a mount namespace the private uid must be able to reach it on the host (a pyenv
    build under /root, mode 700, cannot be); inside one, its prefix is bound in."""
    candidates = [sys.executable, getattr(sys, "_base_executable", ""), shutil.which("python3") or "",
                  "/usr/bin/python3", "/usr/local/bin/python3"]
    for exe in dict.fromkeys(os.path.realpath(c) for c in candidates if c and os.path.exists(c)):
        ro = _ro_paths(exe)
        r = _launch("import math, hashlib, re\nprint('ok')", exe, ro, use_ns=use_ns, netns=use_ns,
                    caps=caps, timeout_s=20, memory_mb=512, max_procs=32, disk_mb=8)
        if r.status == "passed" and r.stdout_tail.strip() == "ok":
            return exe, ro
        caps.setdefault("python_errors", {})[f"{exe} (namespaces={use_ns})"] = (r.detail or r.stderr_tail)[-300:]
    return None, []


def _limits(memory_mb: int, max_procs: int) -> list[tuple[int, int]]:
    mem = memory_mb * 2**20
    return [(resource.RLIMIT_AS, mem), (resource.RLIMIT_NPROC, max_procs),
            (resource.RLIMIT_FSIZE, FSIZE_MB * 2**20), (resource.RLIMIT_CORE, 0)]


def _kill_uid(uid: int, python: str) -> None:
    """Kill every process of the run's private uid: kill(-1) sent *as that uid* reaches exactly
    its own processes, including any that left the process group."""
    for _ in range(5):
        if not _uid_alive(uid):
            return
        # /bin/sh, not the interpreter: the sandbox's interpreter may be unreadable to the uid outside
        # the mount namespace (a pyenv build under /root, mode 700).
        subprocess.run(["/bin/sh", "-c", "kill -9 -1"], preexec_fn=_drop_to(uid), capture_output=True,
                       env={"PATH": "/usr/bin:/bin"}, cwd="/")


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
    last = stderr.strip().splitlines()[-1] if stderr.strip() else ""
    if rc == SETUP_FAILED and last.startswith("dgbench-sandbox:"):
        return "error", last
    if rc is not None and rc < 0:
        name = signal.Signals(-rc).name if -rc in signal.Signals._value2member_map_ else str(-rc)
        why = {"SIGXFSZ": " (file size limit)", "SIGXCPU": " (cpu limit)", "SIGSYS": " (seccomp)"}.get(name, "")
        return "killed", f"killed by {name}{why}"
    if last.startswith("MemoryError"):
        return "killed", "memory limit (RLIMIT_AS) hit: MemoryError"
    if "[Errno 27]" in last:  # EFBIG: Python ignores SIGXFSZ, so the limit surfaces as an OSError
        return "killed", "file size limit (RLIMIT_FSIZE) hit: " + last
    if "[Errno 28]" in last:  # ENOSPC: the work dir's tmpfs is full
        return "killed", "disk limit (work dir tmpfs) hit: " + last
    return "failed", last


def _mechanisms(caps: dict, python: str, uid, use_ns: bool, netns: bool, memory_mb: int, max_procs: int,
                disk_mb: int, timeout_s: float) -> dict:
    abi = caps["landlock_abi"]
    weaker = []
    if use_ns:
        filesystem = ("private mount namespace: read-only " + ", ".join(caps.get("ro_paths") or ["system paths"])
                      + "; everything else hidden")
    elif abi:
        filesystem = f"landlock ABI {abi}: reads limited to system and interpreter paths, writes to the work dir"
        weaker.append("no mount namespace (needs root): the filesystem is confined by Landlock, not hidden")
    else:
        filesystem = "private uid" if uid is not None else "cwd only by convention"
        weaker.append("no mount namespace and no Landlock: generated code can read this user's files")
    if not caps["seccomp"]:
        weaker.append("no seccomp: UNIX sockets are not blocked")
    if not use_ns:
        weaker.append(f"no tmpfs work dir: only a per-file size limit ({FSIZE_MB} MiB), not a total")
    if not netns:
        weaker.append("no network namespace: the network is refused by " + ("Landlock (TCP) and " if abi >= 4 else "")
                      + "an audit hook (ctypes can get around the hook)")
    return {
        "process": "subprocess", "launcher": "dgbench/tasks/sandbox_launch.py", "python": python, "isolated_mode": "-I",
        "uid": uid if uid is not None else os.geteuid(),
        "user": "private unprivileged uid" if uid is not None else "unchanged (not root)",
        "network": "netns" if netns else "audit-hook",
        "filesystem": filesystem,
        "landlock": f"ABI {abi}" if abi else "unavailable",
        "seccomp": "socket() limited to AF_INET/AF_INET6; namespace, mount, ptrace, bpf, io_uring refused"
                   if caps["seccomp"] else "unavailable",
        "disk": f"tmpfs work dir, {disk_mb} MiB and {MAX_FILES} files" if use_ns else f"RLIMIT_FSIZE {FSIZE_MB} MiB per file",
        "rlimits": {"AS_mb": memory_mb, "NPROC": max_procs, "FSIZE_mb": FSIZE_MB, "CORE": 0},
        # Not root: the kernel enforces NPROC, but against all of this user's processes, not the run's.
        "nproc_enforced": "per-run uid" if uid is not None else "shared with the calling user",
        "timeout_s": timeout_s,
        "weaker": weaker,
    }


def _warn_once(weaker: list[str]) -> None:
    new = [w for w in weaker if w not in _WARNED]
    if new:
        _WARNED.update(new)
        print("dgbench: sandbox: weaker isolation on this host: " + "; ".join(new)
              + " (recorded in each sample's mechanisms)", file=sys.stderr)


def _launch(code: str, python: str, ro_paths: list[str], *, use_ns: bool, netns: bool, caps: dict,
            timeout_s: float, memory_mb: int, max_procs: int, disk_mb: int) -> SandboxResult:
    start = time.monotonic()
    uid = random.randrange(*UID_RANGE) if caps["root"] else None
    mechanisms = _mechanisms(caps, python, uid, use_ns, netns, memory_mb, max_procs, disk_mb, timeout_s)
    host_dir = tempfile.mkdtemp(prefix="dgbench-sbx-")
    cfg_fd, cfg_path = tempfile.mkstemp(prefix="dgbench-sbx-", suffix=".json")
    try:
        files = ["main.py"]
        Path(host_dir, "main.py").write_text(code)
        argv = [python, "-I", "-B", "main.py"]
        if not netns:
            Path(host_dir, "_boot.py").write_text(_AUDIT_BOOT)
            files.append("_boot.py")
            argv = [python, "-I", "-B", "_boot.py"]
        if use_ns:
            os.mkdir(os.path.join(host_dir, ".stage"), 0o700)
        elif uid is not None:
            os.chown(host_dir, uid, uid)
        os.chmod(host_dir, 0o700)
        cfg = {"namespaces": use_ns, "netns": netns, "stage": os.path.join(host_dir, ".stage"),
               "work_inside": host_dir, "host_dir": host_dir, "files": files, "ro_paths": ro_paths, "uid": uid,
               "disk_mb": disk_mb, "max_files": MAX_FILES, "limits": _limits(memory_mb, max_procs),
               "landlock_abi": caps["landlock_abi"], "seccomp": caps["seccomp"], "python": python, "argv": argv,
               "env": {"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8"}}
        with os.fdopen(cfg_fd, "w") as f:
            json.dump(cfg, f)
        # Output goes to parent-owned files, not pipes: a chatty child cannot fill the parent's
        # memory (RLIMIT_FSIZE caps the files), and stray grandchildren holding the fd cannot
        # make us block on EOF.
        with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
            timed_out, rc = False, None
            try:
                proc = subprocess.Popen([sys.executable, "-I", "-S", LAUNCHER, cfg_path], cwd="/",
                                        env={"PATH": "/usr/bin:/bin"}, stdin=subprocess.DEVNULL, stdout=out,
                                        stderr=err, start_new_session=True, close_fds=True)
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
        shutil.rmtree(host_dir, ignore_errors=True)
        try:
            os.unlink(cfg_path)
        except OSError:
            pass


def run_python(code: str, timeout_s: float = 10, memory_mb: int = 512, max_procs: int = 32,
               *, network: str = "auto", disk_mb: int = DISK_MB) -> SandboxResult:
    """Run `code` as a script in a sandboxed child process and report how it ended.

    network: "auto" uses a network namespace where available, else the audit hook; "audit" forces
    the audit-hook fallback (used to test it on hosts that do have namespaces). disk_mb bounds the
    bytes the program may write in total (its tmpfs work dir, where a mount namespace is available).
    """
    caps = capabilities()
    python = caps["python"]
    if python is None:
        return SandboxResult("error", None, "", "", 0.0, {"python": None},
                             f"no interpreter the sandbox can start: {caps['python_errors']}")
    use_ns = caps["mount_namespace"]
    netns = use_ns and network == "auto"
    result = _launch(code, python, caps["ro_paths"], use_ns=use_ns, netns=netns, caps=caps, timeout_s=timeout_s,
                     memory_mb=memory_mb, max_procs=max_procs, disk_mb=disk_mb)
    if not use_ns and caps["root"]:
        result.mechanisms["namespaces_error"] = caps["namespaces_error"]
    if network == "auto":
        _warn_once(result.mechanisms["weaker"])
    return result

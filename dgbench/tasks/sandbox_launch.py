"""The sandbox's launcher: a tiny stdlib-only script that locks itself down, then execs the interpreter.

Run as `python -I -S sandbox_launch.py CONFIG.json` by dgbench.tasks.sandbox (never imported by
dgbench). Doing the setup in a process of its own, rather than in a preexec_fn, keeps it out of a
forked copy of a multi-threaded parent (where a lock held by another thread can deadlock the child)
and lets it print a clear reason when a step fails. Steps, in the order the kernel needs them:

1. namespaces (root): a private mount namespace, and a network namespace (only a down loopback) unless
   the caller asked for the audit-hook network fallback; IPC and UTS namespaces too.
2. a new root (mount namespace only): a small tmpfs holding read-only bind mounts of the system's and
   the interpreter's files (/usr, /lib*, the interpreter's prefix, ld.so.cache), /dev/null and friends,
   and the work directory: a size-limited tmpfs, so total bytes written are bounded. pivot_root then
   detaches the old root: the project, its results, /proc (the parent's command line), every socket
   file and the rest of the filesystem are gone, not merely forbidden, and symlinks resolve inside.
3. rlimits, then the drop to the run's private uid (which must come after anything needing root).
4. no_new_privs, Landlock (where the kernel has it: filesystem rules, TCP, abstract UNIX sockets and
   signals scoped) and a seccomp filter: no socket() outside AF_INET/AF_INET6 (so no UNIX-socket
   connect), no namespace/mount/ptrace/bpf/io_uring/keyring calls, clone3 answered ENOSYS so libc
   falls back to clone, whose flags the filter can see.
5. execve the interpreter. From here on the process is the user program.
Exit code 121 with a line on stderr when a step fails: the parent reports it as a sandbox error.
"""

import ctypes
import json
import os
import resource
import struct
import sys

SETUP_FAILED = 121
libc = ctypes.CDLL(None, use_errno=True)

CLONE_NEWNS, CLONE_NEWUTS, CLONE_NEWIPC = 0x00020000, 0x04000000, 0x08000000
CLONE_NEWUSER, CLONE_NEWPID, CLONE_NEWNET, CLONE_NEWCGROUP = 0x10000000, 0x20000000, 0x40000000, 0x02000000
MS_RDONLY, MS_NOSUID, MS_NODEV, MS_REMOUNT, MS_BIND, MS_REC, MS_PRIVATE = 1, 2, 4, 32, 4096, 16384, 1 << 18
MNT_DETACH = 2
PR_SET_NO_NEW_PRIVS, PR_SET_SECCOMP, SECCOMP_MODE_FILTER = 38, 22, 2

# Syscall numbers per architecture (linux/arch/*/unistd), and the audit arch the filter checks first so a
# program cannot switch ABI (x32, i386) to reach numbers the filter does not know.
ARCHES = {
    "x86_64": {"audit": 0xC000003E, "x32_bit": 0x40000000, "socket": 41, "clone": 56, "clone3": 435,
               "deny": [101, 165, 166, 155, 161, 272, 308, 250, 248, 249, 321, 298, 323, 425, 426, 427, 246,
                        320, 175, 313, 176, 304, 303, 310, 311, 428, 429, 430, 431, 432, 433, 442, 163, 167,
                        168, 169, 134, 139, 156]},
    "aarch64": {"audit": 0xC00000B7, "x32_bit": None, "socket": 198, "clone": 220, "clone3": 435,
                "deny": [117, 40, 39, 41, 51, 97, 268, 219, 217, 218, 280, 241, 282, 425, 426, 427, 104, 294,
                         105, 273, 106, 265, 264, 270, 271, 428, 429, 430, 431, 432, 433, 442, 89, 224, 225,
                         142]},
}
AF_INET, AF_INET6 = 2, 10
EPERM, EAFNOSUPPORT, ENOSYS = 1, 97, 38
RET_ALLOW, RET_ERRNO, RET_KILL_PROCESS = 0x7FFF0000, 0x00050000, 0x80000000
BPF_LD_W_ABS, BPF_JEQ_K, BPF_JSET_K, BPF_JGE_K, BPF_RET_K = 0x20, 0x15, 0x45, 0x35, 0x06


def fail(step: str, err: int | None = None) -> None:
    why = os.strerror(err) if err else ""
    sys.stderr.write(f"dgbench-sandbox: setup failed at {step}{': ' + why if why else ''}\n")
    sys.stderr.flush()
    os._exit(SETUP_FAILED)


def mount(src, dst, fstype, flags, data=None) -> None:
    enc = (lambda s: s.encode() if isinstance(s, str) else s)
    if libc.mount(enc(src), enc(dst), enc(fstype), flags, enc(data)) != 0:
        fail(f"mount {dst}", ctypes.get_errno())


def bind_ro(src: str, dst: str) -> None:
    if os.path.islink(src):  # /bin -> usr/bin on merged-/usr systems: the same link inside
        os.makedirs(os.path.dirname(dst), exist_ok=True)
        if not os.path.lexists(dst):
            os.symlink(os.readlink(src), dst)
        return
    if os.path.isdir(src):
        os.makedirs(dst, exist_ok=True)
    else:
        os.makedirs(os.path.dirname(dst), exist_ok=True)
        open(dst, "a").close()
    mount(src, dst, None, MS_BIND | MS_REC)
    mount(None, dst, None, MS_BIND | MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV)


def new_root(cfg: dict) -> str:
    """Build the visible tree under cfg['stage'] and pivot into it; return the work dir's path inside."""
    stage, work = cfg["stage"], cfg["work_inside"]
    mount("none", "/", None, MS_REC | MS_PRIVATE)  # nothing below propagates back to the host
    mount("dgbench-sbx-root", stage, "tmpfs", MS_NOSUID | MS_NODEV, "size=4m,nr_inodes=4096,mode=0755")
    for path in cfg["ro_paths"]:
        if os.path.lexists(path):
            bind_ro(path, stage + path)
    os.makedirs(stage + "/dev", exist_ok=True)
    for dev in ("null", "zero", "full", "random", "urandom"):
        if os.path.exists("/dev/" + dev):
            open(stage + "/dev/" + dev, "a").close()
            mount("/dev/" + dev, stage + "/dev/" + dev, None, MS_BIND)
    os.makedirs(stage + work, exist_ok=True)
    uid = cfg["uid"] if cfg["uid"] is not None else os.getuid()
    mount("dgbench-sbx-work", stage + work, "tmpfs", MS_NOSUID | MS_NODEV,
          f"size={cfg['disk_mb']}m,nr_inodes={cfg['max_files']},mode=0700,uid={uid},gid={uid}")
    for name in cfg["files"]:
        with open(os.path.join(cfg["host_dir"], name), "rb") as src, open(stage + work + "/" + name, "wb") as dst:
            dst.write(src.read())
        os.chown(stage + work + "/" + name, uid, uid)
    if not os.path.lexists(stage + "/tmp"):  # the work dir may itself live under /tmp
        os.symlink(work, stage + "/tmp")
    os.chdir(stage)
    if libc.syscall(155 if os.uname().machine == "x86_64" else 41, b".", b".") != 0:  # pivot_root
        fail("pivot_root", ctypes.get_errno())
    if libc.umount2(b".", MNT_DETACH) != 0:
        fail("detach the old root", ctypes.get_errno())
    os.chdir("/")
    mount(None, "/", None, MS_BIND | MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV)
    return work


# ---------------------------------------------------------------- Landlock (linux/landlock.h)

LL_FS_EXECUTE, LL_FS_WRITE_FILE, LL_FS_READ_FILE, LL_FS_READ_DIR = 1, 2, 4, 8
LL_FS_ALL = {1: (1 << 13) - 1, 2: (1 << 14) - 1, 3: (1 << 15) - 1, 4: (1 << 15) - 1}  # ABI -> handled rights
LL_FS_ALL_V5 = (1 << 16) - 1
LL_FILE_RIGHTS = LL_FS_EXECUTE | LL_FS_WRITE_FILE | LL_FS_READ_FILE | (1 << 14) | (1 << 15)


def landlock(cfg: dict, abi: int, work: str) -> None:
    handled = LL_FS_ALL.get(abi, LL_FS_ALL_V5)
    if abi >= 6:
        attr = struct.pack("QQQ", handled, 3, 3)  # fs; TCP bind+connect; abstract UNIX sockets + signals
    elif abi >= 4:
        attr = struct.pack("QQ", handled, 3)
    else:
        attr = struct.pack("Q", handled)
    buf = ctypes.create_string_buffer(attr, len(attr))
    fd = libc.syscall(444, buf, len(attr), 0)
    if fd < 0:
        fail("landlock_create_ruleset", ctypes.get_errno())
    read = LL_FS_EXECUTE | LL_FS_READ_FILE | LL_FS_READ_DIR
    rules = [(p, read) for p in cfg["ro_paths"]] + [(work, handled), ("/dev/null", LL_FS_WRITE_FILE | LL_FS_READ_FILE),
                                                   ("/dev/zero", LL_FS_READ_FILE), ("/dev/urandom", LL_FS_READ_FILE)]
    for path, rights in rules:
        try:
            pfd = os.open(path, os.O_PATH | os.O_CLOEXEC)
        except OSError:
            continue
        if not os.path.isdir(path):
            rights &= LL_FILE_RIGHTS
        rights &= handled
        rule = ctypes.create_string_buffer(struct.pack("=Qi", rights, pfd), 12)
        if libc.syscall(445, fd, 1, rule, 0) != 0:
            err = ctypes.get_errno()
            os.close(pfd)
            fail(f"landlock_add_rule {path}", err)
        os.close(pfd)
    if libc.syscall(446, fd, 0) != 0:
        fail("landlock_restrict_self", ctypes.get_errno())
    os.close(fd)


# ---------------------------------------------------------------- seccomp (linux/seccomp.h, filter.h)

def seccomp_program(arch: dict) -> list[tuple[int, int, int, int]]:
    """A classic BPF program over struct seccomp_data (nr at 0, arch at 4, args at 16 + 8*i)."""
    prog: list = []

    def op(code, k=0, jt=None, jf=None):
        prog.append([code, jt, jf, k])

    errno_ret = lambda e: RET_ERRNO | e  # noqa: E731
    op(BPF_LD_W_ABS, 4)
    op(BPF_JEQ_K, arch["audit"], 1, 0)
    op(BPF_RET_K, RET_KILL_PROCESS)           # another ABI: refuse to run at all
    op(BPF_LD_W_ABS, 0)
    if arch["x32_bit"]:
        op(BPF_JGE_K, arch["x32_bit"], 0, 1)
        op(BPF_RET_K, errno_ret(EPERM))
    for nr in arch["deny"]:
        op(BPF_JEQ_K, nr, 0, 1)
        op(BPF_RET_K, errno_ret(EPERM))
    op(BPF_JEQ_K, arch["clone3"], 0, 1)
    op(BPF_RET_K, errno_ret(ENOSYS))          # glibc then uses clone(), whose flags are visible
    # clone(flags, ...): no new namespaces (a user namespace would give the program its own root)
    op(BPF_JEQ_K, arch["clone"], 0, 3)
    op(BPF_LD_W_ABS, 16)
    op(BPF_JSET_K, CLONE_NEWUSER | CLONE_NEWNS | CLONE_NEWNET | CLONE_NEWPID | CLONE_NEWIPC | CLONE_NEWUTS
       | CLONE_NEWCGROUP, 0, 1)
    op(BPF_RET_K, errno_ret(EPERM))
    op(BPF_LD_W_ABS, 0)
    # socket(domain, ...): only AF_INET/AF_INET6 (the network namespace or Landlock/the audit hook stops
    # those); AF_UNIX (D-Bus, X11, docker.sock), AF_NETLINK, AF_PACKET, ... are refused.
    op(BPF_JEQ_K, arch["socket"], 0, 5)
    op(BPF_LD_W_ABS, 16)
    op(BPF_JEQ_K, AF_INET, 2, 0)
    op(BPF_JEQ_K, AF_INET6, 1, 0)
    op(BPF_RET_K, errno_ret(EAFNOSUPPORT))
    op(BPF_RET_K, RET_ALLOW)
    op(BPF_RET_K, RET_ALLOW)
    return [tuple(x if x is not None else 0 for x in (c, jt, jf, k)) for c, jt, jf, k in prog]


def seccomp(arch: dict) -> None:
    prog = seccomp_program(arch)
    filt = b"".join(struct.pack("HBBI", c, jt, jf, k) for c, jt, jf, k in prog)
    buf = ctypes.create_string_buffer(filt, len(filt))

    class Fprog(ctypes.Structure):
        _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]

    fprog = Fprog(len(prog), ctypes.addressof(buf))
    if libc.prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, ctypes.byref(fprog), 0, 0) != 0:
        fail("seccomp", ctypes.get_errno())


def main() -> None:
    with open(sys.argv[1], encoding="utf-8") as f:
        cfg = json.load(f)
    work = cfg["host_dir"]
    if cfg["namespaces"]:
        flags = CLONE_NEWNS | CLONE_NEWIPC | CLONE_NEWUTS | (CLONE_NEWNET if cfg["netns"] else 0)
        if libc.unshare(flags) != 0:
            fail("unshare", ctypes.get_errno())
        work = new_root(cfg)
    os.chdir(work)
    for which, value in cfg["limits"]:
        resource.setrlimit(which, (value, value))
    if cfg["uid"] is not None:
        os.setgroups([])
        os.setgid(cfg["uid"])
        os.setuid(cfg["uid"])
    if libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0:
        fail("no_new_privs", ctypes.get_errno())
    if cfg["landlock_abi"]:
        landlock(cfg, cfg["landlock_abi"], work)
    if cfg["seccomp"]:
        seccomp(ARCHES[os.uname().machine])
    env = dict(cfg["env"], HOME=work, TMPDIR=work)
    os.execve(cfg["python"], cfg["argv"], env)


if __name__ == "__main__":
    try:
        main()
    except Exception as exc:  # noqa: BLE001 - any step that raises is a failed lock-down, reported as such
        fail(f"{type(exc).__name__}: {exc}")

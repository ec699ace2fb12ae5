"""The sandbox's privileged half: a fresh, single-threaded process that isolates one program.

`teachloop.environments.sandbox` runs this file as a script (`python -I -S <this file>
<spec-json>`), with the caller's privileges, stdout/stderr already pointing at the capture
files and one extra inherited file descriptor (`status_fd`) on which it writes one JSON
status object at the end. It imports nothing but the standard library, so it starts fast
and runs nothing the sandboxed program could have influenced.

What it does, in order:
1. Enter new kernel namespaces: a user namespace first when not root (so that the others
   are allowed), then network (no interfaces but a downed loopback: no connection can
   leave) and PID (every process the program starts dies with it).
2. With a PID namespace: fork an init process (PID 1 inside) that forks the program,
   reaps every orphan and exits when the program exits, which makes the kernel kill
   whatever the program left running. Without one: the program runs in its own session
   and its process group is killed when it ends.
3. In the program's process: resource limits (CPU, address space, processes, file size,
   open files, no core dumps), no-new-privileges, then drop to the unprivileged uid/gid
   the caller chose (root callers), chdir into the work directory and exec the
   interpreter with a minimal environment.
4. Enforce the wall-clock limit from outside the namespace: SIGKILL to the init process
   (or the process group) when it passes.
"""

from __future__ import annotations

import ctypes
import json
import os
import resource
import signal
import sys
import time
from typing import Any

CLONE_NEWUSER = 0x10000000
CLONE_NEWNET = 0x40000000
CLONE_NEWPID = 0x20000000
PR_SET_PDEATHSIG = 1
PR_SET_CHILD_SUBREAPER = 36
PR_SET_NO_NEW_PRIVS = 38

# Used only when no network namespace can be had (or when asked for): a Python audit hook
# that refuses sockets, new processes other than fork, and ctypes. Best effort: unlike a
# namespace it is a convention inside the interpreter, not a kernel boundary.
AUDIT_BOOTSTRAP = """\
import sys
_DENIED = ("socket.", "subprocess.", "os.exec", "os.posix_spawn", "os.spawn", "os.system", "ctypes.")
def _deny(event, args):
    if event.startswith(_DENIED):
        raise PermissionError(f"{event} is disabled in this sandbox (no network, no new programs)")
sys.addaudithook(_deny)
del _deny
sys.argv = sys.argv[1:]
import runpy
runpy.run_path(sys.argv[0], run_name="__main__")
"""

Status = dict[str, Any]

_libc = ctypes.CDLL(None, use_errno=True)


def _unshare(flags: int) -> bool:
    return _libc.unshare(flags) == 0


def _prctl(option: int, value: int) -> None:
    if _libc.prctl(option, value, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), f"prctl({option}) failed")


def enter_namespaces(network: str) -> list[str]:
    """Unshare what the kernel allows; the names of the namespaces entered."""
    entered: list[str] = []
    if os.geteuid() != 0:
        if not _unshare(CLONE_NEWUSER):
            return entered  # an unprivileged process gets no other namespace without one
        entered.append("user")
    if network in ("auto", "netns") and _unshare(CLONE_NEWNET):
        entered.append("net")
    if _unshare(CLONE_NEWPID):
        entered.append("pid")
    return entered


def program_argv(spec: Status, audit: bool) -> list[str]:
    flags = [spec["python"], "-I", "-u"]  # -I: ignore PYTHON* variables, user site and the cwd
    if audit:
        return [*flags, "-c", AUDIT_BOOTSTRAP, spec["script"]]
    return [*flags, spec["script"]]


def apply_limits(spec: Status) -> None:
    cpu = int(spec["cpu_seconds"])
    limits = {
        resource.RLIMIT_CPU: (cpu, cpu + 1),  # SIGXCPU at the soft limit, SIGKILL a second later
        resource.RLIMIT_AS: (spec["memory_bytes"],) * 2,
        resource.RLIMIT_NPROC: (spec["max_processes"],) * 2,
        resource.RLIMIT_FSIZE: (spec["file_bytes"],) * 2,
        resource.RLIMIT_NOFILE: (spec["open_files"],) * 2,
        resource.RLIMIT_CORE: (0, 0),
    }
    for which, value in limits.items():
        resource.setrlimit(which, value)


def drop_privileges(spec: Status) -> None:
    uid, gid = spec["uid"], spec["gid"]
    if uid is None:
        return
    os.setgroups([])
    os.setgid(gid)
    os.setuid(uid)
    if os.getuid() != uid or os.geteuid() != uid:
        raise PermissionError("could not drop privileges")


def exec_program(spec: Status, argv: list[str], error_fd: int, new_session: bool) -> None:
    """In the forked program process: limit, drop privileges, exec. Never returns."""
    try:
        if new_session:
            os.setsid()
        apply_limits(spec)
        _prctl(PR_SET_NO_NEW_PRIVS, 1)  # setuid binaries cannot give privileges back
        drop_privileges(spec)
        _prctl(PR_SET_PDEATHSIG, signal.SIGKILL)  # after the uid change, which clears it
        os.chdir(spec["workdir"])
        os.umask(0o077)
        os.execve(argv[0], argv, spec["env"])
    except BaseException as exc:  # noqa: BLE001 - reported to the caller, never raised here
        os.write(error_fd, f"{type(exc).__name__}: {exc}".encode())
    os._exit(127)


def spawn_program(spec: Status, argv: list[str], new_session: bool) -> tuple[int, int]:
    """Fork the program; its pid and the read end of its set-up error pipe (EOF at exec)."""
    error_r, error_w = os.pipe()  # close-on-exec: a successful exec closes the write end
    pid = os.fork()
    if pid == 0:
        os.close(error_r)
        exec_program(spec, argv, error_w, new_session)
    os.close(error_w)
    return pid, error_r


def read_all(fd: int) -> bytes:
    chunks = []
    while chunk := os.read(fd, 65536):
        chunks.append(chunk)
    os.close(fd)
    return b"".join(chunks)


def describe(wait_status: int, setup_error: bytes) -> Status:
    if setup_error:
        return {"outcome": "error", "error": "sandbox set-up failed: " + setup_error.decode(errors="replace")}
    if os.WIFSIGNALED(wait_status):
        return {"outcome": "signaled", "signal": os.WTERMSIG(wait_status)}
    return {"outcome": "exited", "code": os.waitstatus_to_exitcode(wait_status)}


def wait_until(pid: int, deadline: float) -> int | None:
    """The wait status of `pid`, or None once the deadline has passed."""
    while True:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return status
        if time.monotonic() >= deadline:
            return None
        time.sleep(0.005)


def init_process(spec: Status, argv: list[str], report_fd: int) -> None:
    """PID 1 of the new PID namespace: run the program, reap everything, report, exit."""
    _prctl(PR_SET_PDEATHSIG, signal.SIGKILL)  # the launcher gone means the namespace goes
    pid, error_r = spawn_program(spec, argv, new_session=False)
    while True:
        done, wait_status = os.wait()  # orphans of the program are re-parented to us
        if done == pid:
            break
    os.write(report_fd, json.dumps(describe(wait_status, read_all(error_r))).encode())
    os._exit(0)  # the kernel now kills every process left in the namespace


def run_in_pid_namespace(spec: Status, argv: list[str], deadline: float) -> Status:
    report_r, report_w = os.pipe()
    init = os.fork()
    if init == 0:
        os.close(report_r)
        try:
            init_process(spec, argv, report_w)
        finally:
            os._exit(1)
    os.close(report_w)
    if wait_until(init, deadline) is None:
        os.kill(init, signal.SIGKILL)  # tears the whole namespace down
        os.waitpid(init, 0)
        os.close(report_r)
        return {"outcome": "timeout"}
    report = read_all(report_r)
    return json.loads(report) if report else {"outcome": "error", "error": "the sandbox's init process failed"}


def run_in_session(spec: Status, argv: list[str], deadline: float) -> Status:
    _prctl(PR_SET_CHILD_SUBREAPER, 1)  # orphans come back to us to be reaped, not to PID 1
    pid, error_r = spawn_program(spec, argv, new_session=True)
    wait_status = wait_until(pid, deadline)
    try:
        os.killpg(pid, signal.SIGKILL)  # whatever the program left behind in its group
    except (ProcessLookupError, PermissionError):
        pass
    if wait_status is None:
        os.waitpid(pid, 0)
        os.close(error_r)
        status: Status = {"outcome": "timeout"}
    else:
        status = describe(wait_status, read_all(error_r))
    reap_orphans()
    return status


def reap_orphans() -> None:
    while True:
        try:
            done, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if not done:
            return


def launch(spec: Status) -> Status:
    deadline = time.monotonic() + float(spec["wall_seconds"])
    namespaces = enter_namespaces(spec["network"])
    if spec["network"] == "netns" and "net" not in namespaces:
        return {"outcome": "error", "error": "network=netns, but the kernel refused a network namespace"}
    audit = spec["network"] == "audit-hook" or (spec["network"] == "auto" and "net" not in namespaces)
    argv = program_argv(spec, audit)
    run = run_in_pid_namespace if "pid" in namespaces else run_in_session
    status = run(spec, argv, deadline)
    network = "netns" if "net" in namespaces else "audit-hook" if audit else "allowed"
    return {**status, "namespaces": namespaces, "network": network}


def main() -> None:
    spec = json.loads(sys.argv[1])
    status_fd = int(spec["status_fd"])
    os.set_inheritable(status_fd, False)  # the program must not be able to forge the status
    try:
        status = launch(spec)
    except Exception as exc:  # noqa: BLE001 - the caller turns this into a SandboxError
        status = {"outcome": "error", "error": f"sandbox launcher: {type(exc).__name__}: {exc}"}
    os.write(status_fd, json.dumps(status).encode())


if __name__ == "__main__":
    main()

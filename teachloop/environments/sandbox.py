"""Run untrusted Python (a program plus its tests) in an isolated subprocess.

`run_python(program, tests, limits) -> SandboxResult`. Every run gets:

- a wall-clock limit (enforced from outside) and a CPU-time limit (RLIMIT_CPU);
- a memory cap (RLIMIT_AS), a process cap (RLIMIT_NPROC, against fork bombs), a file-size
  cap (RLIMIT_FSIZE: every file it writes, the captured stdout/stderr included, so
  output cannot fill memory or disk), few open files and no core dumps;
- a fresh unprivileged identity when the caller is root (root ignores RLIMIT_NPROC and
  every file permission): a random uid/gid far above the login range (1,000,000 to
  1,999,999; 65534/nobody where the user namespace maps no such id), no supplementary
  groups and no-new-privileges, so setuid programs give nothing back. It can write
  only to its own work directory (and the world-writable temp dirs, which are swept for
  its files afterwards);
- a temporary work directory owned by that identity (also $HOME and $TMPDIR), removed
  afterwards;
- no network: a new network namespace (no interface but a downed loopback, so even
  127.0.0.1 is unreachable). Where the kernel refuses one, a Python audit hook that
  refuses sockets, subprocesses and ctypes, which is best effort only (`network` below);
- a new PID namespace: when the program ends or times out, every process it started is
  killed with it (setsid() does not escape it); without one, its process group is killed;
- a minimal environment (PATH, HOME, TMPDIR, LANG; nothing inherited, so no secrets),
  stdin from /dev/null, and `python -I` (no PYTHON* variables, user site or cwd on the path).

The privileged set-up happens in `_sandbox_launcher.py`, a separate single-threaded
process, so no code runs between fork and exec of this (possibly multi-threaded) process.
`isolation()` says which of these the machine allows (`python -m
teachloop.environments.sandbox` prints it).

Fallbacks and limits, by design:
- Not root: the namespaces come from an unprivileged user namespace where the kernel
  allows one; the program keeps the caller's uid, so it can write wherever the caller
  can, and RLIMIT_NPROC counts all of the caller's processes and threads.
- No PID namespace: the program runs in its own session; its process group is killed at
  the end (a child that calls setsid() could survive).
- No network namespace: `network="auto"` falls back to the audit hook; `"netns"` refuses
  to run instead.
- The interpreter must be executable by the sandbox user: one under a private home (e.g.
  /root/.pyenv) is not, so the first of this interpreter, /usr/bin/python3 and
  /usr/local/bin/python3 that runs is used (or `SandboxLimits.python`).
- The filesystem is not hidden: the program can read whatever is world-readable.
"""

from __future__ import annotations

import functools
import json
import os
import random
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from teachloop.errors import TeachloopError

LAUNCHER = Path(__file__).with_name("_sandbox_launcher.py")
NOBODY = 65534
FRESH_IDS = (1_000_000, 2_000_000)
SHARED_TEMP_DIRS = ("/tmp", "/var/tmp", "/dev/shm")
SAFE_PATH = "/usr/local/bin:/usr/bin:/bin"
GRACE_SECONDS = 5.0  # the launcher enforces the wall limit; this only catches a stuck launcher
PYTHON_CANDIDATES = ("/usr/bin/python3", "/usr/local/bin/python3")

Reason = Literal["ok", "failed", "timeout", "memory", "output_limit", "crashed"]
Network = Literal["auto", "netns", "audit-hook", "allow"]


class SandboxError(TeachloopError):
    """The sandbox itself could not run (not a verdict on the program)."""


class SandboxLimits(BaseModel):
    """What one sandboxed run may use."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    wall_seconds: float = Field(default=5.0, gt=0, le=600, description="wall-clock limit")
    cpu_seconds: int = Field(default=5, ge=1, le=600, description="CPU-time limit (RLIMIT_CPU)")
    memory_mb: int = Field(default=512, ge=64, description="address-space limit (RLIMIT_AS)")
    max_processes: int = Field(default=32, ge=1, description="processes and threads of the sandbox user (RLIMIT_NPROC)")
    max_file_kb: int = Field(default=1024, ge=1, description="largest file it may write, stdout/stderr included")
    max_open_files: int = Field(default=64, ge=16, description="open file descriptors (RLIMIT_NOFILE)")
    output_chars: int = Field(default=4000, ge=0, description="characters of stdout/stderr kept (the tail)")
    network: Network = Field(
        default="auto",
        description="auto: network namespace, else the audit hook; netns: namespace or fail; "
        "audit-hook: the Python audit hook only; allow: no network isolation",
    )
    python: str | None = Field(
        default=None, description="interpreter to run; default: the first the sandbox user can execute"
    )


class SandboxIsolation(BaseModel):
    """The isolation one run actually got."""

    namespaces: list[str] = Field(description="kernel namespaces entered: user, net, pid")
    network: Literal["netns", "audit-hook", "allowed"]
    uid: int | None = Field(description="the unprivileged uid it ran as; None: the caller's own (not root)")
    python: str
    session: int | None = Field(default=None, description="session id of the processes it started")


class SandboxResult(BaseModel):
    passed: bool
    reason: Reason
    returncode: int | None = Field(description="exit code, -signal when killed by one, None on a wall-clock timeout")
    stdout: str
    stderr: str
    seconds: float
    isolation: SandboxIsolation


class _LaunchSpec(BaseModel):
    """What the launcher reads (JSON on its command line)."""

    python: str
    script: str
    workdir: str
    uid: int | None
    gid: int | None
    network: Network
    wall_seconds: float
    cpu_seconds: int
    memory_bytes: int
    max_processes: int
    file_bytes: int
    open_files: int
    env: dict[str, str]
    status_fd: int


class _LaunchStatus(BaseModel):
    """What the launcher reports back."""

    outcome: Literal["exited", "signaled", "timeout", "error"]
    code: int | None = None
    signal: int | None = None
    error: str = ""
    namespaces: list[str] = Field(default_factory=list)
    network: Literal["netns", "audit-hook", "allowed"] = "allowed"


# -- identities and directories ------------------------------------------------------------
def _id_mapped(value: int, map_file: str) -> bool:
    """Does the current user namespace map this uid/gid (so that setuid/setgid accept it)?"""
    try:
        rows = Path(map_file).read_text().split("\n")
    except OSError:
        return False
    for row in rows:
        fields = row.split()
        if len(fields) == 3 and int(fields[0]) <= value < int(fields[0]) + int(fields[2]):
            return True
    return False


def sandbox_uid() -> int | None:
    """A fresh uid (= gid) for one run when we are root; None when we cannot switch user."""
    if os.geteuid() != 0:
        return None
    uid = random.SystemRandom().randrange(*FRESH_IDS)
    if _id_mapped(uid, "/proc/self/uid_map") and _id_mapped(uid, "/proc/self/gid_map"):
        return uid
    return NOBODY


@contextmanager
def _workdir(uid: int | None) -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="teachloop-sandbox-"))
    try:
        if uid is not None:
            os.chown(path, uid, uid)
        path.chmod(0o700)
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def _sweep_shared_temp(uid: int | None) -> None:
    """Remove what a fresh sandbox uid left in the world-writable temp dirs.

    Only a fresh uid owns nothing else, so only then is everything it owns ours to delete.
    """
    if uid is None or uid == NOBODY:
        return
    for folder in SHARED_TEMP_DIRS:
        try:
            entries = list(os.scandir(folder))
        except OSError:
            continue
        for entry in entries:
            try:
                info = entry.stat(follow_symlinks=False)
                if info.st_uid != uid:
                    continue
                if stat.S_ISDIR(info.st_mode):
                    shutil.rmtree(entry.path, ignore_errors=True)
                else:
                    os.unlink(entry.path)
            except OSError:
                continue


def _size(handle: IO[bytes]) -> int:
    return os.fstat(handle.fileno()).st_size


def _tail(handle: IO[bytes], chars: int) -> str:
    handle.seek(0, os.SEEK_END)
    size = handle.tell()
    handle.seek(max(0, size - 4 * chars - 4))
    text = handle.read().decode("utf-8", errors="replace")
    return text[-chars:] if chars else ""


# -- running ----------------------------------------------------------------------------
def _launch(spec: _LaunchSpec, status_w: int, stdout: IO[bytes], stderr: IO[bytes]) -> int:
    """Run the launcher to completion (killing its whole group if it ever gets stuck);
    returns its pid, which is also the session id of everything the program started."""
    try:
        proc = subprocess.Popen(
            [sys.executable, "-I", "-S", str(LAUNCHER), spec.model_dump_json()],
            stdin=subprocess.DEVNULL,
            stdout=stdout,
            stderr=stderr,
            pass_fds=(status_w,),
            start_new_session=True,
            env={"PATH": SAFE_PATH},
        )
    finally:
        os.close(status_w)  # the launcher holds its own copy
    try:
        proc.wait(timeout=spec.wall_seconds + GRACE_SECONDS)
    except subprocess.TimeoutExpired:  # the launcher is stuck
        _kill_group(proc)
    except BaseException:  # we are interrupted: nothing may outlive us
        _kill_group(proc)
        raise
    return proc.pid


def _kill_group(proc: subprocess.Popen[bytes]) -> None:
    os.killpg(proc.pid, signal.SIGKILL)  # the launcher and, through it, the PID namespace
    proc.wait()


def _read_status(status_r: int) -> _LaunchStatus | None:
    os.set_blocking(status_r, False)
    chunks = []
    try:
        while chunk := os.read(status_r, 65536):
            chunks.append(chunk)
    except BlockingIOError:
        pass
    finally:
        os.close(status_r)
    return _LaunchStatus.model_validate(json.loads(b"".join(chunks))) if chunks else None


def _verdict(status: _LaunchStatus, stderr: str, output_full: bool) -> tuple[Reason, int | None]:
    if status.outcome == "timeout":
        return "timeout", None
    if status.outcome == "signaled":
        sig = status.signal or 0
        reasons: dict[int, Reason] = {signal.SIGXCPU: "timeout", signal.SIGXFSZ: "output_limit"}
        return reasons.get(sig, "crashed"), -sig
    code = status.code if status.code is not None else -1
    if code == 0:
        return "ok", 0
    if output_full:  # Python ignores SIGXFSZ: the write fails with EFBIG instead
        return "output_limit", code
    if "MemoryError" in stderr:
        return "memory", code
    return "failed", code


def _run(source: str, python: str, limits: SandboxLimits) -> SandboxResult:
    uid = sandbox_uid()
    started = time.monotonic()
    try:
        with _workdir(uid) as workdir, tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
            (workdir / "main.py").write_text(source, encoding="utf-8")
            status_r, status_w = os.pipe()
            spec = _LaunchSpec(
                python=python,
                script="main.py",
                workdir=str(workdir),
                uid=uid,
                gid=uid,
                network=limits.network,
                wall_seconds=limits.wall_seconds,
                cpu_seconds=limits.cpu_seconds,
                memory_bytes=limits.memory_mb * 2**20,
                max_processes=limits.max_processes,
                file_bytes=limits.max_file_kb * 1024,
                open_files=limits.max_open_files,
                env={"PATH": SAFE_PATH, "HOME": str(workdir), "TMPDIR": str(workdir), "LANG": "C.UTF-8"},
                status_fd=status_w,
            )
            session = None
            try:
                session = _launch(spec, status_w, out, err)
            finally:
                status = _read_status(status_r)
            seconds = time.monotonic() - started
            stdout, stderr = _tail(out, limits.output_chars), _tail(err, limits.output_chars)
            output_full = max(_size(out), _size(err)) >= spec.file_bytes
    finally:
        _sweep_shared_temp(uid)
    return _result(status, stdout, stderr, output_full, seconds, uid, python, session)


def _result(
    status: _LaunchStatus | None,
    stdout: str,
    stderr: str,
    output_full: bool,
    seconds: float,
    uid: int | None,
    python: str,
    session: int | None = None,
) -> SandboxResult:
    if status is None:  # the launcher was killed after the grace period: it hung
        status = _LaunchStatus(outcome="timeout")
    if status.outcome == "error":
        raise SandboxError(f"{status.error} {stderr[-500:]}".strip())
    reason, returncode = _verdict(status, stderr, output_full)
    isolation = SandboxIsolation(
        namespaces=status.namespaces, network=status.network, uid=uid, python=python, session=session
    )
    return SandboxResult(
        passed=reason == "ok",
        reason=reason,
        returncode=returncode,
        stdout=stdout,
        stderr=stderr,
        seconds=round(seconds, 3),
        isolation=isolation,
    )


def compose(program: str, tests: str = "") -> str:
    """The source that runs: the program, then the tests."""
    if not tests:
        return program
    return program.rstrip("\n") + "\n\n\n" + tests.strip("\n") + "\n"


@functools.cache
def default_python() -> str:
    """The first interpreter the sandbox user can execute (this one, unless it lives
    somewhere private such as /root/.pyenv, then the system's python3)."""
    candidates = dict.fromkeys([sys.executable, *PYTHON_CANDIDATES, shutil.which("python3", path=SAFE_PATH) or ""])
    problems = []
    for python in filter(None, candidates):
        try:
            result = _run("import sys\n", python, SandboxLimits(wall_seconds=30, cpu_seconds=10))
        except SandboxError as exc:
            problems.append(f"{python}: {exc}")
            continue
        if result.passed:
            return python
        problems.append(f"{python}: {result.reason} {result.stderr[-200:]}")
    raise SandboxError(
        "no Python interpreter the unprivileged sandbox user can run; set SandboxLimits.python. Tried: "
        + "; ".join(problems)
    )


def run_python(program: str, tests: str = "", limits: SandboxLimits | None = None) -> SandboxResult:
    """Run `program` followed by `tests` in the sandbox; passed means exit status 0."""
    limits = limits or SandboxLimits()
    return _run(compose(program, tests), limits.python or default_python(), limits)


def isolation(limits: SandboxLimits | None = None) -> SandboxIsolation:
    """What isolation sandboxed runs get on this machine (runs a trivial program once)."""
    return run_python("pass\n", limits=limits).isolation


def _main(argv: list[str]) -> None:
    """`python -m teachloop.environments.sandbox [FILE]`: the isolation here, or run FILE."""
    if argv:
        result: Any = run_python(Path(argv[0]).read_text())
    else:
        result = isolation()
    print(result.model_dump_json(indent=2))


if __name__ == "__main__":
    _main(sys.argv[1:])

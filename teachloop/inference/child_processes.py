"""Engine processes that end with teachloop, however it ends.

In-process vLLM starts its engine (EngineCore, which starts a worker) as separate
processes. When teachloop dies without running its exit handlers (SIGKILL, the
out-of-memory killer, a SIGTERM) nothing stops that engine: it idled on, busy, holding the
model and its KV cache. vLLM spawns them on a CPU (a fresh interpreter, so no at-fork hook
can arm them), so a watchdog does it: a small process started with a pipe only teachloop
writes to; the processes an engine start leaves behind are written into it, and when the
pipe closes (teachloop ended, whichever way) the watchdog sends SIGTERM to those still
alive, SIGKILL after a grace period, and exits.

    python -m teachloop.inference.child_processes   # the watchdog itself (stdlib only)
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

GRACE_SECONDS = 10.0  # vLLM's engine stops its worker on SIGTERM; what is left then is killed


def descendants(pid: int) -> list[int]:
    """Every process below `pid`, from /proc ([] where /proc cannot tell)."""
    found, todo = [], [pid]
    while todo:
        parent = todo.pop()
        for task in Path(f"/proc/{parent}/task").glob("*"):
            try:
                children = [int(c) for c in (task / "children").read_text().split()]
            except (OSError, ValueError):
                continue
            found += children
            todo += children
    return found


def start_time(pid: int) -> str | None:
    """The process's start time in clock ticks (so a reused pid is not mistaken for it);
    None when it is gone or a zombie."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return None if fields[0] == "Z" else fields[19]


class _Watchdog:
    def __init__(self) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", __name__],
            stdin=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            close_fds=True,
            start_new_session=True,  # a kill of teachloop's process group leaves it to clean up
        )

    def watch(self, pids: set[int]) -> None:
        lines = "".join(f"{pid} {started}\n" for pid in sorted(pids) if (started := start_time(pid)) is not None)
        if lines and self.proc.stdin is not None:
            self.proc.stdin.write(lines.encode())
            self.proc.stdin.flush()


_watchdog: _Watchdog | None = None


@contextlib.contextmanager
def die_with_this_process() -> Iterator[None]:
    """The processes started in the block end when this process does (see the module)."""
    global _watchdog
    if not Path("/proc/self/task").is_dir():  # no /proc: nothing to find them by
        yield
        return
    if _watchdog is None or _watchdog.proc.poll() is not None:
        _watchdog = _Watchdog()
    before = set(descendants(os.getpid()))
    try:
        yield
    finally:
        _watchdog.watch(set(descendants(os.getpid())) - before - {_watchdog.proc.pid})


def _stop(watched: dict[int, str]) -> None:
    alive = {pid for pid, started in watched.items() if start_time(pid) == started}
    for sig in (signal.SIGTERM, signal.SIGKILL):
        for pid in alive:
            with contextlib.suppress(OSError):
                os.kill(pid, sig)
        deadline = time.monotonic() + GRACE_SECONDS
        while alive and time.monotonic() < deadline:
            time.sleep(0.2)
            alive = {pid for pid in alive if start_time(pid) == watched[pid]}
        if not alive:
            return


def _watch() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # a terminal's Ctrl-C is teachloop's to handle
    watched: dict[int, str] = {}
    for line in sys.stdin.buffer:  # until teachloop's end closes the pipe
        pid, started = line.split()
        watched[int(pid)] = started.decode()
    _stop(watched)


if __name__ == "__main__":
    _watch()

"""Stopping a run on purpose (ground floor): SIGTERM, and SIGINT (Ctrl-C).

`teachloop run` and `resume` hold `stop_signals()`. A stop signal that comes while teacher
requests are in flight (the teacher client holds `in_flight(...)` around each batch) does
not end the process at once: no further request is sent, the replies that land within
GRACE_SECONDS are written to the run's cache like any other (they are paid for), and then
the batch ends with `Stopped`. Anywhere else (training, evaluation) the signal raises
`Stopped` at once. Either way the unfinished phase's temporary folder is removed on the way
out, `teachloop resume` redoes that phase, and the CLI prints one line saying what was
stopped (`Interrupted`, once everything has unwound) and exits with 128 + the signal's
number (143 for SIGTERM, 130 for SIGINT). A second
signal, or requests still in flight after the grace period, stop at once.

Nothing here is armed outside those commands (a library user, a bench worker): there
`requested()` stays None and `in_flight` only counts.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

GRACE_SECONDS = 5.0  # how long replies in flight may take to land once a stop signal came
SIGNALS = (signal.SIGTERM, signal.SIGINT)


class Stopped(KeyboardInterrupt):
    """A stop signal ended the run. A KeyboardInterrupt, so every `finally` and every
    cleanup written for Ctrl-C (a phase's temporary folder, a vLLM server) runs for it too.
    The teacher client adds what it did with its requests (`details`), the loop where the
    run was (`where`) and which run (`run`)."""

    def __init__(self, signum: int, details: list[str] | None = None) -> None:
        super().__init__(signum)
        self.signum = signum
        self.details = list(details or [])
        self.where: str | None = None
        self.run: Path | None = None

    @property
    def exit_code(self) -> int:
        return 128 + self.signum

    def message(self) -> str:
        name = signal.Signals(self.signum).name
        where = f" during {self.where}" if self.where else ""
        said = f": {', '.join(self.details)}" if self.details else ""
        then = f"; `teachloop resume {self.run}` continues from there" if self.run is not None else ""
        if then and self.details:  # teacher requests were stopped
            then += " (replies in its cache are not paid again)"
        return f"stopped by {name}{where}{said}{then} (exit code {self.exit_code})"


class Interrupted(Exception):
    """What `stop_signals` turns a Stopped into once everything below has unwound: an
    ordinary exception, for the CLI to print and exit with (typer would turn a
    KeyboardInterrupt into exit code 130, whatever the signal, and say nothing)."""

    def __init__(self, stopped: Stopped) -> None:
        super().__init__(stopped.message())
        self.exit_code = stopped.exit_code


_lock = threading.Lock()
_requested: int | None = None  # the signal that asked for a stop, while stop_signals() is held
_zones: list[Callable[[bool], list[str]]] = []  # each batch in flight: what it did, given whether time ran out
_armed = False


def requested() -> int | None:
    """The stop signal that came (None while none did): start nothing new."""
    return _requested


@contextmanager
def in_flight(describe: Callable[[bool], list[str]]) -> Iterator[None]:
    """Requests are in flight for the body: a stop signal now lets them land (for at most
    GRACE_SECONDS) instead of raising at once. `describe(timed_out)` says what the batch
    did with its requests, for the Stopped raised when the grace period ends first."""
    with _lock:
        _zones.append(describe)
    try:
        yield
    finally:
        with _lock:
            _zones.remove(describe)
            if not _zones and _armed:
                signal.setitimer(signal.ITIMER_REAL, 0)  # the batch ended in time: its caller raises


def _on_stop(signum: int, frame: object) -> None:
    global _requested
    if _requested is None and _zones:
        _requested = signum
        signal.setitimer(signal.ITIMER_REAL, GRACE_SECONDS)
        return
    raise Stopped(_requested or signum, _zones[-1](True) if _zones else [])


def _on_grace_over(signum: int, frame: object) -> None:
    if _requested is not None and _zones:  # otherwise the batch just ended: its caller raises
        raise Stopped(_requested, _zones[-1](True))


@contextmanager
def stop_signals() -> Iterator[None]:
    """SIGTERM and SIGINT stop the body gracefully (see the module's docstring); the handlers
    that were there before come back afterwards. Only in the main thread (signals go there)."""
    global _armed, _requested
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {sig: signal.signal(sig, _on_stop) for sig in SIGNALS}
    previous[signal.SIGALRM] = signal.signal(signal.SIGALRM, _on_grace_over)
    # a process started with these signals blocked (a mask is inherited through exec) would
    # never run the handlers: the signal would wait, unseen, until the run ended
    mask = signal.pthread_sigmask(signal.SIG_UNBLOCK, (*SIGNALS, signal.SIGALRM))
    _armed = True
    try:
        yield
    except Stopped as stopped:
        raise Interrupted(stopped) from None
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.pthread_sigmask(signal.SIG_SETMASK, mask)
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        _armed, _requested = False, None

"""Where the inference engines' own output goes: during a run, into the run's
`logs/engines.log`, so that the terminal shows only teachloop's lines (`-v` keeps the old
behaviour: everything on the terminal).

vLLM, Ray and Triton write in three ways, and each has its route here:

- the Python loggers of this process (`vllm`, `ray`, `triton`): `route` gives them a file
  handler, and every `engine_output` block ends by giving it back to them (vLLM installs
  its own stream handler each time an engine is built);
- the engine's own processes (vLLM's EngineCore and its workers): they inherit file
  descriptors 1 and 2, which point at the log file for the duration of an
  `engine_output` block (an engine starting, or stopping), so whatever they print for
  their whole life (logs, C++ warnings, Triton notices, weight-loading bars, tracebacks
  when they shut down) lands in the log;
- this process's own writes to fds 1 and 2 while an engine starts (notices printed at
  import, C++ warnings): the same redirection. teachloop prints nothing inside such a
  block; its own errors are raised and printed after the block ends.

The log is one file per run; the block notes where it began, so that a failed start
can name the cause it logged (`EngineOutput.last_error`). Without `route` (library use,
no run folder) nothing is redirected.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager, redirect_stderr, redirect_stdout
from datetime import datetime
from pathlib import Path
from typing import TextIO

ENGINE_LOG = Path("logs") / "engines.log"  # in the run folder
VERBOSE_ENV = "TEACHLOOP_ENGINE_LOGS"  # "terminal" (set by -v): engines write where teachloop does
ENGINE_LOGGERS = ("vllm", "ray", "triton")
FORMAT = "%(asctime)s %(name)s %(levelname)s %(message)s"
ERROR_WORDS = ("Error", "error:", "Exception", "Killed", "out of memory")


def set_verbose(verbose: bool = True) -> None:
    """`-v`: engines keep writing to the terminal (also in the worker processes of a bench,
    which inherit the environment)."""
    if verbose:
        os.environ[VERBOSE_ENV] = "terminal"
    else:
        os.environ.pop(VERBOSE_ENV, None)


def verbose() -> bool:
    return os.environ.get(VERBOSE_ENV, "").lower() == "terminal"


class _LogFile(logging.FileHandler):
    """A file handler that makes the log's folder when it first writes: the route outlives the
    run that set it (an in-process run, then a library that logs at import), and a run's
    `logs/` folder exists only once something was written there."""

    def _open(self):  # type: ignore[no-untyped-def]
        Path(self.baseFilename).parent.mkdir(parents=True, exist_ok=True)
        return super()._open()


class _Route:
    """The process's engine log: its path, and the file handler given to each engine logger."""

    def __init__(self) -> None:
        self.path: Path | None = None
        self.handlers: dict[str, logging.Handler] = {}
        self.depth = 0  # nested engine_output blocks
        self.streams: dict[Path, TextIO] = {}  # never closed: what an engine keeps of sys.stdout stays usable

    def stream(self, path: Path) -> TextIO:
        """The log as a text stream, for what this process writes to sys.stdout and sys.stderr
        while an engine starts (where they are not fds 1 and 2: under a capture)."""
        if path not in self.streams:
            path.parent.mkdir(parents=True, exist_ok=True)
            self.streams[path] = open(path, "a", encoding="utf-8", buffering=1)  # noqa: SIM115
        return self.streams[path]

    def set(self, path: Path | None) -> None:
        formats = {name: handler.formatter for name, handler in self.handlers.items()}  # vLLM's, once it had one
        for handler in self.handlers.values():
            logger = logging.getLogger(handler.name or "")
            logger.removeHandler(handler)
            logger.propagate = True
            handler.close()
        self.path = Path(path) if path is not None else None
        self.handlers = {}
        if self.path is not None:
            for name in ENGINE_LOGGERS:  # each opens the file at its first line, not before
                handler = _LogFile(self.path, mode="a", encoding="utf-8", delay=True)
                handler.set_name(name)
                handler.setFormatter(formats.get(name) or logging.Formatter(FORMAT))
                self.handlers[name] = handler
        self.claim_loggers()

    def claim_loggers(self) -> None:
        """Point the engines' loggers at the log file, again after an engine was built (vLLM
        then replaces its logger's handler with its own). A logger's own format is kept."""
        for name, mine in self.handlers.items():
            logger = logging.getLogger(name)
            for handler in list(logger.handlers):
                if handler is not mine:
                    if handler.formatter is not None:
                        mine.setFormatter(handler.formatter)
                    logger.removeHandler(handler)
            if mine not in logger.handlers:
                logger.addHandler(mine)
            logger.propagate = False
        for child in _terminal_children(self.handlers):  # e.g. ray.data's console handler
            for handler in list(child.handlers):
                if _to_terminal(handler):
                    child.removeHandler(handler)
            child.propagate = True  # to the file, through its parent


def _to_terminal(handler: logging.Handler) -> bool:
    return isinstance(handler, logging.StreamHandler) and not isinstance(handler, logging.FileHandler)


def _terminal_children(names: dict[str, logging.Handler]) -> list[logging.Logger]:
    """The loggers below the engines' ones that write to a stream of their own."""
    found = []
    for name, logger in list(logging.root.manager.loggerDict.items()):
        below = isinstance(logger, logging.Logger) and any(name.startswith(f"{top}.") for top in names)
        if below and any(_to_terminal(h) for h in logger.handlers):
            found.append(logger)
    return found


_route = _Route()


def route(path: Path | None) -> Path | None:
    """Send the engines' output to `path` from now on (None, or `-v`: as without teachloop).
    Nothing is written until an engine writes. Returns the path in use."""
    _route.set(None if verbose() else path)
    return _route.path


def move(path: Path) -> Path | None:
    """Move the log to `path` (on the same file system: engines already running keep
    writing to it) and go on logging there."""
    if _route.path is None:
        return None
    old = _route.path
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    for handler in _route.handlers.values():
        handler.close()
    if old.exists():
        os.replace(old, path)
    _route.set(path)
    return _route.path


def current() -> Path | None:
    """The engine log in use (None: engines write to the terminal)."""
    return _route.path


def written() -> Path | None:
    """The engine log, if an engine has written to it."""
    path = _route.path
    return path if path is not None and path.exists() and path.stat().st_size > 0 else None


class EngineOutput:
    """What an `engine_output` block captured: the log and where the block began in it."""

    def __init__(self, path: Path | None, start: int = 0) -> None:
        self.path, self.start = path, start

    def last_error(self) -> str | None:
        """The last line the engines logged in this block that reads like an error (vLLM's
        tracebacks end with it), None without a log."""
        return last_error(self.path, self.start)

    def where(self) -> str:
        """', engine log: PATH' or '' without one."""
        return f"; engine log: {self.path}" if self.path is not None else ""


def last_error(path: Path | None, start: int = 0) -> str | None:
    if path is None:
        return None
    try:
        with open(path, "rb") as log:
            log.seek(start)
            lines = log.read().decode("utf-8", errors="replace").splitlines()
    except OSError:
        return None
    errors = [line.strip() for line in lines if any(word in line for word in ERROR_WORDS)]
    errors = [line for line in errors if not line.startswith(("Traceback", "File "))]
    return errors[-1][:300] if errors else None


@contextmanager
def engine_output(what: str = "engine") -> Iterator[EngineOutput]:
    """Around an engine's start (or stop): everything written to fds 1 and 2 by this process
    and by the processes it starts goes to the engine log; the engines' loggers too.
    Without a log: nothing changes."""
    path = _route.path
    if path is None or _route.depth:
        yield EngineOutput(path, size(path))
        return
    _flush()
    path.parent.mkdir(parents=True, exist_ok=True)
    new = not path.exists()
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    stamp = datetime.now().astimezone().isoformat(timespec="seconds")
    os.write(fd, f"== {stamp} {what}\n".encode())
    start = os.fstat(fd).st_size
    saved = os.dup(1), os.dup(2)
    _route.depth += 1
    try:
        os.dup2(fd, 1)
        os.dup2(fd, 2)
        _route.claim_loggers()
        stream = _route.stream(path)
        with redirect_stdout(stream), redirect_stderr(stream):
            yield EngineOutput(path, start)
    finally:
        _flush()
        _route.stream(path).flush()
        os.dup2(saved[0], 1)
        os.dup2(saved[1], 2)
        for each in (*saved, fd):
            os.close(each)
        _route.depth -= 1
        _route.claim_loggers()
        if new and size(path) == start:  # nothing but its header (e.g. refused before vLLM loaded)
            _route.streams.pop(path).close()
            path.unlink(missing_ok=True)


def size(path: Path | None) -> int:
    """The log's length now (0 without one): where what an engine writes next begins."""
    try:
        return path.stat().st_size if path is not None else 0
    except OSError:
        return 0


def _flush() -> None:
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (AttributeError, ValueError, OSError):
            pass

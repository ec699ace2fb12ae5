"""Each bench cell's own log, `<bench dir>/logs/<run>.log`: the run's phase lines, and
everything it and its libraries (TRL, vLLM, Ray Data) write to stdout and stderr, with the
traceback when it fails. Every attempt appends under a dated header, so a resumed cell's
log tells its whole story; a worker killed mid-run leaves what it had written.

The capture is at the file-descriptor level, so output from C extensions and child
processes lands in the log too; the bench's terminal keeps one line per finished cell.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager, redirect_stderr, redirect_stdout
from datetime import datetime
from pathlib import Path
from typing import TextIO

LOG_DIR = "logs"  # in the bench folder


@contextmanager
def captured_output(path: Path, header: str) -> Iterator[TextIO]:
    """Send this process's stdout and stderr (fds 1 and 2) to `path` until the block ends;
    yields the open log for writers that take a file (a rich Console)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a", encoding="utf-8", buffering=1) as log:
        log.write(f"== {datetime.now().astimezone().isoformat(timespec='seconds')} {header}\n")
        log.flush()
        _flush_std()
        saved = os.dup(1), os.dup(2)
        try:
            os.dup2(log.fileno(), 1)
            os.dup2(log.fileno(), 2)
            with redirect_stdout(log), redirect_stderr(log):  # for streams not on fds 1 and 2
                yield log
        finally:
            _flush_std()
            log.flush()
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            os.close(saved[0])
            os.close(saved[1])


def _flush_std() -> None:
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (AttributeError, ValueError, OSError):  # replaced or closed streams
            pass

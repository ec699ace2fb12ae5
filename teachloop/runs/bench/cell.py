"""One bench run (a cell): what it is (`Cell`), how it ended (`RunOutcome`), and taking it to
the end in this process (`execute_run`). Worker processes (execute.py) and Ray tasks
(on_ray.py) both run a cell through `execute_run`, so run folders, the skip/resume rules
and the failure records are the same everywhere. A run's report.md is written from its folder
by the process that runs the bench, once the run finished (execute.py's `finished`)."""

from __future__ import annotations

import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel
from rich.console import Console

from teachloop.runs.bench.cell_log import captured_output
from teachloop.runs.config import RunConfig
from teachloop.runs.loop.store import MARKER

Progress = Callable[[str], None]


# -- running ------------------------------------------------------------------------------
class RunOutcome(BaseModel):
    name: str
    status: Literal["skipped", "finished", "failed"]
    seconds: float = 0.0
    summary: str = ""
    error: str | None = None
    traceback: str | None = None
    log: str | None = None  # the cell's own log (cell_log.py)


class Cell(BaseModel):
    """One run to take to the end: its config (secrets included: never written) and its log."""

    name: str
    config: dict[str, Any]
    log: str | None = None


def execute_run(config_data: dict[str, Any], log_path: str | None = None) -> RunOutcome:
    """Create or resume one run and take it to the end (in-process or in a worker process);
    with `log_path`, everything the run writes goes to that log instead of the terminal."""
    config = RunConfig.model_validate(config_data)
    if log_path is None:
        return _execute(config, console=None)
    resuming = (config.out / str(config.name) / MARKER).exists()
    with captured_output(Path(log_path), "resumed" if resuming else "started") as log:
        outcome = _execute(config, console=Console(file=log, soft_wrap=True, no_color=True, highlight=False))
        if outcome.traceback:
            log.write(outcome.traceback)
        log.write(f"== {outcome.status} in {outcome.seconds:.1f}s {outcome.summary}\n")
    return outcome.model_copy(update={"log": log_path})


def _execute(config: RunConfig, console: Console | None) -> RunOutcome:
    from teachloop.runs.loop.runner import Loop

    run_dir = config.out / str(config.name)
    start = time.perf_counter()
    try:
        if (run_dir / MARKER).exists():
            loop = Loop.resume(run_dir, progress=False, config=config, console=console)
        else:
            loop = Loop.create(config, progress=False, console=console)
        records = loop.run()
    except Exception as exc:  # one broken run must not stop the others
        return RunOutcome(
            name=run_dir.name,
            status="failed",
            seconds=time.perf_counter() - start,
            error=" ".join(f"{type(exc).__name__}: {exc}".split()),
            traceback=traceback.format_exc(),
        )
    summary = f"accuracy {records[0].accuracy:.3f} -> {records[-1].accuracy:.3f}" if records else ""
    return RunOutcome(name=run_dir.name, status="finished", seconds=time.perf_counter() - start, summary=summary)

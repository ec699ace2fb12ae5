"""The `jsonl` tracker: each evaluated iteration's metrics as one JSON line
(`{"step": i, "run": ..., "metrics": {...}}`) in `<directory>/<project>.jsonl`, so the runs of a
bench, which share a project, land in one file that any notebook reads."""

from __future__ import annotations

import json
from pathlib import Path
from typing import IO, Any

from pydantic import BaseModel, ConfigDict, Field

from teachloop.runs.loop.tracking import BaseTracker, TrackedRun


class JsonlOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")

    directory: Path | None = Field(default=None, description="where the file goes (default: the run folder)")
    with_config: bool = Field(default=True, description="write the run's config (secrets redacted) as the first line")


class JsonlTracker(BaseTracker):
    """Appends every iteration's metrics to `<directory>/<project>.jsonl` (option `directory`)."""

    Options = JsonlOptions
    options: JsonlOptions

    def path(self, run: TrackedRun) -> Path:
        return (self.options.directory or run.folder) / f"{run.project}.jsonl"

    def start(self, run: TrackedRun, config: dict[str, Any], resume: bool) -> None:
        path = self.path(run)
        path.parent.mkdir(parents=True, exist_ok=True)
        self._run = run
        self._file: IO[str] = path.open("a")
        if not resume and self.options.with_config:
            self._write({"run": run.name, "key": run.key, "config": config})

    def log(self, metrics: dict[str, float], step: int) -> None:
        self._write({"run": self._run.name, "key": self._run.key, "step": step, "metrics": metrics})

    def finish(self) -> None:
        self._file.close()

    def where(self, run: TrackedRun) -> str:
        return f"file: {self.path(run)}"

    def _write(self, row: dict[str, Any]) -> None:
        self._file.write(json.dumps(row, sort_keys=True) + "\n")
        self._file.flush()

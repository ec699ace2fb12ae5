"""RunStore: the run folder, one atomic artifact per phase, so any kill is resumable.

Layout::

    <run>/run.json                 marker: this folder is a teachloop run
    <run>/config.yaml              the resolved RunConfig
    <run>/skills.json              the skill tree (node-link JSON)
    <run>/iter_<i>/<phase>/        eval, feedback, plan, data, train; each holds done.json
    <run>/metrics.jsonl            one record per evaluated iteration (rewritten from artifacts)
    <run>/report.md, *.png         written at the end of a run and by `teachloop report`

A phase is written into a hidden temporary folder and renamed into place when it is
complete, with its done.json. A phase that stops the run on purpose (RunStopped: data too
poor to train on, a teacher that is down) is renamed into place *without* done.json, so
the user can read what it made (`failed.json` says why) and a resume redoes it.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from teachloop.errors import RunStopped, RunStoreError
from teachloop.io import atomic_write_text, make_temp_dir, read_model, write_json, write_jsonl
from teachloop.runs.config import RunConfig

PHASES = ("eval", "feedback", "plan", "data", "train")
RUN_PHASES = ("discovery",)  # run-level phases, before iteration 0
MARKER = "run.json"
DONE = "done.json"
FAILED = "failed.json"
FORMAT_VERSION = 1


class PhaseRecord(BaseModel):
    """done.json: when a phase finished, how long it took and what it did."""

    iteration: int | None
    phase: str
    seconds: float
    work_seconds: float = 0.0
    finished_at: str
    info: dict[str, Any] = {}


class PhaseWriter:
    """Handed to the code of a running phase: where to write, and what to record."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.work_seconds = 0.0
        self.info: dict[str, Any] = {}

    @contextmanager
    def work(self) -> Iterator[None]:
        """Time the part of the phase that is real work (generation, training, evaluation)."""
        start = time.perf_counter()
        try:
            yield
        finally:
            self.work_seconds += time.perf_counter() - start


class RunStore:
    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    # -- creating and opening ---------------------------------------------------------
    @classmethod
    def create(cls, root: Path, config: RunConfig) -> RunStore:
        root = Path(root)
        if root.exists() and any(root.iterdir()):
            hint = "resume it with `teachloop resume`" if (root / MARKER).exists() else "choose another --name"
            raise RunStoreError(f"run folder {root} already exists and is not empty; {hint}")
        root.mkdir(parents=True, exist_ok=True)
        store = cls(root)
        atomic_write_text(root / "config.yaml", config.to_yaml())
        write_json(
            root / MARKER,
            {"format": FORMAT_VERSION, "created": datetime.now(timezone.utc).isoformat(), "name": root.name},
        )
        return store

    @classmethod
    def open(cls, root: Path) -> RunStore:
        root = Path(root)
        if not root.is_dir():
            raise RunStoreError(f"{root} does not exist or is not a folder")
        if not (root / MARKER).is_file() or not (root / "config.yaml").is_file():
            raise RunStoreError(f"{root} is not a teachloop run folder (no {MARKER} / config.yaml)")
        try:
            marker = json.loads((root / MARKER).read_text())
        except json.JSONDecodeError as exc:
            raise RunStoreError(f"{root / MARKER} is corrupt: {exc}") from exc
        if marker.get("format") != FORMAT_VERSION:
            raise RunStoreError(f"{root} was written by an incompatible teachloop (format {marker.get('format')})")
        return cls(root)

    def config(self) -> RunConfig:
        from teachloop.runs.config import load_config

        return load_config(self.root / "config.yaml")

    def update_config(self, **changes: Any) -> RunConfig:
        """Change settings that do not alter what a finished phase produced (min_yield)."""
        from pydantic import ValidationError

        from teachloop.errors import ConfigError, format_validation_error

        try:
            config = RunConfig.model_validate(self.config().model_dump() | changes)
        except ValidationError as exc:
            raise ConfigError(format_validation_error(exc, "option", str(self.root))) from None
        atomic_write_text(self.root / "config.yaml", config.to_yaml())
        return config

    # -- phases -------------------------------------------------------------------------
    def iter_dir(self, iteration: int) -> Path:
        return self.root / f"iter_{iteration}"

    def phase_dir(self, iteration: int | None, phase: str) -> Path:
        """iter_<i>/<phase>, or <run>/<phase> for a run-level phase (iteration None)."""
        if iteration is None:
            if phase not in RUN_PHASES:
                raise ValueError(f"unknown run-level phase {phase!r}")
            return self.root / phase
        if phase not in PHASES:
            raise ValueError(f"unknown phase {phase!r}")
        return self.iter_dir(iteration) / phase

    def is_done(self, iteration: int | None, phase: str) -> bool:
        return (self.phase_dir(iteration, phase) / DONE).is_file()

    def phase_record(self, iteration: int | None, phase: str) -> PhaseRecord | None:
        path = self.phase_dir(iteration, phase) / DONE
        return read_model(path, PhaseRecord) if path.is_file() else None

    @contextmanager
    def write_phase(self, iteration: int | None, phase: str) -> Iterator[PhaseWriter]:
        """Write a phase's artifacts into a temporary folder; publish it only on success."""
        final = self.phase_dir(iteration, phase)
        if self.is_done(iteration, phase):
            raise RunStoreError(f"phase {phase} ({iteration=}) is already done in {self.root}")
        if final.exists():  # what an earlier, unfinished attempt left for the user: redone now
            shutil.rmtree(final)
        tmp = make_temp_dir(final.parent, prefix=f".{phase}.")
        writer = PhaseWriter(tmp)
        start = time.perf_counter()
        try:
            yield writer
            record = PhaseRecord(
                iteration=iteration,
                phase=phase,
                seconds=time.perf_counter() - start,
                work_seconds=writer.work_seconds,
                finished_at=datetime.now(timezone.utc).isoformat(),
                info=writer.info,
            )
            write_json(tmp / DONE, record)
            os.rename(tmp, final)
        except RunStopped as stop:
            write_json(tmp / FAILED, {"reason": str(stop), "info": writer.info})
            os.rename(tmp, final)
            raise
        finally:
            if tmp.exists():
                shutil.rmtree(tmp, ignore_errors=True)

    def clean_partial(self) -> list[Path]:
        """Remove the temporary folders of phases a killed process left unfinished."""
        removed = []
        for tmp in [*self.root.glob("iter_*/.*.tmp"), *self.root.glob(".*.tmp")]:
            if tmp.is_dir():
                shutil.rmtree(tmp, ignore_errors=True)
            else:
                tmp.unlink(missing_ok=True)
            removed.append(tmp)
        return removed

    # -- run-level files -----------------------------------------------------------------
    @property
    def metrics_path(self) -> Path:
        return self.root / "metrics.jsonl"

    def write_metrics(self, records: Iterable[BaseModel]) -> None:
        write_jsonl(self.metrics_path, records)

    def mark_finished(self) -> None:
        marker = json.loads((self.root / MARKER).read_text())
        marker["finished"] = datetime.now(timezone.utc).isoformat()
        write_json(self.root / MARKER, marker)

    def is_finished(self) -> bool:
        return "finished" in json.loads((self.root / MARKER).read_text())

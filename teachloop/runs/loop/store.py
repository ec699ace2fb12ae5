"""RunStore: the run folder, one atomic artifact per phase, so any kill is resumable.

Layout::

    <run>/run.json                 marker: this folder is a teachloop run (and the config it started with)
    <run>/config.yaml              the resolved RunConfig (never a secret: an api_key is redacted)
    <run>/skills.json              the skill tree (node-link JSON)
    <run>/iter_<i>/<phase>/        eval, feedback, plan, data, train; each holds done.json
    <run>/metrics.jsonl            one record per evaluated iteration (rewritten from artifacts)
    <run>/report.md, *.png         written at the end of a run and by `teachloop report`
    <run>/tracking.json            which iterations the experiment tracker got (runs/loop/tracking.py)

A phase is written into a hidden temporary folder and renamed into place when it is
complete, with its done.json. A phase that stops the run on purpose (RunStopped: data too
poor to train on, a teacher that is down) is renamed into place *without* done.json, so
the user can read what it made (`failed.json` says why) and a resume redoes it.

done.json records a digest of every file the phase wrote, so a file damaged or edited
later is caught before it is used; one process at a time works on a run (an advisory lock
the kernel drops when the process dies, so a killed run never stays locked).
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import tempfile
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, ClassVar

from pydantic import BaseModel, ValidationError

from teachloop.errors import DiskFull, RunStopped, RunStoreError, TeachloopError
from teachloop.faults import kill_point
from teachloop.io import (
    atomic_write_text,
    file_digest,
    full_disk,
    make_temp_dir,
    read_model,
    read_text,
    write_json,
    write_jsonl,
)
from teachloop.runs.config import RunConfig
from teachloop.runs.loop.artifacts import SKILLS
from teachloop.skills.tree_file import read_tree_file

PHASES = ("eval", "feedback", "plan", "data", "train")
RUN_PHASES = ("discovery",)  # run-level phases, before iteration 0
MARKER = "run.json"
DONE = "done.json"
FAILED = "failed.json"
LOCK = ".lock"
FORMAT_VERSION = 1
# settings a resume may change without mixing two experiments: how to reach the teacher,
# when to stop, how many iterations to run, where the metrics are also logged
OPERATIONAL = {"out", "name", "min_yield", "iterations", "tracking", "tracking_options", "tracking_project"}
OPERATIONAL_TEACHER = {"max_retries", "max_consecutive_failures"}  # and each backend's `Options.operational`
# how training is spread over processes (the same training, not bit for bit: see students/hf/distributed.py)
OPERATIONAL_TRAIN = {"processes", "accelerate_config"}


def experiment(config: RunConfig) -> dict[str, Any]:
    """The settings that decide what a run produces (the config minus OPERATIONAL ones)."""
    data = config.model_dump(mode="json", exclude={key: True for key in OPERATIONAL} | {"train": OPERATIONAL_TRAIN})
    if config.teacher is not None:
        operational = type(config.teacher.options).operational
        teacher = {k: v for k, v in data["teacher"].items() if k not in OPERATIONAL_TEACHER}
        teacher["options"] = {k: v for k, v in teacher["options"].items() if k not in operational}
        data["teacher"] = teacher
    return data


def changed_settings(old: Any, new: Any, prefix: str = "") -> list[str]:
    """Dotted names of the settings that differ between two config dumps."""
    if isinstance(old, dict) and isinstance(new, dict):
        return [
            name
            for key in sorted(set(old) | set(new))
            for name in changed_settings(old.get(key), new.get(key), f"{prefix}{key}.")
        ]
    return [] if old == new else [prefix.rstrip(".")]


class PhaseRecord(BaseModel):
    """done.json: when a phase finished, how long it took and what it did."""

    iteration: int | None
    phase: str
    seconds: float
    work_seconds: float = 0.0
    finished_at: str
    info: dict[str, Any] = {}
    files: dict[str, str] = {}  # file name -> sha256 of every file the phase wrote at its top level


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
    @staticmethod
    def check_new(root: Path) -> None:
        """A new run may be created at `root` (nothing there, or an empty folder, in a folder
        this user may write to): checked before anything loads, so a bad --out is one line at once."""
        try:
            if root.exists() and (not root.is_dir() or any(root.iterdir())):
                hint = "resume it with `teachloop resume`" if (root / MARKER).exists() else "choose another --name"
                raise RunStoreError(f"run folder {root} already exists and is not empty; {hint}")
            above = next((p for p in Path(root).parents if p.exists()), None)  # the folder it is made in
            if above is not None and not above.is_dir():
                raise RunStoreError(f"cannot create run folder {root}: {above} is a file, not a folder (check --out)")
            if above is not None:  # a folder may be made there (permissions do not tell root, nor /proc)
                try:
                    os.rmdir(tempfile.mkdtemp(dir=above, prefix=".teachloop-check."))
                except OSError as exc:
                    raise RunStoreError(
                        f"cannot create run folder {root}: {above} takes no new folder ({exc.strerror or exc}; "
                        "check --out)"
                    ) from None
        except OSError as exc:
            raise RunStoreError(f"cannot create run folder {root}: {exc.strerror or exc} (check --out)") from None

    @classmethod
    def create(cls, root: Path, config: RunConfig) -> RunStore:
        root = Path(root)
        cls.check_new(root)
        try:
            root.mkdir(parents=True, exist_ok=True)
            atomic_write_text(root / "config.yaml", config.to_yaml())
            marker = {
                "format": FORMAT_VERSION,
                "created": datetime.now(UTC).isoformat(),
                "name": root.name,
                "experiment": experiment(config),
            }
            write_json(root / MARKER, marker)
        except OSError as exc:
            raise RunStoreError(f"cannot create run folder {root}: {exc.strerror or exc} (check --out)") from None
        return cls(root)

    @classmethod
    def open(cls, root: Path) -> RunStore:
        root = Path(root)
        if not root.is_dir():
            raise RunStoreError(f"{root} does not exist or is not a folder")
        if not (root / MARKER).is_file() or not (root / "config.yaml").is_file():
            raise RunStoreError(f"{root} is not a teachloop run folder (no {MARKER} / config.yaml)")
        store = cls(root)
        marker = store.marker()
        if marker.get("format") != FORMAT_VERSION:
            raise RunStoreError(f"{root} was written by an incompatible teachloop (format {marker.get('format')})")
        return store

    def marker(self) -> dict[str, Any]:
        path = self.root / MARKER
        try:
            marker = json.loads(read_text(path, "the run's marker"))
        except TeachloopError as exc:  # said once: read_text may already end "or restore it"
            raise RunStoreError(str(exc) if str(exc).endswith("restore it") else f"{exc}; restore it") from None
        except json.JSONDecodeError as exc:
            raise RunStoreError(f"{path} is unreadable ({exc}); it is the run's marker: restore it") from None
        if not isinstance(marker, dict):
            raise RunStoreError(f"{path} must hold a JSON object (the run's marker); restore it")
        return marker

    def check_config(self, config: RunConfig, allow_change: bool = False) -> None:
        """Refuse a config.yaml edited since the run started in a way that changes what it
        produces (policy, budget, seed, ...): finished phases and new ones would disagree.
        With `allow_change` the edit is accepted and recorded in run.json."""
        marker = self.marker()
        started = marker.get("experiment")
        now = experiment(config)
        if started is None or started == now:
            return
        try:  # a setting added since the run started counts at its default, as the run used it
            started = experiment(RunConfig.model_validate(started))
        except ValidationError:
            pass
        if started == now:
            return
        changed = changed_settings(started, now)
        if not allow_change:
            raise RunStoreError(
                f"{self.root / 'config.yaml'} was changed since the run started ({', '.join(changed)}): its finished "
                "phases were made with the old settings. Restore them, start a new run, or pass "
                "--allow-config-change to continue with both"
            )
        marker.setdefault("config_changes", []).append(
            {"at": datetime.now(UTC).isoformat(), "changed": changed, "before": started}
        )
        marker["experiment"] = now
        write_json(self.root / MARKER, marker)

    _held: set[Path] = set()  # runs this process holds: taking the lock again is a no-op
    _intact: ClassVar[set[Path]] = set()  # held runs whose integrity was checked under the lock: not hashed twice

    @contextmanager
    def lock(self) -> Iterator[None]:
        """Hold the run for this process; another process gets a clear error, not a race.
        Re-entrant within a process (the CLI takes it before it changes anything, the loop
        again when it runs)."""
        key = self.root.resolve()
        if key in RunStore._held:
            yield
            return
        path = self.root / LOCK
        try:
            handle = path.open("a+")
        except OSError as exc:
            raise RunStoreError(
                f"cannot take the lock of run {self.root} ({exc.strerror or exc}: {path}): resuming writes to the run "
                "folder, so it must be writable by this user"
            ) from None
        with handle:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                handle.seek(0)
                holder = handle.read().strip() or "another process"
                raise RunStoreError(
                    f"run {self.root} is in use by {holder}; wait for it to finish or stop it, then resume"
                ) from None
            handle.seek(0)
            handle.truncate()
            handle.write(f"teachloop process {os.getpid()}")
            handle.flush()
            RunStore._held.add(key)
            try:
                yield
            finally:
                RunStore._held.discard(key)
                RunStore._intact.discard(key)
                handle.truncate(0)
                fcntl.flock(handle, fcntl.LOCK_UN)

    def config(self) -> RunConfig:
        from teachloop.runs.config import load_config

        return load_config(self.root / "config.yaml")

    def changed_config(self, **changes: Any) -> RunConfig:
        """The run's config with settings changed that do not alter what a finished phase
        produced (min_yield, tracking), validated; nothing is written."""
        from teachloop.errors import ConfigError, format_validation_error

        try:
            return RunConfig.model_validate(self.config().model_dump() | changes)
        except ValidationError as exc:
            raise ConfigError(format_validation_error(exc, "option", str(self.root))) from None

    def save_config(self, config: RunConfig) -> None:
        atomic_write_text(self.root / "config.yaml", config.to_yaml())

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
                finished_at=datetime.now(UTC).isoformat(),
                info=writer.info,
                files={f.name: file_digest(f) for f in sorted(tmp.iterdir()) if f.is_file()},
            )
            write_json(tmp / DONE, record)
            kill_point(f"{phase}@{iteration}")
            os.rename(tmp, final)
        except RunStopped as stop:
            write_json(tmp / FAILED, {"reason": str(stop), "info": writer.info})
            os.rename(tmp, final)
            raise
        except Exception as exc:  # a full disk, wherever it struck (a library's writer: safetensors, torch)
            full = full_disk(exc)
            if full is None:
                raise
            then = f"`teachloop resume {self.root}` redoes this phase (nothing of it was kept) and goes on"
            raise DiskFull(final, full.quota, then=then) from None
        finally:
            if tmp.exists():
                shutil.rmtree(tmp, ignore_errors=True)

    def check_integrity(self) -> None:
        """Every file a finished phase recorded is still there, unchanged, and the run's skill
        tree reads (before a resume prints or starts anything). Checked once while this process
        holds the run (the CLI checks before torch loads; the loop's check is then free)."""
        key = self.root.resolve()
        if key in RunStore._intact:
            return
        if (self.root / SKILLS).is_file():
            read_tree_file(self.root / SKILLS)
        for done in sorted(self.root.glob(f"*/{DONE}")) + sorted(self.root.glob(f"iter_*/*/{DONE}")):
            record = read_model(done, PhaseRecord)
            for name, digest in record.files.items():
                path = done.parent / name
                if not path.is_file() or file_digest(path) != digest:
                    state = "is missing" if not path.is_file() else "was changed after its phase finished"
                    raise RunStoreError(
                        f"{path} {state} (its digest is in {done.name}); restore it, or delete {done.parent} and "
                        "every later phase folder to redo them"
                    )
        if key in RunStore._held:
            RunStore._intact.add(key)

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

    def missing_phases(self, iterations: int) -> list[str]:
        """Phase folders that are gone although a later phase is done, or the run was marked
        finished (removed by hand, or by another program): metrics cannot be rebuilt past them
        until a resume redoes them."""
        order = [(i, p) for i in range(iterations + 1) for p in (("eval",) if i == iterations else PHASES)]
        done = [self.is_done(i, p) for i, p in order]
        if not any(done):
            return []
        last = len(order) if self.is_finished() else max(k for k, finished in enumerate(done) if finished)
        return [f"iter_{i}/{p}" for k, (i, p) in enumerate(order[:last]) if not done[k]]

    def metrics_lines(self) -> int:
        """Records in metrics.jsonl now (0 when there is none)."""
        path = self.metrics_path
        if not path.is_file():
            return 0
        try:  # a garbage file (not UTF-8, not JSON) holds no record worth keeping: rebuilt from the artifacts
            text = path.read_text(encoding="utf-8")
        except (UnicodeDecodeError, OSError):
            return 0
        return sum(1 for line in text.splitlines() if _a_record(line))

    def mark_finished(self, work_done: bool = True) -> None:
        """Record when the run finished; a resume that had nothing left to do keeps the time."""
        marker = self.marker()
        if work_done or "finished" not in marker:
            marker["finished"] = datetime.now(UTC).isoformat()
            write_json(self.root / MARKER, marker)

    def mark_unfinished(self) -> None:
        marker = self.marker()
        if marker.pop("finished", None) is not None:
            write_json(self.root / MARKER, marker)

    def is_finished(self) -> bool:
        return "finished" in self.marker()


def _a_record(line: str) -> bool:
    """A metrics.jsonl line that holds a record (a JSON object), not garbage."""
    try:
        return isinstance(json.loads(line), dict)
    except ValueError:
        return False

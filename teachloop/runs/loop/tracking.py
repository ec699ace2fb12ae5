"""Experiment tracking: every evaluated iteration's metrics, logged to trackio (local, no
account, no server), Weights & Biases, MLflow or TensorBoard (`tracking:` in the config).

One tracker run per teachloop run, named like it, in the project `tracking_project`
(default: the run's name; the runs of a bench share the bench's project). At step =
iteration it logs `accuracy`, `skill/<node>` (every node of the skill tree, groups
included), `data/yield`, `data/examples_generated|trained`, `teacher/<tokens, calls, ...>`
(cumulative) and `teacher/cost` when prices are configured, `time/<phase>` seconds and
`train/loss` (`train/dpo_loss`): the mean loss of the training that led to the iteration.
The run's config goes along with every credential redacted.

The values come from the metrics records, which are rebuilt from the phase artifacts, so
a resumed run logs exactly what an uninterrupted one does. `<run>/tracking.json` lists the
iterations the tracker has: each is logged once, after its evaluation. A kill between the
tracker storing an iteration and tracking.json recording it logs that iteration again, at
the same step, on resume. A run that turns tracking on later (`teachloop resume --tracking
trackio`) or moves to another tracker or project logs its whole history. A tracker that
fails (a server down, a full disk) costs a warning, not the run: the iterations it missed
are tried again after the next evaluation or on resume.

Training losses are logged per iteration by this module rather than by TRL's `report_to`:
TRL's callbacks open and finish the tracker's run themselves and log on their own step
counter, which would put the loss on another x-axis than the iteration metrics and log it
twice when a resume redoes a train phase.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import logging
import re
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, ClassVar, Protocol, runtime_checkable

from pydantic import BaseModel

from teachloop.errors import ConfigError, TeachloopError
from teachloop.io import read_model, redact_secrets, write_json
from teachloop.registry import (
    Component,
    Contract,
    Hook,
    Registry,
    Requires,
    check_requires,
    options_model,
    validate_options,
)
from teachloop.runs.config import RunConfig
from teachloop.runs.loop.metrics import MetricsRecord
from teachloop.runs.loop.store import RunStore

log = logging.getLogger(__name__)

STATE_FILE = "tracking.json"


class TrackedRun(BaseModel):
    """The tracker's view of a teachloop run."""

    project: str
    name: str
    key: str  # stable across resumes, new for a new run folder of the same name (W&B id, MLflow tag)
    folder: Path  # the run folder (TensorBoard writes its event files inside)


@runtime_checkable
class Tracker(Protocol):
    """Opens one tracker run per teachloop run, logs metrics at step = iteration, closes it."""

    def start(self, run: TrackedRun, config: dict[str, Any], resume: bool) -> None:
        """Open the run; `resume`: it was opened before (continue it, never make a second)."""
        ...

    def log(self, metrics: dict[str, float], step: int) -> None: ...

    def finish(self) -> None:
        """Close the run; what was logged is stored when this returns."""
        ...


@runtime_checkable
class SaysWhere(Protocol):
    def where(self, run: TrackedRun) -> str:
        """How a person views the tracked run (a command, a folder, a URL), printed at the start."""
        ...


TRACKER_CONTRACT = Contract(
    kind="tracker",
    required=(
        Hook("start", "opens (or, with resume, continues) the tracker's run", params=("run", "config", "resume")),
        Hook("log", "logs one iteration's metrics", params=("metrics", "step")),
        Hook("finish", "closes the run; what was logged is stored when it returns", params=()),
    ),
    optional=(Hook("where", "how to view the tracked run, printed when the run starts", SaysWhere, ("run",)),),
)

TRACKERS = Registry.of(
    "tracker",
    option_flag="--tracking NAME and --tracking-option KEY=VALUE, or tracking: and tracking_options: in a config",
    contract=TRACKER_CONTRACT,
)


class BaseTracker(Component):
    """What a registered tracker subclasses: a docstring, `Options` (`tracking_options`,
    validated once, `self.options`) and start/log/finish; `setup` imports the tracker's
    library. `requires` (a `Requires`) names what must be installed, checked before a run
    starts (None: nothing beyond teachloop)."""

    kind = "tracker"
    requires: ClassVar[Requires | None] = None


def check_tracker(name: str, options: dict[str, Any] | None = None) -> None:
    """The tracker exists, its package is installed and its options are valid: a one-line
    error naming what to do, before the run starts."""
    if name == "none":
        if options:
            raise ConfigError("tracking_options are set but tracking is none: choose a tracker (--tracking NAME)")
        return
    factory = TRACKERS.load(name)
    check_requires(factory, f"tracking: {name}")
    model = options_model(factory, "tracker", name)
    if model is not None:
        validate_options("tracker", name, model, dict(options or {}))
    elif options:
        raise ConfigError(f"tracker {name!r} takes no options; got {', '.join(sorted(options))}")


# -- the trackers ----------------------------------------------------------------------------
@contextlib.contextmanager
def _quiet_stdout() -> Iterator[None]:
    """trackio prints a few lines on every init and finish; teachloop's progress says it once."""
    with contextlib.redirect_stdout(io.StringIO()):
        yield


class TrackioTracker(BaseTracker):
    """A local trackio project ($TRACKIO_DIR, default ~/.cache/huggingface/trackio)."""

    requires = Requires.package("trackio", extra="tracking")

    def setup(self) -> None:
        import trackio

        self._trackio = trackio

    def start(self, run: TrackedRun, config: dict[str, Any], resume: bool) -> None:
        with _quiet_stdout():
            self._trackio.init(
                project=run.project,
                name=run.name,
                config=config,
                resume="allow" if resume else "never",
                embed=False,
                auto_log_cpu=False,
                auto_log_gpu=False,
            )

    def log(self, metrics: dict[str, float], step: int) -> None:
        self._trackio.log(metrics, step=step)

    def where(self, run: TrackedRun) -> str:
        return f"view: trackio show --project {run.project}"

    def finish(self) -> None:
        with _quiet_stdout():
            self._trackio.finish()


class WandbTracker(BaseTracker):
    """A Weights & Biases run per teachloop run (WANDB_MODE=offline works without an account)."""

    requires = Requires.package("wandb", extra="wandb")

    def setup(self) -> None:
        import wandb

        self._wandb = wandb
        self._run: Any = None

    def start(self, run: TrackedRun, config: dict[str, Any], resume: bool) -> None:
        self._run = self._wandb.init(project=run.project, name=run.name, id=run.key, resume="allow", config=config)

    def log(self, metrics: dict[str, float], step: int) -> None:
        self._run.log(metrics, step=step)

    def finish(self) -> None:
        self._run.finish()


def _mlflow_name(name: str) -> str:
    """MLflow allows letters, digits, _ - . space / in metric and param names."""
    return re.sub(r"[^\w\-. /]", "_", name)


def _flat(config: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, value in config.items():
        if isinstance(value, dict) and value:
            flat.update(_flat(value, f"{prefix}{key}."))
        else:
            text = value if isinstance(value, str) else json.dumps(value)
            flat[_mlflow_name(f"{prefix}{key}")] = text[:500]  # MLflow's older limit on a param's length
    return flat


class MlflowTracker(BaseTracker):
    """An MLflow experiment named like the project (MLFLOW_TRACKING_URI says where)."""

    TAG = "teachloop_run_key"
    requires = Requires.package("mlflow", extra="mlflow")

    def setup(self) -> None:
        import mlflow

        self._mlflow = mlflow

    def start(self, run: TrackedRun, config: dict[str, Any], resume: bool) -> None:
        mlflow = self._mlflow
        mlflow.set_experiment(run.project)
        found = mlflow.search_runs(filter_string=f"tags.{self.TAG} = '{run.key}'", output_format="list")
        if found:
            mlflow.start_run(run_id=found[0].info.run_id)
            return
        mlflow.start_run(run_name=run.name, tags={self.TAG: run.key})
        mlflow.log_params(_flat(config))

    def log(self, metrics: dict[str, float], step: int) -> None:
        self._mlflow.log_metrics({_mlflow_name(k): v for k, v in metrics.items()}, step=step)

    def finish(self) -> None:
        self._mlflow.end_run()


class TensorBoardTracker(BaseTracker):
    """Event files in <run>/tensorboard/: `tensorboard --logdir` a bench's runs/ folder shows every cell."""

    requires = Requires.package("tensorboard", extra="tensorboard")

    def setup(self) -> None:
        from torch.utils.tensorboard import SummaryWriter

        self._writer_cls = SummaryWriter
        self._writer: Any = None

    def start(self, run: TrackedRun, config: dict[str, Any], resume: bool) -> None:
        self._writer = self._writer_cls(log_dir=str(run.folder / "tensorboard"))
        if not resume:
            self._writer.add_text("config", "```\n" + json.dumps(config, indent=2) + "\n```", 0)

    def log(self, metrics: dict[str, float], step: int) -> None:
        for name, value in metrics.items():
            self._writer.add_scalar(name, value, step)

    def where(self, run: TrackedRun) -> str:
        return f"view: tensorboard --logdir {run.folder / 'tensorboard'}"

    def finish(self) -> None:
        self._writer.close()


def make_tracker(name: str, options: dict[str, Any] | None = None) -> Tracker:
    check_tracker(name, options)
    tracker: Tracker = TRACKERS.build(name, options)
    return tracker


# -- what is logged --------------------------------------------------------------------------
def record_metrics(record: MetricsRecord, config: RunConfig) -> dict[str, float]:
    """One iteration's scalars, named for the tracker's dashboard (prefix/ groups panels)."""
    metrics: dict[str, float] = {"accuracy": record.accuracy}
    for node, accuracy in {**record.node_accuracy, **record.skill_accuracy}.items():
        metrics[f"skill/{node}"] = accuracy
    if record.data_yield is not None:
        metrics["data/yield"] = record.data_yield
    metrics["data/examples_generated"] = record.examples_generated
    metrics["data/examples_trained"] = record.examples_trained
    if record.hit_limit is not None:
        metrics["eval/hit_limit"] = record.hit_limit
    if record.validation_accuracy is not None:
        metrics["eval/validation_accuracy"] = record.validation_accuracy
    for key, value in (record.teacher or {}).items():
        metrics[f"teacher/{key}"] = value
    teacher = config.teacher
    if record.teacher and teacher and (teacher.price_prompt_per_mtok or teacher.price_completion_per_mtok):
        prompt, completion = record.teacher.get("prompt_tokens", 0), record.teacher.get("completion_tokens", 0)
        metrics["teacher/cost"] = (
            prompt * (teacher.price_prompt_per_mtok or 0) + completion * (teacher.price_completion_per_mtok or 0)
        ) / 1e6
    for phase, seconds in record.phase_seconds.items():
        metrics[f"time/{phase}"] = seconds
    metrics["time/overhead"] = record.overhead_seconds
    for trainer, loss in (record.train_loss or {}).items():
        metrics["train/loss" if trainer == "sft" else f"train/{trainer}_loss"] = loss
    if record.train_tokens_per_second is not None:
        metrics["train/tokens_per_second"] = record.train_tokens_per_second
    if record.train_peak_gb is not None:
        metrics["train/peak_gb"] = record.train_peak_gb
    return metrics


# -- the run's side --------------------------------------------------------------------------
class TrackingState(BaseModel):
    """tracking.json: which iterations which tracker run already has."""

    tracker: str
    project: str
    run: str
    started: bool = False
    logged: list[int] = []


class RunTracking:
    """Logs a run's metrics records to its tracker, each iteration once."""

    def __init__(
        self, store: RunStore, config: RunConfig, factory: Callable[[str, dict[str, Any]], Tracker] = make_tracker
    ) -> None:
        self.store = store
        self.config = config
        self.factory = factory
        self._tracker: Tracker | None = None
        name = config.name or store.root.name
        created = str(store.marker().get("created", ""))
        self.run = TrackedRun(
            project=config.tracking_project or name,
            name=name,
            key=hashlib.sha256(f"{created}|{name}".encode()).hexdigest()[:16],
            folder=store.root,
        )

    @property
    def path(self) -> Path:
        return self.store.root / STATE_FILE

    def tracker(self) -> Tracker:
        """The tracker, built once per run (importing its library)."""
        if self._tracker is None:
            self._tracker = self.factory(self.config.tracking, dict(self.config.tracking_options))
        return self._tracker

    def describe(self) -> str:
        described = f"project {self.run.project}, run {self.run.name}"
        try:
            where = self.tracker().where(self.run) if isinstance(self.tracker(), SaysWhere) else ""
        except Exception:  # noqa: BLE001 -- a tracker's trouble must not cost the run; log() says what went wrong
            where = ""
        return f"{described} ({where})" if where else described

    def state(self) -> TrackingState:
        fresh = TrackingState(tracker=self.config.tracking, project=self.run.project, run=self.run.name)
        if not self.path.is_file():
            return fresh
        try:
            state = read_model(self.path, TrackingState)
        except (TeachloopError, OSError):  # unreadable: the tracker gets the whole history again
            return fresh
        same = (state.tracker, state.project, state.run) == (fresh.tracker, fresh.project, fresh.run)
        return state if same else fresh

    def log(self, records: Sequence[MetricsRecord]) -> list[int]:
        """Log the records the tracker does not have yet; the iterations logged."""
        state = self.state()
        new = [r for r in records if r.iteration not in state.logged]
        if not new:
            return []
        config = redact_secrets(self.config.model_dump(mode="json"))
        try:
            tracker = self.tracker()
            tracker.start(self.run, config, resume=state.started)
            if not state.started:  # the next start continues this tracker run, even if logging fails below
                state.started = True
                write_json(self.path, state)
            try:
                for record in new:
                    tracker.log(record_metrics(record, self.config), step=record.iteration)
            finally:
                tracker.finish()
        except Exception as exc:  # a tracker's trouble must not cost the run
            log.warning(
                "tracking: %s could not log iteration(s) %s (%s: %s); they are tried again after the next "
                "evaluation or on resume",
                self.config.tracking, ", ".join(str(r.iteration) for r in new), type(exc).__name__, exc,
            )  # fmt: skip
            return []
        state.logged = sorted({*state.logged, *(r.iteration for r in new)})
        write_json(self.path, state)
        return [r.iteration for r in new]

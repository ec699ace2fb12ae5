"""The TeacherBackend protocol: how a teacher model is reached, and nothing more.

A backend turns a batch of jobs (messages, JSON schema, sampling parameters) into raw
completions. Everything else a teacher call needs (the cache, the ledger, validation
with pydantic, re-asks, failure records, the circuit breaker) lives once in `TeacherLLM`,
so a new backend is one class (a `Backend` subclass, with its settings as `Options`)
registered under the `teachloop.teacher_backends` entry points:

    [project.entry-points."teachloop.teacher_backends"]
    mybackend = "my_package:MyBackend"

and is then used as `--teacher mybackend:<model>`, its settings under `teacher.options`
in a config (`teachloop backends show mybackend` lists them).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar, Protocol, runtime_checkable

from pydantic import BaseModel, ConfigDict

from teachloop.registry import Component

Message = dict[str, str]


class Job(BaseModel):
    """One teacher request: a conversation, the JSON schema the reply must fit, and the
    sampling parameters (`temperature`, `max_tokens`, `seed`)."""

    model_config = ConfigDict(frozen=True)

    messages: list[Message]
    json_schema: dict[str, Any]
    params: dict[str, Any]


class Completion(BaseModel):
    """A backend's raw reply to one job, with its token usage."""

    text: str
    prompt_tokens: int = 0
    completion_tokens: int = 0


class RequestRejected(Exception):
    """The endpoint refused this one request (e.g. a prompt over the context length):
    recorded and skipped, never retried."""


class TransientError(Exception):
    """A transport fault worth retrying (429, 5xx, timeout, broken body)."""

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


@runtime_checkable
class CallEvents(Protocol):
    """What a backend reports while it works through a batch."""

    def done(self, index: int, outcome: Completion | BaseException) -> None:
        """Job `index` finished: a Completion, or the exception that ended it after retries."""
        ...

    def retried(self) -> None:
        """One transport retry happened (counted in the ledger)."""
        ...

    def progressed(self, count: int) -> None:
        """`count` more jobs finished, their outcomes reported with `done` later: for a
        backend that runs a whole batch before it has any outcome (in-process vLLM), so that
        the progress bar moves as requests finish. Optional: `done` moves it too."""
        ...

    @property
    def stopped(self) -> bool:
        """True once the circuit breaker opened or a stop signal came: start no further jobs (nor
        retries), report them as not run."""
        ...


class TeacherSettings(Protocol):
    """What a backend may read of the run's TeacherConfig besides its own options."""

    model: str
    seed: int  # the engine's seed (each job also carries its own sampling seed)
    send_seed: bool  # whether to send a job's seed at all
    max_retries: int  # retries of transport faults


class BackendOptions(BaseModel):
    """A teacher backend's own settings: `teacher.options` in a config, validated by the
    backend's `Options` (a subclass of this). `operational` names the ones a resumed run may
    change without making it another experiment (how the teacher is reached, not what it
    answers)."""

    model_config = ConfigDict(extra="forbid")

    operational: ClassVar[frozenset[str]] = frozenset()


@runtime_checkable
class TeacherBackend(Protocol):
    """What teachloop needs of a backend class (`Backend` supplies every default):

    - built as `Backend(options, teacher=cfg, model=model)`: its validated `Options`, the
      run's TeacherConfig, and the model to use (a served model name, or a local checkpoint
      folder when `local_weights` is True);
    - `endpoint(options)`: the URL a remote backend reaches (its cache keys name it), None
      for a local one;
    - `constrains_output`: decoding is constrained to the JSON schema, so a start-up reply
      that does not fit it is an error rather than a warning."""

    Options: ClassVar[type[BackendOptions]]
    local_weights: ClassVar[bool]
    constrains_output: ClassVar[bool]

    @classmethod
    def endpoint(cls, options: Any) -> str | None: ...

    def complete(self, jobs: Sequence[Job], events: CallEvents) -> None:
        """Run every job, reporting each through `events.done` (in any order)."""
        ...


class Backend(Component):
    """Base class of a teacher backend: subclass it, set `Options`, write `complete`."""

    kind: ClassVar[str] = "teacher backend"
    Options: ClassVar[type[BaseModel]] = BackendOptions
    local_weights: ClassVar[bool] = False
    constrains_output: ClassVar[bool] = False

    def __init__(
        self, options: BaseModel | None = None, /, *, teacher: TeacherSettings, model: str, **values: Any
    ) -> None:
        self.teacher = teacher
        self.model = model
        super().__init__(options, **values)

    @classmethod
    def endpoint(cls, options: Any) -> str | None:
        return None

    def complete(self, jobs: Sequence[Job], events: CallEvents) -> None:
        raise NotImplementedError


class NotRun(Exception):
    """A job the backend skipped because the circuit breaker had opened."""

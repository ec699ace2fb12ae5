"""The TeacherBackend protocol: how a teacher model is reached, and nothing more.

A backend turns a batch of jobs (messages, JSON schema, sampling parameters) into raw
completions. Everything else a teacher call needs (the cache, the ledger, validation
with pydantic, re-asks, failure records, the circuit breaker) lives once in `TeacherLLM`,
so a new backend is one class registered under the `teachloop.teacher_backends` entry
points:

    [project.entry-points."teachloop.teacher_backends"]
    mybackend = "my_package:MyBackend"

and is then used as `--teacher mybackend:<model>`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar, Protocol, runtime_checkable

from pydantic import BaseModel, ConfigDict

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

    @property
    def stopped(self) -> bool:
        """True once the circuit breaker opened: start no further jobs, report them as not run."""
        ...


@runtime_checkable
class TeacherBackend(Protocol):
    """Constructed as `Backend(cfg, model)`: the run's TeacherConfig and the model to use
    (a served model name, or a local checkpoint folder when `local_weights` is True)."""

    local_weights: ClassVar[bool]

    def complete(self, jobs: Sequence[Job], events: CallEvents) -> None:
        """Run every job, reporting each through `events.done` (in any order)."""
        ...


class NotRun(Exception):
    """A job the backend skipped because the circuit breaker had opened."""

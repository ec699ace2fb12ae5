"""Teacher backends, found by name through the `teachloop.teacher_backends` entry points."""

from __future__ import annotations

import inspect

from pydantic import BaseModel

from teachloop.agents.teacher.backends.base import (
    Backend,
    BackendOptions,
    CallEvents,
    Completion,
    Job,
    NotRun,
    RequestRejected,
    TeacherBackend,
    TransientError,
)
from teachloop.errors import PluginError
from teachloop.registry import Registry


def _notes(factory: object) -> list[str]:
    local = getattr(factory, "local_weights", False)
    endpoint = getattr(getattr(factory, "endpoint", None), "__func__", None)
    remote = endpoint is not None and endpoint is not Backend.endpoint.__func__  # type: ignore[attr-defined]
    return [
        "model: "
        + ("local weights (a folder, a .gguf file or a hub id)" if local else "a model name the endpoint serves"),
        "reaches: " + ("a remote endpoint (its URL is part of every cache key)" if remote else "nothing remote"),
        "replies: "
        + (
            "decoding constrained to the JSON schema"
            if getattr(factory, "constrains_output", False)
            else "not constrained (invalid replies are re-asked, then recorded)"
        ),
    ]


TEACHER_BACKENDS = Registry(
    kind="teacher backend",
    group="teachloop.teacher_backends",
    command="backends",
    option_flag="--teacher-option KEY=VALUE, or teacher.options in a config",
    notes=_notes,
)

_MEMBERS = {
    "complete": "a method complete(jobs, events)",
    "endpoint": "a classmethod endpoint(options) -> str | None",
    "Options": "a pydantic model of its settings",
    "local_weights": "a bool",
    "constrains_output": "a bool",
}


def backend_class(name: str) -> type[TeacherBackend]:
    """The backend class registered as `name`, checked for every member teachloop reads."""
    factory = TEACHER_BACKENDS.load(name)
    missing = [f"{member} ({what})" for member, what in _MEMBERS.items() if not hasattr(factory, member)]
    if not missing and not callable(factory.complete):
        missing = ["complete (a method complete(jobs, events))"]
    options = inspect.getattr_static(factory, "Options", None)
    if not missing and not (isinstance(options, type) and issubclass(options, BaseModel)):
        missing = [f"Options (a pydantic model, got {options!r})"]
    if missing:
        raise PluginError(
            f"teacher backend {name!r} lacks {', '.join(missing)}: subclass teachloop.agents.teacher.Backend, "
            "which supplies the defaults, and write complete(jobs, events)"
        )
    return factory


def available_backends() -> list[str]:
    return TEACHER_BACKENDS.names()


__all__ = [
    "TEACHER_BACKENDS",
    "Backend",
    "BackendOptions",
    "CallEvents",
    "Completion",
    "Job",
    "NotRun",
    "RequestRejected",
    "TeacherBackend",
    "TransientError",
    "available_backends",
    "backend_class",
]

"""Teacher backends, found by name through the `teachloop.teacher_backends` entry points."""

from __future__ import annotations

from teachloop import plugins
from teachloop.agents.backends.base import (
    CallEvents,
    Completion,
    Job,
    NotRun,
    RequestRejected,
    TeacherBackend,
    TransientError,
)
from teachloop.errors import PluginError


def backend_class(name: str) -> type[TeacherBackend]:
    factory = plugins.load(plugins.TEACHER_BACKENDS, name)
    if not callable(getattr(factory, "complete", None)):
        raise PluginError(f"teacher backend {name!r} does not implement complete(jobs, events)")
    return factory


def available_backends() -> list[str]:
    return plugins.available(plugins.TEACHER_BACKENDS)


__all__ = [
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

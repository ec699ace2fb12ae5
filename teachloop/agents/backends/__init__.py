"""Teacher backends, found by name through the `teachloop.teacher_backends` entry points."""

from __future__ import annotations

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
from teachloop.registry import Registry

TEACHER_BACKENDS = Registry(
    kind="teacher backend",
    group="teachloop.teacher_backends",
    command="backends",
    settings="--teacher <backend>:<model> and the other --teacher-* flags, or teacher: in a config "
    "(`teachloop run --help`)",
)


def backend_class(name: str) -> type[TeacherBackend]:
    factory = TEACHER_BACKENDS.load(name)
    if not callable(getattr(factory, "complete", None)):
        raise PluginError(f"teacher backend {name!r} does not implement complete(jobs, events)")
    return factory


def available_backends() -> list[str]:
    return TEACHER_BACKENDS.names()


__all__ = [
    "CallEvents",
    "Completion",
    "Job",
    "NotRun",
    "RequestRejected",
    "TEACHER_BACKENDS",
    "TeacherBackend",
    "TransientError",
    "available_backends",
    "backend_class",
]

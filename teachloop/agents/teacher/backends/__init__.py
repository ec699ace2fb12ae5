"""Teacher backends, found by name through the `teachloop.teacher_backends` entry points."""

from __future__ import annotations

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
from teachloop.registry import Contract, Hook, Registry, check_component_class, options_model


def _notes(factory: object) -> list[str]:
    local = getattr(factory, "local_weights", False)  # `show` describes a class before it is checked
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


BACKEND_CONTRACT = Contract(
    kind="teacher backend",
    required=(
        Hook("complete", "runs every job, reporting each through events.done", params=("jobs", "events")),
        Hook("endpoint", "a classmethod: the URL a remote backend reaches, None for a local one", params=("options",)),
        Hook("local_weights", "whether the model is a local checkpoint (True) or a served name", value_type=bool),
        Hook("constrains_output", "whether decoding is constrained to the JSON schema", value_type=bool),
    ),
)

TEACHER_BACKENDS = Registry.of(
    "teacher backend",
    option_flag="--teacher-option KEY=VALUE, or teacher.options in a config",
    contract=BACKEND_CONTRACT,
    notes=_notes,
)


def backend_class(name: str) -> type[TeacherBackend]:
    """The backend class registered as `name`, checked against the backend contract (every
    member teachloop reads, `Options` a pydantic model)."""
    factory = TEACHER_BACKENDS.load(name)
    check_component_class(factory, BACKEND_CONTRACT, name)
    if options_model(factory, "teacher backend", name) is None:
        raise PluginError(
            f"teacher backend {name!r} does not declare Options (a pydantic model of its settings): subclass "
            "teachloop.agents.teacher.Backend, which supplies the defaults"
        )
    cls: type[TeacherBackend] = factory
    return cls


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

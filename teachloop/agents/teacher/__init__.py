"""The teacher: one client (`TeacherLLM`: validation, re-asks, cache, ledger, circuit
breaker) in front of any backend that reaches a model (`backends`), configured by one
`TeacherConfig` whose `options` are the backend's own settings."""

from teachloop.agents.teacher.backends import (
    TEACHER_BACKENDS,
    Backend,
    BackendOptions,
    CallEvents,
    Completion,
    Job,
    NotRun,
    RequestRejected,
    TeacherBackend,
    TransientError,
    available_backends,
    backend_class,
)
from teachloop.agents.teacher.cache import DiskCache, cache_key, request_seed
from teachloop.agents.teacher.client import TeacherLLM, parse_reply
from teachloop.agents.teacher.config import TeacherConfig, parse_teacher_spec
from teachloop.agents.teacher.ledger import Failure, FailureKind, UsageLedger

__all__ = [
    "TEACHER_BACKENDS",
    "Backend",
    "BackendOptions",
    "CallEvents",
    "Completion",
    "DiskCache",
    "Failure",
    "FailureKind",
    "Job",
    "NotRun",
    "RequestRejected",
    "TeacherBackend",
    "TeacherConfig",
    "TeacherLLM",
    "TransientError",
    "UsageLedger",
    "available_backends",
    "backend_class",
    "cache_key",
    "parse_reply",
    "parse_teacher_spec",
    "request_seed",
]

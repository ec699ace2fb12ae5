"""Students: where checkpoints come from, the Student protocol and its transformers
implementation (students/hf/), the probe policies query, the evaluation backends and the
lifecycle the loop drives.

Importing the package loads no model library: the pre-run checks import its registries, and a
run refused there must not pay for torch and transformers (their names load on first use)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from teachloop.students.checkpoints import EMBEDDED, EMBEDDED_BASE, resolve_checkpoint

if TYPE_CHECKING:
    from teachloop.students.hf.student import TransformersStudent
    from teachloop.students.protocol import Student


def load_student(spec: str) -> TransformersStudent:
    """'embedded', a local model folder, a .gguf file, or (when online) a hub id."""
    from teachloop.students.hf.student import TransformersStudent

    return TransformersStudent.load_pretrained(resolve_checkpoint(spec))


def __getattr__(name: str) -> Any:
    if name == "TransformersStudent":
        from teachloop.students.hf.student import TransformersStudent

        return TransformersStudent
    if name == "Student":
        from teachloop.students.protocol import Student

        return Student
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["EMBEDDED", "EMBEDDED_BASE", "Student", "TransformersStudent", "load_student", "resolve_checkpoint"]

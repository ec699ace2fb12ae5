"""Students: where checkpoints come from, the Student protocol and its transformers
implementation, the probe policies query, and the lifecycle the loop drives."""

from __future__ import annotations

from teachloop.students.checkpoints import EMBEDDED, EMBEDDED_BASE, resolve_checkpoint
from teachloop.students.hf.student import TransformersStudent
from teachloop.students.protocol import Student


def load_student(spec: str) -> TransformersStudent:
    """'embedded', a local model folder, a .gguf file, or (when online) a hub id."""
    return TransformersStudent.load_pretrained(resolve_checkpoint(spec))


__all__ = ["EMBEDDED", "EMBEDDED_BASE", "Student", "TransformersStudent", "load_student", "resolve_checkpoint"]

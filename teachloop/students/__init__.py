"""Students: load or build a model; generate answers; train it with TRL."""

from __future__ import annotations

from pathlib import Path

from teachloop.errors import TeachloopError
from teachloop.students.student import Student

EMBEDDED_BASE = Path(__file__).parent / "assets" / "skillworld-base"


def resolve_student_path(spec: str) -> str:
    if spec == "embedded":
        if not (EMBEDDED_BASE / "config.json").exists():
            raise TeachloopError(
                f"the embedded base checkpoint is missing at {EMBEDDED_BASE}; rebuild it with `teachloop build-base`"
            )
        return str(EMBEDDED_BASE)
    return spec


def load_student(spec: str) -> Student:
    """'embedded', a local model folder, or (when online) a hub id."""
    path = resolve_student_path(spec)
    if Path(path).exists():
        return Student.load(path)
    if "/" in path and not path.startswith((".", "/")):
        return Student.load_pretrained(path)
    raise TeachloopError(f"student model {spec!r} is neither 'embedded', a model folder, nor a hub id")


__all__ = ["EMBEDDED_BASE", "Student", "load_student", "resolve_student_path"]

"""The student as a plug-in kind: `STUDENTS`, the classes a run can train (`student_backend`
in a run config, `--student-backend`), found through the `teachloop.students` entry points.

A student class subclasses `BaseStudent` and loads itself from a checkpoint: the base model
(`load_pretrained`, a folder that `resolve_checkpoint` made of `student_model`) or what an
iteration published over it (`load`, a full model or an adapter). The loop asks a loaded
student for replies, trains it in place (`train`, `train_preferences`) and saves it; the
transformers student (`students/hf/student.py`) is the built-in one. Importing this module
loads no model library."""

from __future__ import annotations

from typing import ClassVar

from pydantic import BaseModel

from teachloop.registry import Contract, Hook, NoOptions, Registry, check_component_class

STUDENT_CONTRACT = Contract(
    kind="student",
    required=(
        Hook("load_pretrained", "a classmethod: the base model from a local folder", params=("name_or_path",)),
        Hook(
            "load",
            "a classmethod: a checkpoint an iteration published (a model, or an adapter over `base`)",
            params=("path", "base"),
        ),
        Hook("reply", "greedy replies to prompts, each with whether it hit the token limit", params=("prompts",)),
        Hook("train", "supervised fine-tuning on examples, in place", params=("data", "cfg")),
        Hook("train_preferences", "preference training on examples with a rejected answer", params=("pairs", "cfg")),
        Hook("save", "writes the student to a folder `load` reads", params=("path",)),
    ),
)

STUDENTS = Registry.of(
    "student",
    option_flag="--student-backend NAME, or student_backend: in a config (the model: --student-model)",
    contract=STUDENT_CONTRACT,
)


class BaseStudent:
    """What a registered student class subclasses: `kind`, its settings as `Options` (none
    for the transformers student: a model's settings come with its checkpoint), and the
    members `STUDENT_CONTRACT` lists."""

    kind: ClassVar[str] = "student"
    Options: ClassVar[type[BaseModel]] = NoOptions


def student_class(name: str) -> type[BaseStudent]:
    """The student class registered as `name`, checked against the contract."""
    factory = STUDENTS.load(name)
    check_component_class(factory, STUDENT_CONTRACT, name)
    cls: type[BaseStudent] = factory
    return cls

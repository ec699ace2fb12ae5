"""Data-generation engines: DataPlan -> verified, de-duplicated, decontaminated examples,
found by name through the `teachloop.engines` entry points."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from teachloop.agents.engines.base import ENGINE_CONTRACT, BaseEngine, Engine
from teachloop.agents.engines.programmatic import ProgrammaticEngine
from teachloop.registry import Registry

if TYPE_CHECKING:
    from teachloop.agents.teacher import TeacherLLM

ENGINES = Registry.of(
    "engine",
    option_flag="--engine-option KEY=VALUE, or engine_options: in a config; the llm engine's verify and "
    "answer_samples also as --verify, --answer-samples",
    contract=ENGINE_CONTRACT,
)


def get_engine(name: str, teacher: TeacherLLM | None = None, progress: bool = False, **options: Any) -> Engine:
    """The engine registered as `name`, built from its validated `options` with the run's
    teacher (None without one) and progress switch."""
    engine: Engine = ENGINES.build(name, options, teacher=teacher, progress=progress)
    return engine


__all__ = [
    "ENGINES",
    "ENGINE_CONTRACT",
    "BaseEngine",
    "Engine",
    "ProgrammaticEngine",
    "get_engine",
]

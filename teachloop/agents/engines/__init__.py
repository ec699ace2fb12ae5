"""Data-generation engines: DataPlan -> verified, de-duplicated, decontaminated examples."""

from __future__ import annotations

from typing import TYPE_CHECKING

from teachloop import plugins
from teachloop.agents.engines.base import ENGINE_CONTRACT, Engine
from teachloop.agents.engines.programmatic import ProgrammaticEngine
from teachloop.errors import ConfigError

if TYPE_CHECKING:
    from teachloop.agents.llm import TeacherLLM

ENGINES = ("programmatic", "llm")


def get_engine(
    name: str, teacher: TeacherLLM | None = None, verify: str = "auto", progress: bool = False, answer_samples: int = 1
) -> Engine:
    """`auto` is the LLM engine when a teacher is configured, else the programmatic one."""
    if name == "auto":
        name = "llm" if teacher is not None else "programmatic"
    engine: Engine
    if name == "programmatic":
        engine = ProgrammaticEngine(progress=progress)
    elif name == "llm":
        if teacher is None:
            raise ConfigError("the llm engine needs a teacher: pass --teacher vllm:<model> or openai:<model>")
        from teachloop.agents.engines.llm import LLMEngine

        engine = LLMEngine(teacher, verify=verify, progress=progress, answer_samples=answer_samples)  # type: ignore[arg-type]
    else:
        raise ConfigError(f"unknown engine {name!r}; available: auto, {', '.join(ENGINES)}")
    plugins.check_component(engine, ENGINE_CONTRACT, name)
    return engine


__all__ = ["ENGINES", "ENGINE_CONTRACT", "Engine", "ProgrammaticEngine", "get_engine"]

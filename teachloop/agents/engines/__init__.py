"""Data-generation engines: DataPlan -> verified, de-duplicated, decontaminated examples,
found by name through the `teachloop.engines` entry points."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from teachloop.agents.engines.base import ENGINE_CONTRACT, Engine
from teachloop.agents.engines.programmatic import ProgrammaticEngine
from teachloop.errors import ConfigError, PluginError
from teachloop.registry import Registry

if TYPE_CHECKING:
    from teachloop.agents.llm import TeacherLLM

ENGINES = Registry(
    kind="engine",
    group="teachloop.engines",
    command="engines",
    option_flag="verify: and answer_samples: in a config (--verify, --answer-samples)",
    contract=ENGINE_CONTRACT,
)


def get_engine(name: str, teacher: TeacherLLM | None = None, progress: bool = False, **options: Any) -> Engine:
    """The engine registered as `name`, built from its validated `options`; `auto` is the
    LLM engine when a teacher is configured, else the programmatic one."""
    if name == "auto":
        name = "llm" if teacher is not None else "programmatic"
    try:
        engine: Engine = ENGINES.build(name, options, teacher=teacher, progress=progress)
    except PluginError as exc:
        if name in ENGINES.names():
            raise
        raise ConfigError(f"unknown engine {name!r}; available: auto, {', '.join(ENGINES.names())}") from exc
    return engine


__all__ = ["ENGINES", "ENGINE_CONTRACT", "Engine", "ProgrammaticEngine", "get_engine"]

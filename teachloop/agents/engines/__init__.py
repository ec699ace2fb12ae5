"""Data-generation engines: DataPlan -> verified, de-duplicated, decontaminated examples."""

from __future__ import annotations

from teachloop.agents.engines.base import Engine
from teachloop.agents.engines.programmatic import ProgrammaticEngine
from teachloop.errors import ConfigError

ENGINES = {"programmatic": ProgrammaticEngine}


def get_engine(name: str, progress: bool = False) -> Engine:
    if name not in ENGINES:
        raise ConfigError(f"unknown engine {name!r}; available: {', '.join(sorted(ENGINES))}")
    return ENGINES[name](progress=progress)


__all__ = ["ENGINES", "Engine", "ProgrammaticEngine", "get_engine"]

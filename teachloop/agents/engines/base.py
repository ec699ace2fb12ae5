"""The Engine protocol: turns a DataPlan into verified, de-duplicated, decontaminated data."""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from teachloop.environments.base import Environment
from teachloop.registry import Contract, Hook
from teachloop.types import DataPlan, GenerationContext, GenerationResult


@runtime_checkable
class Engine(Protocol):
    """Serves a DataPlan's generation requests for an environment. What an engine needs of
    the environment is the environment's declared capabilities (`generate`, `check`,
    `make_example`), never found by trial at run time."""

    name: str

    def generate(self, plan: DataPlan, env: Environment, ctx: GenerationContext) -> GenerationResult: ...


ENGINE_CONTRACT = Contract(
    kind="engine",
    required=(
        Hook("name", "the engine's name", value_type=str),
        Hook("generate", "serves a DataPlan -> GenerationResult", params=("plan", "env", "ctx")),
    ),
)

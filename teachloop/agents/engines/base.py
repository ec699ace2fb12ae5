"""The Engine protocol: turns a DataPlan into verified, de-duplicated, decontaminated data."""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from teachloop.environments.base import Environment
from teachloop.types import DataPlan, GenerationContext, GenerationResult


@runtime_checkable
class Engine(Protocol):
    name: str

    def generate(self, plan: DataPlan, env: Environment, ctx: GenerationContext) -> GenerationResult:
        ...

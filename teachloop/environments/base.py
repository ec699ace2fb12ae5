"""The Environment protocol: a task with splits, a skill tree and a scorer."""

from __future__ import annotations

import random
from typing import Protocol, runtime_checkable

from teachloop.skills.tree import SkillTree
from teachloop.types import Attempt, Example


@runtime_checkable
class Environment(Protocol):
    name: str
    skills: SkillTree

    def train_pool(self) -> list[Example]:
        """The seed training data (what the student may learn from before any teacher data)."""
        ...

    def eval_set(self) -> list[Example]:
        """The held-out items the student is scored on every iteration."""
        ...

    def score(self, example: Example, response: str) -> Attempt:
        """Score one student response against the example's reference."""
        ...


@runtime_checkable
class ProgrammaticEnvironment(Environment, Protocol):
    """An environment that can also synthesise fresh examples of a skill itself."""

    def generate(self, skill: str, n: int, rng: random.Random) -> list[Example]:
        ...


def exact_attempt(example: Example, response: str) -> Attempt:
    """Attempt scored by exact match of the stripped response and reference."""
    correct = response.strip() == example.answer.strip()
    return Attempt(
        example_id=example.id,
        prompt=example.prompt,
        response=response,
        reference=example.answer,
        correct=correct,
        score=float(correct),
        skills=list(example.skills),
    )

"""The Environment protocol: a task with splits, a skill tree and a scorer."""

from __future__ import annotations

import random
from collections.abc import Callable
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
    return scored_attempt(example, response, response.strip() == example.answer.strip())


def scored_attempt(example: Example, response: str, correct: bool) -> Attempt:
    """The Attempt for a response an environment's scorer judged `correct` or not."""
    return Attempt(
        example_id=example.id,
        prompt=example.prompt,
        response=response,
        reference=example.answer,
        correct=correct,
        score=float(correct),
        skills=list(example.skills),
    )


DEFAULT_ANSWER_TOKENS = 16


def answer_tokens(env: Environment) -> int:
    """How many new tokens a student needs to answer this environment's items: its
    `answer_tokens` attribute (reasoning and code need hundreds), else a short-answer default."""
    if isinstance(env, RelabelledEnvironment):
        return answer_tokens(env.inner)
    value = getattr(env, "answer_tokens", DEFAULT_ANSWER_TOKENS)
    return int(value)


def checker_of(env: Environment) -> Callable[[Example], bool] | None:
    """The environment's answer checker (`check(example) -> bool`), if it has one."""
    if isinstance(env, RelabelledEnvironment):
        return checker_of(env.inner)
    check = getattr(env, "check", None)
    return check if callable(check) else None


def to_example(env: Environment, question: str, answer: str, skills: list[str]) -> Example:
    """A teacher-written (question, answer) in the environment's own prompt format."""
    make = getattr(env, "make_example", None)
    if callable(make):
        return make(question, answer, skills)
    return Example(prompt=question, answer=answer, skills=skills)


class RelabelledEnvironment:
    """An environment seen through a discovered skill tree: same items, new skill labels."""

    def __init__(self, inner: Environment, tree: SkillTree, labels: dict[str, list[str]]) -> None:
        self.inner = inner
        self.name = inner.name
        self.skills = tree
        self.labels = labels

    def _relabel(self, examples: list[Example]) -> list[Example]:
        return [ex.model_copy(update={"skills": self.labels.get(ex.id, [])}) for ex in examples]

    def eval_set(self) -> list[Example]:
        return self._relabel(self.inner.eval_set())

    def train_pool(self) -> list[Example]:
        return self._relabel(self.inner.train_pool())

    def score(self, example: Example, response: str) -> Attempt:
        return self.inner.score(example, response)

    def make_example(self, question: str, answer: str, skills: list[str]) -> Example:
        return to_example(self.inner, question, answer, skills)

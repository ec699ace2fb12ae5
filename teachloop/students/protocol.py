"""The Student protocol: what the loop needs of a student, whatever implements it."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Protocol, runtime_checkable

from teachloop.students.base import Reply
from teachloop.students.probe import PROBE_LEARNING_RATE, LoopProbe
from teachloop.types import Example, TrainConfig

if TYPE_CHECKING:
    from teachloop.environments.base import Environment


@runtime_checkable
class Student(Protocol):
    """What the loop needs of a student. Prompts are plain task prompts: a student renders
    them for its model (chat template) the same way for answering, training and probing."""

    source: str

    def answer(
        self, prompts: Sequence[str], max_new_tokens: int = 16, progress: bool = False, stop: Sequence[str] = ()
    ) -> list[str]:
        """Greedy answers, one per prompt, each cut before the first of the `stop` strings."""
        ...

    def reply(
        self, prompts: Sequence[str], max_new_tokens: int = 16, progress: bool = False, stop: Sequence[str] = ()
    ) -> list[Reply]:
        """The answers with whether each hit the token limit."""
        ...

    def train(
        self,
        data: Sequence[Example],
        cfg: TrainConfig,
        seed: int = 0,
        progress: bool = False,
        workdir: Path | None = None,
    ) -> Student:
        """Supervised fine-tuning on (prompt, answer) examples, in place."""
        ...

    def train_preferences(
        self,
        pairs: Sequence[Example],
        cfg: TrainConfig,
        seed: int = 0,
        progress: bool = False,
        workdir: Path | None = None,
    ) -> Student:
        """Preference training (DPO) on examples that carry a `rejected` answer, in place."""
        ...

    def save(self, path: str | Path) -> None: ...

    @classmethod
    def load(cls, path: str | Path, base: str | None = None) -> Student: ...

    def probe(self, env: Environment, max_new_tokens: int, learning_rate: float = PROBE_LEARNING_RATE) -> LoopProbe:
        """What a policy may ask this student (answers, samples, influence)."""
        ...

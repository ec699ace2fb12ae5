"""The Policy protocol (DataEnvGym's data-generation policy) and shared helpers."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Protocol, runtime_checkable

from teachloop.types import Attempt, DataPlan, Example, Selection, TeacherState


@runtime_checkable
class Policy(Protocol):
    """Reads the teacher state (feedback, history, budget) and decides what data to make.

    A policy is constructed with keyword options from the run config
    (`policy_options:`) and must be a pure function of the state it is given:
    anything it wants to remember goes into `DataPlan.policy_state`, which the
    loop stores and hands back as `TeacherState.policy_state` next iteration, so
    resumed runs plan exactly as uninterrupted ones.

    Optional members the loop looks for:
    - `needs_pool_attempts = True`: the loop scores the student on the seed pool and
      passes the attempts in `TeacherState.pool_attempts` (LLM2LLM).
    - `select(candidates, state) -> Selection | list[Example]` (see `SelectingPolicy`):
      called after generation with the engine's verified examples; returns what is trained
      on (at most the budget). Use it to over-generate and keep the most helpful
      (`state.probe.influence`), or to turn examples into preference pairs
      (`state.probe.answer`).
    - `uses_teacher = True`: the policy is built around the LLM teacher (it asks
      `state.teacher` itself, or relies on the teacher writing its requests) and falls back
      to a programmatic stand-in without one; benchmarks label such runs.
    """

    name: str

    def plan(self, state: TeacherState) -> DataPlan:
        ...


@runtime_checkable
class SelectingPolicy(Policy, Protocol):
    """A policy that also chooses, after generation, what of the candidates is trained on."""

    def select(self, candidates: list[Example], state: TeacherState) -> Selection | list[Example]:
        ...


@runtime_checkable
class StudentProbe(Protocol):
    """The current student, as a policy may query it (`TeacherState.probe`)."""

    def answer(self, prompts: list[str]) -> list[str]:
        """Greedy answers."""
        ...

    def sample(self, prompts: list[str], n: int, temperature: float = 1.0) -> list[list[str]]:
        """n sampled answers per prompt (for consistency-based hard-item detection)."""
        ...

    def score(self, examples: list[Example]) -> list[Attempt]:
        """Greedy answers scored by the environment's scorer."""
        ...

    def influence(self, candidates: list[Example], reference: list[Example]) -> list[float]:
        """Local data influence (Montessori-Instruct): for each candidate alone, one optimizer
        step on it, then the change of the mean loss on `reference` (negative = helpful).
        The student itself is left unchanged."""
        ...


def allocate(budget: int, weights: Mapping[str, float]) -> dict[str, int]:
    """Split an integer budget in proportion to non-negative weights (largest remainder).

    Ties in the remainders go to the skill listed first; the result sums to `budget`
    whenever any weight is positive.
    """
    positive = {k: w for k, w in weights.items() if w > 0}
    total = sum(positive.values())
    if budget <= 0 or total <= 0:
        return {k: 0 for k in weights}
    exact = {k: budget * w / total for k, w in positive.items()}
    counts = {k: math.floor(v) for k, v in exact.items()}
    order = sorted(positive, key=lambda k: -(exact[k] - counts[k]))
    for k in order[: budget - sum(counts.values())]:
        counts[k] += 1
    return {k: counts.get(k, 0) for k in weights}

"""The Policy protocol (DataEnvGym's data-generation policy) and shared helpers."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any, Literal, Protocol, runtime_checkable

from teachloop.agents.state import TeacherState
from teachloop.registry import Component, Contract, Hook
from teachloop.types import Attempt, DataPlan, Example, Selection, TeachMode


@runtime_checkable
class Policy(Protocol):
    """Reads the teacher state (feedback, history, budget) and decides what data to make.

    A policy declares its options as a pydantic model in the class attribute `Options`;
    teachloop validates the run's `policy_options` with it and builds the policy with every
    field as a keyword argument. It must be a pure function of the state it is given:
    anything it wants to remember goes into `DataPlan.policy_state`, which the
    loop stores and hands back as `TeacherState.policy_state` next iteration, so
    resumed runs plan exactly as uninterrupted ones.

    Optional capabilities, each declared by a protocol below and checked when the policy
    is loaded (`POLICY_CONTRACT`: a misspelt hook such as `selct` is an error):
    - `needs_pool_attempts = True` (`PoolAttemptsPolicy`): the loop scores the student on
      the seed pool and passes the attempts in `TeacherState.pool_attempts` (LLM2LLM).
    - `select(candidates, state) -> Selection | list[Example]` (`SelectingPolicy`):
      called after generation with the engine's verified examples; returns what is trained
      on (at most the budget). Use it to over-generate and keep the most helpful
      (`state.probe.influence`), or to turn examples into preference pairs by setting
      `Example.rejected` (`state.probe.answer`), trained with DPO.
    - `uses_teacher = True` (`TeacherPolicy`): the policy is built around the LLM teacher (it
      asks `state.teacher` itself, or relies on the teacher writing its requests) and falls
      back to a programmatic stand-in without one; benchmarks label such runs.
    - `pool_only = True` (`PoolOnlyPolicy`): its plans only draw from the seed pool, so it
      needs neither a generator nor a teacher (checked before a run starts).
    """

    name: str

    def plan(self, state: TeacherState) -> DataPlan: ...


@runtime_checkable
class SelectingPolicy(Policy, Protocol):
    """A policy that also chooses, after generation, what of the candidates is trained on."""

    def select(self, candidates: list[Example], state: TeacherState) -> Selection | list[Example]: ...


@runtime_checkable
class PoolAttemptsPolicy(Protocol):
    """Wants the student's scored answers on the seed pool (`TeacherState.pool_attempts`)."""

    needs_pool_attempts: bool


@runtime_checkable
class TeacherPolicy(Protocol):
    """Built around the LLM teacher; without one it runs a programmatic stand-in."""

    uses_teacher: bool


@runtime_checkable
class PoolOnlyPolicy(Protocol):
    """Plans only draws from the seed pool: needs neither a generator nor a teacher."""

    pool_only: bool


@runtime_checkable
class ModelsPolicy(Protocol):
    """Names models of its own (delta's chosen and rejected): the loop starts each before
    anything is spent and hands them over through `TeacherState.models`."""

    def teacher_models(self) -> dict[str, Any]:
        """role -> TeacherConfig of every model the policy will ask."""
        ...


def needs_pool_attempts(policy: object) -> bool:
    return isinstance(policy, PoolAttemptsPolicy) and policy.needs_pool_attempts is True


def uses_teacher(policy: object) -> bool:
    """For a policy or its class (benchmarks ask before building one)."""
    return isinstance(policy, TeacherPolicy) and policy.uses_teacher is True


def pool_only(policy: object) -> bool:
    return isinstance(policy, PoolOnlyPolicy) and policy.pool_only is True


POLICY_CONTRACT = Contract(
    kind="policy",
    required=(
        Hook("name", "the name it is registered under", value_type=str),
        Hook("plan", "reads the teacher state and returns a DataPlan", params=("state",)),
    ),
    optional=(
        Hook(
            "select",
            "chooses, after generation, what is trained on: over-generate and keep, or preference pairs",
            protocol=SelectingPolicy,
            params=("candidates", "state"),
        ),
        Hook(
            "needs_pool_attempts",
            "the loop scores the student on the seed pool first (state.pool_attempts)",
            protocol=PoolAttemptsPolicy,
            value_type=bool,
        ),
        Hook(
            "uses_teacher",
            "built around the LLM teacher; a programmatic stand-in without one",
            protocol=TeacherPolicy,
            value_type=bool,
        ),
        Hook(
            "teacher_models",
            "names models of its own (role -> TeacherConfig), started before the first evaluation",
            protocol=ModelsPolicy,
            params=(),
        ),
        Hook(
            "pool_only",
            "only draws from the seed pool: needs neither a generator nor a teacher",
            protocol=PoolOnlyPolicy,
            value_type=bool,
        ),
    ),
)


class BasePolicy(Component):
    """What a registered policy subclasses: `name`, a docstring, `Options` (validated once,
    `self.options`) and `plan(state)`; the optional hooks are listed in `POLICY_CONTRACT`."""

    kind = "policy"


# A policy option (`teach: TeachOption = "auto"` in its `Options`) that chooses how its plans
# teach (`DataPlan.teach`); the run checks before spending that a distilling plan has a
# teacher whose weights are at hand.
TeachOption = Literal["auto", TeachMode]
TEACH_HELP = (
    "how the student learns from the plan's data: write: SFT on the examples; distill: on-policy distillation "
    "on their prompts (the student samples, the teacher scores its tokens; needs --teacher vllm:<model>); "
    "both: SFT, then distillation on the new prompts; auto: the run's train.objective"
)


def policy_teach(policy: Any) -> TeachMode | None:
    """How `policy`'s plans teach when its `teach` option fixes it; None: as the run's
    `train.objective` says (also for policies without the option)."""
    teach = getattr(getattr(policy, "options", None), "teach", "auto")
    return None if teach == "auto" else teach


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

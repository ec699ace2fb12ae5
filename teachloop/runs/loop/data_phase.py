"""DataPhase: what one iteration trains on, from its plan. The engine serves the plan's
requests, the pool draws of the plan join them as candidates, a selecting policy keeps what
it wants of those (or turns them into preference pairs), and the result is clipped to the
budget so every policy of a benchmark trains on at most as many examples as it was given."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Any

from pydantic import BaseModel, Field

from teachloop.agents.engines import Engine
from teachloop.agents.engines.pool import draw_from_pool
from teachloop.agents.policies import Policy, SelectingPolicy
from teachloop.agents.state import TeacherState
from teachloop.environments import Environment
from teachloop.types import DataPlan, DataYield, Example, GenerationContext, Rejected, Selection


class DataOutcome(BaseModel):
    """An iteration's data: what trains, what was rejected and why, what could not be made."""

    examples: list[Example]
    rejected: list[Rejected]
    shortfall: dict[str, int]
    data_yield: DataYield
    candidates: list[Example] | None = None  # a selecting policy's, scored where it scores them
    teacher_pairs: list[dict[str, Any]] = Field(default_factory=list)


class DataPhase:
    def __init__(self, engine: Engine, policy: Policy, env: Environment, budget: int, seed: int) -> None:
        self.engine = engine
        self.policy = policy
        self.env = env
        self.budget = budget
        self.seed = seed

    def run(
        self,
        plan: DataPlan,
        ctx: GenerationContext,
        state: Callable[[], TeacherState],
        work: Callable[[], AbstractContextManager[Any]],
    ) -> DataOutcome:
        """`state`: the policy's view of the iteration (asked only by a selecting policy);
        `work`: the context that times generation and selection as the phase's work."""
        with work():
            result = self.engine.generate(plan, self.env, ctx)
        data_yield = result.data_yield(asked=plan.total_requested, allocation=plan.allocation())
        # the pool's draws are candidates too: a selecting policy may turn them into pairs (delta)
        examples = result.examples + draw_from_pool(plan, self.env.train_pool(), self.seed)
        candidates, teacher_pairs = None, []
        if isinstance(self.policy, SelectingPolicy):  # over-generate-and-keep, or preference pairs
            view = state()
            with work():  # probing the student (influence, own answers) is data work
                selection = self.policy.select(examples, view)
            if not isinstance(selection, Selection):
                selection = Selection(kept=selection)
            candidates, teacher_pairs = selection.scored or examples, selection.teacher_pairs
            examples = selection.kept
        rejected = list(result.rejected)
        if len(examples) > self.budget:  # equal budgets: never train on more than asked
            rejected += [Rejected(example=ex, reason="over budget") for ex in examples[self.budget :]]
            examples = examples[: self.budget]
        return DataOutcome(
            examples=examples,
            rejected=rejected,
            shortfall=result.shortfall,
            data_yield=data_yield,
            candidates=candidates,
            teacher_pairs=teacher_pairs,
        )

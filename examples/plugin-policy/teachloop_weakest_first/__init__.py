"""`weakest-first`: every iteration, the whole budget goes to the k weakest leaf skills.

A complete teachloop policy plug-in. teachloop finds it through the entry point
`weakest-first` in the `teachloop.policies` group (see pyproject.toml), validates the
run's `policy_options` (`policy_options: {k: 3}`, or `--policy-option k=3`) with its
`Options` model and builds it from the validated instance (`self.options`): subclassing
`Component` is all it takes, so the options are declared in one place.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from teachloop.agents.policies import BasePolicy, allocate
from teachloop.agents.state import TeacherState
from teachloop.types import DataPlan, GenerationRequest

__all__ = ["WeakestFirstOptions", "WeakestFirstPolicy"]


class WeakestFirstOptions(BaseModel):
    """`weakest-first`'s options: types, defaults and help that `teachloop policies show` prints."""

    model_config = ConfigDict(extra="forbid")

    k: int = Field(default=2, ge=1, description="how many of the weakest skills share the budget")


class WeakestFirstPolicy(BasePolicy):
    """Every iteration, the whole budget goes to the k weakest leaf skills."""

    name = "weakest-first"
    # a bad option (k=0, k=many, K=3) is a one-line `error: ...` before the run starts
    Options = WeakestFirstOptions
    options: WeakestFirstOptions

    def plan(self, state: TeacherState) -> DataPlan:
        accuracy = state.feedback.skill_accuracy
        measured = [s for s in state.skill_tree.leaves() if s in accuracy]
        # lowest accuracy first; ties keep the skill tree's order (sorted() is stable)
        targets = sorted(measured, key=lambda s: accuracy[s])[: self.options.k]
        counts = allocate(state.budget, {skill: 1.0 for skill in targets})
        # policy_state is the policy's memory: the loop stores it with the plan and hands it
        # back next iteration, so a resumed run sees exactly what an uninterrupted one saw
        rounds = dict(state.policy_state.get("rounds", {}))
        for skill in targets:
            rounds[skill] = rounds.get(skill, 0) + 1
        return DataPlan(
            policy=self.name,
            iteration=state.iteration,
            requests=[GenerationRequest(skill=s, count=counts[s]) for s in targets if counts[s]],
            rationale="weakest skills: " + ", ".join(f"{s} ({accuracy[s]:.2f})" for s in targets),
            policy_state={"rounds": rounds},
        )

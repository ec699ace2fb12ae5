"""`weakest-first`: every iteration, the whole budget goes to the k weakest leaf skills.

A complete teachloop policy plug-in. teachloop finds it through the entry point
`weakest-first` in the `teachloop.policies` group (see pyproject.toml) and builds it
with the run's `policy_options` as keyword arguments (`policy_options: {k: 3}`).
"""

from __future__ import annotations

from teachloop.agents.policies import allocate
from teachloop.errors import ConfigError
from teachloop.types import DataPlan, GenerationRequest, TeacherState

__all__ = ["WeakestFirstPolicy"]


class WeakestFirstPolicy:
    name = "weakest-first"

    def __init__(self, k: int = 2) -> None:
        # a ConfigError reaches the user as a one-line `error: ...`, before the run starts
        if k < 1:
            raise ConfigError(f"weakest-first: k must be >= 1, got {k}")
        self.k = k

    def plan(self, state: TeacherState) -> DataPlan:
        accuracy = state.feedback.skill_accuracy
        measured = [s for s in state.skill_tree.leaves() if s in accuracy]
        # lowest accuracy first; ties keep the skill tree's order (sorted() is stable)
        targets = sorted(measured, key=lambda s: accuracy[s])[: self.k]
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

"""`uniform`: the same budget spread evenly over every leaf skill (the baseline)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

from teachloop.agents.policies.base import BasePolicy, allocate
from teachloop.agents.state import TeacherState
from teachloop.types import DataPlan, GenerationRequest


class UniformOptions(BaseModel):
    """`uniform` takes no options."""

    model_config = ConfigDict(extra="forbid")


class UniformPolicy(BasePolicy):
    """The same budget spread evenly over every leaf skill (the baseline)."""

    name = "uniform"
    Options = UniformOptions
    options: UniformOptions

    def plan(self, state: TeacherState) -> DataPlan:
        leaves = state.skill_tree.leaves()
        # rotate the start so the remainder does not always favour the same skills
        shift = state.iteration % len(leaves) if leaves else 0
        order = leaves[shift:] + leaves[:shift]
        counts = allocate(state.budget, {skill: 1.0 for skill in order})
        return DataPlan(
            policy=self.name,
            iteration=state.iteration,
            requests=[GenerationRequest(skill=s, count=c) for s in leaves if (c := counts[s])],
            rationale=f"{state.budget} examples spread evenly over {len(leaves)} skills",
        )

"""`stat-syn`: STAT-Syn (Skill-Targeted Adaptive Training, arXiv 2510.10023).

The budget goes to the skills in proportion to the Missing-Skill-Profile c(s): how
many of the student's failed eval items were missing skill s. Each request carries a
few pool examples of that skill as references, so an LLM engine can write new
questions "that exercise s at similar difficulty"; the programmatic engine uses its
generator for s. When nothing is missing, the budget is spread evenly. STAT's "no trivial
renames or number swaps" is the LLM engine's to say, for open tasks only: on a
format-bound task a new input is exactly what a new item is.
`floor` (0..1) reserves a share of the budget for an even spread over all skills,
which guards against forgetting skills that currently look solved.
"""

from __future__ import annotations

import random

from pydantic import BaseModel, ConfigDict, Field

from teachloop.agents.policies.base import TEACH_HELP, BasePolicy, TeachOption, allocate, policy_teach
from teachloop.agents.policies.common import pick, pool_index
from teachloop.agents.state import TeacherState
from teachloop.skills.tree import SkillTree
from teachloop.types import DataPlan, Example, GenerationRequest

INSTRUCTIONS = (
    "Write new questions that exercise the skill '{skill}' ({description}) at a difficulty similar "
    "to the references, not copies of them."
)


class StatSynOptions(BaseModel):
    """`stat-syn`'s options."""

    model_config = ConfigDict(extra="forbid")

    floor: float = Field(default=0.0, ge=0, le=1, description="share of the budget spread evenly over all skills")
    exemplars: int = Field(default=3, ge=0, description="pool examples of the skill shown with each request")
    teach: TeachOption = Field(default="auto", description=TEACH_HELP)


class StatSynPolicy(BasePolicy):
    """STAT-Syn: new data per skill in proportion to the Missing-Skill-Profile."""

    name = "stat-syn"
    Options = StatSynOptions
    options: StatSynOptions

    def plan(self, state: TeacherState) -> DataPlan:
        tree = state.skill_tree
        leaves = tree.leaves()
        shares = {s: 0.0 for s in leaves}
        for skill, share in state.feedback.profile.shares().items():
            for leaf in tree.leaves_under(skill) if skill in tree else []:
                shares[leaf] += share / len(tree.leaves_under(skill))
        if not any(shares.values()):
            shares = {s: 1.0 for s in leaves}
            rationale = "no missing skills: even spread"
        else:
            rationale = "budget in proportion to the Missing-Skill-Profile " + ", ".join(
                f"{s}={c}" for s, c in state.feedback.profile.counts.items()
            )
        weights = {s: (1 - self.options.floor) * shares[s] + self.options.floor / len(leaves) for s in leaves}
        counts = allocate(state.budget, weights)
        rng = random.Random(f"{state.seed}:{state.iteration}:stat-syn")
        requests = skill_requests(counts, tree, pool_index(state.pool), self.options.exemplars, rng)
        return DataPlan(
            policy=self.name,
            iteration=state.iteration,
            requests=requests,
            rationale=rationale,
            teach=policy_teach(self),
        )


def skill_requests(
    counts: dict[str, int], tree: SkillTree, index: dict[str, list[Example]], exemplars: int, rng: random.Random
) -> list[GenerationRequest]:
    """STAT-Syn's requests: per skill with a count, its instructions and `exemplars` pool items of it."""
    return [
        GenerationRequest(
            skill=skill,
            count=count,
            instructions=INSTRUCTIONS.format(skill=skill, description=tree.description(skill)),
            exemplars=pick(index.get(skill, []), exemplars, rng),
        )
        for skill, count in counts.items()
        if count
    ]

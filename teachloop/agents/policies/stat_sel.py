"""`stat-sel`: STAT-Sel (Skill-Targeted Adaptive Training, arXiv 2510.10023).

Selection instead of synthesis: the budget is drawn from the seed pool, weighted towards
the items that exercise the skills the student is missing. STAT draws, for each hard
question and each skill s it is missing, k pool questions that carry s; the expected
weight of pool item p is therefore

    w(p) = Σ_s c(s) · k / |pool(s)| · [p has s]

with c(s) the Missing-Skill-Profile histogram and pool(s) the pool items labelled with s
(or with a skill under s, when s is a group of the skill tree). The plan carries these
weights (pool example id -> expected draws; items left out weigh nothing) and
`pool_samples = budget`; the loop draws the items. With an empty profile (or none of
its skills in the pool) every pool item weighs the same.
"""

from __future__ import annotations

from collections.abc import Mapping

from pydantic import BaseModel, ConfigDict, Field

from teachloop.agents.policies.base import BasePolicy
from teachloop.agents.policies.common import pool_index
from teachloop.agents.state import TeacherState
from teachloop.skills.tree import SkillTree
from teachloop.types import DataPlan, Example


class StatSelOptions(BaseModel):
    """`stat-sel`'s options."""

    model_config = ConfigDict(extra="forbid")

    k: int = Field(default=3, ge=1, description="pool items drawn per (failed item, missing skill), as in STAT")


class StatSelPolicy(BasePolicy):
    """STAT-Sel: the budget drawn from the seed pool, weighted towards the missing skills."""

    name = "stat-sel"
    Options = StatSelOptions
    options: StatSelOptions
    pool_only = True

    def plan(self, state: TeacherState) -> DataPlan:
        counts = state.feedback.profile.counts
        weights = expected_weights(state.pool, counts, state.skill_tree, self.options.k)
        if weights:
            rationale = f"seed pool reweighted by the Missing-Skill-Profile (k={self.options.k}): " + ", ".join(
                f"{s}={c}" for s, c in counts.items()
            )
        else:
            weights = {ex.id: 1.0 for ex in state.pool}
            rationale = "no missing skill found in the pool: uniform weights"
        return DataPlan(
            policy=self.name,
            iteration=state.iteration,
            pool_samples=state.budget,
            weights=weights or None,
            rationale=rationale,
        )


def expected_weights(pool: list[Example], counts: Mapping[str, int], tree: SkillTree, k: int) -> dict[str, float]:
    """STAT-Sel's expected number of draws per pool item (only items with a positive weight)."""
    index = pool_index(pool)
    weights: dict[str, float] = {}
    for skill, count in counts.items():
        carriers = _carriers(index, tree, skill)
        if count <= 0 or not carriers:
            continue
        share = count * k / len(carriers)
        for example_id in carriers:
            weights[example_id] = weights.get(example_id, 0.0) + share
    return {ex.id: weights[ex.id] for ex in pool if ex.id in weights}


def _carriers(index: Mapping[str, list[Example]], tree: SkillTree, skill: str) -> list[str]:
    """Ids of the pool items that have `skill`, or a skill below it in the tree."""
    members = [skill, *sorted(tree.descendants(skill))] if skill in tree else [skill]
    return list(dict.fromkeys(ex.id for member in members for ex in index.get(member, [])))

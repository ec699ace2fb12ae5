"""`llm2llm`: LLM2LLM (Lee et al., "LLM2LLM: Boosting LLMs with Novel Iterative Data
Enhancement", ACL Findings 2024).

Each iteration the loop scores the current student on the seed pool
(`needs_pool_attempts`); the policy takes the seed items it still gets wrong and asks
the teacher for new examples like each of them (new names, words and numbers, same task
and format), with the seed item as the only exemplar and as the lineage parent. Only
seed items are augmented, never generated ones: attempts on anything that is not in
`state.pool` are ignored. The budget is spread over the wrong items; with more wrong
items than budget, `budget` of them are drawn (seeded by run seed and iteration). When
the student gets every seed item right, the budget is spread evenly over the skills.
"""

from __future__ import annotations

import random

from pydantic import BaseModel, ConfigDict, Field

from teachloop.agents.policies.base import BasePolicy, allocate
from teachloop.agents.policies.common import even_requests
from teachloop.agents.state import TeacherState
from teachloop.skills.tree import SkillTree
from teachloop.types import DataPlan, Example, GenerationRequest

INSTRUCTIONS = (
    "Write a new example like this one, with new names/words/numbers: the same task, format and "
    "difficulty, not a copy, and a correct answer."
)


class LLM2LLMOptions(BaseModel):
    """`llm2llm`'s options."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    instructions: str = Field(
        default=INSTRUCTIONS, min_length=1, description="what the teacher is asked for each wrong seed item"
    )


class LLM2LLMPolicy(BasePolicy):
    """LLM2LLM: new examples like each seed item the student still gets wrong."""

    name = "llm2llm"
    Options = LLM2LLMOptions
    options: LLM2LLMOptions
    uses_teacher = True  # the teacher writes its examples (llm engine); without one, the generator does
    needs_pool_attempts = True

    def plan(self, state: TeacherState) -> DataPlan:
        wrong = wrong_seed_items(state)
        if not wrong:
            return DataPlan(
                policy=self.name,
                iteration=state.iteration,
                requests=even_requests(state),
                rationale="no seed item answered wrongly: even spread over the skills",
            )
        chosen = self._choose(wrong, state)
        counts = allocate(state.budget, {ex.id: 1.0 for ex in chosen})
        requests = [self._request(ex, counts[ex.id], state.skill_tree) for ex in chosen if counts[ex.id]]
        return DataPlan(
            policy=self.name,
            iteration=state.iteration,
            requests=requests,
            rationale=f"{len(wrong)} of {len(state.pool)} seed items answered wrongly; "
            f"augmenting {len(requests)} of them",
        )

    def _choose(self, wrong: list[Example], state: TeacherState) -> list[Example]:
        if len(wrong) <= state.budget:
            return wrong
        rng = random.Random(f"{state.seed}:{state.iteration}:llm2llm")
        keep = {ex.id for ex in rng.sample(wrong, state.budget)}
        return [ex for ex in wrong if ex.id in keep]

    def _request(self, seed_item: Example, count: int, tree: SkillTree) -> GenerationRequest:
        # the item's first skill the tree knows (engines only serve tree skills)
        skill = next((s for s in seed_item.skills if s in tree), None)
        return GenerationRequest(
            skill=skill,
            count=count,
            instructions=self.options.instructions,
            exemplars=[seed_item],
            parent_id=seed_item.id,
        )


def wrong_seed_items(state: TeacherState) -> list[Example]:
    """The seed-pool examples the student answered wrongly, in pool order, each once."""
    wrong_ids = {a.example_id for a in state.pool_attempts if not a.correct}
    unique = {ex.id: ex for ex in state.pool}
    return [ex for ex in unique.values() if ex.id in wrong_ids]

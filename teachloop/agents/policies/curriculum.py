"""`curriculum`: a mastery-based curriculum with difficulty levels — after TAPIR (Yue et al.,
"Distilling Instruction-following Abilities of Large Language Models with Task-aware
Curriculum Planning", 2024) and "Let GPT be a Math Tutor" (Liang et al., 2023).

Knowledge tracing keeps a mastery estimate per leaf skill in `policy_state`: an
exponential moving average of its evaluation accuracy (`alpha` weighs the newest
evaluation). Unmastered skills get the budget, in proportion to (1 - mastery); a skill
whose mastery reaches `threshold` keeps a small share (`floor`) and moves one difficulty
level up (`GenerationRequest.difficulty = level + 1`, at most `max_level`); a skill whose
mastery falls back under the threshold moves one level down. Level 0 is the task as
evaluated and is requested as `difficulty=None`, so environments without levels serve
the plan unchanged; the instructions also state the level for LLM engines.
"""

from __future__ import annotations

import random

from pydantic import BaseModel, ConfigDict, Field

from teachloop.agents.policies.base import BasePolicy, allocate
from teachloop.agents.policies.common import (
    even_counts,
    even_requests,
    exemplars_for,
    pool_index,
)
from teachloop.agents.state import TeacherState
from teachloop.skills.tree import SkillTree
from teachloop.types import DataPlan, GenerationRequest


class CurriculumOptions(BaseModel):
    """`curriculum`'s options."""

    model_config = ConfigDict(extra="forbid")

    threshold: float = Field(default=0.9, ge=0, le=1, description="mastery at which a skill moves a level up")
    alpha: float = Field(default=0.5, gt=0, le=1, description="weight of the newest evaluation in the mastery EMA")
    max_level: int = Field(default=3, ge=0, description="highest difficulty level requested")
    floor: float = Field(default=0.1, ge=0, le=1, description="weight of a mastered skill (unmastered: 1 - mastery)")
    exemplars: int = Field(default=3, ge=0, description="pool examples of the skill shown with each request")


class CurriculumPolicy(BasePolicy):
    """A mastery-based curriculum: unmastered skills get the budget, mastered ones move up a level."""

    name = "curriculum"
    Options = CurriculumOptions
    options: CurriculumOptions

    def plan(self, state: TeacherState) -> DataPlan:
        if not state.skill_tree.leaves():
            return DataPlan(policy=self.name, iteration=state.iteration, requests=even_requests(state))
        mastery = self.trace(state)
        levels = self.levels(state, mastery)
        counts = self.allocation(state, mastery)
        requests = self._requests(state, counts, levels)
        mastered = [s for s, m in mastery.items() if m >= self.options.threshold]
        return DataPlan(
            policy=self.name,
            iteration=state.iteration,
            requests=requests,
            rationale=f"mastered: {', '.join(f'{s}@L{levels[s]}' for s in mastered) or 'none'}; "
            + "mastery "
            + ", ".join(f"{s} {m:.2f}" for s, m in mastery.items()),
            policy_state={"mastery": mastery, "levels": levels},
        )

    def trace(self, state: TeacherState) -> dict[str, float]:
        """Mastery per leaf: EMA of the measured accuracy (the first measurement starts it)."""
        before: dict[str, float] = state.policy_state.get("mastery", {})
        measured = state.feedback.skill_accuracy
        mastery = {}
        for skill in state.skill_tree.leaves():
            old, new = before.get(skill), measured.get(skill)
            if new is None:
                mastery[skill] = old if old is not None else state.feedback.accuracy
            elif old is None:
                mastery[skill] = new
            else:
                mastery[skill] = (1 - self.options.alpha) * old + self.options.alpha * new
        return mastery

    def levels(self, state: TeacherState, mastery: dict[str, float]) -> dict[str, int]:
        """One level up for a mastered skill (up to max_level), one down for an unmastered one."""
        before: dict[str, int] = state.policy_state.get("levels", {})
        levels = {}
        for skill, m in mastery.items():
            level = int(before.get(skill, 0))
            levels[skill] = min(level + 1, self.options.max_level) if m >= self.options.threshold else max(level - 1, 0)
        return levels

    def allocation(self, state: TeacherState, mastery: dict[str, float]) -> dict[str, int]:
        """Unmastered skills ∝ (1 - mastery); mastered ones get `floor` each (or an even spread)."""
        weights = {
            s: self.options.floor if m >= self.options.threshold else max(1.0 - m, 1e-6) for s, m in mastery.items()
        }
        if not any(weights.values()):
            return even_counts(state)
        return allocate(state.budget, weights)

    def _requests(self, state: TeacherState, counts: dict[str, int], levels: dict[str, int]) -> list[GenerationRequest]:
        rng = random.Random(f"{state.seed}:{state.iteration}:curriculum")
        index = pool_index(state.pool)
        return [
            GenerationRequest(
                skill=skill,
                count=count,
                difficulty=levels[skill] or None,
                instructions=_instructions(skill, levels[skill], state.skill_tree),
                exemplars=exemplars_for(index, state.skill_tree, skill, self.options.exemplars, rng),
            )
            for skill, count in counts.items()
            if count
        ]


def _instructions(skill: str, level: int, tree: SkillTree) -> str:
    task = f"Practise '{skill}' ({tree.description(skill)})."
    if not level:
        return task + " Match the references' difficulty."
    return (
        task + f" Difficulty level {level}: the student has mastered the references' level, so make the "
        "examples harder (longer inputs, more steps), with the same format and correct answers."
    )

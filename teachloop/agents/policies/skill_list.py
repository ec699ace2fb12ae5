"""`skill-list`: DataEnvGym's skill-list teacher (Khan et al., "DataEnvGym: Data Generation
Agents in Teacher Environments with Student Feedback", ICLR 2025).

The teacher sees per-skill accuracy. The budget is spread over the leaf skills in
proportion to (1 - accuracy) + `floor` (the floor keeps solved skills from being
forgotten), and each skill's data comes with a weak-skill hypothesis as its
instructions. Without an LLM the hypothesis is a template (the skill, its accuracy and
how many of the sampled errors carry it). With an LLM teacher, each weak skill's errors
are shown to it and it writes up to `hypotheses` hypotheses about what the student gets
wrong; the skill's share of the budget is split over them, one request each.
"""

from __future__ import annotations

import random
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, create_model

from teachloop.agents.policies.base import TEACH_HELP, BasePolicy, TeachOption, allocate, policy_teach
from teachloop.agents.policies.common import (
    even_counts,
    even_requests,
    exemplars_for,
    leaf_accuracy,
    pick,
    pool_index,
    truncate,
)
from teachloop.agents.state import TeacherState
from teachloop.types import Attempt, DataPlan, GenerationRequest

SYSTEM = "You are the teacher of a small student model and diagnose its weak skills. Reply with JSON only."


class SkillListOptions(BaseModel):
    """`skill-list`'s options."""

    model_config = ConfigDict(extra="forbid")

    floor: float = Field(default=0.05, ge=0, le=1, description="added to every skill's weight (1 - accuracy)")
    hypotheses: int = Field(default=2, ge=1, le=10, description="weak-skill hypotheses the teacher writes per skill")
    errors_shown: int = Field(default=5, ge=0, description="failed attempts of a skill shown to the teacher")
    exemplars: int = Field(default=3, ge=0, description="pool examples of the skill shown with each request")
    teach: TeachOption = Field(default="auto", description=TEACH_HELP)
    use_teacher: bool = Field(default=True, description="ask the LLM teacher when the run has one")


class SkillListPolicy(BasePolicy):
    """DataEnvGym's skill-list teacher: budget by per-skill accuracy, weak-skill hypotheses."""

    name = "skill-list"
    Options = SkillListOptions
    options: SkillListOptions
    uses_teacher = True  # asks the LLM teacher; without one, a programmatic fallback

    def plan(self, state: TeacherState) -> DataPlan:
        if not state.skill_tree.leaves():
            return DataPlan(
                policy=self.name,
                iteration=state.iteration,
                requests=even_requests(state),
                rationale="no skills",
                teach=policy_teach(self),
            )
        accuracy = leaf_accuracy(state)
        counts = self.allocation(state, accuracy)
        rng = random.Random(f"{state.seed}:{state.iteration}:skill-list")
        hypotheses = self._hypotheses(state, accuracy, counts, rng)
        index = pool_index(state.pool)
        requests: list[GenerationRequest] = []
        for skill, count in counts.items():
            texts = hypotheses.get(skill) or [_template(skill, accuracy[skill], state)]
            split = allocate(count, {str(i): 1.0 for i in range(len(texts))})
            for i, text in enumerate(texts):
                if split[str(i)]:
                    exemplars = exemplars_for(index, state.skill_tree, skill, self.options.exemplars, rng)
                    requests.append(
                        GenerationRequest(skill=skill, count=split[str(i)], instructions=text, exemplars=exemplars)
                    )
        asked = f"; {sum(map(len, hypotheses.values()))} hypotheses from the teacher" if hypotheses else ""
        return DataPlan(
            policy=self.name,
            iteration=state.iteration,
            requests=requests,
            rationale="budget ∝ (1 - accuracy) + floor: "
            + ", ".join(f"{s} {accuracy[s]:.2f}->{c}" for s, c in counts.items() if c)
            + asked,
            teach=policy_teach(self),
        )

    def allocation(self, state: TeacherState, accuracy: dict[str, float]) -> dict[str, int]:
        """Examples per leaf skill: ∝ (1 - accuracy) + floor, even when that is zero everywhere."""
        weights = {s: max(0.0, 1.0 - a) + self.options.floor for s, a in accuracy.items()}
        if not any(weights.values()):
            return even_counts(state)
        return allocate(state.budget, weights)

    def _hypotheses(
        self, state: TeacherState, accuracy: dict[str, float], counts: dict[str, int], rng: random.Random
    ) -> dict[str, list[str]]:
        """With an LLM: weak skill -> its hypotheses (skills whose reply failed are left out)."""
        if state.teacher is None or not self.options.use_teacher:
            return {}
        weak = [s for s, c in counts.items() if c and accuracy[s] < 1.0]
        if not weak:
            return {}
        prompts = [self._prompt(s, accuracy[s], state, rng) for s in weak]
        conversations = [[{"role": "system", "content": SYSTEM}, {"role": "user", "content": p}] for p in prompts]
        schema = hypothesis_schema(self.options.hypotheses)
        replies = state.teacher.structured(conversations, schema, purpose="policy:skill-list")
        found = {}
        for skill, reply in zip(weak, replies, strict=True):
            texts = [h.strip() for h in (reply.hypotheses if reply is not None else []) if h.strip()]
            if texts:
                found[skill] = [f"Weak-skill hypothesis for '{skill}': {h}" for h in texts]
        return found

    def _prompt(self, skill: str, accuracy: float, state: TeacherState, rng: random.Random) -> str:
        errors = pick([e for e in state.feedback.errors if skill in e.skills], self.options.errors_shown, rng)
        lines = [
            f"Skill: {skill} ({state.skill_tree.description(skill)}). The student answers {accuracy:.0%} of the "
            "evaluation questions on it correctly.",
            "Questions on this skill it answered wrongly:",
        ]
        lines += [_show_error(e) for e in errors] or ["(none sampled)"]
        lines.append(
            f"Write up to {self.options.hypotheses} short hypotheses about what the student fails to do on this skill, "
            "each phrased as instructions for writing training examples that would fix it."
        )
        return "\n".join(lines)


def hypothesis_schema(limit: int) -> type[BaseModel]:
    return create_model(
        "WeakSkillHypotheses",
        hypotheses=(list[Annotated[str, Field(max_length=400)]], Field(min_length=1, max_length=limit)),
    )


def _template(skill: str, accuracy: float, state: TeacherState) -> str:
    n_errors = sum(skill in e.skills for e in state.feedback.errors)
    return (
        f"Weak-skill hypothesis: the student has not mastered '{skill}' ({state.skill_tree.description(skill)}): "
        f"{accuracy:.0%} correct on evaluation, {n_errors} of the sampled errors. "
        "Write examples that practise exactly this skill."
    )


def _show_error(error: Attempt) -> str:
    return (
        f"- Question: {truncate(error.prompt, 300)} | Student answer: {truncate(error.response, 200)} "
        f"| Reference: {truncate(error.reference, 200)}"
    )

"""`open-ended`: DataEnvGym's open-ended teacher (Khan et al., "DataEnvGym: Data Generation
Agents in Teacher Environments with Student Feedback", ICLR 2025).

The feedback is the student's failed attempts (question, student answer, reference): no
per-skill accuracy and no Missing-Skill-Profile (that is `skill-list`). With an LLM teacher
it is shown a few sampled errors, a few seed-pool examples and the names and descriptions
of the task's skills (each data spec must name one of them), and asked for a list of data
specs (skill, count, instructions); the counts are rescaled to the budget, and a reply that
is missing or empty is topped up by an even spread over the skills. Without an LLM the budget follows the skills of the errors, in
proportion to how many errors carry each skill, and each request is shown up to
`exemplars` seed-pool examples of its skill (never the evaluation items themselves).
"""

from __future__ import annotations

import random
from collections import Counter
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, create_model

from teachloop.agents.policies.base import BasePolicy, allocate
from teachloop.agents.policies.common import (
    even_requests,
    exemplars_for,
    pick,
    pool_index,
    truncate,
)
from teachloop.agents.state import TeacherState
from teachloop.skills.tree import SkillTree
from teachloop.types import Attempt, DataPlan, Example, GenerationRequest

SYSTEM = "You are the teacher of a small student model and plan its next training data. Reply with JSON only."
NO_SKILL = "*"


class OpenEndedOptions(BaseModel):
    """`open-ended`'s options."""

    model_config = ConfigDict(extra="forbid")

    errors_shown: int = Field(default=5, ge=0, description="failed attempts shown to the teacher")
    examples_shown: int = Field(default=5, ge=0, description="seed-pool examples shown to the teacher")
    max_specs: int = Field(default=8, ge=1, description="data specs the teacher may propose")
    exemplars: int = Field(default=3, ge=0, description="pool examples of the skill shown with each request")
    use_teacher: bool = Field(default=True, description="ask the LLM teacher when the run has one")


class OpenEndedPolicy(BasePolicy):
    """DataEnvGym's open-ended teacher: data specs from the student's failed attempts."""

    name = "open-ended"
    Options = OpenEndedOptions
    options: OpenEndedOptions
    uses_teacher = True  # asks the LLM teacher; without one, a programmatic fallback

    def plan(self, state: TeacherState) -> DataPlan:
        rng = random.Random(f"{state.seed}:{state.iteration}:open-ended")
        if state.teacher is not None and self.options.use_teacher and state.skill_tree.leaves() and state.budget:
            return self._llm_plan(state, rng)
        return self._error_plan(state, rng)

    # -- without an LLM: follow the skills of the errors ------------------------------------
    def _error_plan(self, state: TeacherState, rng: random.Random) -> DataPlan:
        counts = error_skill_counts(state.feedback.errors, state.skill_tree)
        if not counts:
            return self._even(state, "no errors to learn from: even spread over the skills")
        allocation = allocate(state.budget, counts)
        index = pool_index(state.pool)
        requests = []
        for key, count in allocation.items():
            if not count:
                continue
            skill = None if key == NO_SKILL else key
            requests.append(
                GenerationRequest(
                    skill=skill,
                    count=count,
                    instructions=_error_instructions(skill, counts[key], state.skill_tree),
                    exemplars=exemplars_for(index, state.skill_tree, skill, self.options.exemplars, rng),
                )
            )
        summary = ", ".join(f"{k}:{v}" for k, v in counts.items())
        return DataPlan(
            policy=self.name,
            iteration=state.iteration,
            requests=requests,
            rationale=f"budget follows the skills of {len(state.feedback.errors)} errors ({summary})",
        )

    # -- with an LLM: ask for data specs ----------------------------------------------------
    def _llm_plan(self, state: TeacherState, rng: random.Random) -> DataPlan:
        schema = spec_schema(state.skill_tree.leaves(), self.options.max_specs, state.budget)
        prompt = self._prompt(state, rng)
        conversation = [{"role": "system", "content": SYSTEM}, {"role": "user", "content": prompt}]
        reply = state.teacher.structured([conversation], schema, purpose="policy:open-ended")[0]
        specs = [spec for spec in (reply.specs if reply is not None else []) if spec.count > 0]
        if not specs:
            return self._even(state, "the teacher proposed no data specs: topped up evenly over the skills")
        allocation = allocate(state.budget, {str(i): float(spec.count) for i, spec in enumerate(specs)})
        index = pool_index(state.pool)
        requests = [
            GenerationRequest(
                skill=spec.skill,
                count=allocation[str(i)],
                instructions=spec.instructions,
                exemplars=exemplars_for(index, state.skill_tree, spec.skill, self.options.exemplars, rng),
            )
            for i, spec in enumerate(specs)
            if allocation[str(i)]
        ]
        return DataPlan(
            policy=self.name,
            iteration=state.iteration,
            requests=requests,
            rationale=f"{len(specs)} data specs from the teacher, rescaled to the budget of {state.budget}",
        )

    def _prompt(self, state: TeacherState, rng: random.Random) -> str:
        tree = state.skill_tree
        errors = pick(state.feedback.errors, self.options.errors_shown, rng)
        examples = pick(state.pool, self.options.examples_shown, rng)
        lines = ["Skills of the task:"]
        lines += [f"- {s}: {tree.description(s)}" for s in tree.leaves()]
        lines += ["", "Questions the student answered wrongly:"]
        lines += [_show_error(i, error) for i, error in enumerate(errors, 1)] or ["(none)"]
        lines += ["", "Training examples of the task (question -> answer):"]
        lines += [f"- {_show_example(ex)}" for ex in examples] or ["(none)"]
        lines += [
            "",
            f"Plan {state.budget} new training examples that would fix the student's mistakes: up to "
            f"{self.options.max_specs} data specs, each with a skill from the list, how many examples to write and "
            "instructions for the writer (what to practise, how hard, what to vary).",
        ]
        return "\n".join(lines)

    def _even(self, state: TeacherState, rationale: str) -> DataPlan:
        return DataPlan(policy=self.name, iteration=state.iteration, requests=even_requests(state), rationale=rationale)


def spec_schema(leaves: list[str], max_specs: int, budget: int) -> type[BaseModel]:
    """{specs: [{skill ∈ leaves, count, instructions}]}, the skill names as an enum."""
    skill_name = Literal[tuple(leaves)]  # type: ignore[valid-type]
    spec = create_model(
        "DataSpec",
        skill=(skill_name, ...),
        count=(int, Field(ge=1, le=max(budget, 1))),
        instructions=(str, Field(max_length=400)),
    )
    return create_model("DataSpecs", specs=(list[spec], Field(max_length=max_specs)))  # type: ignore[valid-type]


def error_skill_counts(errors: list[Attempt], tree: SkillTree) -> dict[str, float]:
    """How many errors carry each skill the tree knows ("*" for errors with none), tree order."""
    counts: Counter[str] = Counter()
    for error in errors:
        known = [s for s in dict.fromkeys(error.skills) if s in tree]
        counts.update(known or [NO_SKILL])
    order = [s for s in tree.skills() if s in counts] + ([NO_SKILL] if NO_SKILL in counts else [])
    return {s: float(counts[s]) for s in order}


def _error_instructions(skill: str | None, n_errors: float, tree: SkillTree) -> str:
    what = f"the skill '{skill}' ({tree.description(skill)})" if skill else "this task"
    return (
        f"The student answered {int(n_errors)} evaluation questions on {what} wrongly. "
        "Write new questions of this kind, in the references' format, with correct answers."
    )


def _show_error(number: int, error: Attempt) -> str:
    return (
        f"{number}. Question: {truncate(error.prompt, 300)} | Student answer: {truncate(error.response, 200)} "
        f"| Reference: {truncate(error.reference, 200)}"
    )


def _show_example(example: Example) -> str:
    return f"{truncate(example.prompt, 300)} -> {truncate(example.answer, 200)}"

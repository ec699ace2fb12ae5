"""Diagnosis: turn an EvalReport into the Feedback a policy plans from.

Hard items come from the environment's checker (the attempts it scored wrong). The
Missing-Skill-Profile is exact when examples carry their skills, or judged by the
teacher (STAT): for each hard (question, student answer), the teacher names which
skills from the list the answer failed to apply.
"""

from __future__ import annotations

import random
from typing import Literal

from pydantic import BaseModel, Field, create_model

from teachloop.agents.teacher import TeacherLLM
from teachloop.skills.profile import missing_skill_profile, profile_from_items
from teachloop.skills.tree import SkillTree
from teachloop.types import Attempt, EvalReport, Feedback, MissingSkillProfile

JUDGE_SYSTEM = "You diagnose a student model's mistakes for its teacher. Reply with JSON only."


def hard_by_checker(report: EvalReport) -> list[Attempt]:
    """Hard items by the environment's checker: the attempts it scored wrong."""
    return report.failures()


def judgement_schema(skills: list[str]) -> type[BaseModel]:
    """{verdict, reason, missing_skills ⊆ skills} with the skill names as an enum."""
    skill_name = Literal[tuple(skills)]  # type: ignore[valid-type]
    return create_model(
        "SkillJudgement",
        verdict=(Literal["wrong", "correct"], ...),
        reason=(str, Field(max_length=300)),
        missing_skills=(list[skill_name], Field(max_length=5)),
    )


def judge_prompt(attempt: Attempt, tree: SkillTree) -> str:
    catalogue = "\n".join(f"- {s}: {tree.description(s)}" for s in tree.leaves())
    return (
        f"Skills of the task:\n{catalogue}\n\n"
        f"Question: {attempt.prompt.strip()}\nReference answer: {attempt.reference}\n"
        f"Student answer: {attempt.response.strip()}\n\n"
        "Is the student answer wrong? Which skills from the list did it fail to apply (1-3 usually)?"
    )


def llm_profile(teacher: TeacherLLM, hard: list[Attempt], tree: SkillTree) -> MissingSkillProfile:
    """STAT's profile: one teacher call per hard item; invalid replies are recorded and
    skipped, and items the judge calls correct add nothing (the checker may be too strict)."""
    schema = judgement_schema(tree.leaves())
    conversations = [
        [{"role": "system", "content": JUDGE_SYSTEM}, {"role": "user", "content": judge_prompt(a, tree)}] for a in hard
    ]
    replies = teacher.structured(conversations, schema, purpose="diagnose", temperature=0.0)
    per_item = {  # a judge that finds the answer correct after all names no missing skill
        attempt.example_id: list(dict.fromkeys(reply.missing_skills))
        for attempt, reply in zip(hard, replies, strict=True)
        if reply is not None and reply.verdict == "wrong"
    }
    return profile_from_items(
        {k: v for k, v in per_item.items() if v},
        judge=f"llm:{teacher.name}",
        tree=tree,
        unlabelled=sum(1 for attempt in hard if not attempt.skills),
    )


def diagnose(
    report: EvalReport,
    seed: int,
    max_errors: int = 50,
    teacher: TeacherLLM | None = None,
    tree: SkillTree | None = None,
) -> Feedback:
    """Feedback with the exact profile, or the teacher-judged one when a teacher is given;
    with the tree, the profile counts every node of it (groups aggregate their subtree)."""
    hard = hard_by_checker(report)
    rng = random.Random(f"{seed}:{report.iteration}:errors")
    errors = rng.sample(hard, min(max_errors, len(hard)))
    if teacher is not None:  # one teacher call per item: judge the sampled errors, not all
        if tree is None:
            raise ValueError("an LLM diagnosis needs the skill tree")
        profile = llm_profile(teacher, errors, tree)
    else:
        profile = missing_skill_profile(hard, tree=tree)
    return Feedback(
        iteration=report.iteration,
        accuracy=report.accuracy,
        skill_accuracy=report.skill_accuracy,
        profile=profile,
        errors=errors,
        node_accuracy=report.node_accuracy,
    )

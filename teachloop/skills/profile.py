"""Missing-Skill-Profile from scored attempts.

When every example carries its skills (the embedded environment, or data with a
skills column), the profile is exact: a failed item was missing each of its skills.
An LLM judge that names the missing subset per item plugs in through `judge=`.
With the skill tree, the profile also counts every node: a group's c(s) is the number
of hard items that name it or any skill below it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from teachloop.skills.tree import SkillTree
from teachloop.types import Attempt, MissingSkillProfile

SkillJudge = Callable[[Attempt], list[str]]


def labelled_skills(attempt: Attempt) -> list[str]:
    """The exact judge: every labelled skill of a failed item counts as missing."""
    return list(attempt.skills)


def missing_skill_profile(
    hard: Iterable[Attempt],
    judge: SkillJudge = labelled_skills,
    judge_name: str = "exact",
    tree: SkillTree | None = None,
) -> MissingSkillProfile:
    hard = list(hard)
    per_item = {attempt.example_id: judge(attempt) for attempt in hard}
    return MissingSkillProfile.from_items(
        {k: v for k, v in per_item.items() if v},
        judge=judge_name,
        tree=tree,
        unlabelled=sum(1 for attempt in hard if not attempt.skills),
    )

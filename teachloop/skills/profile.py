"""What scored attempts say per skill, on the skill tree: an evaluation's `EvalReport`
(accuracy per label and per tree node, `eval_report`) and the Missing-Skill-Profile.

When every example carries its skills (the embedded environment, or data with a
skills column), the profile is exact: a failed item was missing each of its skills.
An LLM judge that names the missing subset per item plugs in through `judge=`.
With the skill tree, the profile also counts every node: a group's c(s) is the number
of hard items that name it or any skill below it.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable

from teachloop.skills.tree import SkillTree
from teachloop.types import UNLABELLED, Attempt, EvalReport, MissingSkillProfile

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
    return profile_from_items(
        {k: v for k, v in per_item.items() if v},
        judge=judge_name,
        tree=tree,
        unlabelled=sum(1 for attempt in hard if not attempt.skills),
    )


def profile_from_items(
    per_item: dict[str, list[str]], judge: str = "exact", tree: SkillTree | None = None, unlabelled: int = 0
) -> MissingSkillProfile:
    """The profile of the hard items' missing skills (`per_item`: example id -> skills); with
    the tree, c(s) for every node too (`MissingSkillProfile.node_counts`)."""
    counts: Counter[str] = Counter(s for skills in per_item.values() for s in skills)
    node_counts: dict[str, int] = {}
    if tree is not None:
        totals, _ = tree.tally((skills, True) for skills in per_item.values())
        node_counts = {node: n for node, n in totals.items() if n}
    if unlabelled:
        node_counts[UNLABELLED] = unlabelled
    return MissingSkillProfile(
        per_item=per_item, counts=dict(sorted(counts.items())), judge=judge, node_counts=node_counts
    )


def eval_report(iteration: int, attempts: list[Attempt], tree: SkillTree | None = None) -> EvalReport:
    """One evaluation's report: overall accuracy, per label, and per node of `tree` (without
    a tree, per label only; see `EvalReport`)."""
    totals: Counter[str] = Counter()
    correct: Counter[str] = Counter()
    for attempt in attempts:
        for skill in attempt.skills:
            totals[skill] += 1
            correct[skill] += attempt.correct
    accuracy = sum(a.correct for a in attempts) / len(attempts) if attempts else 0.0
    node_counts, node_correct = (tree or SkillTree()).tally((a.skills, a.correct) for a in attempts)
    unlabelled = [a for a in attempts if not a.skills]
    if unlabelled:
        node_counts[UNLABELLED] = len(unlabelled)
        node_correct[UNLABELLED] = sum(a.correct for a in unlabelled)
    return EvalReport(
        iteration=iteration,
        attempts=attempts,
        accuracy=accuracy,
        skill_accuracy={s: correct[s] / totals[s] for s in sorted(totals)},
        skill_counts=dict(sorted(totals.items())),
        node_accuracy={n: node_correct[n] / c for n, c in node_counts.items() if c},
        node_counts=node_counts,
        hit_limit=sum(a.hit_limit for a in attempts),
    )

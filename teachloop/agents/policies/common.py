"""Helpers the policies share: the pool's skill index, even spreads,
per-skill accuracy and accuracy gains read from the history.

Nothing here keeps state: every helper is a function of its arguments.
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Mapping, Sequence
from typing import TypeVar

from teachloop.agents.policies.base import allocate
from teachloop.agents.state import TeacherState
from teachloop.skills.tree import SkillTree
from teachloop.types import Example, GenerationRequest, HistoryEntry

T = TypeVar("T")


# -- the seed pool ---------------------------------------------------------------------------
def pool_index(pool: Iterable[Example]) -> dict[str, list[Example]]:
    """Inverted index: skill label -> the pool examples that carry it (pool order)."""
    index: dict[str, list[Example]] = {}
    for example in pool:
        for skill in dict.fromkeys(example.skills):
            index.setdefault(skill, []).append(example)
    return index


def pick(items: Sequence[T], k: int, rng: random.Random) -> list[T]:
    """Up to k items, drawn without replacement."""
    return rng.sample(list(items), min(k, len(items)))


def exemplars_for(
    index: Mapping[str, list[Example]], tree: SkillTree, skill: str | None, k: int, rng: random.Random
) -> list[Example]:
    """Up to k pool examples of `skill` (or of the leaves under it, for a group skill)."""
    if skill is None or k <= 0:
        return []
    members = [skill] + (tree.leaves_under(skill) if skill in tree else [])
    found = {ex.id: ex for member in dict.fromkeys(members) for ex in index.get(member, [])}
    return pick(list(found.values()), k, rng)


# -- spreading a budget ----------------------------------------------------------------------
def rotated_leaves(state: TeacherState) -> list[str]:
    """The tree's leaves, rotated by the iteration so remainders do not always favour the same."""
    leaves = state.skill_tree.leaves()
    shift = state.iteration % len(leaves) if leaves else 0
    return leaves[shift:] + leaves[:shift]


def even_counts(state: TeacherState, budget: int | None = None) -> dict[str, int]:
    """The budget spread evenly over every leaf skill (tree order)."""
    leaves = state.skill_tree.leaves()
    counts = allocate(state.budget if budget is None else budget, {s: 1.0 for s in rotated_leaves(state)})
    return {s: counts[s] for s in leaves}


def even_requests(state: TeacherState, instructions: str = "") -> list[GenerationRequest]:
    """One request per leaf skill, the budget spread evenly; `skill=None` when the tree is empty."""
    counts = even_counts(state)
    if not counts:
        return [GenerationRequest(skill=None, count=state.budget, instructions=instructions)] if state.budget else []
    return [GenerationRequest(skill=s, count=c, instructions=instructions) for s, c in counts.items() if c]


# -- accuracy --------------------------------------------------------------------------------
def leaf_accuracy(state: TeacherState) -> dict[str, float]:
    """Evaluation accuracy of every leaf skill; a leaf with no eval item gets the overall accuracy."""
    measured = state.feedback.skill_accuracy
    return {s: measured.get(s, state.feedback.accuracy) for s in state.skill_tree.leaves()}


def gains(entry: HistoryEntry) -> dict[str, tuple[float, int]]:
    """For each skill that got data in a finished iteration: (accuracy gain, examples allocated).

    Skills without an accuracy before or after (or the "*" bucket of skill-less requests) are left out.
    """
    after = entry.next_skill_accuracy
    if after is None:
        return {}
    return {
        skill: (after[skill] - entry.skill_accuracy[skill], count)
        for skill, count in entry.allocation.items()
        if count > 0 and skill in after and skill in entry.skill_accuracy
    }


def truncate(text: str, limit: int) -> str:
    """One line of at most `limit` characters (for prompts shown to the teacher)."""
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"

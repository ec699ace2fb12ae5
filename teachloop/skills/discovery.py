"""Skill discovery (after Didolkar et al. and STAT) through the teacher.

1. The teacher reads a sample of the task's training data and proposes a skill list
   (names, descriptions, optional groups), which becomes a SkillTree.
2. The teacher labels every example with its required skills, constrained to that list.
Both steps go through TeacherLLM, so they are cached and resumable.

`save_discovered` writes what a user reuses: the tree as a skill-tree file
(teachloop.skills.tree_file) and its labels file, keyed by question text (never by an
internal example id), for an environment's `skill_tree` and `labels_file` options.
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Literal, Protocol

from pydantic import BaseModel, Field, create_model

from teachloop.errors import TeachloopError
from teachloop.skills.labels import PromptLabels, write_labels_file
from teachloop.skills.tree import SkillTree
from teachloop.skills.tree_file import write_tree_file
from teachloop.types import Example


class SkillTeacher(Protocol):
    """What discovery needs of the teacher: validated structured replies, one per conversation
    (None where a reply stayed invalid). `teachloop.agents.teacher.TeacherLLM` is one; the caller
    hands it in, since skills sit below agents."""

    def structured(
        self,
        conversations: Sequence[Sequence[dict[str, str]]],
        schema: type[BaseModel],
        purpose: str = ...,
        temperature: float | None = ...,
    ) -> list[Any]: ...


SYSTEM = "You analyse tasks into the skills they require. Reply with JSON only."
_NAME = re.compile(r"[^a-z0-9]+")


class ProposedSkill(BaseModel):
    name: str = Field(min_length=1, max_length=40)
    description: str = Field(max_length=200)
    group: str = Field(default="", max_length=40)


class SkillProposal(BaseModel):
    skills: list[ProposedSkill] = Field(min_length=1, max_length=30)


def slug(text: str) -> str:
    return _NAME.sub("-", text.lower()).strip("-")[:40]


def proposal_prompt(sample: Sequence[Example], max_skills: int) -> str:
    rows = "\n".join(f"- {ex.prompt.strip()} -> {ex.answer.strip()}" for ex in sample)
    return (
        f"Here are examples of a task (question -> answer):\n{rows}\n\n"
        f"Name at most {max_skills} distinct, fine-grained skills a solver needs for this task. "
        "Give each a short lowercase name, a one-sentence description, and optionally a group "
        "(a coarser category)."
    )


def propose_skills(
    teacher: SkillTeacher, examples: Sequence[Example], sample_size: int = 20, max_skills: int = 12, seed: int = 0
) -> SkillTree:
    sample = random.Random(seed).sample(list(examples), min(sample_size, len(examples)))
    conversation = [{"role": "system", "content": SYSTEM}, {"role": "user", "content": proposal_prompt(sample, max_skills)}]
    (proposal,) = teacher.structured([conversation], SkillProposal, purpose="discover")
    if proposal is None:
        raise TeachloopError("the teacher gave no valid skill list (see teacher_failures.jsonl)")
    tree = SkillTree("discovered")
    items = [(slug(item.name), slug(item.group), item) for item in proposal.skills[:max_skills]]
    leaf_names = {name for name, _, _ in items}
    for name, group, item in items:
        if not name or name in tree:
            continue
        parent = "root"
        if group and group not in leaf_names:  # a group is created with its first member
            if group not in tree:
                tree.add(group, f"skills of the kind '{item.group}'")
            parent = group
        tree.add(name, item.description, parent=parent)
    if not tree.leaves():
        raise TeachloopError("the teacher's skill list had no usable names")
    return tree


def labels_schema(skills: list[str]) -> type[BaseModel]:
    skill_name = Literal[tuple(skills)]  # type: ignore[valid-type]
    return create_model("SkillLabels", skills=(list[skill_name], Field(min_length=1, max_length=5)))


def label_examples(teacher: SkillTeacher, tree: SkillTree, examples: Sequence[Example]) -> dict[str, list[str]]:
    """example id -> skills from the tree's leaves (examples whose labelling failed are left out)."""
    leaves = tree.leaves()
    catalogue = "\n".join(f"- {s}: {tree.description(s)}" for s in leaves)
    conversations = [
        [
            {"role": "system", "content": SYSTEM},
            {
                "role": "user",
                "content": f"Skills:\n{catalogue}\n\nQuestion: {ex.prompt.strip()}\nAnswer: {ex.answer.strip()}\n"
                "Which of the skills (1 to 5) does solving this question require?",
            },
        ]
        for ex in examples
    ]
    replies = teacher.structured(conversations, labels_schema(leaves), purpose="label", temperature=0.0)
    return {
        ex.id: list(dict.fromkeys(reply.skills))
        for ex, reply in zip(examples, replies, strict=True)
        if reply is not None
    }


class DiscoveredSkills(BaseModel):
    tree: SkillTree
    labels: dict[str, list[str]]


def discover(
    teacher: SkillTeacher,
    train: Sequence[Example],
    eval_set: Sequence[Example] = (),
    sample_size: int = 20,
    max_skills: int = 12,
    seed: int = 0,
) -> DiscoveredSkills:
    tree = propose_skills(teacher, train, sample_size, max_skills, seed)
    labels = label_examples(teacher, tree, [*train, *eval_set])
    return DiscoveredSkills(tree=tree, labels=labels)


def labels_path_for(tree_path: Path) -> Path:
    """Where the labels file goes beside a skill-tree file: `<stem>.labels.jsonl`."""
    return tree_path.with_name(tree_path.stem + ".labels.jsonl")


def save_discovered(
    found: DiscoveredSkills,
    examples: Sequence[Example],
    tree_path: Path,
    question: Callable[[str], str] = str.strip,
) -> Path:
    """Write the tree to `tree_path` (YAML or JSON by suffix) and the labels of `examples`
    beside it, one `{"prompt": <question>, "skills": [...]}` line each (`question` turns an
    example's prompt back into the question as the data has it). Returns the labels path."""
    rows = [
        PromptLabels(prompt=question(ex.prompt), skills=found.labels[ex.id])
        for ex in examples
        if found.labels.get(ex.id) and question(ex.prompt)
    ]
    write_tree_file(found.tree, tree_path)
    labels_path = labels_path_for(tree_path)
    write_labels_file(labels_path, rows)
    return labels_path

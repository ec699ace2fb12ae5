"""Skill labels on data rows, and checking them against a skill tree.

Labels come from a column of the data or from a labels file: JSONL, one
`{"prompt": "<the row's question text>", "skills": ["name", ...]}` per line, matched on the
question text (spaces collapsed), never on an internal example id. `teachloop skills
discover` writes such a file beside the tree it proposes; a user can write one by hand.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from teachloop.errors import TeachloopError
from teachloop.io import atomic_write_text, read_text
from teachloop.skills.tree import SkillTree
from teachloop.types import Example

_log = logging.getLogger(__name__)


class SkillLabelError(TeachloopError):
    """Labels that do not fit the data or the skill tree; the message lists them."""


class PromptLabels(BaseModel):
    """One line of a labels file: a question's text and the skills it exercises."""

    model_config = ConfigDict(extra="forbid")

    prompt: str = Field(min_length=1, description="the question as the data has it (or as the student sees it)")
    skills: list[str] = Field(description="skill names of the skill tree (leaves or inner nodes)")


def prompt_key(text: str) -> str:
    """How a question is matched: its text with runs of white space collapsed."""
    return " ".join(text.split())


def read_labels_file(path: str | Path, env: str) -> dict[str, list[str]]:
    """prompt key -> skills from a labels JSONL; a bad line names file and line."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise SkillLabelError(f"{env}: labels_file {path} does not exist")
    labels: dict[str, list[str]] = {}
    try:
        text = read_text(path, f"{env}: labels_file")
    except TeachloopError as exc:
        raise SkillLabelError(str(exc)) from None
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = PromptLabels.model_validate(json.loads(line))
        except (json.JSONDecodeError, ValidationError):
            raise SkillLabelError(
                f'{env}: line {number} of labels_file {path} is not {{"prompt": "<question>", "skills": [...]}}'
            ) from None
        key = prompt_key(row.prompt)
        labels[key] = list(dict.fromkeys([*labels.get(key, []), *(s.strip() for s in row.skills if s.strip())]))
    return labels


def write_labels_file(path: str | Path, rows: Iterable[PromptLabels]) -> None:
    atomic_write_text(Path(path), "".join(row.model_dump_json() + "\n" for row in rows))


def apply_labels_file(
    examples: Sequence[Example], labels: dict[str, list[str]], question: Callable[[str], str], env: str, path: Path
) -> list[Example]:
    """The examples with the skills the labels file gives their question (`question`
    turns an example's prompt back into the question text); unmatched lines are logged."""
    out, used = [], set()
    for ex in examples:
        key = prompt_key(question(ex.prompt))
        if key in labels:
            used.add(key)
        out.append(ex.model_copy(update={"skills": list(labels.get(key, []))}))
    if len(used) < len(labels):
        _log.warning(
            "%s: %d line(s) of labels_file %s match no question of the data", env, len(labels) - len(used), path
        )
    return out


def check_labels(examples: Sequence[Example], tree: SkillTree, env: str, labels_from: str, tree_path: Path) -> None:
    """Every label names a skill of the tree (else one error listing all that do not);
    unlabelled examples are counted in a warning."""
    unknown = sorted({s for ex in examples for s in ex.skills if s not in tree})
    if unknown:
        raise SkillLabelError(
            f"{env}: {len(unknown)} skill label(s) in {labels_from} are not in skill_tree {tree_path}: "
            f"{', '.join(unknown)}; add them to the tree or correct the labels"
        )
    unlabelled = sum(1 for ex in examples if not ex.skills)
    if unlabelled:
        _log.warning(
            "%s: %d of %d example(s) have no skill label in %s; they count as unlabelled",
            env, unlabelled, len(examples), labels_from,
        )  # fmt: skip


def label_rows(
    examples: list[Example],
    env: str,
    where: str,
    column: str | None,
    labels_file: Path | None,
    skill_tree: Path | None,
    question: Callable[[str], str],
) -> tuple[list[Example], SkillTree | None, str]:
    """What a file-backed environment (`jsonl`, `math`) needs from its labelling options:
    the examples with the labels file's skills applied (when `labels_file`), the skill tree
    checked against every label (when `skill_tree`; it needs labels from `column` or
    `labels_file`), and a phrase naming where the labels came from."""
    from teachloop.skills.tree_file import read_skill_tree

    if labels_file:
        examples = apply_labels_file(examples, read_labels_file(labels_file, env), question, env, labels_file)
    labels_from = f"column {column!r} of {where}" if column else f"labels_file {labels_file}"
    if not skill_tree:
        return examples, None, labels_from
    if not (column or labels_file):
        raise TeachloopError(
            f"{env}: skill_tree {skill_tree} needs labels: set skills_field (a column of {where}) or labels_file"
        )
    tree = read_skill_tree(skill_tree, env)
    check_labels(examples, tree, env, labels_from, skill_tree)
    return examples, tree, labels_from

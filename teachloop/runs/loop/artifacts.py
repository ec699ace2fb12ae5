"""What each phase writes into its folder, and how it is read back: the one place that names
a run's artifact files. A phase writes through `<Phase>Files.write(folder, ...)` (the folder
its PhaseWriter publishes atomically) and every reader (the loop, the metrics, the export,
reports) reads through `<Phase>Files.read...(folder)`, so a file is renamed in one place.

    <run>/skills.json                    the skill tree the run evaluates with (SKILLS)
    <run>/discovery/skills.json|labels.jsonl   a discovered tree and its labels
    iter_<i>/eval/attempts.jsonl|report.json   every scored answer; the report without them
    iter_<i>/feedback/feedback.json      the diagnosis
    iter_<i>/plan/plan.json              the policy's DataPlan
    iter_<i>/data/examples.jsonl         what trains; rejected.jsonl (with reasons),
                  candidates.jsonl, teacher_pairs.jsonl (a selecting policy's)
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from teachloop.io import read_jsonl, read_model, read_text, write_json, write_jsonl
from teachloop.skills.tree import SkillTree
from teachloop.types import Attempt, DataPlan, EvalReport, Example, Feedback, Rejected

SKILLS = "skills.json"  # at the run's root: the tree every report of the run reads


VALIDATION_ATTEMPTS = "validation.jsonl"  # in an eval phase: the scored answers to the validation split


class EvalFiles:
    ATTEMPTS = "attempts.jsonl"
    REPORT = "report.json"

    @classmethod
    def write(cls, folder: Path, report: EvalReport) -> None:
        write_jsonl(folder / cls.ATTEMPTS, report.attempts)
        write_json(folder / cls.REPORT, report.model_copy(update={"attempts": []}))

    @classmethod
    def read(cls, folder: Path) -> EvalReport:
        """The report with its attempts."""
        return cls.read_summary(folder).model_copy(update={"attempts": cls.read_attempts(folder)})

    @classmethod
    def read_summary(cls, folder: Path) -> EvalReport:
        """The report without its attempts (they are in their own file)."""
        return read_model(folder / cls.REPORT, EvalReport)

    @classmethod
    def read_attempts(cls, folder: Path) -> list[Attempt]:
        return read_jsonl(folder / cls.ATTEMPTS, Attempt)

    @classmethod
    def has_attempts(cls, folder: Path) -> bool:
        return (folder / cls.ATTEMPTS).is_file()


class FeedbackFiles:
    FEEDBACK = "feedback.json"

    @classmethod
    def write(cls, folder: Path, feedback: Feedback) -> None:
        write_json(folder / cls.FEEDBACK, feedback)

    @classmethod
    def read(cls, folder: Path) -> Feedback:
        return read_model(folder / cls.FEEDBACK, Feedback)


class PlanFiles:
    PLAN = "plan.json"

    @classmethod
    def write(cls, folder: Path, plan: DataPlan) -> None:
        write_json(folder / cls.PLAN, plan)

    @classmethod
    def read(cls, folder: Path) -> DataPlan:
        return read_model(folder / cls.PLAN, DataPlan)


class DataFiles:
    EXAMPLES = "examples.jsonl"
    REJECTED = "rejected.jsonl"
    CANDIDATES = "candidates.jsonl"
    TEACHER_PAIRS = "teacher_pairs.jsonl"

    @classmethod
    def write(
        cls,
        folder: Path,
        examples: list[Example],
        rejected: list[Rejected],
        candidates: list[Example] | None = None,
        teacher_pairs: list[dict[str, Any]] | None = None,
    ) -> None:
        """`candidates` (and `teacher_pairs`, where there are any): a selecting policy's."""
        if candidates is not None:
            write_jsonl(folder / cls.CANDIDATES, candidates)
        if teacher_pairs:
            write_jsonl(folder / cls.TEACHER_PAIRS, teacher_pairs)
        write_jsonl(folder / cls.EXAMPLES, examples)
        write_jsonl(folder / cls.REJECTED, rejected)

    @classmethod
    def read_examples(cls, folder: Path) -> list[Example]:
        return read_jsonl(folder / cls.EXAMPLES, Example)

    @classmethod
    def read_rejected(cls, folder: Path) -> list[Rejected]:
        return read_jsonl(folder / cls.REJECTED, Rejected)


class DiscoveryFiles:
    SKILLS = "skills.json"
    LABELS = "labels.jsonl"

    @classmethod
    def write(cls, folder: Path, tree: SkillTree, labels: dict[str, list[str]]) -> None:
        tree.save(folder / cls.SKILLS)
        write_jsonl(folder / cls.LABELS, [{"id": k, "skills": v} for k, v in labels.items()])

    @classmethod
    def read(cls, folder: Path) -> tuple[SkillTree, dict[str, list[str]]]:
        from teachloop.skills.tree_file import read_tree_file

        rows = map(json.loads, read_text(folder / cls.LABELS).splitlines())
        return read_tree_file(folder / cls.SKILLS), {row["id"]: row["skills"] for row in rows}

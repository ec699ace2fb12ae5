"""metrics.jsonl: one record per evaluated iteration, always rebuilt from the phase
artifacts (never appended to), so a resumed run can neither lose nor duplicate a line.

Each record holds the accuracy of every node of the run's skill tree (groups aggregate
their subtree) and the Missing-Skill-Profile per node; a run folder written before those
existed gets them recomputed from its attempts and skills.json.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pydantic import BaseModel

from teachloop.runs.loop.artifacts import SKILLS, EvalFiles, FeedbackFiles
from teachloop.runs.loop.store import RunStore
from teachloop.skills.profile import eval_report
from teachloop.skills.tree import SkillTree
from teachloop.skills.tree_file import read_tree_file
from teachloop.types import EvalReport

WEAK_THRESHOLD = 0.5  # a skill below this accuracy at iteration 0 is one of the run's weak skills

PHASE_LABELS = {
    "discovery": "discover",
    "eval": "evaluate",
    "feedback": "diagnose",
    "plan": "plan",
    "data": "generate",
    "train": "train",
}


class MetricsRecord(BaseModel):
    """One line of metrics.jsonl: the student after `iteration` rounds of new data."""

    iteration: int
    policy: str
    accuracy: float
    skill_accuracy: dict[str, float]
    examples_trained: int
    examples_generated: int
    phase_seconds: dict[str, float]
    overhead_seconds: float
    teacher: dict[str, int] | None = None
    data_yield: float | None = None  # accepted / asked of the generate phase that led here
    hit_limit: int | None = None  # eval answers that ran to the token limit without ending
    # every node of the skill tree, groups included, in reading order, then "(unlabelled)"
    # (EvalReport.node_accuracy / node_counts); empty only when nothing could be recomputed
    node_accuracy: dict[str, float] = {}
    node_counts: dict[str, int] = {}
    # hard items per node from this iteration's diagnosis (MissingSkillProfile.node_counts);
    # None where no diagnosis ran (the last iteration)
    missing_skills: dict[str, int] | None = None
    # mean training loss of the train phase that led here, per trainer ("sft", "dpo")
    train_loss: dict[str, float] | None = None
    # accuracy on the environment's validation split (None without one): it chooses the
    # checkpoint the run hands back (`handed_back`)
    validation_accuracy: float | None = None
    # the train phase that led here: tokens put through the model per second (every trainer
    # and epoch) and the process's peak resident memory while it trained
    train_tokens_per_second: float | None = None
    train_peak_gb: float | None = None


def load_tree(store: RunStore) -> SkillTree | None:
    """The skill tree the run evaluated with (skills.json), None before the run wrote it."""
    path = store.root / SKILLS
    return read_tree_file(path) if path.is_file() else None


def _eval_report(store: RunStore, i: int, tree: SkillTree | None) -> EvalReport:
    """Iteration i's report; per-node figures recomputed for a report written without them."""
    path = store.phase_dir(i, "eval")
    report = EvalFiles.read_summary(path)
    if report.node_counts or not EvalFiles.has_attempts(path):
        return report
    return eval_report(i, EvalFiles.read_attempts(path), tree=tree)


def _missing_skills(store: RunStore, i: int, tree: SkillTree | None) -> dict[str, int] | None:
    if not store.is_done(i, "feedback"):
        return None
    profile = FeedbackFiles.read(store.phase_dir(i, "feedback")).profile
    if profile.node_counts or not profile.counts:
        return profile.node_counts
    if tree is None:
        return dict(profile.counts)
    totals, _ = tree.tally((skills, True) for skills in profile.per_item.values())  # a profile from before
    return {node: n for node, n in totals.items() if n}


def compute_metrics(store: RunStore, policy: str) -> list[MetricsRecord]:
    """Every evaluated iteration's record, from the phase folders' done.json and reports."""
    records = []
    generated = 0
    teacher: dict[str, int] = {}
    i = 0
    tree = load_tree(store)
    while store.is_done(i, "eval"):
        report = _eval_report(store, i, tree)
        phases: dict[str, Any] = {"eval": store.phase_record(i, "eval")}
        if i > 0:
            for phase in ("feedback", "plan", "data", "train"):
                phases[phase] = store.phase_record(i - 1, phase)
            if None in phases.values():  # a phase folder removed by hand: the record ends here
                break
            generated += phases["data"].info.get("examples", 0)
        if i == 0 and store.is_done(None, "discovery"):
            phases["discovery"] = store.phase_record(None, "discovery")
        seconds = {PHASE_LABELS[p]: round(r.seconds, 4) for p, r in phases.items()}
        work = sum(r.work_seconds for r in phases.values())
        for record in phases.values():
            for key, value in record.info.get("teacher", {}).items():
                teacher[key] = teacher.get(key, 0) + value
        data_yield = phases["data"].info.get("yield", {}).get("ratio") if i > 0 else None
        records.append(
            MetricsRecord(
                iteration=i,
                policy=policy,
                accuracy=report.accuracy,
                skill_accuracy=report.skill_accuracy,
                examples_trained=phases["train"].info.get("examples", 0) if i > 0 else 0,
                examples_generated=generated,
                phase_seconds=seconds,
                overhead_seconds=round(max(0.0, sum(r.seconds for r in phases.values()) - work), 4),
                teacher=dict(teacher) if teacher else None,
                data_yield=data_yield,
                hit_limit=report.hit_limit,
                node_accuracy=report.node_accuracy,
                node_counts=report.node_counts,
                missing_skills=_missing_skills(store, i, tree),
                train_loss=phases["train"].info.get("loss") if i > 0 else None,
                validation_accuracy=phases["eval"].info.get("validation", {}).get("accuracy"),
                **(_throughput(phases["train"].info) if i > 0 else {}),
            )
        )
        i += 1
    return records


def _throughput(train_info: dict) -> dict[str, float]:
    trainers = train_info.get("throughput", {}).values()
    seconds = sum(t["seconds"] for t in trainers)
    if not trainers or seconds <= 0:
        return {}
    return {
        "train_tokens_per_second": round(sum(t["tokens"] for t in trainers) / seconds, 1),
        "train_peak_gb": max(t["peak_gb"] for t in trainers),
    }


def handed_back(records: list[MetricsRecord]) -> int | None:
    """The iteration whose checkpoint the run hands back: the best validation accuracy, the
    latest of equals (0: the starting model, when every checkpoint validated below it), or None
    when the environment has no validation split (then the last checkpoint is the run's)."""
    scored = [r for r in records if r.validation_accuracy is not None]
    if not scored:
        return None
    best = max(r.validation_accuracy for r in scored)  # type: ignore[type-var]
    return next(r.iteration for r in reversed(scored) if r.validation_accuracy == best)


def weak_skills(records: Sequence[MetricsRecord], threshold: float = WEAK_THRESHOLD) -> list[str]:
    """Skills the student was weak on before any new data (iteration-0 accuracy < threshold)."""
    if not records:
        return []
    return [s for s, acc in records[0].skill_accuracy.items() if acc < threshold]

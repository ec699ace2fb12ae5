"""metrics.jsonl: one record per evaluated iteration, always rebuilt from the phase
artifacts (never appended to), so a resumed run can neither lose nor duplicate a line."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from teachloop.io import read_model
from teachloop.runs.store import RunStore
from teachloop.types import EvalReport

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


def compute_metrics(store: RunStore, policy: str) -> list[MetricsRecord]:
    """Every evaluated iteration's record, from the phase folders' done.json and reports."""
    records = []
    generated = 0
    teacher: dict[str, int] = {}
    i = 0
    while store.is_done(i, "eval"):
        report = read_model(store.phase_dir(i, "eval") / "report.json", EvalReport)
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
            )
        )
        i += 1
    return records

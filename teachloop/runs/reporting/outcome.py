"""What a run hands back, measured: the checkpoint the validation split chose, its overall
accuracy against the start with a paired 95 % interval, the skills it forgot (a change whose
interval lies wholly below 0) and the gain on the skills that were weak at the start.

Every report leads with this: a run exists to return a model that is better overall, and a
targeted gain bought by forgetting is shown as what it is."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Literal

from pydantic import BaseModel

from teachloop.runs.loop.artifacts import EvalFiles
from teachloop.runs.loop.metrics import MetricsRecord, handed_back, weak_skills
from teachloop.runs.loop.store import RunStore
from teachloop.types import Attempt

Z95 = 1.96
WEAK_DETAILED = 6  # weak skills whose own change is spelled out in the outcome's last line


class Change(BaseModel):
    """Accuracy at the start and at the handed-back checkpoint on the same eval items, with the
    95 % interval of the paired difference (normal approximation over items)."""

    start: float
    end: float
    low: float
    high: float
    items: int

    @property
    def delta(self) -> float:
        return self.end - self.start

    def points(self) -> str:
        return f"{self.delta * 100:+.1f} [{self.low * 100:+.1f}, {self.high * 100:+.1f}] points"

    def measured(self) -> str:
        """'+25.0 [-24.0, +74.0] points on 4 items': a change with what it rests on (one item
        has no spread, so no interval)."""
        if self.items < 2:
            return f"{self.delta * 100:+.1f} points on {self.items} item (no interval from one item)"
        return f"{self.points()} on {self.items} items"


def paired_change(before: Sequence[float], after: Sequence[float]) -> Change:
    n = len(before)
    diffs = [a - b for b, a in zip(before, after, strict=True)]
    mean = sum(diffs) / n if n else 0.0
    var = sum((d - mean) ** 2 for d in diffs) / (n - 1) if n > 1 else 0.0
    half = Z95 * math.sqrt(var / n) if n else 0.0
    return Change(
        start=sum(before) / n if n else 0.0,
        end=sum(after) / n if n else 0.0,
        low=mean - half,
        high=mean + half,
        items=n,
    )


class RunOutcome(BaseModel):
    iteration: int  # the checkpoint handed back (0: the starting model)
    chosen_by: Literal["validation", "last"]
    last: int
    validation_start: float | None = None
    validation_end: float | None = None
    overall: Change
    skills: dict[str, Change]
    weak: list[str]

    @property
    def forgotten(self) -> list[str]:
        return [s for s, c in self.skills.items() if c.high < 0]

    @property
    def weak_gain(self) -> float | None:
        if not self.weak:
            return None
        return sum(self.skills[s].delta for s in self.weak) / len(self.weak)

    def lines(self) -> list[str]:
        """The outcome in plain sentences, final accuracy first."""
        if self.chosen_by == "validation":
            if self.iteration:
                head = (
                    f"handed back: iteration {self.iteration}'s model, chosen on the validation split: its accuracy "
                    f"there, {self.validation_end:.3f}, is the run's best (start {self.validation_start:.3f})"
                )
            else:
                head = (
                    "handed back: the starting model: every checkpoint validated below it "
                    f"(validation accuracy {self.validation_start:.3f})"
                )
        else:
            head = (
                f"handed back: iteration {self.iteration}'s model (the last: this environment has no validation split)"
            )
        overall = (
            f"overall accuracy {self.overall.start:.3f} -> {self.overall.end:.3f}, {self.overall.points()} "
            f"on {self.overall.items} eval items"
        )
        forgotten = ", ".join(f"{s} {self.skills[s].measured()}" for s in self.forgotten) or "nothing"
        parts = [head, overall, f"forgotten (change interval below 0): {forgotten}"]
        if self.weak_gain is not None:
            each = "; ".join(f"{s} {self.skills[s].measured()}" for s in self.weak[:WEAK_DETAILED])
            more = f"; {len(self.weak) - WEAK_DETAILED} more" if len(self.weak) > WEAK_DETAILED else ""
            parts.append(f"weak skills ({', '.join(self.weak)}): {self.weak_gain * 100:+.1f} points ({each}{more})")
        return parts


def _scores(attempts: Sequence[Attempt]) -> dict[str, tuple[float, list[str]]]:
    return {a.example_id: (float(a.correct), list(a.skills)) for a in attempts}


def run_outcome(store: RunStore, records: Sequence[MetricsRecord]) -> RunOutcome | None:
    """The outcome of the run's evaluated iterations (None before a second evaluation)."""
    if len(records) < 2:
        return None
    chosen = handed_back(list(records))
    iteration = chosen if chosen is not None else records[-1].iteration
    first = _scores(EvalFiles.read_attempts(store.phase_dir(0, "eval")))
    end = _scores(EvalFiles.read_attempts(store.phase_dir(iteration, "eval")))
    common = [key for key in first if key in end]
    overall = paired_change([first[k][0] for k in common], [end[k][0] for k in common])
    by_skill: dict[str, list[str]] = {}
    for key in common:
        for skill in first[key][1]:
            by_skill.setdefault(skill, []).append(key)
    skills = {
        skill: paired_change([first[k][0] for k in keys], [end[k][0] for k in keys]) for skill, keys in by_skill.items()
    }
    start_record = records[0]
    end_record = next(r for r in records if r.iteration == iteration)
    return RunOutcome(
        iteration=iteration,
        chosen_by="validation" if chosen is not None else "last",
        last=records[-1].iteration,
        validation_start=start_record.validation_accuracy,
        validation_end=end_record.validation_accuracy,
        overall=overall,
        skills=skills,
        weak=[s for s in weak_skills(records) if s in skills],
    )

"""Diagnosis: turn an EvalReport into the Feedback a policy plans from."""

from __future__ import annotations

import random

from teachloop.skills.profile import missing_skill_profile
from teachloop.types import Attempt, EvalReport, Feedback


def hard_by_checker(report: EvalReport) -> list[Attempt]:
    """Hard items by the environment's checker: the attempts it scored wrong."""
    return report.failures()


def diagnose(report: EvalReport, seed: int, max_errors: int = 50) -> Feedback:
    hard = hard_by_checker(report)
    profile = missing_skill_profile(hard)
    rng = random.Random(f"{seed}:{report.iteration}:errors")
    errors = rng.sample(hard, min(max_errors, len(hard)))
    return Feedback(
        iteration=report.iteration,
        accuracy=report.accuracy,
        skill_accuracy=report.skill_accuracy,
        profile=profile,
        errors=errors,
    )

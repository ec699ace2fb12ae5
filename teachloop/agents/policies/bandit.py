"""`bandit`: a multi-armed bandit over the leaf skills, rewarded by measured learning —
after SOAR's grounded reward (Teaching Models to Teach Themselves, arXiv 2601.18778).

SOAR rewards a teacher by the student's accuracy gain after training on its data. Here
each leaf skill is an arm; playing it means giving it data, and its reward in a finished
iteration is that skill's evaluation-accuracy gain per example it was given, scaled to
`unit` examples. The arms' statistics are recomputed from `state.history` every
iteration (never stored), so a resumed run plans exactly as an uninterrupted one.
Unplayed skills are played first (the weakest first); after that `algorithm: ucb` (UCB1,
mean + exploration·sqrt(2 ln N / n)) or `algorithm: thompson` (a Gaussian sample around
each mean, seeded by run seed and iteration) ranks the skills, and the budget is split
evenly over the `arms` best.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from teachloop.agents.policies.base import BasePolicy, allocate
from teachloop.agents.policies.common import (
    even_requests,
    gains,
    leaf_accuracy,
)
from teachloop.agents.state import TeacherState
from teachloop.types import DataPlan, GenerationRequest, HistoryEntry

Algorithm = Literal["ucb", "thompson"]


@dataclass(frozen=True)
class Arm:
    plays: int
    mean: float


class BanditOptions(BaseModel):
    """`bandit`'s options."""

    model_config = ConfigDict(extra="forbid")

    algorithm: Algorithm = Field(default="ucb", description="ucb (UCB1) or thompson (Gaussian sampling)")
    arms: int = Field(default=3, ge=1, description="skills that share the budget each iteration")
    exploration: float = Field(default=0.5, ge=0, description="ucb: weight of the exploration bonus")
    unit: int = Field(default=100, ge=1, description="rewards are accuracy gains per this many examples")
    spread: float = Field(default=0.5, ge=0, description="thompson: width of the sampling around each mean")


class BanditPolicy(BasePolicy):
    """A multi-armed bandit over the leaf skills, rewarded by each skill's measured accuracy gain."""

    name = "bandit"
    Options = BanditOptions
    options: BanditOptions

    def plan(self, state: TeacherState) -> DataPlan:
        leaves = state.skill_tree.leaves()
        if not leaves:
            return DataPlan(policy=self.name, iteration=state.iteration, requests=even_requests(state))
        stats = arm_stats(state.history, leaves, self.options.unit)
        scores = self.scores(stats, state)
        accuracy = leaf_accuracy(state)
        ranked = sorted(leaves, key=lambda s: (-scores[s], accuracy[s], leaves.index(s)))
        chosen = ranked[: self.options.arms]
        counts = allocate(state.budget, {s: 1.0 for s in chosen})
        requests = [GenerationRequest(skill=s, count=counts[s]) for s in chosen if counts[s]]
        return DataPlan(
            policy=self.name,
            iteration=state.iteration,
            requests=requests,
            rationale=f"{self.options.algorithm}: " + ", ".join(_describe(s, stats.get(s), scores[s]) for s in chosen),
            policy_state={"arms": {s: {"plays": a.plays, "mean": a.mean} for s, a in stats.items()}},
        )

    def scores(self, stats: dict[str, Arm], state: TeacherState) -> dict[str, float]:
        """Each leaf's index: +inf while unplayed, else its UCB1 bound or Thompson sample."""
        leaves = state.skill_tree.leaves()
        total = sum(arm.plays for arm in stats.values())
        rng = random.Random(f"{state.seed}:{state.iteration}:bandit")
        scores = {}
        for skill in leaves:  # tree order, so the Thompson draws do not depend on dict order
            arm = stats.get(skill)
            if arm is None:
                scores[skill] = math.inf
            elif self.options.algorithm == "ucb":
                scores[skill] = arm.mean + self.options.exploration * math.sqrt(2 * math.log(max(total, 1)) / arm.plays)
            else:
                scores[skill] = rng.gauss(arm.mean, self.options.spread / math.sqrt(arm.plays))
        return scores


def arm_stats(history: list[HistoryEntry], leaves: list[str], unit: int) -> dict[str, Arm]:
    """Plays and mean reward per leaf skill that got data in a finished iteration.

    Reward of one play = accuracy gain of the skill / examples it was given · unit.
    """
    rewards: dict[str, list[float]] = {}
    known = set(leaves)
    for entry in history:
        for skill, (gain, count) in gains(entry).items():
            if skill in known:
                rewards.setdefault(skill, []).append(gain / count * unit)
    return {s: Arm(plays=len(r), mean=sum(r) / len(r)) for s, r in rewards.items()}


def _describe(skill: str, arm: Arm | None, score: float) -> str:
    if arm is None:
        return f"{skill} (unplayed)"
    return f"{skill} (played {arm.plays}, mean gain {arm.mean:+.3f}, index {score:.3f})"

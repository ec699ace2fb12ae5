"""`error-dpo`: preference pairs against the student's own errors (teacher-over-student).

New items for the missing skills are planned like STAT-Syn; after generation the
student answers each verified item, and every item it gets wrong becomes a preference
pair: the verified answer (chosen) over the student's own wrong answer (rejected),
trained with TRL's DPOTrainer plus an SFT term on the chosen answer (RPO). Items the
student already answers correctly teach little and are dropped (`keep_known: true` keeps
them as plain SFT examples instead).

This is the pairing of self-correction and distillation work (a stronger source's answer
over the learner's own, as in PLaD, Zhang et al. 2024). It is *not* the Delta Learning
Hypothesis (Geng et al., 2025), whose pairs set a weak model's answer over a weaker
one's; the policy was called `delta-dpo` before, which overstated that.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from teachloop.agents.engines.filters import normalize
from teachloop.agents.policies.base import BasePolicy
from teachloop.agents.policies.stat_syn import StatSynPolicy
from teachloop.agents.state import TeacherState
from teachloop.types import DataPlan, Example


class ErrorDPOOptions(BaseModel):
    """`error-dpo`'s options."""

    model_config = ConfigDict(extra="forbid")

    keep_known: bool = Field(default=False, description="keep items the student already answers, as plain SFT")
    floor: float = Field(default=0.0, ge=0, le=1, description="share of the budget spread evenly (as stat-syn)")


class ErrorDPOPolicy(BasePolicy):
    """Preference pairs against the student's own errors: verified answer over its wrong one (DPO)."""

    name = "error-dpo"
    Options = ErrorDPOOptions
    options: ErrorDPOOptions

    def setup(self) -> None:
        self.allocator = StatSynPolicy(floor=self.options.floor)

    def plan(self, state: TeacherState) -> DataPlan:
        plan = self.allocator.plan(state)
        return plan.model_copy(update={"policy": self.name, "rationale": f"pairs against own errors; {plan.rationale}"})

    def select(self, candidates: list[Example], state: TeacherState) -> list[Example]:
        if state.probe is None:
            return candidates
        answers = state.probe.answer([ex.prompt for ex in candidates])
        kept = []
        for ex, own in zip(candidates, answers, strict=True):
            if normalize(own) != normalize(ex.answer):
                kept.append(ex.model_copy(update={"rejected": own.strip()}))
            elif self.options.keep_known:
                kept.append(ex)
        return kept

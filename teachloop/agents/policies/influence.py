"""`influence`: after Montessori-Instruct (Li et al., ICLR 2025).

The teacher over-generates candidates (`overgenerate` x the budget, allocated like
STAT-Syn by the Missing-Skill-Profile); each candidate's *local data influence* on the
student is measured — one optimizer step on that candidate alone, then the change of
the loss on reference items the student currently fails (seed-pool items, never the
eval set) — and the most helpful (most negative) are kept within the budget. Every
candidate carries its score in `meta["influence"]` (the loop writes them all to
`data/candidates.jsonl`), and the selection pairs them per skill (most helpful > most
harmful): data that could train an LLM teacher with DPO, written to
`data/teacher_pairs.jsonl`. teachloop does not train the teacher on them.
"""

from __future__ import annotations

import random

from pydantic import BaseModel, ConfigDict, Field

from teachloop.agents.policies.base import BasePolicy
from teachloop.agents.policies.stat_syn import StatSynPolicy
from teachloop.agents.state import TeacherState
from teachloop.types import DataPlan, Example, Selection


class InfluenceOptions(BaseModel):
    """`influence`'s options."""

    model_config = ConfigDict(extra="forbid")

    overgenerate: float = Field(default=2.0, ge=1, description="candidates generated per example kept")
    reference: int = Field(default=64, ge=1, description="failed seed items the influence is measured on")
    floor: float = Field(default=0.0, ge=0, le=1, description="share of the budget spread evenly (as stat-syn)")


class InfluencePolicy(BasePolicy):
    """Montessori-Instruct: over-generate, keep the candidates with the most helpful local influence."""

    name = "influence"
    Options = InfluenceOptions
    options: InfluenceOptions
    needs_pool_attempts = True

    def setup(self) -> None:
        self.allocator = StatSynPolicy(floor=self.options.floor)

    def plan(self, state: TeacherState) -> DataPlan:
        wide = state.model_copy(update={"budget": round(state.budget * self.options.overgenerate)})
        plan = self.allocator.plan(wide)
        return plan.model_copy(
            update={"policy": self.name, "rationale": f"{self.options.overgenerate}x over-generation; {plan.rationale}"}
        )

    def select(self, candidates: list[Example], state: TeacherState) -> Selection:
        if len(candidates) <= state.budget or state.probe is None:
            return Selection(kept=candidates[: state.budget])
        failing_ids = {a.example_id for a in state.pool_attempts if not a.correct}
        failing = [ex for ex in state.pool if ex.id in failing_ids]
        rng = random.Random(f"{state.seed}:{state.iteration}:influence")
        reference = rng.sample(failing, min(self.options.reference, len(failing)))
        scores = state.probe.influence(candidates, reference)
        scored = [ex.model_copy(update={"meta": {**ex.meta, "influence": s}}) for ex, s in zip(candidates, scores)]
        ranked = sorted(range(len(scored)), key=lambda k: scores[k])
        keep = sorted(ranked[: state.budget])  # most helpful, in generation order
        return Selection(kept=[scored[k] for k in keep], scored=scored, teacher_pairs=preference_pairs(scored))


def preference_pairs(candidates: list[Example]) -> list[dict[str, object]]:
    """Per skill, the most helpful candidate against the most harmful (teacher DPO data)."""
    by_skill: dict[str, list[Example]] = {}
    for ex in candidates:
        if "influence" in ex.meta and ex.skills:
            by_skill.setdefault(ex.skills[0], []).append(ex)
    pairs = []
    for skill, group in sorted(by_skill.items()):
        if len(group) < 2:
            continue
        group.sort(key=lambda ex: ex.meta["influence"])
        best, worst = group[0], group[-1]
        pairs.append(
            {
                "skill": skill,
                "chosen": {"question": best.prompt, "answer": best.answer, "influence": best.meta["influence"]},
                "rejected": {"question": worst.prompt, "answer": worst.answer, "influence": worst.meta["influence"]},
            }
        )
    return pairs

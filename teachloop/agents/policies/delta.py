"""`delta`: the Delta Learning Hypothesis (Geng et al., "The Delta Learning Hypothesis:
Preference Tuning on Weak Data can Yield Strong Gains", 2025).

A preference pair needs no good answer, only a better one: the chosen answer comes from a
weak model, the rejected one from an even weaker model, and DPO learns from the quality
delta between them, with no judge (the paper's gains come where SFT on the chosen answers
alone does not help, or hurts). Both models are named in the options (any teacher backend,
`<backend>:<model>`); each answers every prompt in a few-shot chat of pool items of the same
skill, greedily, in the form the environment declares for that skill's answers (`item_form`).
A prompt where the two answer alike carries no delta and is dropped.

`prompts: pool` takes the iteration's prompts from the seed pool, weighted towards the
missing skills as STAT-Sel draws them; `prompts: plan` has the engine write new items for
the missing skills as STAT-Syn asks for them (the run's teacher, or the generator), then
replaces their answers. `pairs: false` trains on the chosen answers alone (SFT): the
comparison the hypothesis is measured against, on exactly the same prompts.

Not `error-dpo`: its pairs set a verified answer over the student's own wrong one.
"""

from __future__ import annotations

import random
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from teachloop.agents.engines.filters import normalize
from teachloop.agents.engines.llm import IndependentAnswer, answer_conversation, answer_schema
from teachloop.agents.policies.base import BasePolicy
from teachloop.agents.policies.common import pick, pool_index
from teachloop.agents.policies.stat_sel import StatSelPolicy
from teachloop.agents.policies.stat_syn import StatSynPolicy
from teachloop.agents.state import TeacherState
from teachloop.agents.teacher import TeacherConfig, parse_teacher_spec
from teachloop.errors import ConfigError
from teachloop.types import DataPlan, Example, Lineage, Selection


class DeltaOptions(BaseModel):
    """`delta`'s options."""

    model_config = ConfigDict(extra="forbid")

    chosen: str = Field(description="the weak model whose answers are chosen, '<backend>:<model>'")
    rejected: str = Field(description="the weaker model whose answers are rejected, '<backend>:<model>'")
    chosen_options: dict[str, Any] = Field(
        default_factory=dict, description="teacher settings for the chosen model (base_url, vllm_options, ...)"
    )
    rejected_options: dict[str, Any] = Field(default_factory=dict, description="the same for the rejected model")
    prompts: Literal["pool", "plan"] = Field(
        default="pool", description="pool: seed-pool prompts drawn as STAT-Sel; plan: new items as STAT-Syn asks"
    )
    pairs: bool = Field(default=True, description="DPO pairs; false: SFT on the chosen answers alone")
    exemplars: int = Field(default=3, ge=0, description="pool items of the prompt's skill shown to both models")
    max_tokens: int = Field(default=128, ge=1, description="answer length limit of both models")

    @field_validator("chosen", "rejected")
    @classmethod
    def _spec(cls, value: str) -> str:
        parse_teacher_spec(value)
        return value

    def config(self, role: Literal["chosen", "rejected"]) -> TeacherConfig:
        spec, options = (
            (self.chosen, self.chosen_options) if role == "chosen" else (self.rejected, self.rejected_options)
        )
        return TeacherConfig.from_spec(spec, **({"temperature": 0.0, "max_tokens": self.max_tokens} | options))


class DeltaPolicy(BasePolicy):
    """Delta learning: a weak model's answer over an even weaker one's (DPO, no judge)."""

    name = "delta"
    Options = DeltaOptions
    options: DeltaOptions
    uses_teacher = True  # its answers come from the models it names

    def setup(self) -> None:
        self.pool_only = self.options.prompts == "pool"  # its prompts need no generator then

    def plan(self, state: TeacherState) -> DataPlan:
        source = StatSelPolicy() if self.options.prompts == "pool" else StatSynPolicy(exemplars=self.options.exemplars)
        base = source.plan(state)
        what = "pairs" if self.options.pairs else "chosen answers alone (SFT)"
        return base.model_copy(
            update={
                "policy": self.name,
                "rationale": f"delta {what} on {self.options.prompts} prompts; {base.rationale}",
            }
        )

    def teacher_models(self) -> dict[str, TeacherConfig]:
        roles = {"delta-chosen": self.options.config("chosen")}
        if self.options.pairs:
            roles["delta-rejected"] = self.options.config("rejected")
        return roles

    def select(self, candidates: list[Example], state: TeacherState) -> Selection:
        if state.models is None:
            raise ConfigError("policy delta needs the run's model factory (TeacherState.models); run it in a Loop")
        models = self.teacher_models()
        chosen = state.models(models["delta-chosen"], "delta-chosen")
        rejected = state.models(models["delta-rejected"], "delta-rejected") if self.options.pairs else None
        conversations = self._conversations(candidates, state)
        # each answer in the form the environment declares for its skill: unconstrained, the
        # 0.5B chosen model answered 9 of 76 skillworld prompts with a lone "}"
        schemas = [
            answer_schema(state.forms(ex.skills[0] if ex.skills else None)) if state.forms else IndependentAnswer
            for ex in candidates
        ]
        good = chosen.structured(conversations, schemas, purpose="delta-chosen", temperature=0.0)
        bad = (
            rejected.structured(conversations, schemas, purpose="delta-rejected", temperature=0.0)
            if rejected is not None
            else [None] * len(candidates)
        )
        kept = []
        for ex, better, worse in zip(candidates, good, bad, strict=True):
            if better is None:
                continue
            if self.options.pairs and (worse is None or normalize(worse.answer) == normalize(better.answer)):
                continue  # no delta to learn from
            kept.append(
                Example(
                    prompt=ex.prompt,
                    answer=better.answer.strip(),
                    rejected=worse.answer.strip() if self.options.pairs and worse else None,
                    skills=list(ex.skills),
                    source="generated",
                    lineage=Lineage(
                        iteration=state.iteration,
                        skill=ex.skills[0] if ex.skills else None,
                        policy=self.name,
                        teacher=chosen.name,
                        parent_id=ex.id,
                    ),
                    meta={"chosen": chosen.name, **({"rejected": rejected.name} if rejected is not None else {})},
                )
            )
        return Selection(kept=kept)

    def _conversations(self, candidates: list[Example], state: TeacherState) -> list[list[dict[str, str]]]:
        """Each prompt as a few-shot chat of other pool items of its skill, as the student sees them."""
        index = pool_index(state.pool)
        rng = random.Random(f"{state.seed}:{state.iteration}:delta")
        tree = state.skill_tree
        out = []
        for ex in candidates:
            skill = ex.skills[0] if ex.skills else None
            others = [p for p in index.get(skill, []) if p.prompt != ex.prompt] if skill else []
            description = tree.description(skill) if skill in tree else ""
            out.append(
                answer_conversation(
                    skill or "the task", description, ex.prompt, pick(others, self.options.exemplars, rng)
                )
            )
        return out

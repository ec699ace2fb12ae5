"""Shared pydantic models: the only things modules pass to one another.

Every artifact the loop writes to a run folder is one of these, serialised as JSON(L),
so a resumed run reads back exactly what an uninterrupted one kept in memory.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator


def example_id(prompt: str, answer: str) -> str:
    """Stable content id: the same (prompt, answer) always gets the same id."""
    return hashlib.sha1(f"{prompt}\x00{answer}".encode()).hexdigest()[:16]


class Lineage(BaseModel):
    """Where a generated example came from."""

    model_config = ConfigDict(frozen=True)

    iteration: int
    skill: str | None = None
    policy: str
    teacher: str
    parent_id: str | None = None


class Example(BaseModel):
    """One task item: a prompt, its reference answer and the skills it exercises."""

    model_config = ConfigDict(frozen=True)

    id: str = ""
    prompt: str
    answer: str
    skills: list[str] = Field(default_factory=list)
    source: Literal["seed", "eval", "generated"] = "seed"
    lineage: Lineage | None = None
    meta: dict[str, Any] = Field(default_factory=dict)
    rejected: str | None = None  # a dispreferred answer: the example is a preference pair (DPO)

    def model_post_init(self, __context: Any) -> None:
        if not self.id:
            object.__setattr__(self, "id", example_id(self.prompt, self.answer))


class Attempt(BaseModel):
    """The student's answer to one eval example, scored."""

    model_config = ConfigDict(frozen=True)

    example_id: str
    prompt: str
    response: str
    reference: str
    correct: bool
    score: float
    skills: list[str] = Field(default_factory=list)
    hit_limit: bool = False  # the answer ran to the token limit without ending


UNLABELLED = "(unlabelled)"  # the bucket of eval items that carry no skill label


class EvalReport(BaseModel):
    """All scored attempts of one evaluation, with overall, per-skill and per-node accuracy.

    `skill_accuracy` is per label, as the items carry them. `node_accuracy` / `node_counts`
    cover every node of the skill tree, groups included (a group aggregates each item labelled
    with it or a descendant), in reading order; then labels outside the tree; then UNLABELLED,
    the items with no skill, which count in `accuracy` and nowhere else. `node_counts` has
    every tree node (0: no item); `node_accuracy` the nodes with items. Reports written before
    these fields existed load with them empty. `teachloop.skills.profile.eval_report` makes one
    from scored attempts and the tree.
    """

    iteration: int
    attempts: list[Attempt]
    accuracy: float
    skill_accuracy: dict[str, float]
    skill_counts: dict[str, int]
    node_accuracy: dict[str, float] = Field(default_factory=dict)
    node_counts: dict[str, int] = Field(default_factory=dict)
    hit_limit: int = 0  # answers that ran to the token limit without ending

    @property
    def unlabelled(self) -> int:
        """How many evaluated items carry no skill label."""
        return self.node_counts.get(UNLABELLED, 0)

    def failures(self) -> list[Attempt]:
        return [a for a in self.attempts if not a.correct]


class MissingSkillProfile(BaseModel):
    """STAT's Missing-Skill-Profile: for each hard item, the skills its answer failed to
    apply, and the histogram c(s) of how many hard items name skill s."""

    per_item: dict[str, list[str]] = Field(default_factory=dict)
    counts: dict[str, int] = Field(default_factory=dict)
    judge: str = "exact"
    # c(s) for every node of the skill tree: hard items naming s or a descendant (each item
    # once per node), in reading order, nodes without any left out; UNLABELLED: hard items
    # that carry no skill label. Empty in profiles made without the tree.
    # (`teachloop.skills.profile.profile_from_items` makes one.)
    node_counts: dict[str, int] = Field(default_factory=dict)

    @property
    def n_hard(self) -> int:
        return len(self.per_item)

    def shares(self) -> dict[str, float]:
        """c(s) normalised to sum to 1 (empty when nothing is missing)."""
        total = sum(self.counts.values())
        return {s: c / total for s, c in self.counts.items()} if total else {}


class Feedback(BaseModel):
    """What diagnosis hands the policy: the errors, per-skill accuracy and the profile."""

    iteration: int
    accuracy: float
    skill_accuracy: dict[str, float]
    profile: MissingSkillProfile
    errors: list[Attempt] = Field(default_factory=list)
    node_accuracy: dict[str, float] = Field(default_factory=dict)  # every tree node, groups included (EvalReport)


class GenerationRequest(BaseModel):
    """Ask the engine for `count` new examples of one skill (or of any skill)."""

    skill: str | None = None
    count: int = Field(ge=0)
    instructions: str = ""
    exemplars: list[Example] = Field(default_factory=list)
    parent_id: str | None = None
    difficulty: int | None = Field(default=None, ge=0, description="level for environments that have levels")


TeachMode = Literal["write", "distill", "both"]


class DataPlan(BaseModel):
    """A policy's decision: what new data to make and/or how to reweight the pool, and how
    the student learns from it.

    `requests` ask the engine for new examples. `pool_samples` draws that many items from
    the seed pool, with probability proportional to `weights` (pool example id -> weight;
    uniform when None): STAT-Sel's reweighting, or plain SFT on the seed data. `teach`:
    write trains on the examples (SFT; DPO for those that carry a `rejected` answer);
    distill trains by on-policy distillation on their prompts alone (the student samples,
    the teacher scores its tokens); both does SFT on the training set, then distils on the
    iteration's new prompts; None follows the run's `train.objective`.
    """

    policy: str
    iteration: int
    requests: list[GenerationRequest] = Field(default_factory=list)
    weights: dict[str, float] | None = None
    pool_samples: int = Field(default=0, ge=0)
    rationale: str = ""
    policy_state: dict[str, Any] = Field(default_factory=dict)
    teach: TeachMode | None = None

    @property
    def total_requested(self) -> int:
        return sum(r.count for r in self.requests)

    def allocation(self) -> dict[str, int]:
        counts: Counter[str] = Counter()
        for request in self.requests:
            counts[request.skill or "*"] += request.count
        return dict(sorted(counts.items()))

    def scaled_to(self, budget: int) -> DataPlan:
        """The plan with every request and the pool draws scaled in proportion so that they
        add up to `budget` (largest remainders get the rounding), when they ask for more; a
        request of at least one example keeps at least one while the budget allows."""
        asked = [r.count for r in self.requests] + [self.pool_samples]
        total = sum(asked)
        if total <= budget:
            return self
        exact = [count * budget / total for count in asked]
        counts = [int(x) for x in exact]
        by_remainder = sorted(range(len(asked)), key=lambda k: (-(exact[k] - counts[k]), k))
        for k in by_remainder[: budget - sum(counts)]:
            counts[k] += 1
        for k in range(len(counts)):  # no request vanishes for rounding while another has more than one
            if asked[k] and not counts[k] and max(counts) > 1:
                counts[counts.index(max(counts))] -= 1
                counts[k] = 1
        requests = [r.model_copy(update={"count": c}) for r, c in zip(self.requests, counts, strict=False)]
        return self.model_copy(update={"requests": requests, "pool_samples": counts[-1]})


class HistoryEntry(BaseModel):
    """One finished iteration as a policy sees it later: state, action, reward."""

    iteration: int
    accuracy: float
    skill_accuracy: dict[str, float]
    allocation: dict[str, int]
    next_skill_accuracy: dict[str, float] | None = None


class Selection(BaseModel):
    """What a policy's `select` keeps of the engine's candidates, and what it found on the
    way: the candidates with its scores (written as data/candidates.jsonl) and preference
    pairs for training the teacher (data/teacher_pairs.jsonl). A policy returns it instead
    of keeping anything between calls, so a resumed run selects exactly as before."""

    kept: list[Example]
    scored: list[Example] = Field(default_factory=list)
    teacher_pairs: list[dict[str, Any]] = Field(default_factory=list)


class Rejected(BaseModel):
    """An example the engine would not keep, with the reason (kept in the run folder)."""

    example: Example
    reason: str


class GenerationContext(BaseModel):
    """What an engine needs besides the plan: seed, lineage and what it must not repeat."""

    iteration: int
    seed: int
    policy: str
    eval_prompts: frozenset[str] = frozenset()
    seen_prompts: frozenset[str] = frozenset()


class GenerationResult(BaseModel):
    """What an engine made of a plan: kept examples, rejected ones with their reasons, and
    per skill the slots it could not fill at all (no valid teacher reply, generator exhausted)."""

    examples: list[Example] = Field(default_factory=list)
    rejected: list[Rejected] = Field(default_factory=list)
    shortfall: dict[str, int] = Field(default_factory=dict)

    def add_shortfall(self, skill: str | None, count: int) -> None:
        """`count` slots of `skill` (None: any skill, counted as "*") that nothing was made for."""
        if count > 0:
            key = skill or "*"
            self.shortfall[key] = self.shortfall.get(key, 0) + count

    def serve(self, request: GenerationRequest, kept: list[Example]) -> None:
        """What was kept for `request`; the slots it could not fill are its shortfall."""
        self.add_shortfall(request.skill, request.count - len(kept))
        self.examples.extend(kept)

    def data_yield(self, asked: int, allocation: dict[str, int] | None = None) -> DataYield:
        """`allocation`: what was asked per skill (`DataPlan.allocation`), for the per-skill yield."""
        by_reason: Counter[str] = Counter(r.reason.split(":", 1)[0] for r in self.rejected)
        kept: Counter[str] = Counter((ex.lineage.skill if ex.lineage else None) or "*" for ex in self.examples)
        return DataYield(
            asked=asked,
            accepted=len(self.examples),
            rejected=dict(by_reason.most_common()),
            unfilled=sum(self.shortfall.values()),
            skills={skill: [kept.get(skill, 0), n] for skill, n in (allocation or {}).items()},
        )


class DataYield(BaseModel):
    """How much of what a generate phase asked for it kept: accepted / asked, and why the
    rest was lost (rejections counted by reason; slots never filled)."""

    asked: int
    accepted: int
    rejected: dict[str, int] = Field(default_factory=dict)
    unfilled: int = 0
    skills: dict[str, list[int]] = Field(default_factory=dict)  # skill -> [kept, asked]

    @property
    def ratio(self) -> float | None:
        return self.accepted / self.asked if self.asked else None

    def summary(self) -> str:
        """'kept 30 of 40 (75%); rejected: verification 8, duplicate 2; unfilled 2' (unfilled: slots
        nothing was made for, by any engine)."""
        if not self.asked:
            return "no new examples asked"
        parts = [f"kept {self.accepted} of {self.asked} ({self.ratio:.0%})"]
        if self.rejected:
            parts.append("rejected: " + ", ".join(f"{reason} {count}" for reason, count in self.rejected.items()))
        if self.unfilled:
            parts.append(f"unfilled {self.unfilled}")
        return "; ".join(parts)


class LoraSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    r: int = Field(default=16, ge=1, description="LoRA rank")
    alpha: int = Field(default=32, ge=1, description="LoRA scaling (alpha / r multiplies the update)")
    dropout: float = Field(
        default=0.0,
        ge=0,
        lt=1,
        description="dropout on the LoRA path; above 0 each adapted layer keeps a dropped copy of its input for the "
        "backward pass (SmolLM2: 2.5x the training memory per token)",
    )
    target_modules: str | list[str] = Field(
        default="all-linear", description="modules that get an adapter: all-linear or a list of module names"
    )


class DPOSettings(BaseModel):
    """How preference pairs train (TRL's DPOTrainer), apart from what every method shares."""

    model_config = ConfigDict(extra="forbid")

    beta: float = Field(default=0.1, gt=0, description="DPO's beta: how far the policy may move from the reference")
    sft_weight: float = Field(
        default=1.0,
        ge=0,
        description="weight of the chosen answer's NLL added to the DPO loss (RPO); 0: plain DPO, which pushes away "
        "from wrong answers without teaching the right one",
    )


class DistillSettings(BaseModel):
    """How on-policy distillation trains (`TrainConfig.objective: distill`): the student
    samples answers to the iteration's prompts, the teacher scores the student's tokens, and
    the loss pulls the student's next-token distribution towards the teacher's."""

    model_config = ConfigDict(extra="forbid")

    temperature: float = Field(
        default=1.0,
        gt=0,
        description="sampling temperature of the student's answers, and of both distributions in the loss",
    )
    beta: float = Field(
        default=1.0,
        ge=0,
        le=1,
        description="the generalized Jensen-Shannon divergence's interpolation: 0 forward KL (teacher to student), "
        "0.5 JSD, 1 reverse KL (student to teacher, mode-seeking: the on-policy distillation default); a teacher "
        "with another tokenizer applies it to the tokens both vocabularies hold (ULD's hybrid loss)",
    )
    on_policy: float = Field(
        default=1.0,
        gt=0,
        le=1,
        description="share of the batches the student samples itself (TRL's lmbda); below 1 the other batches are the "
        "iteration's own answers, scored by the teacher (GKD's supervised share: it needs answers, and runs through "
        "TRL's GOLD trainer whatever the tokenizers)",
    )
    max_new_tokens: int | None = Field(
        default=None,
        ge=1,
        description="tokens the student samples per prompt; default: the run's answer limit (--max-new-tokens, else "
        "the environment's)",
    )


class TrainStats(BaseModel):
    """What one trainer's pass over an iteration's data took."""

    loss: float  # mean training loss over every step
    examples: int
    tokens: int  # tokens put through the model, every epoch counted
    seconds: float
    micro_batch: int  # examples per forward pass
    peak_gb: float  # the process's highest resident memory while it trained

    @property
    def tokens_per_second(self) -> float:
        return self.tokens / self.seconds if self.seconds > 0 else 0.0


class TrainConfig(BaseModel):
    """How the student is trained on one iteration's data (TRL SFT; DPO for pairs; or
    on-policy distillation from the teacher on the data's prompts).

    `method`: full fine-tuning or a LoRA adapter (peft); `auto` is full for the embedded
    student and LoRA for any other model. `objective`: what the student learns from (see
    the field); `method: distill` is shorthand for `objective: distill` with `method: auto`.
    """

    model_config = ConfigDict(extra="forbid")

    objective: Literal["auto", "distill"] = Field(
        default="auto",
        description="auto: SFT on the iteration's examples and DPO on its preference pairs; distill: on-policy "
        "distillation on the iteration's prompts (the student samples, the teacher scores the student's tokens: "
        "needs a teacher with local weights, e.g. vllm:<model>)",
    )
    method: Literal["auto", "full", "lora"] = Field(
        default="auto",
        description="full fine-tuning or a LoRA adapter; auto: full for the embedded student, else LoRA; "
        "`distill` is accepted as shorthand for objective distill with method auto",
    )
    lora: LoraSettings = Field(default_factory=LoraSettings)
    dpo: DPOSettings = Field(default_factory=DPOSettings, description="preference pairs (DPO) only")
    distill: DistillSettings = Field(default_factory=DistillSettings, description="objective distill only")

    epochs: float = Field(default=3.0, gt=0, description="passes over the iteration's training set")
    learning_rate: float = Field(default=1e-3, gt=0, description="peak learning rate")
    batch_size: int = Field(default=64, ge=1, description="examples per optimizer step")
    micro_batch_size: int | None = Field(
        default=None,
        ge=1,
        description="examples per forward pass, gradients accumulated up to batch_size; default: the largest "
        "divisor of batch_size within micro_batch_tokens for the longest example (all 64 for the embedded student)",
    )
    precision: Literal["auto", "fp32", "bf16"] = Field(
        default="auto",
        description="bf16: matrix products under bfloat16 autocast (weights and optimizer stay float32); auto: bf16 "
        "for LoRA where the hardware computes bfloat16 natively (a GPU, or a CPU with AMX or AVX512-BF16: 1.14x "
        "the tokens/s of fp32 for SmolLM2 LoRA, same loss), else fp32",
    )
    micro_batch_tokens: int | None = Field(
        default=None,
        ge=1,
        description="tokens per forward pass (micro batch x its longest example); default: as many as keep the "
        "activations autograd stores near 1 GiB (about 500 for SmolLM2-135M, 230 for Qwen2.5-0.5B); "
        "micro_batch_size overrides it",
    )
    warmup_ratio: float = Field(default=0.0, ge=0, lt=1, description="share of the steps spent warming up")
    lr_scheduler: Literal["constant", "linear", "cosine"] = Field(
        default="constant", description="learning-rate schedule after the warm-up"
    )
    weight_decay: float = Field(default=0.0, ge=0, description="AdamW weight decay")
    processes: int = Field(
        default=1,
        ge=1,
        description="training processes: above 1 the train phase runs under `accelerate launch` (data parallel; "
        "one process per GPU, or CPU processes over gloo on a machine without one)",
    )
    accelerate_config: Path | None = Field(
        default=None,
        description="an `accelerate config` file for processes > 1 (DeepSpeed ZeRO, FSDP, mixed precision); "
        "default: plain data parallel",
    )

    @model_validator(mode="before")
    @classmethod
    def _distill_shorthand(cls, data: Any) -> Any:
        """`method: distill` (the issue's `--train.method distill`) means objective distill, method auto."""
        if isinstance(data, dict) and data.get("method") == "distill":
            if data.get("objective", "distill") != "distill":
                raise ValueError(
                    f"method: distill is shorthand for objective: distill, but objective is {data['objective']!r}"
                )
            data = {**data, "objective": "distill", "method": "auto"}
        return data

    @field_validator("accelerate_config")
    @classmethod
    def _absolute(cls, value: Path | None) -> Path | None:
        """Relative to where the command ran, kept absolute so a resume from elsewhere finds it."""
        return value.resolve() if value is not None else None

    @field_validator("learning_rate")
    @classmethod
    def _sane_lr(cls, value: float) -> float:
        if value > 1.0:
            raise ValueError("learning_rate above 1.0 is almost certainly a typo")
        return value

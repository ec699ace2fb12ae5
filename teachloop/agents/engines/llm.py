"""LLM engine: the teacher writes new examples for each GenerationRequest, then they are
verified, de-duplicated and decontaminated.

What makes small real teachers usable (measured with Qwen2.5-Coder-0.5B-Instruct on
skillworld, `teachloop teacher check`: 2 of 40 kept with free-form replies and prose
exemplars, 26 of 40 with the task's form in the schema, 60 of 80 with a second answer):

- the references are shown exactly as the student sees them, as the JSON the teacher must
  reply with;
- an environment that declares the form of its items (`item_form`) gets it into the reply's
  JSON schema as `pattern`s, so structured output cannot write another form; the teacher is
  told the task is format-bound (a new item is the same operation on a new input) instead
  of "no number swaps", which only suits open tasks;
- the references rotated for each item of a request, so its slots do not all see (and
  write) the same thing;
- a second opinion: the teacher answers each written question again in a few-shot chat of
  the references (question as the user turn, answer as the reply), `answer_samples` times.

Three strategies (after "Balancing Cost and Effectiveness of Synthetic Data Generation
Strategies", whose best one depends on the teacher-query budget relative to the seed set):
`new_question` (the default) writes new items as above; `rephrase` rewrites a seed-pool item's
question in other words and keeps its answer; `answer_augmentation` has the teacher answer a
seed-pool question again (the few-shot chat of the second opinion), a new answer to an
existing question. The seed items are the pool's items of the requested skill, drawn in a
fixed order per (seed, iteration, request); a skill without pool items is a shortfall.
Answer augmentation repeats questions by design, so its duplicates are identical (question,
answer) pairs, not identical questions.

Verification: `checker` keeps an item the environment's checker accepts, trying the written
answer first and then the re-answers (most agreed first); `consistency` keeps an item whose
written answer and re-answers agree on one answer at least twice (STAT-Syn keeps questions
with >= 2 agreeing solutions); `none` keeps every item; `auto` is checker where the
environment has one. Everything rejected is kept with its reason.
"""

from __future__ import annotations

import json
import random
from collections import Counter
from functools import lru_cache
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, create_model

from teachloop.agents.engines.base import BaseEngine
from teachloop.agents.engines.filters import DataFilter, normalize
from teachloop.agents.teacher import TeacherLLM
from teachloop.environments.base import Environment, ItemForm, checker_of, item_form, to_example
from teachloop.errors import ConfigError
from teachloop.types import DataPlan, Example, GenerationContext, GenerationRequest, GenerationResult, Lineage, Rejected

Verify = Literal["auto", "checker", "consistency", "none"]
Strategy = Literal["new_question", "rephrase", "answer_augmentation"]
SYSTEM = "You are a teacher who writes training data for a small student model. Reply with JSON only."
MAX_TEXT = 4000  # bounded so a degenerate teacher cannot stream forever; long enough for code and proofs
FORMAT_BOUND = (
    "The task is format-bound: a new item is the same operation on a new input. Keep the references' exact "
    "form (the same words, an input like theirs but new) and give the correct answer in the answers' form."
)
OPEN_TASK = (
    "Write a new question in the references' format (a new situation, not a rename or a number swap of a "
    "reference) and its correct answer in the form of their answers."
)


class NewExample(BaseModel):
    question: str = Field(min_length=1, max_length=MAX_TEXT)
    answer: str = Field(min_length=1, max_length=MAX_TEXT)


class IndependentAnswer(BaseModel):
    answer: str = Field(min_length=1, max_length=MAX_TEXT)


class Rephrased(BaseModel):
    question: str = Field(min_length=1, max_length=MAX_TEXT)


def _text(pattern: str | None):
    if pattern is None:
        return (str, Field(min_length=1, max_length=MAX_TEXT))
    # the pattern alone: xgrammar refuses a string schema with both a pattern and length bounds
    return (str, Field(pattern=f"^(?:{pattern})$"))


@lru_cache(maxsize=256)
def item_schema(form: ItemForm) -> type[BaseModel]:
    """The reply schema of a written item: NewExample, with the environment's form as patterns."""
    if form == ItemForm():
        return NewExample
    return create_model("NewExample", question=_text(form.question), answer=_text(form.answer))


@lru_cache(maxsize=256)
def rephrase_schema(form: ItemForm) -> type[BaseModel]:
    if form.question is None:
        return Rephrased
    return create_model("Rephrased", question=_text(form.question))


@lru_cache(maxsize=256)
def answer_schema(form: ItemForm) -> type[BaseModel]:
    if form.answer is None:
        return IndependentAnswer
    return create_model("IndependentAnswer", answer=_text(form.answer))


def shown(example: Example) -> str:
    """An item as the student sees it, in the JSON the teacher replies with."""
    return json.dumps({"question": example.prompt.strip(), "answer": example.answer.strip()}, ensure_ascii=False)


def generation_prompt(
    skill: str, description: str, instructions: str, exemplars: list[Example], variant: str, form: ItemForm
) -> str:
    lines = [f"Skill: {skill}" + (f" ({description})" if description else "")]
    if instructions:
        lines.append(f"Instructions: {instructions}")
    if exemplars:
        lines.append("Items of this task, exactly as the student sees them:")
        lines += [shown(ex) for ex in exemplars]
    lines.append(FORMAT_BOUND if form.format_bound else OPEN_TASK)
    lines.append(f'Reply with one new item as {{"question": ..., "answer": ...}} (variant {variant}).')
    return "\n".join(lines)


def rephrase_prompt(skill: str, description: str, seed: Example, form: ItemForm) -> str:
    lines = [
        f"Skill: {skill}" + (f" ({description})" if description else ""),
        "An item of this task, exactly as the student sees it:",
        shown(seed),
        "Rewrite its question in other words. Its meaning must stay the same, so that the answer above is still "
        "its correct answer." + (" Keep the task's form." if form.format_bound else ""),
        'Reply as {"question": ...}.',
    ]
    return "\n".join(lines)


def answer_conversation(skill: str, description: str, question: str, exemplars: list[Example]) -> list[dict[str, str]]:
    """The teacher answering a question as a few-shot chat: each reference's question is a
    user turn and its answer the reply, then the new question."""
    task = f"'{skill}'" + (f" ({description})" if description else "")
    messages = [{"role": "system", "content": f"You answer questions of the task {task}. Reply with JSON only."}]
    for ex in exemplars:
        messages.append({"role": "user", "content": ex.prompt.strip()})
        messages.append({"role": "assistant", "content": json.dumps({"answer": ex.answer.strip()}, ensure_ascii=False)})
    messages.append({"role": "user", "content": question.strip()})
    return messages


class _Candidate(BaseModel):
    example: Example
    request: GenerationRequest
    form: ItemForm


def resolve_verify(verify: str, env: Environment) -> str:
    """`auto` is the environment's checker where it has one, else self-consistency."""
    checker = checker_of(env)
    mode = verify if verify != "auto" else ("checker" if checker else "consistency")
    if mode == "checker" and checker is None:
        raise ConfigError(f"verify=checker, but environment {env.name!r} has no checker")
    return mode


class LLMEngineOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")

    verify: Verify = Field(default="auto", description="checker, consistency or none; auto: checker if the env has one")
    ngram: int = Field(default=8, ge=1, description="n-gram size of the near-duplicate and contamination filter")
    answer_samples: int = Field(
        default=1, ge=0, le=8, description="re-answers per written item (few-shot), tried or voted by verification"
    )
    strategy: Strategy = Field(
        default="new_question",
        description="new_question: write new items; rephrase: reword seed-pool questions, keeping their answers; "
        "answer_augmentation: answer seed-pool questions anew",
    )


class LLMEngine(BaseEngine):
    """The teacher writes each requested item (question and answer, in the environment's item
    form for the skill); the environment's checker or self-consistency verifies it, and the
    filters drop duplicates and eval look-alikes."""

    name = "llm"
    needs_teacher = True
    Options = LLMEngineOptions
    options: LLMEngineOptions
    teacher: TeacherLLM

    def generate(self, plan: DataPlan, env: Environment, ctx: GenerationContext) -> GenerationResult:
        result = GenerationResult()
        slots: list[tuple[int, int]] = [(ri, k) for ri, req in enumerate(plan.requests) for k in range(req.count)]
        forms = [item_form(env, req.skill) for req in plan.requests]
        strategy = self.options.strategy
        seeds: dict[tuple[int, int], Example] = {}
        if strategy != "new_question":
            seeds = _seed_items(plan, env, ctx)
            for ri, req in enumerate(plan.requests):
                result.add_shortfall(req.skill, sum(1 for k in range(req.count) if (ri, k) not in seeds))
            slots = [slot for slot in slots if slot in seeds]
        conversations, schemas = [], []
        for ri, k in slots:
            req = plan.requests[ri]
            skill, description = req.skill or "any skill of the task", _description(env, req.skill)
            if strategy == "answer_augmentation":
                conversations.append(answer_conversation(skill, description, seeds[(ri, k)].prompt, req.exemplars))
                schemas.append(answer_schema(forms[ri]))
                continue
            if strategy == "rephrase":
                prompt = rephrase_prompt(skill, description, seeds[(ri, k)], forms[ri])
                schemas.append(rephrase_schema(forms[ri]))
            else:
                exemplars = _rotated(req.exemplars, k)
                variant = f"{ctx.iteration}.{ri}.{k}"
                prompt = generation_prompt(skill, description, req.instructions, exemplars, variant, forms[ri])
                schemas.append(item_schema(forms[ri]))
            conversations.append([{"role": "system", "content": SYSTEM}, {"role": "user", "content": prompt}])
        with self.progress_bar("generate", len(conversations), unit="item") as bar:
            replies = self.teacher.structured(
                conversations,
                schemas,
                purpose="generate",
                temperature=self.teacher.cfg.generation_temperature,
                progress=bar,
            )

        candidates: list[_Candidate] = []
        for (ri, k), reply in zip(slots, replies, strict=True):
            req = plan.requests[ri]
            if reply is None:  # recorded by the teacher client (teacher_failures.jsonl)
                result.add_shortfall(req.skill, 1)
                continue
            skills = [req.skill] if req.skill else []
            seed = seeds.get((ri, k))
            if strategy == "answer_augmentation" and seed is not None:
                question, answer = seed.prompt.strip(), reply.answer
            elif strategy == "rephrase" and seed is not None:
                question, answer = reply.question, seed.answer
            else:
                question, answer = reply.question, reply.answer
            example = to_example(env, question, answer, skills).model_copy(
                update={
                    "source": "generated",
                    "lineage": Lineage(
                        iteration=ctx.iteration,
                        skill=req.skill,
                        policy=ctx.policy,
                        teacher=self.teacher.name,
                        parent_id=seed.id if seed is not None else req.parent_id,
                    ),
                    "meta": {"strategy": strategy} if strategy != "new_question" else {},
                }
            )
            if strategy == "rephrase" and seed is not None and normalize(example.prompt) == normalize(seed.prompt):
                result.rejected.append(Rejected(example=example, reason="duplicate: not reworded (the pool question)"))
                continue
            candidates.append(_Candidate(example=example, request=req, form=forms[ri]))

        verified = self._verify(candidates, env, result)
        if strategy == "answer_augmentation":  # the questions repeat by design: a duplicate is a repeated pair
            data_filter = DataFilter(ctx.eval_prompts, ngram=self.options.ngram, identity="pair")
        else:
            data_filter = DataFilter(ctx.eval_prompts, ctx.seen_prompts, ngram=self.options.ngram)
        kept, rejected = data_filter.split(verified)
        result.examples.extend(kept)
        result.rejected.extend(rejected)
        return result

    # -- verification ------------------------------------------------------------------------
    def verify_mode(self, env: Environment) -> str:
        """The verification `auto` resolves to for this environment."""
        return resolve_verify(self.options.verify, env)

    def _verify(self, candidates: list[_Candidate], env: Environment, result: GenerationResult) -> list[Example]:
        mode = self.verify_mode(env)
        if mode == "none":
            return [c.example for c in candidates]
        if mode == "checker":
            return self._by_checker(candidates, env, result)
        return self._by_consistency(candidates, env, result)

    def _answers(self, candidates: list[_Candidate], env: Environment, samples: int) -> list[list[str]]:
        """Per candidate, the teacher's re-answers to its question (`samples` of them; greedy
        when one, sampled at the teacher's temperature when several)."""
        if not candidates or samples < 1:
            return [[] for _ in candidates]
        conversations = [
            answer_conversation(
                c.request.skill or "any skill of the task",
                _description(env, c.request.skill),
                c.example.prompt,
                c.request.exemplars,
            )
            for c in candidates
        ]
        schemas = [answer_schema(c.form) for c in candidates]
        temperature = 0.0 if samples == 1 else None
        found: list[list[str]] = [[] for _ in candidates]
        with self.progress_bar("re-answer", len(candidates) * samples, unit="answer") as bar:
            for sample in range(samples):
                replies = self.teacher.structured(
                    conversations, schemas, purpose="verify", temperature=temperature, sample=sample, progress=bar
                )
                for answers, reply in zip(found, replies, strict=True):
                    if reply is not None:
                        answers.append(reply.answer)
        return found

    def _by_checker(self, candidates: list[_Candidate], env: Environment, result: GenerationResult) -> list[Example]:
        checker = checker_of(env)
        assert checker is not None
        kept: list[Example | None] = [c.example if checker(c.example) else None for c in candidates]
        # a rewording keeps its pool item's answer: one the checker refuses changed the question
        reworded = {i for i, c in enumerate(candidates) if c.example.meta.get("strategy") == "rephrase"}
        retry = [i for i, ex in enumerate(kept) if ex is None and i not in reworded]
        answers = self._answers([candidates[i] for i in retry], env, self.options.answer_samples)
        for i, tried in zip(retry, answers, strict=True):
            for answer, _ in Counter(tried).most_common():
                fixed = _with_answer(env, candidates[i].example, answer)
                if checker(fixed):
                    kept[i] = fixed
                    break
        for i, (c, ex) in enumerate(zip(candidates, kept, strict=True)):
            if ex is None and i in reworded:
                reason = "verification: the rewording changed the answer (the checker refuses the pool item's)"
                result.rejected.append(Rejected(example=c.example, reason=reason))
            elif ex is None:
                reason = "verification: the environment's checker disagrees"
                reason += " with the written answer and its re-answers" if self.options.answer_samples else ""
                result.rejected.append(Rejected(example=c.example, reason=reason))
        return [ex for ex in kept if ex is not None]

    def _by_consistency(
        self, candidates: list[_Candidate], env: Environment, result: GenerationResult
    ) -> list[Example]:
        kept = []
        answers = self._answers(candidates, env, max(1, self.options.answer_samples))
        for c, tried in zip(candidates, answers, strict=True):
            if not tried:
                result.rejected.append(Rejected(example=c.example, reason="verification: no valid independent answer"))
                continue
            votes = Counter(normalize(a) for a in [c.example.answer, *tried])
            top, count = votes.most_common(1)[0]
            if count < 2:
                result.rejected.append(
                    Rejected(
                        example=c.example,
                        reason=f"verification: independent answers {tried!r} disagree with {c.example.answer!r}",
                    )
                )
            elif top == normalize(c.example.answer):
                kept.append(c.example)
            else:  # the re-answers agree with each other, not with the written answer
                kept.append(_with_answer(env, c.example, next(a for a in tried if normalize(a) == top)))
        return kept


def _seed_items(plan: DataPlan, env: Environment, ctx: GenerationContext) -> dict[tuple[int, int], Example]:
    """A seed-pool item per slot (request, k) for rephrase and answer augmentation: the pool's
    items of the request's skill (any, for a request without one) in an order fixed by (seed,
    iteration, request), cycled when a request asks for more than the pool holds."""
    pool = env.train_pool()
    found: dict[tuple[int, int], Example] = {}
    for ri, req in enumerate(plan.requests):
        under = set(env.skills.leaves_under(req.skill)) | {req.skill} if req.skill in env.skills else set()
        items = [ex for ex in pool if not req.skill or set(ex.skills) & under]
        if not items:
            continue
        random.Random(f"{ctx.seed}:{ctx.iteration}:{ri}:{req.skill}").shuffle(items)
        for k in range(req.count):
            found[(ri, k)] = items[k % len(items)]
    return found


def _rotated(exemplars: list[Example], k: int) -> list[Example]:
    """The references in another order for each item of a request: slots that all saw the
    same prompt wrote the same item (measured: 26 of 80 duplicates, 18 rotated)."""
    if not exemplars:
        return exemplars
    shift = k % len(exemplars)
    return exemplars[shift:] + exemplars[:shift]


def _description(env: Environment, skill: str | None) -> str:
    return env.skills.description(skill) if skill in env.skills else ""


def _with_answer(env: Environment, example: Example, answer: str) -> Example:
    """The example with another answer, in the environment's format, lineage kept."""
    fresh = to_example(env, example.prompt, answer, list(example.skills))
    return fresh.model_copy(update={"source": example.source, "lineage": example.lineage, "meta": example.meta})

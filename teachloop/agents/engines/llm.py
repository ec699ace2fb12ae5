"""LLM engine: the teacher writes new examples for each GenerationRequest, then they are
verified, de-duplicated and decontaminated.

Verification: the environment's checker where it has one (`env.check(example)`), else
self-consistency — the teacher answers its own question again, independently, and only
examples whose two answers agree are kept. Everything rejected is kept with its reason.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

from teachloop.agents.engines.filters import DataFilter, normalize
from teachloop.agents.llm import TeacherLLM
from teachloop.environments.base import Environment, checker_of, to_example
from teachloop.types import DataPlan, Example, GenerationContext, GenerationResult, Lineage, Rejected

Verify = Literal["auto", "checker", "consistency", "none"]
SYSTEM = "You are a teacher who writes training data for a small student model. Reply with JSON only."


class NewExample(BaseModel):
    # bounded so a degenerate teacher cannot stream forever; long enough for code and proofs
    question: str = Field(min_length=1, max_length=4000)
    answer: str = Field(min_length=1, max_length=4000)


class IndependentAnswer(BaseModel):
    answer: str = Field(min_length=1, max_length=4000)


def generation_prompt(skill: str, description: str, instructions: str, exemplars: list[Example], variant: str) -> str:
    lines = [f"Skill: {skill}" + (f" ({description})" if description else "")]
    if instructions:
        lines.append(f"Instructions: {instructions}")
    if exemplars:
        lines.append("Reference examples of this task (question -> answer):")
        lines += [f"- {ex.prompt.strip()} -> {ex.answer.strip()}" for ex in exemplars]
    lines.append(
        f"Write one new example (variant {variant}) in exactly the same format as the references: "
        '{"question": ..., "answer": ...}. The answer must be correct and as short as the references.'
    )
    return "\n".join(lines)


def answer_prompt(question: str, exemplars: list[Example]) -> str:
    lines = ["Answer the question in the same format as these examples:"]
    lines += [f"- {ex.prompt.strip()} -> {ex.answer.strip()}" for ex in exemplars]
    lines.append(f'Question: {question.strip()}\nReply {{"answer": ...}}.')
    return "\n".join(lines)


class LLMEngine:
    name = "llm"

    def __init__(self, teacher: TeacherLLM, verify: Verify = "auto", ngram: int = 8, progress: bool = False) -> None:
        self.teacher = teacher
        self.verify = verify
        self.ngram = ngram
        self.progress = progress

    def generate(self, plan: DataPlan, env: Environment, ctx: GenerationContext) -> GenerationResult:
        slots: list[tuple[int, int]] = [(ri, k) for ri, req in enumerate(plan.requests) for k in range(req.count)]
        conversations = []
        for ri, k in slots:
            req = plan.requests[ri]
            skill = req.skill or "any skill of the task"
            description = env.skills.description(req.skill) if req.skill in env.skills else ""
            prompt = generation_prompt(skill, description, req.instructions, req.exemplars, f"{ctx.iteration}.{ri}.{k}")
            conversations.append([{"role": "system", "content": SYSTEM}, {"role": "user", "content": prompt}])
        replies = self.teacher.structured(conversations, NewExample, purpose="generate")

        result = GenerationResult()
        candidates: list[tuple[Example, list[Example]]] = []
        for (ri, _), reply in zip(slots, replies, strict=True):
            req = plan.requests[ri]
            if reply is None:  # recorded by the teacher client (teacher_failures.jsonl)
                key = req.skill or "*"
                result.shortfall[key] = result.shortfall.get(key, 0) + 1
                continue
            skills = [req.skill] if req.skill else []
            example = to_example(env, reply.question, reply.answer, skills).model_copy(
                update={
                    "source": "generated",
                    "lineage": Lineage(
                        iteration=ctx.iteration,
                        skill=req.skill,
                        policy=ctx.policy,
                        teacher=self.teacher.name,
                        parent_id=req.parent_id,
                    ),
                }
            )
            candidates.append((example, req.exemplars))

        verified = self._verify(candidates, env, result)
        data_filter = DataFilter(ctx.eval_prompts, ctx.seen_prompts, ngram=self.ngram)
        kept, rejected = data_filter.split(verified)
        result.examples.extend(kept)
        result.rejected.extend(rejected)
        return result

    def _verify(
        self, candidates: list[tuple[Example, list[Example]]], env: Environment, result: GenerationResult
    ) -> list[Example]:
        checker = checker_of(env)
        mode = self.verify
        if mode == "auto":
            mode = "checker" if checker else "consistency"
        if mode == "none":
            return [ex for ex, _ in candidates]
        if mode == "checker":
            if checker is None:
                from teachloop.errors import ConfigError

                raise ConfigError(f"verify=checker, but environment {env.name!r} has no checker")
            kept = []
            for ex, _ in candidates:
                if checker(ex):
                    kept.append(ex)
                else:
                    result.rejected.append(Rejected(example=ex, reason="verification: the environment's checker disagrees"))
            return kept
        conversations = [
            [{"role": "system", "content": SYSTEM}, {"role": "user", "content": answer_prompt(ex.prompt, exemplars)}]
            for ex, exemplars in candidates
        ]
        answers = self.teacher.structured(conversations, IndependentAnswer, purpose="verify", temperature=0.0)
        kept = []
        for (ex, _), answer in zip(candidates, answers, strict=True):
            if answer is None:
                result.rejected.append(Rejected(example=ex, reason="verification: no valid independent answer"))
            elif normalize(answer.answer) != normalize(ex.answer):
                result.rejected.append(
                    Rejected(example=ex, reason=f"verification: independent answer {answer.answer!r} disagrees")
                )
            else:
                kept.append(ex)
        return kept

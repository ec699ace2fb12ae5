"""Programmatic engine: the environment's own seeded generator serves the plan."""

from __future__ import annotations

import logging
import random
from collections.abc import Callable

from teachloop.agents.engines.base import BaseEngine
from teachloop.agents.engines.filters import DataFilter
from teachloop.environments.base import Environment, ProgrammaticEnvironment, takes_difficulty
from teachloop.errors import TeachloopError
from teachloop.types import DataPlan, Example, GenerationContext, GenerationResult, Lineage, Rejected

log = logging.getLogger(__name__)

MAX_TRIES_PER_EXAMPLE = 20


class ProgrammaticEngine(BaseEngine):
    """The environment's own seeded generator writes every requested item (no teacher); the
    filters drop duplicates and eval look-alikes."""

    name = "programmatic"

    def generate(self, plan: DataPlan, env: Environment, ctx: GenerationContext) -> GenerationResult:
        if plan.requests and not isinstance(env, ProgrammaticEnvironment):  # pool-only plans need none
            raise TeachloopError(
                f"environment {env.name!r} has no generator, so the programmatic engine cannot write new "
                f"examples for policy {plan.policy!r}; configure an LLM teacher (--teacher ...), or use a policy "
                "that only reweights the seed pool (none, stat-sel)"
            )
        leaves = env.skills.leaves()
        data_filter = DataFilter(ctx.eval_prompts, ctx.seen_prompts)
        result = GenerationResult()
        bar = self.progress_bar("generate", plan.total_requested)
        for index, request in enumerate(plan.requests):
            if request.skill is not None and request.skill not in env.skills:
                raise TeachloopError(f"plan asks for unknown skill {request.skill!r}; known: {', '.join(leaves)}")
            rng = random.Random(f"{ctx.seed}:{ctx.iteration}:{index}:{request.skill}")
            make = _generator(env, request.difficulty)
            kept: list[Example] = []
            for _ in range(request.count * MAX_TRIES_PER_EXAMPLE):
                if len(kept) == request.count:
                    break
                skill = request.skill if request.skill in leaves else rng.choice(_leaves_for(env, request.skill))
                candidate = make(skill, rng)
                example = candidate.model_copy(
                    update={
                        "source": "generated",
                        "lineage": Lineage(
                            iteration=ctx.iteration,
                            skill=skill,
                            policy=ctx.policy,
                            teacher=self.name,
                            parent_id=request.parent_id,
                        ),
                    }
                )
                reason = data_filter.check(example)
                if reason is None:
                    kept.append(example)
                    bar.update(1)
                else:
                    result.rejected.append(Rejected(example=example, reason=reason))
            result.serve(request, kept)
        bar.close()
        return result


def _leaves_for(env: Environment, skill: str | None) -> list[str]:
    return env.skills.leaves() if skill is None else env.skills.leaves_under(skill)


def _generator(env: ProgrammaticEnvironment, difficulty: int | None) -> Callable[[str, random.Random], Example]:
    """One example of a skill; the request's difficulty goes to generators that take one.

    An environment without levels still serves a plan that has them, at its only level.
    """
    if difficulty is not None and takes_difficulty(env):
        return lambda skill, rng: env.generate(skill, 1, rng, difficulty=difficulty)[0]
    if difficulty is not None:
        log.warning("environment %r has no difficulty levels; ignoring difficulty %d", env.name, difficulty)
    return lambda skill, rng: env.generate(skill, 1, rng)[0]

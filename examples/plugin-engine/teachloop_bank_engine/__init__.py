"""The `bank` engine: a policy's plan served from a JSONL file of examples written beforehand
(by people, by another pipeline, by a teacher run elsewhere), one object per line with
`prompt`, `answer` and `skills`. Each request draws unused items of its skill in a seeded
order; teachloop's filters still drop duplicates and eval look-alikes, and a skill whose items
run out is reported as a shortfall, never padded."""

from __future__ import annotations

import json
import random
from collections import defaultdict
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, FilePath

from teachloop.agents.engines import BaseEngine
from teachloop.agents.engines.filters import DataFilter, normalize
from teachloop.environments.base import Environment
from teachloop.errors import TeachloopError
from teachloop.types import DataPlan, Example, GenerationContext, GenerationResult, Lineage, Rejected


class BankOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")

    file: FilePath = Field(description="JSONL of examples: prompt, answer, skills (leaf skills of the task)")
    reuse: bool = Field(default=False, description="draw an item again in a later iteration (default: each once)")


class BankEngine(BaseEngine):
    """Serves each request with unused examples of its skill from a JSONL file (`file=`)."""

    name = "bank"
    Options = BankOptions
    options: BankOptions

    def setup(self) -> None:
        self.by_skill: dict[str, list[Example]] = defaultdict(list)
        for number, line in enumerate(Path(self.options.file).read_text().splitlines(), 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
                example = Example(prompt=row["prompt"], answer=row["answer"], skills=row["skills"])
            except (ValueError, KeyError, TypeError) as exc:
                raise ValueError(f"{self.options.file}:{number}: not an example ({exc})") from None
            for skill in example.skills:
                self.by_skill[skill].append(example)

    def generate(self, plan: DataPlan, env: Environment, ctx: GenerationContext) -> GenerationResult:
        unknown = sorted(set(self.by_skill) - set(env.skills.leaves()))
        if unknown:
            raise TeachloopError(f"{self.options.file} labels items with skills the task lacks: {', '.join(unknown)}")
        # what earlier iterations generated is not drawn again unless reuse is on;
        # the filter drops eval look-alikes and an item drawn twice in this plan
        used = set() if self.options.reuse else {normalize(prompt) for prompt in ctx.seen_prompts}
        data_filter = DataFilter(ctx.eval_prompts)
        result = GenerationResult()
        for index, request in enumerate(plan.requests):
            skills = [request.skill] if request.skill in self.by_skill else sorted(self.by_skill)
            items = [item for skill in skills for item in self.by_skill[skill] if normalize(item.prompt) not in used]
            random.Random(f"{ctx.seed}:{ctx.iteration}:{index}:{request.skill}").shuffle(items)
            kept: list[Example] = []
            for item in items:
                if len(kept) == request.count:
                    break
                lineage = Lineage(
                    iteration=ctx.iteration, skill=request.skill or item.skills[0], policy=ctx.policy, teacher=self.name
                )
                example = item.model_copy(update={"source": "generated", "lineage": lineage})
                reason = data_filter.check(example)
                if reason is None:
                    kept.append(example)
                else:
                    result.rejected.append(Rejected(example=example, reason=reason))
            result.serve(request, kept)
        return result

"""`teachloop teacher check`: what a teacher writes for an environment, before a run pays
for it. The teacher writes `per_skill` items of every leaf skill through the LLM engine,
with the requests the default policy (stat-syn) makes, and each skill's yield is counted
with the reason for every item lost, so a weak teacher can be told from a bad prompt."""

from __future__ import annotations

import random
import time
from collections import Counter
from pathlib import Path

from pydantic import BaseModel, Field
from rich.markup import escape
from rich.table import Table

from teachloop.agents.engines.llm import LLMEngine
from teachloop.agents.policies.common import pool_index
from teachloop.agents.policies.stat_syn import skill_requests
from teachloop.agents.teacher import TeacherBackend, TeacherLLM
from teachloop.environments import Environment
from teachloop.errors import ConfigError
from teachloop.runs.config import RunConfig
from teachloop.types import DataPlan, GenerationContext, GenerationResult


class SkillYield(BaseModel):
    skill: str
    asked: int
    kept: int
    lost: dict[str, int] = Field(default_factory=dict)  # reason -> items
    samples: list[str] = Field(default_factory=list)  # a few lost items: 'question -> answer (reason)'

    @property
    def ratio(self) -> float:
        return self.kept / self.asked if self.asked else 0.0


class TeacherCheck(BaseModel):
    teacher: str
    environment: str
    verify: str
    answer_samples: int
    skills: list[SkillYield]
    calls: int
    prompt_tokens: int
    completion_tokens: int
    start_seconds: float
    generate_seconds: float

    @property
    def asked(self) -> int:
        return sum(s.asked for s in self.skills)

    @property
    def kept(self) -> int:
        return sum(s.kept for s in self.skills)


def _reason(text: str) -> str:
    """A rejection reason without the item-specific part (quoted answers)."""
    return text.split(" {", 1)[0].split(" [", 1)[0].split(" '", 1)[0]


def tabulate(result: GenerationResult, asked: dict[str, int], keep_samples: int = 3) -> list[SkillYield]:
    rows = []
    for skill, count in asked.items():
        kept = sum(1 for ex in result.examples if (ex.lineage.skill if ex.lineage else None) == skill)
        lost = [r for r in result.rejected if (r.example.lineage.skill if r.example.lineage else None) == skill]
        reasons = Counter(_reason(r.reason) for r in lost)
        if result.shortfall.get(skill):
            reasons["no valid reply"] += result.shortfall[skill]
        samples = [
            f"{r.example.prompt.strip()[:60]} -> {r.example.answer.strip()[:40]} ({_reason(r.reason)})" for r in lost
        ]
        rows.append(
            SkillYield(
                skill=skill, asked=count, kept=kept, lost=dict(reasons.most_common()), samples=samples[:keep_samples]
            )
        )
    return rows


def check_teacher(
    config: RunConfig,
    env: Environment,
    per_skill: int,
    cache: Path | None = None,
    exemplars: int = 3,
    backend: TeacherBackend | None = None,
) -> TeacherCheck:
    """Start the configured teacher (or use a started `backend`), have it write `per_skill`
    items per leaf skill, and count."""
    if config.teacher is None:
        raise ConfigError("teacher check needs a teacher: --teacher vllm:<model> or openai:<model>")
    from teachloop.students.checkpoints import resolve_checkpoint

    teacher = TeacherLLM(config.teacher, cache_dir=cache, resolve_model=resolve_checkpoint, backend=backend)
    start = time.perf_counter()
    teacher.start()
    started = time.perf_counter() - start
    tree = env.skills
    rng = random.Random(f"{config.seed}:teacher-check")
    counts = {skill: per_skill for skill in tree.leaves()}
    plan = DataPlan(
        policy="teacher-check",
        iteration=0,
        requests=skill_requests(counts, tree, pool_index(env.train_pool()), exemplars, rng),
    )
    engine = LLMEngine(teacher=teacher, verify=config.verify, answer_samples=config.answer_samples)
    ctx = GenerationContext(
        iteration=0, seed=config.seed, policy="teacher-check", eval_prompts=frozenset(e.prompt for e in env.eval_set())
    )
    start = time.perf_counter()
    result = engine.generate(plan, env, ctx)
    generated = time.perf_counter() - start
    ledger = teacher.ledger
    return TeacherCheck(
        teacher=teacher.name,
        environment=env.name,
        verify=engine.verify_mode(env),
        answer_samples=config.answer_samples,
        skills=tabulate(result, counts),
        calls=ledger.calls,
        prompt_tokens=ledger.prompt_tokens,
        completion_tokens=ledger.completion_tokens,
        start_seconds=round(started, 1),
        generate_seconds=round(generated, 1),
    )


def rich_table(report: TeacherCheck) -> Table:
    """The yield per skill (asked, kept, the reasons items were lost) and in all."""
    table = Table(title=f"teacher {report.teacher} on {report.environment} (verify {report.verify})")
    for column in ("skill", "asked", "kept", "yield", "lost: reason x items"):
        table.add_column(column, justify="left" if column in ("skill", "lost: reason x items") else "right")
    for row in report.skills:
        lost = ", ".join(f"{reason} x{n}" for reason, n in row.lost.items())
        table.add_row(row.skill, str(row.asked), str(row.kept), f"{row.ratio:.0%}", escape(lost))
    table.add_row("all", str(report.asked), str(report.kept), f"{report.kept / max(1, report.asked):.0%}", "")
    return table


def report_lines(report: TeacherCheck) -> list[str]:
    """The lines under the table (rich markup, escaped): a few lost items per skill, then the
    teacher's calls, tokens and times."""
    lines = [f"  lost ({row.skill}): {escape(sample)}" for row in report.skills for sample in row.samples]
    usage = (
        f"{report.calls} teacher calls, {report.prompt_tokens} prompt + {report.completion_tokens} completion tokens; "
        f"start {report.start_seconds}s, generation {report.generate_seconds}s"
    )
    return [*lines, usage]

"""reasoning-gym: a real, procedural task suite as an environment (the optional extra
`reasoning-gym`, pure Python, offline).

Each reasoning-gym task is a skill; the task's category (arithmetic, algorithmic, logic,
graphs, games, ...) is its group in the skill tree. Eval, validation and pool items come from
the task's own seeded generator, each split from a seed range of its own, and are
de-duplicated across splits by prompt; the generator is the programmatic engine's, so new
training items never come from the eval range (and the engine drops any that match an eval
prompt anyway). Every item keeps the generator's metadata in `meta["reasoning_gym"]`: the
task's own scorer (`dataset.score_answer`) needs it. Teacher-written items have no metadata,
so this environment has no checker: the llm engine verifies them by consistency.

Options (RunConfig.environment_options):

    tasks            task name -> its reasoning-gym config (the task's difficulty), or a list of
                     names (their reasoning-gym defaults); default: six easy tasks real
                     students of 0.1-1 B parameters are partly competent on
    eval_per_task, validation_per_task, pool_per_task, split_seed, instruction
"""

from __future__ import annotations

import difflib
import json
import random
from functools import cached_property
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from teachloop.environments.base import BaseEnvironment, scored_attempt
from teachloop.errors import ConfigError, TeachloopError
from teachloop.skills.tree import SkillTree
from teachloop.types import Attempt, Example

NAME = "reasoning-gym"
INSTALL = "pip install reasoning-gym==0.1.25 (or pip install 'teachloop[reasoning-gym]')"

# Easy configurations on which Qwen2.5-Coder-0.5B-Instruct is partly competent (measured:
# docs/environments.md). basic_arithmetic leaves out "/": 0.1.25 prints the wrong divisor for
# it without parentheses.
DEFAULT_TASKS: dict[str, dict[str, Any]] = {
    "chain_sum": {"min_terms": 2, "max_terms": 3, "min_digits": 1, "max_digits": 2},
    "basic_arithmetic": {
        "min_terms": 2,
        "max_terms": 3,
        "min_digits": 1,
        "max_digits": 1,
        "operators": ["+", "-", "*"],
        "allow_parentheses": False,
        "allow_negation": False,
    },
    "gcd": {"min_numbers": 2, "max_numbers": 2, "min_value": 1, "max_value": 50},
    "letter_counting": {"min_words": 3, "max_words": 5},
    "spell_backward": {"min_word_len": 3, "max_word_len": 5},
    "word_sorting": {"min_words": 3, "max_words": 4},
}

# Seed ranges: item i of create_dataset(name, seed=s) is drawn from seed s + i, so each split
# starts SPLIT_STRIDE seeds after the one before it; generated items start far above all of them.
SPLIT_STRIDE = 10_000_000
GENERATED_SEEDS = (10**12, 2**62)


class ReasoningGymOptions(BaseModel):
    """The `reasoning-gym` environment's options (RunConfig.environment_options)."""

    model_config = ConfigDict(extra="forbid")

    tasks: dict[str, dict[str, Any]] = Field(
        default_factory=lambda: {name: dict(config) for name, config in DEFAULT_TASKS.items()},
        description="reasoning-gym task name -> its config (difficulty), or a list of task names (their "
        "defaults); default: chain_sum, basic_arithmetic, gcd, letter_counting, spell_backward, word_sorting "
        "at easy settings",
    )
    eval_per_task: int = Field(default=40, ge=1, description="evaluation items per task")
    validation_per_task: int = Field(
        default=20, ge=0, description="validation items per task (choose the checkpoint a run hands back)"
    )
    pool_per_task: int = Field(default=100, ge=0, description="seed-pool (training) items per task")
    split_seed: int = Field(default=1234, ge=0, description="seed of the eval, validation and pool items")
    instruction: str = Field(
        default="Reply with the final answer only.", description="appended to every question on a line of its own"
    )

    @field_validator("tasks", mode="before")
    @classmethod
    def _names_or_mapping(cls, value: Any) -> Any:
        if isinstance(value, str):
            value = [name.strip() for name in value.split(",") if name.strip()]
        if isinstance(value, list | tuple):
            return {name: dict(DEFAULT_TASKS.get(name, {})) for name in value}
        if isinstance(value, dict):
            return {name: dict(config or {}) for name, config in value.items()}
        return value

    @field_validator("tasks")
    @classmethod
    def _some(cls, value: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
        if not value:
            raise ValueError("name at least one reasoning-gym task")
        return value


def _rg() -> Any:
    try:
        import reasoning_gym
    except ImportError:
        raise ConfigError(f"environment {NAME} needs the reasoning-gym package: {INSTALL}") from None
    return reasoning_gym


def _plain(value: Any) -> Any:
    """The generator's metadata as JSON (what a run folder stores and reads back)."""
    return json.loads(json.dumps(value, default=str))


class ReasoningGym(BaseEnvironment):
    """reasoning-gym tasks as skills (grouped by category), scored by each task's own scorer."""

    name = NAME
    Options = ReasoningGymOptions
    options: ReasoningGymOptions
    answer_tokens = 32  # final answers only: a number, a word, a short list
    stop = ("\n",)

    def setup(self) -> None:
        rg = _rg()
        known = rg.factory.DATASETS
        unknown = [name for name in self.options.tasks if name not in known]
        if unknown:
            close = [match for name in unknown for match in difflib.get_close_matches(name, known, n=2)]
            hint = f" (did you mean {' or '.join(close)}?)" if close else ""
            raise ConfigError(
                f"environment {NAME}: unknown task {', '.join(map(repr, unknown))}{hint}; tasks: "
                f"{', '.join(sorted(known))}"
            )
        self._datasets: dict[str, Any] = {}
        for task, config in self.options.tasks.items():
            try:
                self._datasets[task] = rg.create_dataset(task, seed=0, size=1, **config)
            except (TypeError, ValueError, AssertionError) as exc:
                raise ConfigError(f"environment {NAME}: task {task!r} refuses its config {config}: {exc}") from None
        self.skills = self._tree()

    def _tree(self) -> SkillTree:
        tree = SkillTree(NAME)
        for task, dataset in self._datasets.items():
            category = dataset.category
            if category not in tree:
                tree.add(category, f"reasoning-gym's {category} tasks")
            config = self.options.tasks[task]
            settings = ", ".join(f"{key}={value}" for key, value in config.items()) or "its defaults"
            tree.add(task, f"reasoning-gym task {task} ({settings})", parent=category)
        return tree

    # -- items -----------------------------------------------------------------------------
    def _items(self, task: str, seed: int, n: int, source: str, exclude: set[str]) -> list[Example]:
        """Up to n distinct items of `task` from seeds seed, seed+1, ..., none in `exclude`."""
        rg = _rg()
        out: list[Example] = []
        tries = 0
        while len(out) < n and tries < 4:  # small configs repeat prompts: draw on until n or dry
            batch = rg.create_dataset(task, seed=seed, size=2 * (n - len(out)), **self.options.tasks[task])
            seed += len(batch)
            for entry in batch:
                ex = self._example(task, entry, source)
                if ex.prompt not in exclude and len(out) < n:
                    exclude.add(ex.prompt)
                    out.append(ex)
            tries += 1
        return out

    def _example(self, task: str, entry: dict[str, Any], source: str) -> Example:
        return Example(
            prompt=self._prompt(entry["question"]),
            answer=str(entry["answer"]).strip(),
            skills=[task],
            source=source,  # type: ignore[arg-type]
            meta={"reasoning_gym": _plain(entry.get("metadata", {}))},
        )

    def _prompt(self, question: str) -> str:
        return f"{question.strip()}\n{self.options.instruction}".strip() + "\n"

    def _split(self, index: int, per_task: int, source: str, exclude: set[str]) -> list[Example]:
        base = self.options.split_seed * 4 * SPLIT_STRIDE + index * SPLIT_STRIDE
        return [
            ex
            for t, task in enumerate(self._datasets)
            for ex in self._items(task, base + t * (SPLIT_STRIDE // 64), per_task, source, exclude)
        ]

    @cached_property
    def _splits(self) -> dict[str, list[Example]]:
        seen: set[str] = set()
        evals = self._split(0, self.options.eval_per_task, "eval", seen)
        validation = self._split(1, self.options.validation_per_task, "eval", seen)
        pool = self._split(2, self.options.pool_per_task, "seed", seen)
        return {"eval": evals, "validation": validation, "pool": pool}

    def eval_set(self) -> list[Example]:
        return self._splits["eval"]

    def validation_set(self) -> list[Example]:
        return self._splits["validation"]

    def train_pool(self) -> list[Example]:
        return self._splits["pool"]

    def generate(self, skill: str, n: int, rng: random.Random) -> list[Example]:
        """Up to `n` fresh items of task `skill` from a seed range no split uses, none with an
        eval or validation prompt (a small task repeats them); they may repeat each other: the
        engine de-duplicates."""
        if skill not in self._datasets:
            raise TeachloopError(f"{NAME} has no task {skill!r}; tasks: {', '.join(self._datasets)}")
        held_out = self._held_out_prompts
        out: list[Example] = []
        for _ in range(4):
            seed = rng.randrange(*GENERATED_SEEDS)
            batch = _rg().create_dataset(skill, seed=seed, size=n - len(out), **self.options.tasks[skill])
            out += [ex for ex in (self._example(skill, e, "generated") for e in batch) if ex.prompt not in held_out]
            if len(out) == n:
                break
        return out

    @cached_property
    def _held_out_prompts(self) -> frozenset[str]:
        return frozenset(ex.prompt for ex in self.eval_set() + self.validation_set())

    # -- scoring ---------------------------------------------------------------------------
    def score(self, example: Example, response: str) -> Attempt:
        """The task's own scorer (partial credit is its score; correct only at full credit);
        an item without the generator's metadata is scored by exact match."""
        answer = response.strip()
        task = next((s for s in example.skills if s in self._datasets), None)
        metadata = example.meta.get("reasoning_gym")
        if task is None or metadata is None:
            return scored_attempt(example, response, answer == example.answer.strip())
        entry = {"question": example.prompt, "answer": example.answer, "metadata": metadata}
        try:
            score = float(self._datasets[task].score_answer(answer, entry))
        except Exception:  # noqa: BLE001 - a task's scorer that trips on an odd answer scores it 0
            score = 0.0
        return scored_attempt(example, response, score >= 1.0, score=score)

    def make_example(self, question: str, answer: str, skills: list[str]) -> Example:
        """A teacher-written item in this environment's prompt format."""
        return Example(prompt=self._prompt(question), answer=answer.strip(), skills=skills)

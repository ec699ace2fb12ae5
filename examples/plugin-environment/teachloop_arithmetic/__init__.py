"""`arithmetic`: integer arithmetic in four skills, a complete teachloop environment plug-in.

teachloop finds it through the entry point `arithmetic` in the `teachloop.environments`
group (see pyproject.toml), validates the run's `environment_options` with its `Options`
model and builds it from the validated instance (`self.options`, see `Component`). Prompts are `<op> <a> <b>` on one
line (`add 12 7`), answers the bare number (`19`), scored by exact match.

Skill tree: additive (add, sub) and multiplicative (mul, div). `generate` makes fresh
examples of any skill, so the programmatic engine can serve every policy without a
teacher; `check` lets the LLM engine verify what a teacher writes.
"""

from __future__ import annotations

import random
from collections.abc import Callable

from pydantic import BaseModel, ConfigDict, Field

from teachloop.environments import BaseEnvironment, exact_attempt
from teachloop.skills.tree import SkillTree
from teachloop.types import Attempt, Example

__all__ = ["ArithmeticEnvironment", "ArithmeticOptions"]

# skill: (group, description, answer of (a, b))
SKILLS: dict[str, tuple[str, str, Callable[[int, int], int]]] = {
    "add": ("additive", "add two numbers", lambda a, b: a + b),
    "sub": ("additive", "subtract the second number from the first", lambda a, b: a - b),
    "mul": ("multiplicative", "multiply two numbers", lambda a, b: a * b),
    "div": ("multiplicative", "divide the first number by the second (no remainder)", lambda a, b: a // b),
}
GROUPS = {"additive": "sums and differences", "multiplicative": "products and exact quotients"}


class ArithmeticOptions(BaseModel):
    """The options `teachloop environments show arithmetic` lists (`--env-option KEY=VALUE`)."""

    model_config = ConfigDict(extra="forbid")

    eval_per_skill: int = Field(default=50, ge=1, description="evaluation items per skill")
    pool_per_skill: int = Field(default=50, ge=0, description="seed-pool (training) items per skill")
    max_operand: int = Field(default=20, ge=2, le=999, description="largest operand (and divisor, quotient)")
    split_seed: int = Field(default=0, description="seed of the eval and pool items")


class ArithmeticEnvironment(BaseEnvironment):
    """Integer arithmetic in four skills (add, sub, mul, div) with an exact scorer and a generator."""

    name = "arithmetic"
    Options = ArithmeticOptions
    options: ArithmeticOptions
    answer_tokens = 8  # answers are at most 6 digits

    def setup(self) -> None:
        o = self.options
        self.skills = SkillTree("arithmetic")
        for group, description in GROUPS.items():
            self.skills.add(group, description)
        for skill, (group, description, _) in SKILLS.items():
            self.skills.add(skill, description, parent=group)
        self._eval = self._unique(o.eval_per_skill, random.Random(o.split_seed), "eval", set())
        seen = {ex.prompt for ex in self._eval}
        self._pool = self._unique(o.pool_per_skill, random.Random(o.split_seed + 1), "seed", seen)

    # -- the protocol: splits and scorer ------------------------------------------------------
    def eval_set(self) -> list[Example]:
        return self._eval

    def train_pool(self) -> list[Example]:
        return self._pool

    def score(self, example: Example, response: str) -> Attempt:
        return exact_attempt(example, response)

    # -- optional capabilities ----------------------------------------------------------------
    def generate(self, skill: str, n: int, rng: random.Random) -> list[Example]:
        """`n` fresh examples of `skill` (they may repeat: the engine de-duplicates)."""
        return [self._example(skill, rng, "generated") for _ in range(n)]

    def check(self, example: Example) -> bool:
        """Is the example's answer right for its prompt? (verifies teacher-written examples)"""
        parts = example.prompt.split()
        if len(parts) != 3 or parts[0] not in SKILLS or not all(p.isdigit() for p in parts[1:]):
            return False
        a, b = int(parts[1]), int(parts[2])
        if parts[0] == "div" and (b == 0 or a % b):
            return False
        return str(SKILLS[parts[0]][2](a, b)) == example.answer.strip()

    def make_example(self, question: str, answer: str, skills: list[str]) -> Example:
        """A teacher-written item in this environment's prompt format."""
        return Example(prompt=question.strip() + "\n", answer=answer.strip(), skills=skills)

    # -- helpers --------------------------------------------------------------------------------
    def _example(self, skill: str, rng: random.Random, source: str) -> Example:
        top = self.options.max_operand
        if skill == "div":  # a quotient without remainder: a = b * q
            b, q = rng.randint(1, top), rng.randint(0, top)
            a = b * q
        else:
            a, b = rng.randint(0, top), rng.randint(0, top)
            if skill == "sub" and b > a:
                a, b = b, a
        answer = SKILLS[skill][2](a, b)
        return Example(prompt=f"{skill} {a} {b}\n", answer=str(answer), skills=[skill], source=source)

    def _unique(self, per_skill: int, rng: random.Random, source: str, exclude: set[str]) -> list[Example]:
        out = []
        for skill in SKILLS:
            kept = 0
            for _ in range(per_skill * 50):
                if kept == per_skill:
                    break
                example = self._example(skill, rng, source)
                if example.prompt not in exclude:
                    exclude.add(example.prompt)
                    out.append(example)
                    kept += 1
        return out

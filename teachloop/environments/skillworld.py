"""skillworld: the embedded default environment.

Short letter and digit operations, procedurally generated and exactly scored, so the
whole loop runs offline on a CPU in minutes. Eight skills of different difficulty sit
in a two-level tree (text / number). The embedded student's base checkpoint saw only a
trickle of `reverse` and `max` examples, so those two are its real gaps.
"""

from __future__ import annotations

import random
import string
from collections.abc import Callable

from pydantic import BaseModel, ConfigDict, Field

from teachloop.environments.base import BaseEnvironment, ItemForm, exact_attempt
from teachloop.errors import TeachloopError
from teachloop.skills.tree import SkillTree
from teachloop.types import Attempt, Example

LETTERS = string.ascii_lowercase[:12]  # a small alphabet keeps the vocabulary and the task tiny

Pair = tuple[str, str]


def _word(rng: random.Random, lo: int, hi: int) -> str:
    return "".join(rng.choice(LETTERS) for _ in range(rng.randint(lo, hi)))


def _digits(rng: random.Random, lo: int, hi: int) -> str:
    return "".join(rng.choice(string.digits) for _ in range(rng.randint(lo, hi)))


# Difficulty levels: level 0 is the task as evaluated; every level above it makes the
# words and numbers LEVEL_STEP characters longer (same operations, longer inputs).
LEVEL_STEP = 2


def _first(rng: random.Random, level: int = 0) -> Pair:
    w = _word(rng, 3 + LEVEL_STEP * level, 6 + LEVEL_STEP * level)
    return f"first {w}", w[0]


def _copy(rng: random.Random, level: int = 0) -> Pair:
    w = _word(rng, 3 + LEVEL_STEP * level, 5 + LEVEL_STEP * level)
    return f"copy {w}", w


def _reverse(rng: random.Random, level: int = 0) -> Pair:
    w = _word(rng, 3 + LEVEL_STEP * level, 4 + LEVEL_STEP * level)
    return f"reverse {w}", w[::-1]


def _double(rng: random.Random, level: int = 0) -> Pair:
    w = _word(rng, 2 + LEVEL_STEP * level, 4 + LEVEL_STEP * level)
    return f"double {w}", "".join(c + c for c in w)


def _length(rng: random.Random, level: int = 0) -> Pair:
    w = _word(rng, 2 + LEVEL_STEP * level, 9 + LEVEL_STEP * level)
    return f"len {w}", str(len(w))


def _max(rng: random.Random, level: int = 0) -> Pair:
    d = _digits(rng, 3 + LEVEL_STEP * level, 5 + LEVEL_STEP * level)
    return f"max {d}", max(d)


def _parity(rng: random.Random, level: int = 0) -> Pair:
    d = _digits(rng, 2 + LEVEL_STEP * level, 4 + LEVEL_STEP * level)
    return f"parity {d}", "odd" if int(d[-1]) % 2 else "even"


def _succ(rng: random.Random, level: int = 0) -> Pair:
    # level 0: 10..998 (two or three digits); each level adds LEVEL_STEP digits
    n = rng.randint(10 ** (1 + LEVEL_STEP * level), 10 ** (3 + LEVEL_STEP * level) - 2)
    return f"succ {n}", str(n + 1)


SKILLS: dict[str, tuple[str, str, Callable[[random.Random, int], Pair]]] = {
    # skill: (group, description, generator)
    "first": ("text", "give the first letter of a word", _first),
    "copy": ("text", "repeat a word unchanged", _copy),
    "reverse": ("text", "write a word backwards", _reverse),
    "double": ("text", "write every letter of a word twice", _double),
    "len": ("number", "count the letters of a word", _length),
    "max": ("number", "give the largest digit of a number", _max),
    "parity": ("number", "say whether a number is odd or even", _parity),
    "succ": ("number", "add one to a number below 999", _succ),
}


WORD, DIGIT = f"[{LETTERS[0]}-{LETTERS[-1]}]", "[0-9]"
FORMS: dict[str, tuple[str, str]] = {
    # skill: (argument, answer) as regexes, the lengths those of the evaluated level
    "first": (f"{WORD}{{3,6}}", WORD),
    "copy": (f"{WORD}{{3,5}}", f"{WORD}{{3,5}}"),
    "reverse": (f"{WORD}{{3,4}}", f"{WORD}{{3,4}}"),
    "double": (f"{WORD}{{2,4}}", f"{WORD}{{4,8}}"),
    "len": (f"{WORD}{{2,9}}", "[2-9]"),
    "max": (f"{DIGIT}{{3,5}}", DIGIT),
    "parity": (f"{DIGIT}{{2,4}}", "odd|even"),
    "succ": ("[1-9][0-9]{1,2}", "[1-9][0-9]{1,3}"),
}


def _checked_word(arg: str) -> str:
    if not arg.isalpha() or not arg.islower():
        raise ValueError(arg)
    return arg


def _checked_number(arg: str) -> str:
    if not arg.isdigit():
        raise ValueError(arg)
    return arg


SOLVERS: dict[str, Callable[[str], str]] = {
    "first": lambda a: _checked_word(a)[0],
    "copy": _checked_word,
    "reverse": lambda a: _checked_word(a)[::-1],
    "double": lambda a: "".join(c + c for c in _checked_word(a)),
    "len": lambda a: str(len(_checked_word(a))),
    "max": lambda a: max(_checked_number(a)),
    "parity": lambda a: "odd" if int(_checked_number(a)) % 2 else "even",
    "succ": lambda a: str(int(_checked_number(a)) + 1),
}
GROUPS = {"text": "operations on the letters of a word", "number": "digits, counting and arithmetic"}

PROMPT_SUFFIX = "\n"


def build_skill_tree() -> SkillTree:
    tree = SkillTree("skillworld")
    for group, description in GROUPS.items():
        tree.add(group, description)
    for skill, (group, description, _) in SKILLS.items():
        tree.add(skill, description, parent=group)
    return tree


class SkillWorldOptions(BaseModel):
    """The `skillworld` environment's options (RunConfig.environment_options)."""

    model_config = ConfigDict(extra="forbid")

    eval_per_skill: int = Field(default=100, ge=1, description="evaluation items per skill")
    pool_per_skill: int = Field(default=100, ge=0, description="seed-pool (training) items per skill")
    split_seed: int = Field(default=1234, description="seed of the eval and pool items")
    validation_per_skill: int | None = Field(
        default=None,
        ge=0,
        description="validation items per skill (they choose the checkpoint a run hands back); default: a "
        "quarter of eval_per_skill, at least 1",
    )


class SkillWorld(BaseEnvironment):
    """Procedural string/number tasks with an exact scorer and a generator per skill."""

    name = "skillworld"
    Options = SkillWorldOptions
    options: SkillWorldOptions
    answer_tokens = 16  # eval and pool answers are at most 8 characters (one token each)
    stop = ("\n",)  # answers are one line; no student answer starts with a newline (measured)

    def setup(self) -> None:
        self.skills = build_skill_tree()
        self._eval: list[Example] | None = None
        self._pool: list[Example] | None = None
        self._validation: list[Example] | None = None

    def make(self, skill: str, rng: random.Random, source: str = "seed", level: int = 0) -> Example:
        if skill not in SKILLS:
            raise TeachloopError(f"skillworld has no skill {skill!r}; skills: {', '.join(SKILLS)}")
        prompt, answer = SKILLS[skill][2](rng, level)
        meta = {"difficulty": level} if level else {}
        return Example(prompt=prompt + PROMPT_SUFFIX, answer=answer, skills=[skill], source=source, meta=meta)

    def _unique(self, skill: str, n: int, rng: random.Random, source: str, exclude: set[str]) -> list[Example]:
        out: list[Example] = []
        for _ in range(n * 50):
            if len(out) == n:
                break
            ex = self.make(skill, rng, source)
            if ex.prompt not in exclude:
                exclude.add(ex.prompt)
                out.append(ex)
        return out

    def eval_set(self) -> list[Example]:
        if self._eval is None:
            rng = random.Random(self.options.split_seed)
            seen: set[str] = set()
            self._eval = [ex for s in SKILLS for ex in self._unique(s, self.options.eval_per_skill, rng, "eval", seen)]
        return self._eval

    def train_pool(self) -> list[Example]:
        if self._pool is None:
            rng = random.Random(self.options.split_seed + 1)
            seen = {ex.prompt for ex in self.eval_set()}
            self._pool = [ex for s in SKILLS for ex in self._unique(s, self.options.pool_per_skill, rng, "seed", seen)]
        return self._pool

    def validation_set(self) -> list[Example]:
        """Items apart from eval and pool, from a seed of their own (eval and pool are unchanged)."""
        if self._validation is None:
            rng = random.Random(self.options.split_seed + 2)
            seen = {ex.prompt for ex in self.eval_set()} | {ex.prompt for ex in self.train_pool()}
            n = self.options.validation_per_skill
            n = max(1, self.options.eval_per_skill // 4) if n is None else n
            self._validation = [ex for s in SKILLS for ex in self._unique(s, n, rng, "eval", seen)]
        return self._validation

    def score(self, example: Example, response: str) -> Attempt:
        return exact_attempt(example, response)

    def make_example(self, question: str, answer: str, skills: list[str]) -> Example:
        """A teacher-written item in skillworld's prompt format ("<op> <argument>\\n")."""
        return Example(prompt=question.strip() + PROMPT_SUFFIX, answer=answer.strip(), skills=skills)

    def item_form(self, skill: str | None) -> ItemForm | None:
        """`<op> <argument>` with the argument of the evaluated level: the task is format-bound.
        A group (or no skill) allows the forms of every skill under it."""
        if skill is not None and skill not in self.skills:
            return None
        leaves = [skill] if skill in FORMS else self.skills.leaves_under(skill) if skill else list(FORMS)
        questions = "|".join(f"{s} {FORMS[s][0]}" for s in leaves)
        answers = "|".join(dict.fromkeys(FORMS[s][1] for s in leaves))
        return ItemForm(question=questions, answer=answers)

    def solve(self, prompt: str) -> str | None:
        """The correct answer to a skillworld prompt, or None if it is not one."""
        parts = prompt.split()
        if len(parts) != 2 or parts[0] not in SOLVERS:
            return None
        try:
            return SOLVERS[parts[0]](parts[1])
        except (ValueError, IndexError):
            return None

    def check(self, example: Example) -> bool:
        """The environment's checker: is the example's answer right for its prompt?"""
        return self.solve(example.prompt) == example.answer.strip()

    def generate(self, skill: str, n: int, rng: random.Random, difficulty: int | None = None) -> list[Example]:
        """`n` fresh examples of `skill` (may repeat; the engine de-duplicates).

        `difficulty` 0 or None is the task as evaluated; each level above makes the words
        and numbers longer (examples then carry `meta["difficulty"]`).
        """
        level = _level(difficulty)
        return [self.make(skill, rng, "generated", level) for _ in range(n)]


def _level(difficulty: int | None) -> int:
    if difficulty is None:
        return 0
    if isinstance(difficulty, bool) or not isinstance(difficulty, int) or difficulty < 0:
        raise TeachloopError(f"skillworld: difficulty must be an integer >= 0 (or None), got {difficulty!r}")
    return difficulty

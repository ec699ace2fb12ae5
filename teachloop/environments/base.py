"""The Environment protocol: a task with splits, a skill tree and a scorer."""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Any, ClassVar, Protocol, runtime_checkable

from pydantic import BaseModel, ConfigDict, Field

from teachloop.registry import Component, Contract, Hook, takes_keyword
from teachloop.skills.tree import SkillTree
from teachloop.types import Attempt, Example


@runtime_checkable
class Environment(Protocol):
    name: str
    skills: SkillTree

    def train_pool(self) -> list[Example]:
        """The seed training data (what the student may learn from before any teacher data)."""
        ...

    def eval_set(self) -> list[Example]:
        """The held-out items the student is scored on every iteration."""
        ...

    def score(self, example: Example, response: str) -> Attempt:
        """Score one student response against the example's reference."""
        ...


@runtime_checkable
class ProgrammaticEnvironment(Environment, Protocol):
    """An environment that can also synthesise fresh examples of a skill itself."""

    def generate(self, skill: str, n: int, rng: random.Random) -> list[Example]: ...


# Optional capabilities: each is declared by a protocol and checked when the environment
# is loaded (`ENVIRONMENT_CONTRACT`), so a misspelt hook is an error, not a missing feature.
@runtime_checkable
class CheckingEnvironment(Protocol):
    """Has an answer checker: the LLM engine keeps only teacher examples it accepts."""

    def check(self, example: Example) -> bool: ...


@runtime_checkable
class FormattingEnvironment(Protocol):
    """Turns a teacher-written (question, answer) into an example in its own prompt format."""

    def make_example(self, question: str, answer: str, skills: list[str]) -> Example: ...


class ItemForm(BaseModel):
    """The form of a skill's items, for a teacher that writes new ones: regular expressions
    that a question (as the teacher writes it, before `make_example`) and an answer must
    match in full. They go into the JSON schema of the teacher's request as `pattern`s, so
    a backend with structured output cannot write another form, and every reply is checked
    against them. Keep them to what JSON-schema regexes share: classes, `|`, groups,
    quantifiers (no look-arounds, no backreferences).

    A `question` form makes the task *format-bound*: a new item is the same operation on a
    new input, not a new situation (the teacher is told so)."""

    model_config = ConfigDict(frozen=True)

    question: str | None = Field(default=None, description="the question's form (a regex, matched in full)")
    answer: str | None = Field(default=None, description="the answer's form (a regex, matched in full)")

    @property
    def format_bound(self) -> bool:
        return self.question is not None


@runtime_checkable
class FormedEnvironment(Protocol):
    """Declares the form of its items per skill, for teacher-written data."""

    def item_form(self, skill: str | None) -> ItemForm | None: ...


@runtime_checkable
class AnswerLengthEnvironment(Protocol):
    """Says how many new tokens the student needs for an answer (reasoning and code: hundreds)."""

    answer_tokens: int


@runtime_checkable
class ValidatedEnvironment(Protocol):
    """Has a validation split apart from eval and pool: it chooses the checkpoint a run hands
    back, so the eval set stays untouched for reporting."""

    def validation_set(self) -> list[Example]: ...


@runtime_checkable
class StoppingEnvironment(Protocol):
    """Says where a student's answer ends besides its end-of-turn token (`stop_strings`)."""

    stop: list[str] | tuple[str, ...]


def takes_difficulty(env: Environment) -> bool:
    """A programmatic environment with difficulty levels: `generate(..., difficulty=level)`."""
    return isinstance(env, ProgrammaticEnvironment) and takes_keyword(env.generate, "difficulty")


ENVIRONMENT_CONTRACT = Contract(
    kind="environment",
    required=(
        Hook("name", "the name it is registered under", value_type=str),
        Hook("skills", "its SkillTree", value_type=SkillTree),
        Hook("train_pool", "the seed training examples", params=()),
        Hook("eval_set", "the held-out examples scored every iteration", params=()),
        Hook("score", "scores one student response -> Attempt", params=("example", "response")),
    ),
    optional=(
        Hook(
            "generate",
            "a generator: the programmatic engine writes new examples of any skill without a teacher",
            protocol=ProgrammaticEnvironment,
            params=("skill", "n", "rng"),
        ),
        Hook(
            "generate",
            "difficulty levels: the curriculum policy asks for harder examples",
            keyword="difficulty",
            label="generate(skill, n, rng, difficulty=level)",
        ),
        Hook(
            "check",
            "an answer checker: the LLM engine keeps only teacher examples it accepts (--verify checker)",
            protocol=CheckingEnvironment,
            params=("example",),
        ),
        Hook(
            "make_example",
            "puts teacher-written questions into its own prompt format",
            protocol=FormattingEnvironment,
            params=("question", "answer", "skills"),
        ),
        Hook(
            "item_form",
            "the form of each skill's items: the teacher's structured output is constrained to it",
            protocol=FormedEnvironment,
            params=("skill",),
        ),
        Hook(
            "answer_tokens",
            "the student's answer length limit in new tokens (without it: 16)",
            protocol=AnswerLengthEnvironment,
            value_type=int,
        ),
        Hook(
            "validation_set",
            "held-out items apart from eval and pool: they choose the checkpoint a run hands back",
            protocol=ValidatedEnvironment,
            params=(),
        ),
        Hook(
            "stop",
            "strings that end a student answer (cut before the first one)",
            protocol=StoppingEnvironment,
            value_type=(list, tuple),
        ),
    ),
)


class BaseEnvironment(Component):
    """What a registered environment subclasses: `name`, a docstring, `Options` (validated
    once, `self.options`), `skills`, `train_pool`, `eval_set` and `score`; the optional hooks
    (a generator, a checker, item forms, ...) are listed in `ENVIRONMENT_CONTRACT`."""

    kind = "environment"


def exact_attempt(example: Example, response: str) -> Attempt:
    """Attempt scored by exact match of the stripped response and reference."""
    return scored_attempt(example, response, response.strip() == example.answer.strip())


def scored_attempt(example: Example, response: str, correct: bool, score: float | None = None) -> Attempt:
    """The Attempt for a response an environment's scorer judged `correct` or not; `score`, a
    partial credit in [0, 1] (clipped to it), is recorded beside the verdict (default: 1.0 when
    correct, else 0.0). Accuracy, the diagnosis and the reports count the verdict."""
    return Attempt(
        example_id=example.id,
        prompt=example.prompt,
        response=response,
        reference=example.answer,
        correct=correct,
        score=float(correct) if score is None else max(0.0, min(1.0, float(score))),
        skills=list(example.skills),
    )


DEFAULT_ANSWER_TOKENS = 16


def answer_tokens(env: Environment) -> int:
    """How many new tokens a student needs to answer this environment's items: its
    `answer_tokens` attribute (reasoning and code need hundreds), else a short-answer default."""
    return env.answer_tokens if isinstance(env, AnswerLengthEnvironment) else DEFAULT_ANSWER_TOKENS


def stop_strings(env: Environment) -> list[str]:
    """Where a student's answer ends besides its end-of-turn token: the environment's `stop`
    attribute (a list of strings; skillworld's one-line answers end at a newline), else none.
    The answer is cut before the first one, by either evaluation backend."""
    return [s for s in env.stop if s] if isinstance(env, StoppingEnvironment) else []


def validation_of(env: Environment) -> list[Example]:
    """The environment's validation items (none when it has no validation split)."""
    return env.validation_set() if isinstance(env, ValidatedEnvironment) else []


def checker_of(env: Environment) -> Callable[[Example], bool] | None:
    """The environment's answer checker (`check(example) -> bool`), if it has one."""
    return env.check if isinstance(env, CheckingEnvironment) else None


def item_form(env: Environment, skill: str | None) -> ItemForm:
    """The form the environment declares for `skill`'s items (no constraint when it declares none)."""
    return (env.item_form(skill) if isinstance(env, FormedEnvironment) else None) or ItemForm()


def to_example(env: Environment, question: str, answer: str, skills: list[str]) -> Example:
    """A teacher-written (question, answer) in the environment's own prompt format."""
    if isinstance(env, FormattingEnvironment):
        return env.make_example(question, answer, skills)
    return Example(prompt=question, answer=answer, skills=skills)


class Wrapper:
    """An environment seen through a change, like Gymnasium's `Wrapper`: every attribute the
    wrapper does not set itself is the inner environment's, its optional capabilities
    included; `withdrawn` names the capabilities the change makes wrong, which the wrapped
    environment then does not have."""

    withdrawn: ClassVar[frozenset[str]] = frozenset()

    def __init__(self, inner: Environment) -> None:
        self.inner = inner
        # the contract's members are also set on the instance, so that protocol checks that
        # read attributes statically (isinstance on Python 3.12+, the load-time contract
        # check) see the same capabilities as plain attribute access
        for member in sorted(ENVIRONMENT_CONTRACT.members() - {"Options"} - self.withdrawn):
            if not any(member in vars(klass) for klass in type(self).__mro__[: type(self).__mro__.index(Wrapper)]):
                try:
                    self.__dict__[member] = getattr(inner, member)
                except AttributeError:
                    pass

    def __getattr__(self, name: str) -> Any:
        # only reached for what the wrapper lacks; `inner` itself is looked up in __dict__ so
        # a half-built (unpickled, copied) wrapper raises instead of recursing
        inner = self.__dict__.get("inner")
        if inner is None or name.startswith("__") or name in type(self).withdrawn:
            raise AttributeError(name)
        return getattr(inner, name)

    @property
    def unwrapped(self) -> Environment:
        inner = self.inner
        return inner.unwrapped if isinstance(inner, Wrapper) else inner


class RelabelledEnvironment(Wrapper):
    """An environment seen through a discovered skill tree: same items, new skill labels.

    The inner generator and item forms speak of the inner environment's skills, not the
    discovered ones, so those two capabilities are withdrawn; scorer, checker, prompt format,
    answer length and stop strings are the inner environment's."""

    withdrawn = frozenset({"generate", "item_form"})

    def __init__(self, inner: Environment, tree: SkillTree, labels: dict[str, list[str]]) -> None:
        super().__init__(inner)
        self.skills = tree
        self.labels = labels

    def _relabel(self, examples: list[Example]) -> list[Example]:
        return [ex.model_copy(update={"skills": self.labels.get(ex.id, [])}) for ex in examples]

    def eval_set(self) -> list[Example]:
        return self._relabel(self.inner.eval_set())

    def train_pool(self) -> list[Example]:
        return self._relabel(self.inner.train_pool())

    def validation_set(self) -> list[Example]:
        return self._relabel(validation_of(self.inner))

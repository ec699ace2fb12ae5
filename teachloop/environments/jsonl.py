"""jsonl: bring your own task as a file of prompt / answer (/ skills) rows, no Python needed.

Options (RunConfig.environment_options):

    path                     one JSON / JSONL / parquet file; eval_fraction of it is held out
    train_file / eval_file   or separate files (train_file alone is split like path)
    prompt_field, answer_field   column names (default prompt, answer)
    skills_field             a column of skill labels (a name or a list per row); default: the
                             `skills` column when there is one
    labels_file              or labels from a JSONL of {"prompt": <prompt text>, "skills": [...]}
                             rows, matched on the prompt (`teachloop skills discover` writes one)
    skill_tree               a skill-tree file (teachloop.skills.tree_file: YAML or JSON skills
                             with name, parent?, description?); labels may name leaves or inner
                             nodes, a label not in the tree is an error, and unlabelled rows
                             stay unlabelled. Without it the labels form a flat list and
                             unlabelled rows get default_skill
    default_skill            the one skill of unlabelled data without a skill_tree (default "task")
    prompt_template          how a prompt is shown to the student, with one {prompt} (default "{prompt}")
    scorer                   exact | numeric | math | code-tests
        exact                the stripped response equals the answer (spaces collapsed; ignore_case)
        numeric              the response's final answer (the last `####` / `\\boxed{}`, "the answer
                             is x", or a reply that is the number alone) is a number equal to
                             the answer within a relative `tolerance`
        math                 final-answer equivalence as in the `math` environment (`style`)
        code-tests           the answer column holds test code; the response (or prompt +
                             response, `program`) must pass it in teachloop.environments.sandbox
                             (`timeout_s`, `memory_mb` per run)
    answer_tokens            the student's answer length limit when the run sets no
                             max_new_tokens; default: exact: the longest answer's characters + 8
                             (a token is at least a character), numeric | math: 256 (room to
                             reason), code-tests: 384
    question_form, answer_form   regexes a teacher-written question / answer must match (they go
                             into the teacher's reply schema); numeric: answers are numbers by default
    eval_fraction, split_seed, max_train, max_eval
    max_chars                the most characters of a prompt (as the student sees it) and its
                             answer together (default 20,000): longer rows are dropped at load,
                             counted in a warning; a .jsonl line too long to hold such a row is
                             skipped without being read into memory

Cells: a prompt or answer is text, or a number (written as its shortest text: 4, 2.5, and 4.0
as 4); a list, an object or a boolean is refused, naming the row. A prompt that repeats an
earlier row's is dropped (the first row is kept), counted in a warning.

The split: without eval_file, eval_fraction of the rows is held out, stratified by the rows'
skills (seeded by split_seed): every skill with two rows or more gets eval items while the
eval share has room, and the skills left without any are named in a warning. Data with one
skill (unlabelled rows) is split exactly as a plain seeded shuffle.

The same file format is what a run writes as data, so generated data can be reused.
"""

from __future__ import annotations

import logging
import math
import re
from collections.abc import Callable
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from teachloop.environments.answers import (
    Style,
    answer_parses,
    final_answer_matches,
    final_number_matches,
)
from teachloop.environments.base import BaseEnvironment, ItemForm, scored_attempt
from teachloop.environments.rows import (
    Oversize,
    Row,
    Template,
    cap,
    cell_text,
    read_rows,
    require_fields,
    skills_of,
    split_by_key,
)
from teachloop.errors import TeachloopError
from teachloop.skills.labels import label_rows
from teachloop.skills.tree import SkillTree, SkillTreeError
from teachloop.types import Attempt, Example

NAME = "jsonl"
_log = logging.getLogger(__name__)
_SPACE = re.compile(r"\s+")
_FENCE = re.compile(r"```[ \t]*(?:python|py)?[ \t]*\n(.*?)```", re.DOTALL | re.IGNORECASE)

Scorer = Literal["exact", "numeric", "math", "code-tests"]
NUMBER_FORM = r"-?[0-9][0-9,]*(\.[0-9]+)?"  # what a teacher writes as a numeric scorer's answer
MAX_CHARS = 20_000  # default max_chars: far beyond a small student's context, far below a runaway row
SHOWN = 8  # skills named in a warning


class JsonlOptions(BaseModel):
    """The `jsonl` environment's options (RunConfig.environment_options)."""

    model_config = ConfigDict(extra="forbid")

    path: Path | None = Field(
        default=None, description="one .json/.jsonl/.parquet file of rows; eval_fraction of it is held out"
    )
    train_file: Path | None = Field(default=None, description="the training rows (instead of path)")
    eval_file: Path | None = Field(default=None, description="the eval rows; without it eval_fraction of train_file")
    eval_fraction: float = Field(default=0.2, gt=0, lt=1, description="share of the rows held out for eval")
    prompt_field: str = Field(default="prompt", description="the column holding the prompt")
    answer_field: str = Field(default="answer", description="the column holding the reference answer")
    skills_field: str | None = Field(
        default=None,
        description="the column of skill labels (a name or a list of names per row); "
        "default: the `skills` column when the data has one",
    )
    skill_tree: Path | None = Field(
        default=None,
        description="a skill-tree file (.yaml/.yml/.json: skills with name, parent, description) the labels "
        "name nodes of; without it the labels form a flat list",
    )
    labels_file: Path | None = Field(
        default=None,
        description='labels matched on the prompt text, JSONL of {"prompt": ..., "skills": [...]} '
        "(teachloop skills discover writes one); instead of skills_field",
    )
    default_skill: str = Field(
        default="task", min_length=1, description="the skill of rows without a label (not used with skill_tree)"
    )
    prompt_template: str = Field(
        default="{prompt}", description="how a prompt is shown to the student, with exactly one {prompt}"
    )
    scorer: Scorer = Field(
        default="exact",
        description="exact: the stripped response equals the answer; numeric: the final number matches within "
        "tolerance; math: final-answer equivalence (style); code-tests: the answer column holds tests the "
        "response must pass in the sandbox",
    )
    ignore_case: bool = Field(default=False, description="exact: compare without case")
    tolerance: float = Field(default=1e-6, ge=0, description="relative tolerance of numeric and math scorers")
    style: Style = Field(default="auto", description="math: final answers as gsm8k (####), math (\\boxed{}) or auto")
    program: Literal["response", "prompt+response"] = Field(
        default="response", description="code-tests: the program is the response, or the prompt followed by it"
    )
    timeout_s: float = Field(default=10.0, gt=0, le=600, description="code-tests: wall-clock limit per program")
    memory_mb: int = Field(default=512, ge=64, description="code-tests: memory limit per program")
    max_train: int | None = Field(default=None, ge=0, description="use at most this many training rows (seeded sample)")
    max_eval: int | None = Field(default=None, ge=1, description="use at most this many eval rows (seeded sample)")
    split_seed: int = Field(default=1234, description="seed of the train/eval split and of the samples")
    max_chars: int = Field(
        default=MAX_CHARS,
        ge=1,
        description="the most characters of a prompt and its answer together; longer rows are dropped at load "
        "(counted in a warning)",
    )
    answer_tokens: int | None = Field(
        default=None,
        ge=1,
        description="student answer length limit; default: exact: longest answer + 8, numeric/math: 256, "
        "code-tests: 384",
    )
    question_form: str | None = Field(
        default=None,
        description="a regex every teacher-written question must match (in its JSON schema): a format-bound task; "
        "default: none (open questions)",
    )
    answer_form: str | None = Field(
        default=None,
        description=f"a regex every teacher-written answer must match; default: numeric: a number ({NUMBER_FORM}), "
        "else none",
    )

    @field_validator("question_form", "answer_form")
    @classmethod
    def _regex(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                re.compile(value)
            except re.error as exc:
                raise ValueError(f"not a regular expression: {exc}") from None
        return value

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
        if self.skills_field and self.labels_file:
            raise ValueError("skills_field (a column) and labels_file both give labels: choose one")
        return self


class JsonlEnvironment(BaseEnvironment):
    """A user's prompt/answer file with a chosen scorer."""

    name = NAME
    Options = JsonlOptions
    options: JsonlOptions
    answer_tokens: int  # from the options

    def setup(self) -> None:
        o = self.options
        self.template = Template(o.prompt_template, "prompt")
        self._run_tests = _sandbox_runner(o.timeout_s, o.memory_mb) if o.scorer == "code-tests" else None
        option, path = ("path", o.path) if o.path else ("train_file", o.train_file)
        assert path is not None
        where = f"{option} {path}"
        train_rows, skipped = read_rows(path, NAME, option, o.max_chars)
        eval_rows, eval_skipped = read_rows(o.eval_file, NAME, "eval_file", o.max_chars) if o.eval_file else ([], None)
        column = "skills" if not o.labels_file and _has_column(train_rows, "skills") else None
        self.skills_field = o.skills_field or column
        fields = [("prompt_field", o.prompt_field), ("answer_field", o.answer_field)]
        if self.skills_field:
            fields.append(("skills_field", self.skills_field))
        if train_rows:
            require_fields(train_rows, fields, NAME, where)
        if o.eval_file:
            if eval_rows:
                require_fields(eval_rows, fields, NAME, f"eval_file {o.eval_file}")
            evals = self._examples(eval_rows, "eval", f"eval_file {o.eval_file}", eval_skipped)
            train = self._examples(train_rows, "seed", where, skipped)
            evals = cap(self._unique(evals, set(), f"eval_file {o.eval_file}"), o.max_eval, o.split_seed)
            train = self._unique(train, {ex.prompt for ex in evals}, where)
            labelled = self._labelled(evals + train, where)
            evals, train = labelled[: len(evals)], labelled[len(evals) :]
        else:
            items = self._labelled(
                self._unique(self._examples(train_rows, "seed", where, skipped), set(), where), where
            )
            keys = [tuple(sorted(ex.skills)) for ex in items]
            groups = {key for key in keys if key and self._tree and all(self._tree.is_group(s) for s in key)}
            train_idx, eval_idx, _ = split_by_key(keys, o.eval_fraction, o.split_seed, NAME, spare=groups)
            evals = [items[i].model_copy(update={"source": "eval"}) for i in eval_idx]
            train = [items[i] for i in train_idx]
        self._eval = cap(evals, o.max_eval, o.split_seed)  # (a second cap of eval_file's items changes nothing)
        self._train = cap(train, o.max_train, o.split_seed + 1)
        self.skills = _tree(self._eval + self._train, o.default_skill) if self._tree is None else self._tree
        self._warn_unmeasured(where)
        self.answer_tokens = o.answer_tokens or self._default_answer_tokens()

    def _default_answer_tokens(self) -> int:
        scorer = self.options.scorer
        if scorer == "exact":
            return max(16, max((len(ex.answer) for ex in self._eval + self._train), default=0) + 8)
        return 384 if scorer == "code-tests" else 256

    def _examples(
        self, rows: list[Row], source: Literal["seed", "eval"], where: str, skipped: Oversize | None
    ) -> list[Example]:
        """The rows as examples: cells as text (`cell_text`), rows with an empty prompt or answer
        skipped, and rows longer than max_chars (with those `read_rows` left unread) dropped;
        each is one warning with a count."""
        o = self.options
        out = []
        empty = 0
        total = len(rows) + (skipped.rows if skipped else 0)
        over = skipped or Oversize()
        for number, row in enumerate(rows, start=1):
            prompt = cell_text(row.get(o.prompt_field), o.prompt_field, NAME, where, number)
            answer = cell_text(row.get(o.answer_field), o.answer_field, NAME, where, number)
            if not prompt.strip() or not answer.strip():
                empty += 1
                continue
            shown = self.template.fill(prompt)
            kept = answer if o.scorer == "code-tests" else answer.strip()
            if len(shown) + len(kept) > o.max_chars:
                over.add(len(shown) + len(kept))
                continue
            skills = skills_of(row.get(self.skills_field)) if self.skills_field else []
            out.append(Example(prompt=shown, answer=kept, skills=skills, source=source))
        if not out:
            raise TeachloopError(
                f"{NAME}: no usable row in {where}: every row needs a non-empty {o.prompt_field!r} and "
                f"{o.answer_field!r}" + (f" within max_chars={o.max_chars} ({over.rows} longer)" if over.rows else "")
            )
        if over.rows:
            _log.warning(
                "%s: dropped %d of %d row(s) of %s longer than max_chars=%d characters (prompt and answer; the "
                "longest has %s): no student can take them, and one such row can take a run's memory; to keep "
                "them, raise --env-option max_chars=N",
                NAME, over.rows, total, where, o.max_chars, f"{over.longest:,}",
            )  # fmt: skip
        if empty:
            _log.warning("%s: skipped %d row(s) of %s with an empty prompt or answer", NAME, empty, where)
        return out

    def _unique(self, examples: list[Example], exclude: set[str], where: str) -> list[Example]:
        """Each prompt once (the first row's answer), none of `exclude` (the eval prompts); the
        rows dropped are one warning that says how many and how many had another answer."""
        first: dict[str, str] = {}
        out, repeats, conflicting, in_eval = [], 0, 0, 0
        for ex in examples:
            if ex.prompt in exclude:
                in_eval += 1
            elif ex.prompt in first:
                repeats += 1
                conflicting += first[ex.prompt] != ex.answer
            else:
                first[ex.prompt] = ex.answer
                out.append(ex)
        if repeats:
            other = f" ({conflicting} with a different answer: only the first row's counts)" if conflicting else ""
            _log.warning(
                "%s: dropped %d row(s) of %s whose prompt repeats an earlier row's%s; %d distinct prompts are "
                "used; remove or reword the repeats",
                NAME, repeats, where, other, len(out),
            )  # fmt: skip
        if in_eval:
            _log.warning(
                "%s: dropped %d row(s) of %s whose prompt is an eval item (kept out of the train pool)",
                NAME, in_eval, where,
            )  # fmt: skip
        return out

    def _labelled(self, examples: list[Example], where: str) -> list[Example]:
        """The examples' labels from skills_field or labels_file, checked against skill_tree
        (kept in self._tree); without a tree, unlabelled rows get default_skill."""
        o = self.options
        examples, self._tree, _ = label_rows(
            examples, NAME, where, self.skills_field, o.labels_file, o.skill_tree, self.template.unfill
        )
        if self._tree is None:
            examples = [ex if ex.skills else ex.model_copy(update={"skills": [o.default_skill]}) for ex in examples]
        return examples

    def _warn_unmeasured(self, where: str) -> None:
        """Skills the data has but the eval set does not: their accuracy cannot be measured
        (a per-skill table would show '–'), one warning naming them."""
        in_eval = {s for ex in self._eval for s in ex.skills}
        if self._tree is not None:  # a group is measured through any skill below it
            in_eval |= {a for s in in_eval if s in self._tree for a in self._tree.ancestors(s)}
        rows: dict[str, int] = {}
        for ex in self._train:
            for s in ex.skills:
                if s not in in_eval:
                    rows[s] = rows.get(s, 0) + 1
        if not rows:
            return
        named = ", ".join(f"{s} ({n} pool row{'s' * (n != 1)})" for s, n in sorted(rows.items())[:SHOWN])
        more = f" and {len(rows) - SHOWN} more" if len(rows) > SHOWN else ""
        fix = (
            "give them eval rows in eval_file"
            if self.options.eval_file
            else ("give them more rows (a skill needs 2 to be split), raise eval_fraction, or give an eval_file")
        )
        _log.warning(
            "%s: %d skill(s) of %s have no eval items, so no accuracy or gain is measured for them: %s%s; %s",
            NAME, len(rows), where, named, more, fix,
        )  # fmt: skip

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
            return final_number_matches(response, example.answer, rel_tol=o.tolerance)
        if o.scorer == "math":
            return final_answer_matches(response, example.answer, o.style, rel_tol=o.tolerance)
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
            return answer_parses(answer, "gsm8k")
        if self.options.scorer == "math":
            return answer_parses(answer, self.options.style)
        return True

    def item_form(self, skill: str | None) -> ItemForm | None:
        """The forms the options give (every skill alike); a number for the numeric scorer."""
        o = self.options
        answer = o.answer_form or (NUMBER_FORM if o.scorer == "numeric" else None)
        return ItemForm(question=o.question_form, answer=answer) if o.question_form or answer else None

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
    """`(program, tests) -> passed`, through the code sandbox's `run_python` (imported here:
    only the code-tests scorer pays for loading it)."""
    from teachloop.environments.sandbox import SandboxLimits, run_python

    limits = SandboxLimits(wall_seconds=timeout_s, cpu_seconds=max(1, math.ceil(timeout_s)), memory_mb=memory_mb)

    def passes(program: str, tests: str) -> bool:
        return bool(run_python(program, tests, limits).passed)

    return passes

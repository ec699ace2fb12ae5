"""math: GSM8K- and MATH-style problems with a final-answer scorer.

Data comes from local JSON / JSONL / parquet files (`train_file`, and `eval_file` or
`eval_fraction`) or, when online, from a hub dataset (`source: openai/gsm8k`,
`subset: main`, `split`, `eval_split`), both read with `datasets`. Local files never
touch the network. Options (RunConfig.environment_options):

    train_file / eval_file   local data; without eval_file, eval_fraction of train_file is held out
    source / subset / split / eval_split   a hub dataset instead (needs a network connection)
    question_field           default: the first of question, problem, prompt present
    answer_field             default: the first of answer, solution present
    skills_field             a column of skill labels (a name or a list of names per row)
    labels_file              or labels from a JSONL of {"prompt": <question text>, "skills": [...]}
                             rows, matched on the question (`teachloop skills discover` writes one)
    skill_tree               a skill-tree file (teachloop.skills.tree_file: YAML or JSON skills
                             with name, parent?, description?) the labels name nodes of
    style                    gsm8k | math | auto (from the data: `####` or `\\boxed{}`)
    eval_fraction, split_seed, max_train, max_eval

The reference answer of every example is the final answer extracted from the answer
field (`#### 42`, the last `\\boxed{}`, or the whole field when it is one line); the full
solution stays in `meta["solution"]`. The prompt is the question followed by a fixed
instruction to end with `#### <answer>` (gsm8k) or `\\boxed{}` (math). `score` extracts the
student's final answer and checks equivalence (teachloop.environments.answers).

Skills: labels from `skills_field` (MATH's `type` column, say) or `labels_file`. With a
`skill_tree` the labels may name its leaves or inner nodes, a label not in the tree is an
error, and unlabelled problems stay unlabelled; without one the labels form a flat list
and unlabelled problems get the style's one default skill (the only skill when there are
no labels). Real skills for unlabelled data come from the teacher: `teachloop run --skills
discover --teacher ...`, or `teachloop skills discover --out skills.yaml`, which writes a
skill tree and its labels file for `skill_tree` and `labels_file`.

Answers with reasoning need room: the student may write 256 new tokens on gsm8k-style
data and 512 on MATH-style data (`answer_tokens`), unless the run sets `max_new_tokens`.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from teachloop.environments.answers import (
    Style,
    answer_parses,
    canonical_answer,
    detect_style,
    extract_answer,
    final_answer_matches,
    reference_answer,
    references_agree,
    strip_math_delimiters,
)
from teachloop.environments.base import BaseEnvironment, scored_attempt
from teachloop.environments.rows import (
    Row,
    Template,
    cap,
    read_hub,
    read_splits,
    require_fields,
    skills_of,
    split_rows,
    text_of,
    unique,
)
from teachloop.errors import TeachloopError
from teachloop.skills.labels import label_rows
from teachloop.skills.tree import SkillTree, SkillTreeError
from teachloop.types import Attempt, Example

NAME = "math"
_log = logging.getLogger(__name__)

TEMPLATES: dict[str, str] = {
    "gsm8k": '{question}\n\nSolve the problem, then give the final answer on the last line as "#### <answer>".\n',
    "math": "{question}\n\nSolve the problem, then give the final answer in \\boxed{}.\n",
}
DEFAULT_SKILLS: dict[str, tuple[str, str]] = {
    "gsm8k": ("arithmetic-word-problems", "multi-step arithmetic word problems (GSM8K style)"),
    "math": ("competition-math", "competition mathematics problems (MATH style)"),
}
QUESTION_FIELDS = ("question", "problem", "prompt")
ANSWER_FIELDS = ("answer", "solution")


class MathOptions(BaseModel):
    """The `math` environment's options (RunConfig.environment_options)."""

    model_config = ConfigDict(extra="forbid")

    train_file: Path | None = Field(default=None, description="a local .json/.jsonl/.parquet file of problems")
    eval_file: Path | None = Field(
        default=None, description="local eval problems; without it eval_fraction of train_file"
    )
    source: str | None = Field(default=None, description="hub dataset id, e.g. openai/gsm8k (needs network)")
    subset: str | None = Field(default=None, description="hub dataset configuration, e.g. main")
    split: str = Field(default="train", description="the hub split of the training problems")
    eval_split: str | None = Field(
        default="test", description="the hub eval split; None: hold out eval_fraction of split"
    )
    eval_fraction: float = Field(
        default=0.2, gt=0, lt=1, description="share held out for eval when no eval data is given"
    )
    question_field: str | None = Field(
        default=None, description="the question column; default: the first of question, problem, prompt present"
    )
    answer_field: str | None = Field(
        default=None, description="the answer/solution column; default: the first of answer, solution present"
    )
    skills_field: str | None = Field(
        default=None, description="the column of skill labels (a name or a list of names per row), e.g. MATH's type"
    )
    skill_tree: Path | None = Field(
        default=None,
        description="a skill-tree file (.yaml/.yml/.json: skills with name, parent, description) the labels "
        "name nodes of; without it the labels form a flat list",
    )
    labels_file: Path | None = Field(
        default=None,
        description='labels matched on the question text, JSONL of {"prompt": ..., "skills": [...]} '
        "(teachloop skills discover writes one); instead of skills_field",
    )
    style: Style = Field(
        default="auto", description="gsm8k (#### answer), math (\\boxed{} answer) or auto (from the data)"
    )
    max_train: int | None = Field(
        default=None, ge=0, description="use at most this many training problems (seeded sample)"
    )
    max_eval: int | None = Field(default=None, ge=1, description="use at most this many eval problems (seeded sample)")
    split_seed: int = Field(default=1234, description="seed of the train/eval split and of the samples")
    answer_tokens: int | None = Field(
        default=None, ge=1, description="student answer length limit; default: 256 (gsm8k), 512 (math)"
    )

    @model_validator(mode="after")
    def _consistent(self) -> MathOptions:
        if self.source and self.train_file:
            raise ValueError("give either source (a hub dataset) or train_file (a local file), not both")
        if not self.source and not self.train_file:
            raise ValueError(
                "no data: set train_file (a local .json/.jsonl/.parquet file) or source (a hub id such as "
                "openai/gsm8k, which needs a network connection)"
            )
        if self.eval_file and not self.train_file:
            raise ValueError("eval_file needs train_file")
        if self.skills_field and self.labels_file:
            raise ValueError("skills_field (a column) and labels_file both give labels: choose one")
        return self


class MathEnvironment(BaseEnvironment):
    """GSM8K/MATH-style problems from files or the hub, scored on the final answer."""

    name = NAME
    Options = MathOptions
    options: MathOptions
    answer_tokens: int  # from the options

    def setup(self) -> None:
        o = self.options
        train_rows, eval_rows, where = self._read()
        self.question_field = _pick_field(train_rows, o.question_field, QUESTION_FIELDS, "question_field", where)
        self.answer_field = _pick_field(train_rows, o.answer_field, ANSWER_FIELDS, "answer_field", where)
        fields = [("question_field", self.question_field), ("answer_field", self.answer_field)]
        if o.skills_field:
            fields.append(("skills_field", o.skills_field))
        require_fields(train_rows, fields, NAME, where)
        require_fields(eval_rows, fields, NAME, f"the eval data of {where}")
        self.style: Literal["gsm8k", "math"] = (
            detect_style([text_of(r.get(self.answer_field)) for r in train_rows]) if o.style == "auto" else o.style
        )
        self.template = Template(TEMPLATES[self.style], "question")
        self.answer_tokens = o.answer_tokens or (256 if self.style == "gsm8k" else 512)
        train = self._examples(train_rows, "seed", where)
        evals = self._examples(eval_rows, "eval", f"the eval data of {where}")
        self._eval = cap(unique(evals), o.max_eval, o.split_seed)
        self._train = cap(unique(train, exclude={ex.prompt for ex in self._eval}), o.max_train, o.split_seed + 1)
        self.skills, self._eval, self._train = self._with_skills(self._eval, self._train, where)

    # -- reading ---------------------------------------------------------------------------
    def _read(self) -> tuple[list[Row], list[Row], str]:
        o = self.options
        if not o.source:
            assert o.train_file is not None
            return read_splits(o.train_file, "train_file", o.eval_file, o.eval_fraction, o.split_seed, NAME)
        train = read_hub(o.source, o.subset, o.split, NAME)
        where = f"{o.source} ({o.split})"
        if o.eval_split:
            return train, read_hub(o.source, o.subset, o.eval_split, NAME), where
        train, evals = split_rows(train, o.eval_fraction, o.split_seed, NAME)
        return train, evals, where

    def _examples(self, rows: list[Row], source: Literal["seed", "eval"], where: str) -> list[Example]:
        out: list[Example] = []
        skipped = 0
        for row in rows:
            example = self._example(row, source)
            if example is None:
                skipped += 1
            else:
                out.append(example)
        if not out:
            raise TeachloopError(
                f"{NAME}: no usable row in {where}: every row needs a non-empty {self.question_field!r} and a final "
                f"answer in {self.answer_field!r} ('#### <answer>', '\\boxed{{...}}' or a one-line answer)"
            )
        if skipped:
            _log.warning("%s: skipped %d row(s) of %s without a question or final answer", NAME, skipped, where)
        return out

    def _example(self, row: Row, source: Literal["seed", "eval"]) -> Example | None:
        question = text_of(row.get(self.question_field)).strip()
        solution = text_of(row.get(self.answer_field)).strip()
        final = reference_answer(solution)
        if not question or final is None:
            return None
        answer = canonical_answer(final)
        meta: dict[str, Any] = {"style": self.style}
        if strip_math_delimiters(solution) != final:  # a worked solution, not just the answer
            meta["solution"] = solution
        skills = skills_of(row.get(self.options.skills_field)) if self.options.skills_field else []
        return Example(prompt=self.template.fill(question), answer=answer, skills=skills, source=source, meta=meta)

    # -- skills ----------------------------------------------------------------------------
    def _with_skills(
        self, evals: list[Example], train: list[Example], where: str
    ) -> tuple[SkillTree, list[Example], list[Example]]:
        """The skill tree and the examples' labels: labels from skills_field or labels_file;
        the tree from skill_tree (unlabelled problems stay unlabelled), else a flat list of
        the labels (unlabelled problems get the style's default skill)."""
        o = self.options
        default, description = DEFAULT_SKILLS[self.style]
        examples, tree, labels_from = label_rows(
            evals + train, NAME, where, o.skills_field, o.labels_file, o.skill_tree, self.template.unfill
        )
        if tree is not None:
            return tree, examples[: len(evals)], examples[len(evals) :]
        fill = [ex if ex.skills else ex.model_copy(update={"skills": [default]}) for ex in examples]
        if not (o.skills_field or o.labels_file):
            return _tree({default: description}), fill[: len(evals)], fill[len(evals) :]
        names = sorted({s for ex in fill for s in ex.skills})
        tree = _tree({s: description if s == default else f"labelled '{s}' in {labels_from}" for s in names})
        return tree, fill[: len(evals)], fill[len(evals) :]

    # -- the Environment protocol -----------------------------------------------------------
    def train_pool(self) -> list[Example]:
        return self._train

    def eval_set(self) -> list[Example]:
        return self._eval

    def score(self, example: Example, response: str) -> Attempt:
        """Correct only when the response's delimited final answer is one of the reference's
        acceptable answers (rules: teachloop.environments.answers)."""
        style = example.meta.get("style", self.style)
        correct = final_answer_matches(response, example.answer, style if style in TEMPLATES else self.style)
        return scored_attempt(example, response, correct)

    def check(self, example: Example) -> bool:
        """A teacher-written example is self-consistent: it has a question, its answer parses
        (a number for gsm8k), and a solution it carries ends in that same answer."""
        if not self.template.unfill(example.prompt) or not answer_parses(example.answer, self.style):
            return False
        solution = example.meta.get("solution")
        if isinstance(solution, str):
            stated = reference_answer(solution)
            if stated is not None and not references_agree(example.answer, stated):
                return False
        return True

    def make_example(self, question: str, answer: str, skills: list[str]) -> Example:
        """A teacher-written (question, answer or worked solution) in this environment's format."""
        solution = answer.strip()
        final = reference_answer(solution) or extract_answer(solution, self.style) or solution
        canonical = canonical_answer(final)
        meta: dict[str, Any] = {"style": self.style}
        if solution != canonical:
            meta["solution"] = solution
        prompt = self.template.fill(self.template.unfill(question))
        return Example(prompt=prompt, answer=canonical, skills=list(skills), meta=meta)


# -- helpers ----------------------------------------------------------------------------------
def _pick_field(rows: list[Row], chosen: str | None, candidates: tuple[str, ...], option: str, where: str) -> str:
    if chosen:
        return chosen
    columns = {key for row in rows for key in row}
    for name in candidates:
        if name in columns:
            return name
    raise TeachloopError(
        f"{NAME}: {where} has none of the fields {', '.join(candidates)} (its fields: "
        f"{', '.join(sorted(columns))}); set {option}"
    )


def _tree(skills: dict[str, str]) -> SkillTree:
    try:
        return SkillTree.from_list(skills, name=NAME)
    except SkillTreeError as exc:
        raise TeachloopError(f"{NAME}: bad skill labels: {exc}") from exc

"""The `math` and `jsonl` environments on small problem files the tests write themselves."""

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from cli_fork import run_teachloop

from teachloop.environments import Environment, available_environments, get_environment
from teachloop.environments.math import DEFAULT_SKILLS
from teachloop.errors import TeachloopError
from teachloop.skills.tree import SkillTree
from teachloop.skills.tree_file import write_tree_file
from teachloop.types import Example


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return path


def write_parquet(path: Path, rows: list[dict]) -> Path:
    pq.write_table(pa.Table.from_pylist(rows), path)
    return path


def gsm8k_rows(n: int = 20) -> list[dict]:
    rows = []
    for i in range(n):
        a, b = 100 * i + 7, 1000 + i
        rows.append(
            {
                "question": f"A shop sells {a} pens and {b} pencils. How many items does it sell?",
                "answer": f"It sells {a} + {b} = {a + b} items.\n#### {a + b:,}",
            }
        )
    return rows


MATH_ROWS = [
    {"problem": "What is $1 - \\frac{1}{2}$?", "solution": "We get $\\boxed{\\frac{1}{2}}$.", "type": "Algebra"},
    {"problem": "Expand $(x+1)^2 - 2x$.", "solution": "It is $\\boxed{x^2+1}$.", "type": "Algebra"},
    {"problem": "A right angle has how many degrees?", "solution": "$\\boxed{90^\\circ}$", "type": "Geometry"},
    {"problem": "Area of a unit square?", "solution": "Side squared: $\\boxed{1}$.", "type": "Geometry"},
    {"problem": "What is $\\sqrt{16}$?", "solution": "$\\boxed{4}$", "type": "Number Theory"},
    {"problem": "Solve $2x = 3$.", "solution": "$x = \\boxed{\\dfrac{3}{2}}$", "type": "Algebra"},
]


@pytest.fixture
def gsm8k_file(tmp_path) -> Path:
    return write_jsonl(tmp_path / "gsm8k.jsonl", gsm8k_rows())


@pytest.fixture
def math_file(tmp_path) -> Path:
    return write_parquet(tmp_path / "math.parquet", MATH_ROWS)


def test_registered():
    assert {"math", "jsonl", "skillworld"} <= set(available_environments())


# -- math: GSM8K style -----------------------------------------------------------------------
def test_gsm8k_jsonl_loads_and_splits_deterministically(gsm8k_file):
    env = get_environment("math", train_file=str(gsm8k_file), eval_fraction=0.25)
    again = get_environment("math", train_file=str(gsm8k_file), eval_fraction=0.25)
    other = get_environment("math", train_file=str(gsm8k_file), eval_fraction=0.25, split_seed=99)
    assert isinstance(env, Environment) and env.name == "math"
    assert env.style == "gsm8k"
    assert len(env.eval_set()) == 5 and len(env.train_pool()) == 15
    assert [e.id for e in env.eval_set()] == [e.id for e in again.eval_set()]
    assert [e.id for e in env.train_pool()] == [e.id for e in again.train_pool()]
    assert {e.id for e in env.eval_set()} != {e.id for e in other.eval_set()}
    assert not {e.prompt for e in env.eval_set()} & {e.prompt for e in env.train_pool()}
    assert all(e.source == "eval" for e in env.eval_set()) and all(e.source == "seed" for e in env.train_pool())

    skill, _ = DEFAULT_SKILLS["gsm8k"]
    assert env.skills.leaves() == [skill]
    ex = next(e for e in env.train_pool() + env.eval_set() if e.prompt.startswith("A shop sells 1907 pens"))
    assert ex.answer == "2926"  # "#### 2,926" -> the canonical final answer
    assert ex.meta["solution"].endswith("#### 2,926") and ex.meta["style"] == "gsm8k"
    assert ex.skills == [skill]
    assert ex.prompt.rstrip().endswith('as "#### <answer>".')


def test_gsm8k_scores_correct_and_wrong(gsm8k_file):
    env = get_environment("math", train_file=str(gsm8k_file))
    ex = env.eval_set()[0]
    value = int(ex.answer)
    right = env.score(ex, f"Adding them gives {value:,} items.\n#### {value:,}")
    assert right.correct and right.score == 1.0 and right.reference == ex.answer and right.skills == ex.skills
    assert env.score(ex, f"{value}").correct  # a bare final answer (a student trained on answers)
    assert env.score(ex, f"The total is {value} items.\n#### {value}.0").correct  # 3.0 == 3
    # no "last number in the text" fallback: the prompt asks for "#### <answer>"
    assert not env.score(ex, f"The total is {value}.0 items.").correct
    wrong = env.score(ex, f"#### {value + 1}")
    assert not wrong.correct and wrong.score == 0.0
    assert not env.score(ex, "I do not know").correct


def test_separate_eval_file_and_caps(tmp_path):
    train = write_jsonl(tmp_path / "train.jsonl", gsm8k_rows(12))
    evals = write_parquet(tmp_path / "test.parquet", gsm8k_rows(15)[10:])  # overlaps train rows 10, 11
    env = get_environment("math", train_file=str(train), eval_file=str(evals))
    assert len(env.eval_set()) == 5
    assert len(env.train_pool()) == 10  # the two eval prompts are kept out of the train pool
    capped = get_environment("math", train_file=str(train), eval_file=str(evals), max_train=4, max_eval=2)
    assert len(capped.train_pool()) == 4 and len(capped.eval_set()) == 2
    assert {e.id for e in capped.eval_set()} <= {e.id for e in env.eval_set()}


# -- math: MATH style ------------------------------------------------------------------------
def test_math_parquet_with_skills_column(math_file):
    env = get_environment("math", train_file=str(math_file), skills_field="type", eval_fraction=0.5)
    assert env.style == "math"
    assert env.question_field == "problem" and env.answer_field == "solution"  # picked automatically
    assert sorted(env.skills.leaves()) == ["Algebra", "Geometry", "Number Theory"]
    everything = env.eval_set() + env.train_pool()
    assert len(everything) == 6
    by_question = {e.prompt.split("\n")[0]: e for e in everything}
    half = by_question["What is $1 - \\frac{1}{2}$?"]
    assert half.answer == "\\frac{1}{2}" and half.skills == ["Algebra"]
    assert half.prompt.rstrip().endswith("final answer in \\boxed{}.")
    assert by_question["A right angle has how many degrees?"].skills == ["Geometry"]

    assert env.score(half, "So the result is $\\boxed{0.5}$.").correct  # \boxed{\frac{1}{2}} vs 0.5
    assert env.score(half, "0.5").correct
    assert not env.score(half, "$\\boxed{\\frac{1}{3}}$").correct
    square = by_question["Expand $(x+1)^2 - 2x$."]
    assert env.score(square, "\\boxed{1 + x^2}").correct and not env.score(square, "\\boxed{x^2 - 1}").correct
    assert env.score(by_question["Solve $2x = 3$."], "x = \\boxed{1.5}").correct
    assert env.score(by_question["A right angle has how many degrees?"], "\\boxed{90}").correct


def test_answer_column_with_final_answers_only(tmp_path):
    rows = [
        {"question": "What is $1 - \\frac{1}{2}$?", "answer": "$\\frac{1}{2}$"},
        {"question": "Expand $(x+1)^2 - 2x$.", "answer": "x^2+1"},
        {"question": "Half of 9?", "answer": 4.5},
        {"question": "Twice 4?", "answer": 8},
    ]
    env = get_environment("math", train_file=str(write_jsonl(tmp_path / "final.jsonl", rows)), style="math")
    answers = sorted(e.answer for e in env.eval_set() + env.train_pool())
    assert answers == sorted(["\\frac{1}{2}", "x^2+1", "4.5", "8"])
    assert all("solution" not in e.meta for e in env.eval_set() + env.train_pool())


def test_skill_tree_and_labels_file(tmp_path, gsm8k_file):
    tree = SkillTree("discovered")
    tree.add("arithmetic", "whole-number arithmetic")
    tree.add("addition", "add numbers", parent="arithmetic")
    tree.add("reading", "read the question")
    write_tree_file(tree, tmp_path / "skills.yaml")
    first, second = gsm8k_rows()[0]["question"], gsm8k_rows()[1]["question"]
    labels = [{"prompt": first, "skills": ["addition"]}, {"prompt": second, "skills": ["arithmetic", "reading"]}]
    write_jsonl(tmp_path / "labels.jsonl", labels)  # keyed by the question, as the data has it
    env = get_environment(
        "math", train_file=str(gsm8k_file), skill_tree=str(tmp_path / "skills.yaml"),
        labels_file=str(tmp_path / "labels.jsonl"),
    )  # fmt: skip
    assert env.skills == tree
    by_question = {env.template.unfill(ex.prompt): ex.skills for ex in env.eval_set() + env.train_pool()}
    assert by_question[first] == ["addition"] and by_question[second] == ["arithmetic", "reading"]
    assert sum(1 for skills in by_question.values() if not skills) == 18  # unlabelled: no default skill invented

    write_jsonl(tmp_path / "bad.labels.jsonl", [{"prompt": first, "skills": ["juggling", "addition", "sums"]}])
    with pytest.raises(
        TeachloopError, match=r"2 skill label\(s\) in labels_file .* not in skill_tree .*: juggling, sums"
    ):
        get_environment(
            "math", train_file=str(gsm8k_file), skill_tree=str(tmp_path / "skills.yaml"),
            labels_file=str(tmp_path / "bad.labels.jsonl"),
        )  # fmt: skip


def test_check_and_make_example(gsm8k_file, math_file):
    env = get_environment("math", train_file=str(gsm8k_file))
    assert all(env.check(e) for e in env.eval_set())
    made = env.make_example("Ann has 3 cats and 4 dogs. How many pets?", "3 + 4 = 7\n#### 7", ["counting"])
    assert made.answer == "7" and made.meta["solution"] == "3 + 4 = 7\n#### 7" and made.skills == ["counting"]
    assert made.prompt == env.template.fill("Ann has 3 cats and 4 dogs. How many pets?")
    assert made.prompt.startswith("Ann has 3 cats") and made.prompt.endswith(env.eval_set()[0].prompt[-40:])
    assert env.check(made)
    # a teacher that copied the instruction into its question does not get it twice
    assert env.make_example(made.prompt, "7", []).prompt == made.prompt
    assert env.make_example("q?", "#### 1,500", []).answer == "1500"

    inconsistent = made.model_copy(update={"answer": "8"})  # its solution ends in #### 7
    assert not env.check(inconsistent)
    assert not env.check(env.make_example("How many?", "#### lots", []))  # gsm8k answers are numbers
    assert not env.check(Example(prompt=env.template.fill(""), answer="3"))

    maths = get_environment("math", train_file=str(math_file))
    boxed = maths.make_example("Compute 1/2 + 1/4.", "It is $\\boxed{\\frac{3}{4}}$.", [])
    assert boxed.answer == "\\frac{3}{4}" and maths.check(boxed)
    assert not maths.check(boxed.model_copy(update={"answer": "\\frac{3}{"}))


# -- math: option and data errors -----------------------------------------------------------
@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({}, "environment .math.: no data: set train_file"),
        ({"train_file": "a.jsonl", "source": "openai/gsm8k"}, "either source .* or train_file"),
        ({"source": "openai/gsm8k", "eval_file": "b.jsonl"}, "eval_file needs train_file"),
        ({"train_file": "a.jsonl", "skills_field": "t", "labels_file": "l.jsonl"}, "choose one"),
        ({"train_file": "a.jsonl", "skills_file": "s.json"}, "unknown option 'skills_file'"),
        ({"train_file": "a.jsonl", "eval_fraction": 1.5}, "eval_fraction: Input should be less than 1"),
        ({"train_file": "a.jsonl", "style": "latex"}, "style: Input should be 'gsm8k', 'math' or 'auto'"),
        ({"train_file": "a.jsonl", "trian_file": "b"}, "unknown option 'trian_file'"),
    ],
)
def test_bad_options(options, message):
    with pytest.raises(TeachloopError, match=message):
        get_environment("math", **options)


def test_data_errors(tmp_path, gsm8k_file):
    with pytest.raises(TeachloopError, match=r"math: train_file .*missing.jsonl does not exist"):
        get_environment("math", train_file=str(tmp_path / "missing.jsonl"))
    no_query = r"has no field 'query' \(its fields: answer, question\); set question_field"
    with pytest.raises(TeachloopError, match=no_query):
        get_environment("math", train_file=str(gsm8k_file), question_field="query")
    with pytest.raises(TeachloopError, match="has no field 'level'.*set skills_field"):
        get_environment("math", train_file=str(gsm8k_file), skills_field="level")
    (tmp_path / "empty.jsonl").write_text("")
    with pytest.raises(TeachloopError, match="math: "):
        get_environment("math", train_file=str(tmp_path / "empty.jsonl"))
    (tmp_path / "data.csv").write_text("question,answer\n1,2\n")
    with pytest.raises(TeachloopError, match="use a .json, .jsonl or .parquet file"):
        get_environment("math", train_file=str(tmp_path / "data.csv"))
    other = write_jsonl(tmp_path / "other.jsonl", [{"text": "hi", "label": 1}] * 3)
    with pytest.raises(TeachloopError, match="none of the fields question, problem, prompt"):
        get_environment("math", train_file=str(other))
    unanswered = write_jsonl(tmp_path / "solutions.jsonl", [{"question": "q?", "answer": "a long\nsolution"}] * 4)
    with pytest.raises(TeachloopError, match="no usable row"):
        get_environment("math", train_file=str(unanswered))
    with pytest.raises(TeachloopError, match="cannot be split"):
        get_environment("math", train_file=str(write_jsonl(tmp_path / "one.jsonl", gsm8k_rows(1))))


def test_hub_source_goes_through_load_dataset(monkeypatch):
    """The hub code path, without the network: load_dataset is replaced by a fake."""
    import datasets

    calls = []

    def fake_load_dataset(path, name=None, split=None, **kwargs):
        calls.append((path, name, split))
        rows = gsm8k_rows(6) if split == "train" else gsm8k_rows(9)[6:]
        return datasets.Dataset.from_list(rows)

    monkeypatch.setattr(datasets, "load_dataset", fake_load_dataset)
    env = get_environment("math", source="openai/gsm8k", subset="main")
    assert calls == [("openai/gsm8k", "main", "train"), ("openai/gsm8k", "main", "test")]
    assert len(env.train_pool()) == 6 and len(env.eval_set()) == 3

    def offline(*args, **kwargs):
        raise ConnectionError("no network")

    monkeypatch.setattr(datasets, "load_dataset", offline)
    with pytest.raises(TeachloopError, match="could not load 'openai/gsm8k'.*Offline, give local files"):
        get_environment("math", source="openai/gsm8k", subset="main")


# -- jsonl ------------------------------------------------------------------------------------
def test_jsonl_exact_with_skills_column(tmp_path):
    rows = [
        {"prompt": f"capital of {c}?", "answer": cap, "skills": [kind]}
        for c, cap, kind in [
            ("France", "Paris", "europe"),
            ("Japan", "Tokyo", "asia"),
            ("Italy", "Rome", "europe"),
            ("India", "New Delhi", "asia"),
            ("Spain", "Madrid", "europe"),
            ("China", "Beijing", "asia"),
        ]
    ]
    env = get_environment("jsonl", path=str(write_jsonl(tmp_path / "caps.jsonl", rows)), eval_fraction=0.5)
    assert isinstance(env, Environment) and env.name == "jsonl"
    assert sorted(env.skills.leaves()) == ["asia", "europe"]
    assert len(env.eval_set()) == 3 and len(env.train_pool()) == 3
    ex = env.eval_set()[0]
    assert ex.skills in (["europe"], ["asia"])
    assert env.score(ex, f"  {ex.answer} ").correct
    assert not env.score(ex, ex.answer.lower()).correct
    loose = get_environment("jsonl", path=str(tmp_path / "caps.jsonl"), eval_fraction=0.5, ignore_case=True)
    assert loose.score(loose.eval_set()[0], loose.eval_set()[0].answer.upper()).correct


def test_jsonl_numeric_and_math_scorers(tmp_path):
    rows = [{"q": f"{i} * 1000 = ?", "a": str(i * 1000), "topic": "times"} for i in range(1, 9)]
    train = write_jsonl(tmp_path / "train.jsonl", rows[:5])
    evals = write_parquet(tmp_path / "eval.parquet", rows[5:])
    common = {"train_file": str(train), "eval_file": str(evals), "prompt_field": "q", "answer_field": "a"}
    env = get_environment("jsonl", scorer="numeric", skills_field="topic", prompt_template="Q: {prompt}\nA:", **common)
    ex = env.eval_set()[0]
    assert ex.prompt == "Q: 6 * 1000 = ?\nA:" and ex.skills == ["times"] and env.skills.leaves() == ["times"]
    assert env.score(ex, "6,000").correct and env.score(ex, "#### 6000.0").correct
    assert not env.score(ex, "that is 6,000").correct  # a number in prose is not a final answer
    assert not env.score(ex, "6001").correct and not env.score(ex, "six thousand").correct
    assert get_environment("jsonl", scorer="numeric", tolerance=0.01, **common).score(ex, "6001").correct
    assert env.check(ex) and not env.check(ex.model_copy(update={"answer": "many"}))
    assert env.make_example(ex.prompt, " 7000 ", ["times"]).prompt == "Q: 6 * 1000 = ?\nA:"

    maths = get_environment("jsonl", scorer="math", **common)
    assert maths.skills.leaves() == ["task"] and maths.eval_set()[0].skills == ["task"]
    assert maths.score(maths.eval_set()[0], "\\boxed{6 \\cdot 10^3}").correct
    assert not maths.score(maths.eval_set()[0], "\\boxed{600}").correct


def test_jsonl_code_tests_runs_prompt_plus_response_in_the_sandbox_within_its_limits(tmp_path):
    rows = [{"prompt": f"def f{i}():\n", "answer": f"assert f{i}() == 1\n"} for i in range(4)]
    data = write_jsonl(tmp_path / "code.jsonl", rows)
    env = get_environment("jsonl", path=str(data), scorer="code-tests", program="prompt+response", timeout_s=1)
    ex = env.eval_set()[0]
    assert env.score(ex, "```python\n    return 1\n```").correct  # the body completes the prompt's def
    assert not env.score(ex, "    return 2\n").correct
    assert not env.score(ex, "    while True:\n        pass\n").correct  # stopped at timeout_s


def test_jsonl_code_tests_in_the_real_sandbox(tmp_path):
    rows = [{"prompt": f"Write add(a, b) ({i}).", "answer": "assert add(2, 3) == 5\n"} for i in range(2)]
    env = get_environment("jsonl", path=str(write_jsonl(tmp_path / "add.jsonl", rows)), scorer="code-tests")
    ex = env.eval_set()[0]
    assert env.score(ex, "```python\ndef add(a, b):\n    return a + b\n```").correct
    assert not env.score(ex, "def add(a, b):\n    return a - b\n").correct


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({}, "environment .jsonl.: no data"),
        ({"path": "a.jsonl", "train_file": "b.jsonl"}, "either path"),
        ({"path": "a.jsonl", "scorer": "fuzzy"}, "scorer: Input should be"),
        ({"path": "a.jsonl", "prompt_template": "no slot"}, r"prompt_template: needs exactly one \{prompt\}"),
        ({"path": "missing.jsonl"}, "jsonl: path missing.jsonl does not exist"),
    ],
)
def test_jsonl_bad_options(options, message):
    with pytest.raises(TeachloopError, match=message):
        get_environment("jsonl", **options)


def test_jsonl_missing_field(tmp_path):
    data = write_jsonl(tmp_path / "d.jsonl", [{"input": f"x{i}", "output": "y"} for i in range(3)])
    with pytest.raises(TeachloopError, match=r"has no field 'prompt' \(its fields: input, output\); set prompt_field"):
        get_environment("jsonl", path=str(data))
    env = get_environment("jsonl", path=str(data), prompt_field="input", answer_field="output")
    assert env.skills.leaves() == ["task"]


# -- jsonl: what makes its numbers meaningful (issue 34 items 2-4) ----------------------------
def sixty_rows() -> list[dict]:
    """The issue's file: 60 rows, four big skills, `mod` with 3 rows, the first 5 rows twice."""
    rows = [
        {"prompt": f"{s} {i}", "answer": str(i), "skills": [s]} for i, s in enumerate(["add", "sub", "mul", "div"] * 13)
    ]
    rows += [{"prompt": f"mod {i}", "answer": str(i), "skills": ["mod"]} for i in range(3)]
    return rows + [dict(row) for row in rows[:5]]


def test_jsonl_split_gives_every_skill_eval_items_and_says_what_it_dropped(tmp_path, caplog):
    from typer.testing import CliRunner

    from teachloop.cli import app

    data = write_jsonl(tmp_path / "sixty.jsonl", sixty_rows())
    with caplog.at_level("WARNING", logger="teachloop.environments.jsonl"):
        env = get_environment("jsonl", path=str(data))
    said = " ".join(r.getMessage() for r in caplog.records)
    assert "dropped 5 row(s) of path" in said and "whose prompt repeats an earlier row's" in said
    eval_skills = {s for ex in env.eval_set() for s in ex.skills}
    assert eval_skills == {"add", "sub", "mul", "div", "mod"}  # a random 20 % left `mod` out
    assert len(env.eval_set()) == 11 and len(env.train_pool()) == 44  # a fifth of the 55 distinct prompts
    assert not {ex.prompt for ex in env.eval_set()} & {ex.prompt for ex in env.train_pool()}
    again = get_environment("jsonl", path=str(data))
    assert [ex.id for ex in again.eval_set()] == [ex.id for ex in env.eval_set()]  # seeded
    out = CliRunner().invoke(app, ["environments", "check", "jsonl", "--env-option", f"path={data}", "--items", "0"])
    assert out.exit_code == 0, out.output
    assert "eval / pool items per skill: " in out.output and "mod 1/2" in out.output


def test_jsonl_a_skill_left_without_eval_items_is_named(tmp_path, caplog):
    rows = [{"prompt": f"add {i}", "answer": str(i), "skills": ["add"]} for i in range(10)]
    data = write_jsonl(tmp_path / "one-mod.jsonl", rows + [{"prompt": "mod 1", "answer": "1", "skills": ["mod"]}])
    with caplog.at_level("WARNING", logger="teachloop.environments.jsonl"):
        env = get_environment("jsonl", path=str(data))
    said = [r.getMessage() for r in caplog.records if "no eval items" in r.getMessage()]
    assert len(said) == 1 and "mod (1 pool row)" in said[0] and "eval_file" in said[0], said
    assert "mod" not in {s for ex in env.eval_set() for s in ex.skills}


def test_jsonl_split_of_data_with_one_skill_is_the_plain_seeded_split(tmp_path, gsm8k_file):
    from teachloop.environments.rows import read_file, split_rows

    rows = read_file(gsm8k_file, "jsonl", "path")
    train, evals = split_rows(rows, 0.2, 1234, "jsonl")  # what the jsonl environment did before
    env = get_environment("jsonl", path=str(gsm8k_file), prompt_field="question")
    assert [ex.prompt for ex in env.eval_set()] == [row["question"] for row in evals]
    assert [ex.prompt for ex in env.train_pool()] == [row["question"] for row in train]


def test_jsonl_rows_over_max_chars_are_dropped_at_load_without_being_held(tmp_path, caplog):
    import tracemalloc

    from teachloop.environments.rows import read_rows

    rows = [{"prompt": f"q {i}", "answer": str(i)} for i in range(10)]
    rows.insert(3, {"prompt": "huge " + "y" * 8_000_000, "answer": "1"})  # 8 MB in one row
    rows.insert(6, {"prompt": "long " + "z" * 30_000, "answer": "2"})  # over 20,000, read and measured
    data = write_jsonl(tmp_path / "huge.jsonl", rows)
    with caplog.at_level("WARNING", logger="teachloop.environments.jsonl"):
        env = get_environment("jsonl", path=str(data))
    assert len(env.eval_set()) + len(env.train_pool()) == 10
    said = [r.getMessage() for r in caplog.records if "max_chars" in r.getMessage()]
    assert len(said) == 1 and "dropped 2 of 12 row(s)" in said[0] and "--env-option max_chars=" in said[0]
    assert len(get_environment("jsonl", path=str(data), max_chars=40_000).train_pool()) == 9  # raised: kept
    tracemalloc.start()
    kept, skipped = read_rows(data, "jsonl", "path", 20_000)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert len(kept) == 11 and skipped.rows == 1 and skipped.longest > 8_000_000
    assert peak < 2_000_000  # the 8 MB row was never held


def test_jsonl_rows_over_max_chars_in_parquet_are_dropped_too(tmp_path):
    rows = [{"prompt": f"q {i}", "answer": str(i)} for i in range(6)] + [{"prompt": "p" * 400_000, "answer": "1"}]
    env = get_environment("jsonl", path=str(write_parquet(tmp_path / "big.parquet", rows)), max_chars=100)
    assert len(env.eval_set()) + len(env.train_pool()) == 6


def test_jsonl_cells_numbers_are_text_lists_are_refused(tmp_path):
    numbers = [{"prompt": 7 + i, "answer": 2.0 * i + 0.5 * (i % 2)} for i in range(6)]
    env = get_environment("jsonl", path=str(write_jsonl(tmp_path / "n.jsonl", numbers)), eval_fraction=0.5)
    assert sorted(ex.prompt for ex in env.eval_set() + env.train_pool()) == sorted(str(7 + i) for i in range(6))
    assert {ex.answer for ex in env.eval_set() + env.train_pool()} == {"0", "2.5", "4", "6.5", "8", "10.5"}
    listed = [{"prompt": "what is 2 + 2?", "answer": [4]}, {"prompt": "and 3 + 3?", "answer": [6]}]
    with pytest.raises(TeachloopError, match=r"row 1 of path .*'answer' is a list \(\[4\]\), not text"):
        get_environment("jsonl", path=str(write_jsonl(tmp_path / "l.jsonl", listed)))
    flags = [{"prompt": True, "answer": "yes"}, {"prompt": "b", "answer": "no"}]
    with pytest.raises(TeachloopError, match=r"'prompt' is a boolean \(True\)"):
        get_environment("jsonl", path=str(write_jsonl(tmp_path / "b.jsonl", flags)))


# -- the CLI never reaches for the network with local files ----------------------------------
OFFLINE_RUN = textwrap.dedent(
    """
    import json, socket, sys

    def refuse(*args, **kwargs):
        raise OSError("network access attempted")

    socket.socket.connect = refuse
    socket.socket.connect_ex = refuse
    socket.create_connection = refuse
    socket.getaddrinfo = refuse

    from teachloop import cli
    from teachloop.runs.loop.runner import Loop

    def read_only(self):
        ev, pool = self.env.eval_set(), self.env.train_pool()
        print(json.dumps({"env": self.env.name, "eval": len(ev), "pool": len(pool), "answer": ev[0].answer}))
        return []

    Loop.run = read_only
    cli._finish = lambda run_dir, quiet: None
    cli.main(sys.argv[1:])
    """
)


def test_teachloop_run_env_math_is_offline_with_local_files(tmp_path, gsm8k_file):
    (tmp_path / "run.yaml").write_text(f"environment_options:\n  train_file: {gsm8k_file}\n  eval_fraction: 0.25\n")
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "HF_HOME": str(tmp_path / "hf")}
    out = subprocess.run(
        [
            sys.executable,
            "-c",
            OFFLINE_RUN,
            "run",
            "--config",
            str(tmp_path / "run.yaml"),
            "--env",
            "math",
            "--policy",
            "none",
            "--out",
            str(tmp_path / "runs"),
            "--name",
            "offline",
            "--quiet",
        ],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
        cwd=tmp_path,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    summary = json.loads(out.stdout.strip().splitlines()[-1])
    assert summary["env"] == "math" and summary["eval"] == 5 and summary["pool"] == 15
    saved = (tmp_path / "runs" / "offline" / "config.yaml").read_text()
    assert "environment: math" in saved and "train_file" in saved


@pytest.mark.slow  # a loop on math
def test_a_pool_only_policy_runs_on_math_without_a_teacher_and_generating_ones_say_what_to_do(tmp_path):
    rows = [{"question": f"What is {a} plus {b}?", "answer": f"#### {a + b}"} for a in range(6) for b in range(4)]
    data = tmp_path / "sums.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    common = ["--env", "math", "--env-option", f"train_file={data}", "--iterations", "1", "--budget", "10",
              "--epochs", "1", "--quiet", "--out", str(tmp_path)]  # fmt: skip
    ok = run_teachloop(["run", "--name", "sel", "--policy", "stat-sel", *common])
    assert ok.returncode == 0, ok.stderr[-2000:]
    assert (tmp_path / "sel" / "iter_0" / "data" / "examples.jsonl").read_text().count("\n") == 10
    refused = run_teachloop(["run", "--name", "syn", "--policy", "stat-syn", *common])
    assert refused.returncode == 2 and "configure an LLM teacher" in refused.stderr
    assert len(refused.stderr.strip().splitlines()) == 1


def test_every_environment_gives_its_answers_room_unless_the_run_sets_a_limit(tmp_path, gsm8k_file, math_file):
    from teachloop.environments.base import RelabelledEnvironment, answer_tokens
    from teachloop.runs.config import RunConfig

    caps = write_jsonl(tmp_path / "caps.jsonl", [{"prompt": f"q{i}", "answer": "x" * (20 + i)} for i in range(10)])
    room = {
        "skillworld": answer_tokens(get_environment("skillworld")),
        "gsm8k": answer_tokens(get_environment("math", train_file=str(gsm8k_file))),
        "math": answer_tokens(get_environment("math", train_file=str(math_file), eval_fraction=0.5)),
        "code": answer_tokens(get_environment("code", limit=4)),
        "jsonl exact": answer_tokens(get_environment("jsonl", path=str(caps))),
        "jsonl numeric": answer_tokens(get_environment("jsonl", path=str(caps), scorer="numeric")),
        "jsonl set": answer_tokens(get_environment("jsonl", path=str(caps), answer_tokens=40)),
    }
    # reasoning and code need hundreds of tokens; an exact answer needs its own length
    assert room == {"skillworld": 16, "gsm8k": 256, "math": 512, "code": 384,
                    "jsonl exact": 29 + 8, "jsonl numeric": 256, "jsonl set": 40}  # fmt: skip
    inner = get_environment("code", limit=4)
    assert answer_tokens(RelabelledEnvironment(inner, inner.skills, {})) == 384
    assert RunConfig().max_new_tokens is None  # None: the environment decides

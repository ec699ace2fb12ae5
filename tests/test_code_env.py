"""The `code` environment: HumanEval offline, scored by sandboxed execution."""

from __future__ import annotations

import json
import socket
import time
from pathlib import Path

import pytest

from teachloop.environments import get_environment
from teachloop.environments.code import CodeEnvironment, heuristic_skills, load_problems
from teachloop.errors import ConfigError, TeachloopError
from teachloop.skills.tree import SkillTree
from teachloop.skills.tree_file import write_tree_file
from teachloop.types import Example

FAST = {"wall_seconds": 3, "cpu_seconds": 2}


@pytest.fixture(scope="module")
def env() -> CodeEnvironment:
    return CodeEnvironment(sandbox=FAST)


def by_task(env: CodeEnvironment, task_id: str) -> Example:
    return next(ex for ex in env.eval_set() + env.train_pool() if ex.meta["task_id"] == task_id)


def test_problems_load_offline(monkeypatch: pytest.MonkeyPatch) -> None:
    def no_network(*args: object, **kwargs: object) -> None:
        raise AssertionError("loading HumanEval touched the network")

    monkeypatch.setattr(socket.socket, "connect", no_network)
    problems = load_problems()
    assert len(problems) == 164 and problems[0].task_id == "HumanEval/0"
    env = CodeEnvironment()
    example = env.eval_set()[0]
    assert example.meta["test"].lstrip().startswith(("METADATA", "def check", "import"))
    assert example.meta["entry_point"] in example.prompt
    assert example.prompt.rstrip().endswith('"""') or "def " in example.prompt


def test_it_is_registered() -> None:
    assert isinstance(get_environment("code", sandbox=FAST), CodeEnvironment)


def test_canonical_solutions_pass(env: CodeEnvironment) -> None:
    sample = env.eval_set()[:4] + env.train_pool()[:4]
    for example in sample:
        attempt = env.score(example, example.answer)
        assert attempt.correct and attempt.score == 1.0, example.meta["task_id"]
        assert attempt.skills == example.skills


@pytest.mark.slow
def test_every_canonical_solution_passes(env: CodeEnvironment) -> None:
    failed = [ex.meta["task_id"] for ex in env.eval_set() + env.train_pool() if not env.check(ex)]
    assert failed == []


def test_a_wrong_body_fails(env: CodeEnvironment) -> None:
    example = by_task(env, "HumanEval/0")
    assert not env.score(example, "    return False\n").correct
    assert not env.score(example, "    return numbers[0] +\n").correct  # a syntax error
    assert not env.score(example, "").correct


def test_an_infinite_loop_fails_fast(env: CodeEnvironment) -> None:
    example = by_task(env, "HumanEval/0")
    started = time.monotonic()
    attempt = env.score(example, "    while True:\n        pass\n")
    assert not attempt.correct
    assert time.monotonic() - started < 6


def test_whole_functions_and_fenced_completions_are_accepted(env: CodeEnvironment) -> None:
    example = by_task(env, "HumanEval/2")  # truncate_number(number: float) -> float
    whole = "def truncate_number(number: float) -> float:\n    return number % 1.0\n"
    assert env.score(example, whole).correct
    assert env.score(example, f"Here you go:\n```python\n{whole}```\n").correct
    assert env.score(example, "```python\n    return number % 1.0\n```").correct


def test_the_split_is_deterministic_and_disjoint() -> None:
    a, b = CodeEnvironment(seed=3), CodeEnvironment(seed=3)
    eval_ids, pool_ids = [e.id for e in a.eval_set()], [e.id for e in a.train_pool()]
    assert eval_ids == [e.id for e in b.eval_set()] and pool_ids == [e.id for e in b.train_pool()]
    assert not set(eval_ids) & set(pool_ids)
    assert len(eval_ids) + len(pool_ids) == 164 and len(eval_ids) == 82
    assert eval_ids != [e.id for e in CodeEnvironment(seed=4).eval_set()]
    small = CodeEnvironment(eval_fraction=0.25, limit=40)
    assert len(small.eval_set()) == 10 and len(small.train_pool()) == 30
    assert {e.source for e in a.eval_set()} == {"eval"} and {e.source for e in a.train_pool()} == {"seed"}


def test_every_example_has_skills_from_the_tree(env: CodeEnvironment) -> None:
    leaves = set(env.skills.leaves())
    assert {"strings", "lists", "math", "parsing", "logic"} == leaves
    for example in env.eval_set() + env.train_pool():
        assert example.skills and set(example.skills) <= leaves
    assert "strings" in heuristic_skills('def f(s: str) -> str:\n    """Reverse the word s."""\n')
    assert heuristic_skills('def f():\n    """Do the thing."""\n') == ["logic"]


def test_skills_can_come_from_a_discovered_tree(tmp_path: Path) -> None:
    """The tree file and prompt-keyed labels `teachloop skills discover` writes: labels may
    name inner nodes, unlabelled problems stay unlabelled, unknown labels are listed."""
    plain = CodeEnvironment(limit=10)
    tree = SkillTree("discovered")
    tree.add("control", "control flow")
    tree.add("loops", "iterate", parent="control")
    tree.add("recursion", "recurse", parent="control")
    write_tree_file(tree, tmp_path / "skills.yaml")
    first, second = plain.eval_set()[:2]
    rows = [{"prompt": first.prompt, "skills": ["loops"]}, {"prompt": second.prompt, "skills": ["control"]}]
    (tmp_path / "labels.jsonl").write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    env = CodeEnvironment(limit=10, skill_tree=tmp_path / "skills.yaml", labels_file=tmp_path / "labels.jsonl")
    assert env.skills.leaves() == ["loops", "recursion"]
    assert [ex.skills for ex in env.eval_set()[:2]] == [["loops"], ["control"]]
    assert all(ex.skills == [] for ex in env.eval_set()[2:])
    rows[0]["skills"] = ["loops", "not-in-tree"]
    (tmp_path / "labels.jsonl").write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    with pytest.raises(TeachloopError, match="not-in-tree"):
        CodeEnvironment(limit=10, skill_tree=tmp_path / "skills.yaml", labels_file=tmp_path / "labels.jsonl")
    with pytest.raises(TeachloopError, match="go together"):
        CodeEnvironment(limit=10, skill_tree=tmp_path / "skills.yaml")


def test_bad_options_are_config_errors() -> None:
    with pytest.raises(ConfigError, match="eval_fraction"):
        CodeEnvironment(eval_fraction=1.5)
    with pytest.raises(ConfigError, match="colour"):
        CodeEnvironment(colour="blue")


TEACHER_QUESTION = '''def double_all(xs: list[int]) -> list[int]:
    """Double every element.
    >>> double_all([1, 2])
    [2, 4]
    >>> double_all([])
    []
    """
'''


def test_teacher_items_are_verified_by_their_doctests(env: CodeEnvironment) -> None:
    good = env.make_example(TEACHER_QUESTION, "return [2 * x for x in xs]", ["lists"])
    assert good.answer == "    return [2 * x for x in xs]\n"  # indented into a body
    assert good.meta["entry_point"] == "double_all" and good.meta["tests_from"] == "doctest"
    assert env.check(good)
    assert env.score(good, "    return [x + x for x in xs]\n").correct
    assert not env.check(env.make_example(TEACHER_QUESTION, "    return xs\n", ["lists"]))
    untested = env.make_example('def f(x):\n    """Return x."""\n', "    return x\n", ["logic"])
    assert not env.check(untested)  # nothing to verify it with


def test_teacher_items_can_bring_their_own_tests(env: CodeEnvironment) -> None:
    tests = "def check(candidate):\n    assert candidate([3]) == [6]\n"
    item = env.make_example(TEACHER_QUESTION, "```python\n    return [2 * x for x in xs]\n```", ["lists"], tests=tests)
    assert item.meta["tests_from"] == "given" and env.check(item)
    wrong = env.make_example(TEACHER_QUESTION, "    return [3 * x for x in xs]\n", ["lists"], tests=tests)
    assert not env.check(wrong)

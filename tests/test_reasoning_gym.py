"""The reasoning-gym environment: a real task suite this project did not write, at tiny sizes."""

from __future__ import annotations

import random

import pytest
from conftest import FULL_SUITE, teachloop

try:
    import reasoning_gym  # noqa: F401
except ImportError:
    if FULL_SUITE:
        raise
    pytest.skip("reasoning-gym is not installed: pip install -e '.[reasoning-gym]'", allow_module_level=True)

from teachloop.environments import get_environment
from teachloop.errors import ConfigError

TINY = {"eval_per_task": 6, "validation_per_task": 3, "pool_per_task": 8}


@pytest.fixture(scope="module")
def env():
    return get_environment("reasoning-gym", **TINY)


def test_tasks_are_skills_grouped_by_category_and_splits_never_overlap(env):
    assert env.skills.leaves() == [
        "chain_sum", "basic_arithmetic", "gcd", "letter_counting", "spell_backward", "word_sorting",
    ]  # fmt: skip
    assert env.skills.parent("gcd") == "arithmetic" and env.skills.parent("word_sorting") == "algorithmic"
    evals, validation, pool = env.eval_set(), env.validation_set(), env.train_pool()
    assert (len(evals), len(validation), len(pool)) == (36, 18, 48)
    prompts = [ex.prompt for ex in evals + validation + pool]
    assert len(set(prompts)) == len(prompts)
    generated = [ex for skill in env.skills.leaves() for ex in env.generate(skill, 20, random.Random(0))]
    assert not {ex.prompt for ex in generated} & {ex.prompt for ex in evals + validation}
    assert {ex.skills[0] for ex in generated} == set(env.skills.leaves())


def test_the_tasks_own_scorer_judges_answers(env):
    for ex in env.eval_set():
        assert env.score(ex, ex.answer).correct, ex
        assert env.score(ex, " " + ex.answer + "\n").correct  # whitespace around an answer is no error
        assert not env.score(ex, "no idea").correct
    sorting = next(ex for ex in env.eval_set() if ex.skills == ["word_sorting"])
    words = sorting.answer.split(", ")
    partial = env.score(sorting, ", ".join(words[:1] + ["zzz"] * (len(words) - 1)))
    assert not partial.correct and 0 < partial.score < 1  # the task's partial credit, kept as the score
    teacher_written = env.make_example("What is 2 + 3?", "5", ["chain_sum"])
    assert teacher_written.prompt.endswith("Reply with the final answer only.\n")
    assert env.score(teacher_written, "5").correct and not env.score(teacher_written, "6").correct


def test_the_same_options_give_the_same_items_and_tasks_are_chosen_by_name():
    one = get_environment("reasoning-gym", **TINY)
    two = get_environment("reasoning-gym", **TINY)
    assert [ex.prompt for ex in one.eval_set()] == [ex.prompt for ex in two.eval_set()]
    picked = get_environment("reasoning-gym", tasks="gcd, lcm", eval_per_task=2, pool_per_task=2)
    assert picked.skills.leaves() == ["gcd", "lcm"]
    with pytest.raises(ConfigError, match="unknown task 'gdc' \\(did you mean gcd"):
        get_environment("reasoning-gym", tasks=["gdc"])
    with pytest.raises(ConfigError, match="refuses its config"):
        get_environment("reasoning-gym", tasks={"gcd": {"min_value": 9, "max_value": 2}})


def test_a_bad_task_name_is_one_error_line_before_anything_runs(tmp_path):
    out = teachloop(
        "run", "--env", "reasoning-gym", "--env-option", "tasks=[chain_sum, nope]", "--out", str(tmp_path),
        "--name", "bad",
    )  # fmt: skip
    assert out.returncode == 2
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: environment reasoning-gym: unknown task 'nope'")
    assert not (tmp_path / "bad").exists()

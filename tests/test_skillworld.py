import random

from teachloop.environments import get_environment
from teachloop.environments.skillworld import SKILLS, SkillWorld


def test_registered_and_has_a_skill_tree_of_at_least_six_skills():
    env = get_environment("skillworld")
    assert env.name == "skillworld"
    assert len(env.skills.leaves()) >= 6
    assert len(env.skills.children()) >= 2  # grouped into a tree, not a flat list


def test_splits_are_deterministic_disjoint_and_cover_every_skill():
    a, b = SkillWorld(), SkillWorld()
    assert [e.id for e in a.eval_set()] == [e.id for e in b.eval_set()]
    eval_prompts = {e.prompt for e in a.eval_set()}
    assert len(eval_prompts) == len(a.eval_set())
    assert not eval_prompts & {e.prompt for e in a.train_pool()}
    assert {e.skills[0] for e in a.eval_set()} == set(SKILLS)


ORACLE = {
    "first": lambda arg: arg[0],
    "copy": lambda arg: arg,
    "reverse": lambda arg: arg[::-1],
    "double": lambda arg: "".join(c + c for c in arg),
    "len": lambda arg: str(len(arg)),
    "max": lambda arg: max(arg),
    "parity": lambda arg: "odd" if int(arg) % 2 else "even",
    "succ": lambda arg: str(int(arg) + 1),
}


def test_every_generator_answers_correctly():
    env = SkillWorld()
    rng = random.Random(0)
    assert set(ORACLE) == set(SKILLS)
    for skill, oracle in ORACLE.items():
        for ex in env.generate(skill, 30, rng):
            op, arg = ex.prompt.split()
            assert op == skill and ex.skills == [skill] and ex.source == "generated"
            assert ex.answer == oracle(arg), ex


def test_exact_scoring_strips_whitespace_only():
    env = SkillWorld()
    ex = env.eval_set()[0]
    assert env.score(ex, f"  {ex.answer}\n").correct
    assert not env.score(ex, ex.answer + "x").correct
    assert env.score(ex, ex.answer).skills == ex.skills

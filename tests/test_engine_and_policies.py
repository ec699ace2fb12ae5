import subprocess
import sys

import pytest

from teachloop.agents.engines import ProgrammaticEngine, get_engine
from teachloop.agents.policies import allocate, available_policies, get_policy
from teachloop.agents.state import TeacherState
from teachloop.environments.skillworld import SkillWorld
from teachloop.errors import ConfigError, PluginError, TeachloopError
from teachloop.skills.profile import profile_from_items
from teachloop.types import DataPlan, Feedback, GenerationContext, GenerationRequest


def state(profile_items: dict[str, list[str]], budget: int = 100, iteration: int = 0) -> TeacherState:
    env = SkillWorld()
    feedback = Feedback(
        iteration=iteration,
        accuracy=0.5,
        skill_accuracy={},
        profile=profile_from_items(profile_items),
    )
    return TeacherState(
        iteration=iteration, seed=0, budget=budget, feedback=feedback, skill_tree=env.skills, pool=env.train_pool()
    )


def test_allocate_sums_to_budget_and_follows_weights():
    assert allocate(10, {"a": 1, "b": 1, "c": 1}) == {"a": 4, "b": 3, "c": 3}
    assert allocate(100, {"a": 3, "b": 1, "c": 0}) == {"a": 75, "b": 25, "c": 0}
    assert allocate(7, {"a": 0, "b": 0}) == {"a": 0, "b": 0}
    assert sum(allocate(997, {"a": 0.13, "b": 0.5, "c": 0.37}).values()) == 997


def test_builtin_policies_are_registered_through_entry_points():
    assert {"uniform", "stat-syn"} <= set(available_policies())
    with pytest.raises(PluginError, match="unknown policy 'nope' .*; available: .*uniform"):
        get_policy("nope")
    with pytest.raises(ConfigError, match="policy 'uniform': unknown option 'bogus'"):
        get_policy("uniform", bogus=1)


def test_uniform_spreads_budget_evenly():
    plan = get_policy("uniform").plan(state({"a": ["reverse"]}, budget=80))
    assert plan.allocation() == {s: 10 for s in SkillWorld().skills.leaves()}


def test_stat_syn_follows_the_missing_skill_profile():
    items = {f"r{i}": ["reverse"] for i in range(3)} | {"m": ["max"]}
    plan = get_policy("stat-syn").plan(state(items, budget=100))
    assert plan.allocation() == {"max": 25, "reverse": 75}
    request = next(r for r in plan.requests if r.skill == "reverse")
    assert len(request.exemplars) == 3 and all(e.skills == ["reverse"] for e in request.exemplars)
    # a group skill in the profile spreads over its leaves; a floor keeps every skill alive
    plan = get_policy("stat-syn", floor=0.4).plan(state({"x": ["number"]}, budget=100))
    alloc = plan.allocation()
    assert sum(alloc.values()) == 100 and set(alloc) == set(SkillWorld().skills.leaves())
    assert alloc["max"] > alloc["copy"] > 0
    # nothing missing: even spread
    assert len(get_policy("stat-syn").plan(state({}, budget=80)).allocation()) == 8
    with pytest.raises(ConfigError, match="floor"):
        get_policy("stat-syn", floor=2)


def context(env: SkillWorld, seen=frozenset()) -> GenerationContext:
    return GenerationContext(
        iteration=2, seed=0, policy="p", eval_prompts=frozenset(e.prompt for e in env.eval_set()), seen_prompts=seen
    )


def test_programmatic_engine_dedupes_decontaminates_and_records_lineage():
    env = SkillWorld()
    plan = DataPlan(policy="p", iteration=2, requests=[GenerationRequest(skill="parity", count=400)])
    result = ProgrammaticEngine().generate(plan, env, context(env))
    prompts = [e.prompt for e in result.examples]
    assert len(prompts) == 400 == len(set(prompts))
    assert not set(prompts) & {e.prompt for e in env.eval_set()}
    assert all(
        e.lineage.iteration == 2 and e.lineage.skill == "parity" and e.lineage.policy == "p" for e in result.examples
    )
    reasons = {r.reason.split(":")[0] for r in result.rejected}
    assert reasons <= {"duplicate", "contaminated"}
    # what was generated before is never generated again
    again = ProgrammaticEngine().generate(plan, env, context(env, frozenset(prompts)))
    assert not set(prompts) & {e.prompt for e in again.examples}


def test_engine_reports_shortfall_when_a_skill_runs_out_of_fresh_items():
    env = SkillWorld()
    # succ has 989 distinct prompts, some of them held out for evaluation
    plan = DataPlan(policy="p", iteration=0, requests=[GenerationRequest(skill="succ", count=2000)])
    result = ProgrammaticEngine().generate(plan, env, context(env))
    assert len(result.examples) <= 989 - sum(e.skills == ["succ"] for e in env.eval_set())
    assert result.shortfall["succ"] == 2000 - len(result.examples)


def test_engine_rejects_unknown_skills_and_engines():
    env = SkillWorld()
    plan = DataPlan(policy="p", iteration=0, requests=[GenerationRequest(skill="juggle", count=1)])
    with pytest.raises(TeachloopError, match="unknown skill 'juggle'"):
        ProgrammaticEngine().generate(plan, env, context(env))
    with pytest.raises(ConfigError, match="unknown engine"):
        get_engine("magic")


def test_policies_list_command():
    out = subprocess.run([sys.executable, "-m", "teachloop.cli", "policies", "list"], capture_output=True, text=True)
    assert out.returncode == 0 and "stat-syn" in out.stdout.split() and "uniform" in out.stdout.split()

"""The policy zoo: none, stat-sel, llm2llm, open-ended, skill-list, skill-tree, bandit, curriculum.

States are built by hand, so every test is fast and needs neither a student nor an LLM;
the LLM paths talk to the fault server (a real loopback HTTP server that answers with a
minimal instance of the requested JSON schema).
"""

from __future__ import annotations

import copy
import random
import subprocess
import sys
from typing import Any

import pytest

from fault_server import FaultServer
from teachloop.agents.engines import ProgrammaticEngine
from teachloop.agents.teacher import TeacherConfig, TeacherLLM
from teachloop.agents.policies import get_policy
from teachloop.agents.policies.bandit import arm_stats
from teachloop.agents.policies.skill_tree import Exploit, Memory, apply_action
from teachloop.agents.policies.stat_sel import expected_weights
from teachloop.agents.state import TeacherState
from teachloop.environments.base import scored_attempt
from teachloop.environments.skillworld import SkillWorld
from teachloop.errors import ConfigError, TeachloopError
from teachloop.skills.profile import profile_from_items
from teachloop.skills.tree import SkillTree
from teachloop.types import (
    Attempt,
    DataPlan,
    Example,
    Feedback,
    GenerationContext,
    GenerationRequest,
    HistoryEntry,
)

ENV = SkillWorld()
LEAVES = ENV.skills.leaves()
ZOO = ["none", "stat-sel", "llm2llm", "open-ended", "skill-list", "skill-tree", "bandit", "curriculum"]
POOL_ONLY = {"none", "stat-sel"}


# -- building states by hand ------------------------------------------------------------------
def failed(example: Example, response: str = "zz") -> Attempt:
    return scored_attempt(example, response, correct=False)


def passed(example: Example) -> Attempt:
    return scored_attempt(example, example.answer, correct=True)


def of_skill(examples: list[Example], skill: str, n: int) -> list[Example]:
    return [ex for ex in examples if ex.skills == [skill]][:n]


def accuracy(**overrides: float) -> dict[str, float]:
    """Per-leaf accuracy: 1.0 unless overridden."""
    return {s: overrides.get(s, 1.0) for s in LEAVES}


def make_state(
    budget: int = 100,
    iteration: int = 0,
    skill_accuracy: dict[str, float] | None = None,
    errors: list[Attempt] | None = None,
    profile: dict[str, list[str]] | None = None,
    **fields: Any,
) -> TeacherState:
    skill_accuracy = skill_accuracy if skill_accuracy is not None else accuracy()
    errors = errors or []
    if profile is None:
        profile = {a.example_id: a.skills for a in errors}
    feedback = Feedback(
        iteration=iteration,
        accuracy=sum(skill_accuracy.values()) / max(len(skill_accuracy), 1),
        skill_accuracy=skill_accuracy,
        profile=profile_from_items(profile),
        errors=errors,
    )
    fields.setdefault("pool", ENV.train_pool())
    return TeacherState(iteration=iteration, seed=0, budget=budget, feedback=feedback, skill_tree=ENV.skills, **fields)


def typical_state(budget: int = 100, iteration: int = 0) -> TeacherState:
    """A student weak at reverse and max, with errors, a profile and scored pool attempts."""
    errors = [failed(ex) for ex in of_skill(ENV.eval_set(), "reverse", 6) + of_skill(ENV.eval_set(), "max", 2)]
    pool = ENV.train_pool()
    weak = {"reverse", "max"}
    attempts = [failed(ex) if ex.skills[0] in weak and i % 5 == 0 else passed(ex) for i, ex in enumerate(pool)]
    history = [
        HistoryEntry(
            iteration=j,
            accuracy=0.7,
            skill_accuracy=accuracy(reverse=0.2 + 0.1 * j, max=0.3),
            allocation={"reverse": 60, "max": 40},
            next_skill_accuracy=accuracy(reverse=0.3 + 0.1 * j, max=0.3),
        )
        for j in range(iteration)
    ]
    return make_state(
        budget=budget,
        iteration=iteration,
        skill_accuracy=accuracy(reverse=0.2 + 0.1 * iteration, max=0.3, len=0.9),
        errors=errors,
        pool_attempts=attempts,
        history=history,
    )


def teacher_for(server: FaultServer, tmp_path) -> TeacherLLM:
    cfg = TeacherConfig(
        backend="openai",
        model="fake",
        base_url=server.base_url,
        api_key="k",
        timeout=5.0,
        max_retries=0,
        validation_retries=0,
    )
    return TeacherLLM(cfg, run_dir=tmp_path)


def context(iteration: int = 0) -> GenerationContext:
    return GenerationContext(
        iteration=iteration, seed=0, policy="zoo", eval_prompts=frozenset(e.prompt for e in ENV.eval_set())
    )


# -- every policy ------------------------------------------------------------------------------
def test_every_policy_is_listed_by_the_cli():
    out = subprocess.run([sys.executable, "-m", "teachloop.cli", "policies", "list"], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert set(ZOO) <= set(out.stdout.split())


@pytest.mark.parametrize("name", ZOO)
@pytest.mark.parametrize("budget", [0, 1, 7, 100, 1000])
def test_every_plan_spends_exactly_the_budget(name, budget):
    policy = get_policy(name)
    state = typical_state(budget=budget)
    for iteration in range(3):  # the policy's memory comes back as it would in a run
        plan = policy.plan(state)
        assert plan.total_requested + plan.pool_samples == budget
        assert plan.iteration == iteration and plan.policy == name
        assert all(r.skill is None or r.skill in ENV.skills for r in plan.requests)
        DataPlan.model_validate_json(plan.model_dump_json())  # the plan survives the run folder
        state = typical_state(budget=budget, iteration=iteration + 1).model_copy(
            update={"policy_state": plan.policy_state}
        )


@pytest.mark.parametrize("name", ZOO)
def test_every_plan_is_a_pure_function_of_the_state(name):
    first = get_policy(name).plan(typical_state(iteration=1))
    state = typical_state(iteration=2).model_copy(update={"policy_state": first.policy_state})
    before = copy.deepcopy(state.policy_state)
    assert get_policy(name).plan(state) == get_policy(name).plan(state)
    assert state.policy_state == before  # the memory handed in is never changed in place


@pytest.mark.parametrize("name", sorted(set(ZOO) - POOL_ONLY))
def test_every_plan_is_served_by_the_programmatic_engine(name):
    state = typical_state(budget=120, iteration=1)
    plan = get_policy(name).plan(state)
    result = ProgrammaticEngine().generate(plan, ENV, context(1))
    assert len(result.examples) == plan.total_requested == 120
    assert not result.shortfall
    assert all(ENV.check(ex) for ex in result.examples)


@pytest.mark.parametrize("name", sorted(POOL_ONLY))
def test_pool_policies_ask_for_pool_samples_only(name):
    plan = get_policy(name).plan(typical_state(budget=120))
    assert plan.requests == [] and plan.pool_samples == 120
    assert ProgrammaticEngine().generate(plan, ENV, context()).examples == []


@pytest.mark.parametrize(
    ("name", "options", "match"),
    [
        ("none", {"k": 3}, "policy 'none': unknown option 'k'; it takes no options"),
        ("stat-sel", {"k": 0}, "policy 'stat-sel': k: Input should be greater than or equal to 1 \\(got 0\\)"),
        ("stat-sel", {"k": "three"}, "k: Input should be a valid integer"),
        ("llm2llm", {"instructions": " "}, "instructions: String should have at least 1 character"),
        ("open-ended", {"max_specs": 0}, "max_specs"),
        ("open-ended", {"use_teacher": "maybe"}, "use_teacher: Input should be a valid boolean"),
        ("skill-list", {"floor": -0.1}, "floor: Input should be greater than or equal to 0"),
        ("skill-list", {"hypotheses": 0}, "hypotheses"),
        ("skill-tree", {"step": 1.5}, "step: Input should be less than or equal to 1"),
        ("skill-tree", {"mastered": "high"}, "mastered: Input should be a valid number"),
        ("bandit", {"algorithm": "eps-greedy"}, "algorithm: Input should be 'ucb' or 'thompson'"),
        ("bandit", {"arms": 0}, "arms: Input should be greater than or equal to 1"),
        ("bandit", {"exploration": -1}, "exploration"),
        ("curriculum", {"threshold": 2}, "threshold: Input should be less than or equal to 1"),
        ("curriculum", {"alpha": 0}, "alpha: Input should be greater than 0"),
        ("curriculum", {"max_level": -1}, "max_level"),
        ("curriculum", {"bogus": 1}, "unknown option 'bogus'; its options: threshold, alpha, max_level, floor"),
    ],
)
def test_bad_options_raise_config_errors(name, options, match):
    with pytest.raises(ConfigError, match=match):
        get_policy(name, **options)


# -- none and stat-sel ---------------------------------------------------------------------------
def test_none_resamples_the_seed_pool_uniformly():
    plan = get_policy("none").plan(typical_state(budget=64))
    assert plan.pool_samples == 64 and plan.weights is None and plan.requests == []


def test_stat_sel_weights_follow_stats_formula():
    tree = SkillTree.from_list(["a", "b", "c"])
    pool = [
        Example(prompt="p1", answer="1", skills=["a"]),
        Example(prompt="p2", answer="2", skills=["a", "b"]),
        Example(prompt="p3", answer="3", skills=["b"]),
        Example(prompt="p4", answer="4", skills=["c"]),
    ]
    p1, p2, p3, _ = (ex.id for ex in pool)
    # w(p) = Σ_s c(s) · k / |pool(s)| · [p has s], with c(a) = 2, c(b) = 1, k = 3
    weights = expected_weights(pool, {"a": 2, "b": 1}, tree, k=3)
    assert weights == pytest.approx({p1: 2 * 3 / 2, p2: 2 * 3 / 2 + 1 * 3 / 2, p3: 1 * 3 / 2})
    # a skill the pool lacks adds nothing; k only scales
    assert expected_weights(pool, {"a": 2, "zzz": 5}, tree, k=5) == pytest.approx({p1: 5.0, p2: 5.0})


def test_stat_sel_puts_the_weight_on_pool_items_of_missing_skills():
    items = {f"r{i}": ["reverse"] for i in range(3)} | {"m": ["max"]}
    plan = get_policy("stat-sel", k=4).plan(make_state(budget=200, profile=items))
    assert plan.pool_samples == 200 and not plan.requests
    by_id = {ex.id: ex for ex in ENV.train_pool()}
    weight_of = {s: {w for i, w in plan.weights.items() if by_id[i].skills == [s]} for s in ("reverse", "max")}
    n_reverse = sum(ex.skills == ["reverse"] for ex in ENV.train_pool())
    assert weight_of["reverse"] and all(w == pytest.approx(3 * 4 / n_reverse) for w in weight_of["reverse"])
    assert min(weight_of["reverse"]) > max(weight_of["max"]) > 0
    assert {by_id[i].skills[0] for i in plan.weights} == {"reverse", "max"}  # the rest weigh nothing
    # a group skill in the profile spreads over the pool items of its leaves
    plan = get_policy("stat-sel").plan(make_state(profile={"x": ["number"]}))
    assert {by_id[i].skills[0] for i in plan.weights} == set(ENV.skills.leaves_under("number"))


def test_stat_sel_falls_back_to_uniform_weights_without_a_profile():
    plan = get_policy("stat-sel").plan(make_state(budget=50, profile={}))
    assert plan.weights == {ex.id: 1.0 for ex in ENV.train_pool()} and plan.pool_samples == 50


# -- llm2llm ---------------------------------------------------------------------------------------
def test_llm2llm_augments_each_wrong_seed_item_and_nothing_else():
    policy = get_policy("llm2llm")
    assert policy.needs_pool_attempts is True
    pool = ENV.train_pool()
    wrong = [pool[3], pool[150], pool[420]]
    generated = Example(prompt="reverse abc\n", answer="cba", skills=["reverse"], source="generated")
    attempts = [failed(ex) for ex in wrong] + [failed(generated)] + [passed(ex) for ex in pool[:50] if ex not in wrong]
    plan = policy.plan(make_state(budget=10, pool_attempts=attempts))
    assert [r.parent_id for r in plan.requests] == [ex.id for ex in wrong]
    assert [r.count for r in plan.requests] == [4, 3, 3]
    for request, seed_item in zip(plan.requests, wrong, strict=True):
        assert request.exemplars == [seed_item] and request.skill == seed_item.skills[0]
        assert "new names/words/numbers" in request.instructions
    assert generated.id not in {r.parent_id for r in plan.requests}


def test_llm2llm_samples_wrong_items_when_they_outnumber_the_budget():
    pool = ENV.train_pool()
    attempts = [failed(ex) for ex in pool[:40]]
    state = make_state(budget=12, pool_attempts=attempts, iteration=3)
    plan = get_policy("llm2llm").plan(state)
    assert len(plan.requests) == 12 and all(r.count == 1 for r in plan.requests)
    assert {r.parent_id for r in plan.requests} <= {ex.id for ex in pool[:40]}
    assert plan == get_policy("llm2llm").plan(state)
    other = get_policy("llm2llm").plan(state.model_copy(update={"iteration": 4}))
    assert {r.parent_id for r in other.requests} != {r.parent_id for r in plan.requests}


def test_llm2llm_spreads_evenly_when_nothing_is_wrong():
    plan = get_policy("llm2llm").plan(make_state(budget=80, pool_attempts=[passed(ex) for ex in ENV.train_pool()]))
    assert plan.allocation() == {s: 10 for s in LEAVES} and all(r.parent_id is None for r in plan.requests)
    assert get_policy("llm2llm").plan(make_state(budget=80)).allocation() == {s: 10 for s in LEAVES}


# -- open-ended --------------------------------------------------------------------------------------
def test_open_ended_follows_the_skills_of_the_errors_with_pool_exemplars():
    errors = [failed(ex) for ex in of_skill(ENV.eval_set(), "reverse", 3) + of_skill(ENV.eval_set(), "max", 1)]
    plan = get_policy("open-ended").plan(make_state(budget=100, errors=errors))
    assert plan.allocation() == {"reverse": 75, "max": 25}
    pool_ids = {ex.id for ex in ENV.train_pool()}
    eval_prompts = {ex.prompt for ex in ENV.eval_set()}
    for request in plan.requests:
        assert 0 < len(request.exemplars) <= 3
        assert all(ex.id in pool_ids and ex.skills == [request.skill] for ex in request.exemplars)
        assert not any(ex.prompt.strip() in request.instructions for ex in ENV.eval_set())
        assert not {ex.prompt for ex in request.exemplars} & eval_prompts
    assert get_policy("open-ended").plan(make_state(budget=16)).allocation() == {s: 2 for s in LEAVES}


def test_open_ended_asks_the_teacher_for_data_specs(tmp_path):
    errors = [failed(ex) for ex in of_skill(ENV.eval_set(), "reverse", 3)]
    with FaultServer() as server:
        state = make_state(budget=50, errors=errors).model_copy(update={"teacher": teacher_for(server, tmp_path)})
        plan = get_policy("open-ended").plan(state)
        assert server.total() == 1
    # the server answers the smallest valid reply: one spec for the first skill, count 1, instructions "x"
    assert plan.allocation() == {LEAVES[0]: 50}
    assert plan.requests[0].instructions == "x" and "data specs" in plan.rationale
    # with the teacher switched off, the same state plans from the errors alone
    assert get_policy("open-ended", use_teacher=False).plan(state).allocation() == {"reverse": 50}


def test_open_ended_tops_up_evenly_when_the_teacher_fails(tmp_path):
    with FaultServer(["badcontent"] * 5) as server:
        state = make_state(budget=40).model_copy(update={"teacher": teacher_for(server, tmp_path)})
        plan = get_policy("open-ended").plan(state)
    assert plan.allocation() == {s: 5 for s in LEAVES} and "topped up" in plan.rationale


# -- skill-list --------------------------------------------------------------------------------------
def test_skill_list_allocates_by_weakness_with_a_hypothesis_per_skill():
    state = make_state(budget=100, skill_accuracy=accuracy(reverse=0.0, max=0.5))
    plan = get_policy("skill-list", floor=0.0).plan(state)
    assert plan.allocation() == {"reverse": 67, "max": 33}
    assert all("hypothesis" in r.instructions and f"'{r.skill}'" in r.instructions for r in plan.requests)
    floored = get_policy("skill-list", floor=0.1).plan(state).allocation()
    assert set(floored) == set(LEAVES) and floored["reverse"] > floored["max"] > floored["copy"] > 0
    assert get_policy("skill-list", floor=0.0).plan(make_state(budget=16)).allocation() == {s: 2 for s in LEAVES}


def test_skill_list_asks_the_teacher_for_weak_skill_hypotheses(tmp_path):
    errors = [failed(ex) for ex in of_skill(ENV.eval_set(), "reverse", 3)]
    with FaultServer() as server:
        state = make_state(budget=60, skill_accuracy=accuracy(reverse=0.0, max=0.5), errors=errors)
        state = state.model_copy(update={"teacher": teacher_for(server, tmp_path)})
        plan = get_policy("skill-list", floor=0.0).plan(state)
        assert server.total() == 2  # one call per weak skill
    assert plan.allocation() == {"reverse": 40, "max": 20}
    assert all(r.instructions.endswith(": x") for r in plan.requests)


# -- skill-tree --------------------------------------------------------------------------------------
def test_skill_tree_explores_then_records_state_action_reward():
    policy = get_policy("skill-tree")
    first = policy.plan(make_state(budget=100, skill_accuracy=accuracy(reverse=0.2, max=0.4)))
    assert first.allocation() == {"reverse": 50, "max": 50}
    assert first.policy_state["pending"]["action"]["type"] == "explore"
    assert first.policy_state["history"] == []

    history = [
        HistoryEntry(
            iteration=0,
            accuracy=0.9,
            skill_accuracy=accuracy(reverse=0.2, max=0.4),
            allocation=first.allocation(),
            next_skill_accuracy=accuracy(reverse=0.5, max=0.3),
        )
    ]
    state = make_state(budget=100, iteration=1, skill_accuracy=accuracy(reverse=0.5, max=0.3), history=history)
    second = policy.plan(state.model_copy(update={"policy_state": first.policy_state}))
    (step,) = second.policy_state["history"]
    assert step["iteration"] == 0 and step["action"]["type"] == "explore"
    assert step["state"]["accuracy"]["reverse"] == 0.2 and step["state"]["allocation"] == {}
    assert step["reward"] == pytest.approx({"reverse": 0.3, "max": -0.1})
    # exploit: priorities reverse 0.5 + 0.3 (reward), max 0.7 + 0 -> targets 53.3 and 46.7, half-way there
    assert second.policy_state["pending"]["action"] == {
        "type": "exploit",
        "delta": {"reverse": 2, "max": -2},
        "reasoning": second.policy_state["pending"]["action"]["reasoning"],
    }
    assert second.allocation() == {"reverse": 52, "max": 48}


def test_skill_tree_prunes_mastered_subskills_and_explores_new_gaps():
    policy = get_policy("skill-tree")
    first = policy.plan(make_state(budget=100, skill_accuracy=accuracy(reverse=0.2, max=0.4)))
    # max is now mastered: a negative delta of its whole allocation prunes it
    state = make_state(budget=100, iteration=1, skill_accuracy=accuracy(reverse=0.6))
    second = policy.plan(state.model_copy(update={"policy_state": first.policy_state}))
    assert second.policy_state["pending"]["action"]["delta"]["max"] == -50
    assert second.allocation() == {"reverse": 100} and "max" not in second.policy_state["allocation"]
    # a skill that slips below mastery and has no allocation is explored
    state = make_state(budget=100, iteration=2, skill_accuracy=accuracy(reverse=0.7, copy=0.8))
    third = policy.plan(state.model_copy(update={"policy_state": second.policy_state}))
    assert third.policy_state["pending"]["action"]["type"] == "explore"
    assert third.policy_state["pending"]["action"]["add"] == {"copy": 100}
    assert third.allocation() == {"reverse": 50, "copy": 50}
    assert len(third.policy_state["history"]) == 2


def test_skill_tree_negative_delta_prunes_and_unknown_subskills_are_ignored():
    memory = Memory(allocation={"reverse": 30, "max": 20})
    applied = apply_action(memory, Exploit(delta={"reverse": -30, "max": 5, "nope": 7}))
    assert memory.allocation == {"max": 25} and applied.delta == {"reverse": -30, "max": 5}


def test_skill_tree_with_a_teacher_adds_named_subskills_under_a_leaf(tmp_path):
    with FaultServer() as server:
        state = make_state(budget=40, skill_accuracy=accuracy(reverse=0.2))
        plan = get_policy("skill-tree").plan(state.model_copy(update={"teacher": teacher_for(server, tmp_path)}))
        assert server.total() == 1
    # the smallest valid reply explores one subskill "x" under the first leaf
    assert plan.policy_state["subskills"] == {f"{LEAVES[0]}/x": {"skill": LEAVES[0], "name": "x", "description": "x"}}
    assert plan.allocation() == {LEAVES[0]: 40}
    assert "Subskill 'x'" in plan.requests[0].instructions
    result = ProgrammaticEngine().generate(plan, ENV, context())
    assert len(result.examples) == 40  # engines only ever see tree skills


# -- bandit -------------------------------------------------------------------------------------------
def played(iteration: int, gains: dict[str, tuple[float, int]]) -> HistoryEntry:
    """A finished iteration where each skill got `count` examples and moved by `gain`."""
    return HistoryEntry(
        iteration=iteration,
        accuracy=0.5,
        skill_accuracy={s: 0.5 for s in gains},
        allocation={s: count for s, (_, count) in gains.items()},
        next_skill_accuracy={s: 0.5 + gain for s, (gain, _) in gains.items()},
    )


def test_bandit_plays_unplayed_skills_first_weakest_first():
    state = make_state(budget=90, skill_accuracy=accuracy(max=0.2, reverse=0.4, len=0.6))
    assert get_policy("bandit", arms=3).plan(state).allocation() == {"max": 30, "reverse": 30, "len": 30}
    history = [played(0, {"max": (0.5, 30), "reverse": (0.5, 30), "len": (0.5, 30)})]
    plan = get_policy("bandit", arms=3).plan(state.model_copy(update={"history": history, "iteration": 1}))
    assert set(plan.allocation()) == {"first", "copy", "double"}  # unplayed before any measured gain


def test_bandit_prefers_the_skill_with_the_highest_gain_per_example():
    history = [
        played(0, {s: (0.0, 10) for s in LEAVES}),
        # reverse gained less in total than max but per example much more
        played(1, {"reverse": (0.2, 20), "max": (0.3, 100), "len": (-0.1, 50)}),
    ]
    stats = arm_stats(history, LEAVES, unit=100)
    assert stats["reverse"].plays == 2 and stats["reverse"].mean == pytest.approx((0 + 0.2 / 20 * 100) / 2)
    state = make_state(budget=50, iteration=2, history=history)
    for algorithm in ("ucb", "thompson"):
        plan = get_policy("bandit", algorithm=algorithm, arms=1, spread=0.01).plan(state)
        assert plan.allocation() == {"reverse": 50}, algorithm
    # without the exploration bonus the two best measured gains share the budget
    assert get_policy("bandit", arms=2, exploration=0).plan(state).allocation() == {"reverse": 25, "max": 25}
    # with it, skills played once are worth another look before max (played twice, small gain)
    assert get_policy("bandit", arms=2).plan(state).allocation() == {"reverse": 25, "first": 25}


def test_bandit_recomputes_from_history_so_resume_needs_no_memory():
    history = [played(0, {"reverse": (0.2, 20), "max": (0.1, 20)})]
    state = make_state(budget=60, iteration=1, history=history)
    plan = get_policy("bandit").plan(state)
    stale = state.model_copy(update={"policy_state": {"arms": {"copy": {"plays": 99, "mean": 9.0}}}})
    assert get_policy("bandit").plan(stale) == plan
    assert plan.policy_state["arms"]["reverse"] == {"plays": 1, "mean": pytest.approx(1.0)}


# -- curriculum ---------------------------------------------------------------------------------------
def test_curriculum_raises_difficulty_only_for_mastered_skills():
    state = make_state(budget=100, skill_accuracy=accuracy(reverse=0.2, max=0.5))
    plan = get_policy("curriculum", threshold=0.9).plan(state)
    difficulty = {r.skill: r.difficulty for r in plan.requests}
    assert difficulty["reverse"] is None and difficulty["max"] is None
    assert all(difficulty[s] == 1 for s in LEAVES if s not in ("reverse", "max"))
    alloc = plan.allocation()
    assert alloc["reverse"] > alloc["max"] > alloc["copy"] > 0  # unmastered skills get the budget
    assert plan.policy_state["levels"]["reverse"] == 0 and plan.policy_state["levels"]["copy"] == 1
    assert "Difficulty level 1" in next(r for r in plan.requests if r.skill == "copy").instructions


def test_curriculum_traces_mastery_and_moves_levels_up_and_down():
    policy = get_policy("curriculum", threshold=0.75, alpha=0.5, max_level=2)
    state = make_state(skill_accuracy=accuracy(reverse=0.6))
    memory: dict[str, Any] = {}
    levels = []
    for iteration, reverse in enumerate([0.6, 1.0, 1.0, 1.0, 0.2]):
        state = make_state(iteration=iteration, skill_accuracy=accuracy(reverse=reverse))
        plan = policy.plan(state.model_copy(update={"policy_state": memory}))
        memory = plan.policy_state
        levels.append(memory["levels"]["reverse"])
    # mastery of reverse: 0.6, 0.8, 0.9, 0.95, 0.575 (EMA with alpha 0.5)
    assert memory["mastery"]["reverse"] == pytest.approx(0.575)
    assert levels == [0, 1, 2, 2, 1]  # capped at max_level, one down when mastery falls
    assert memory["levels"]["copy"] == 2


def test_curriculum_levels_are_served_as_harder_skillworld_items():
    plan = get_policy("curriculum").plan(make_state(budget=80, skill_accuracy=accuracy(reverse=0.1)))
    result = ProgrammaticEngine().generate(plan, ENV, context())
    assert len(result.examples) == 80
    hard = [ex for ex in result.examples if ex.skills == ["copy"]]
    easy = [ex for ex in result.examples if ex.skills == ["reverse"]]
    assert hard and all(ex.meta == {"difficulty": 1} for ex in hard)
    assert easy and all(ex.meta == {} for ex in easy)


# -- difficulty levels in skillworld and the programmatic engine ---------------------------------------
def test_skillworld_default_difficulty_is_exactly_todays_generators():
    for skill in LEAVES:
        base = ENV.generate(skill, 20, random.Random(7))
        assert ENV.generate(skill, 20, random.Random(7), difficulty=None) == base
        assert ENV.generate(skill, 20, random.Random(7), difficulty=0) == base


def test_skillworld_higher_levels_mean_longer_arguments_with_correct_answers():
    for skill in LEAVES:
        lengths = []
        for level in (0, 1, 3):
            items = ENV.generate(skill, 30, random.Random(1), difficulty=level)
            assert all(ENV.check(ex) for ex in items), skill
            lengths.append(min(len(ex.prompt.split()[1]) for ex in items))
        assert lengths[0] < lengths[1] < lengths[2], (skill, lengths)
    with pytest.raises(TeachloopError, match="difficulty"):
        ENV.generate("reverse", 1, random.Random(0), difficulty=-1)


class LevelFreeWorld(SkillWorld):
    """An environment whose generator has no difficulty parameter."""

    def generate(self, skill: str, n: int, rng: random.Random) -> list[Example]:  # type: ignore[override]
        return super().generate(skill, n, rng)


def test_programmatic_engine_passes_difficulty_only_where_it_is_understood():
    plan = DataPlan(
        policy="p",
        iteration=0,
        requests=[GenerationRequest(skill="reverse", count=20, difficulty=2), GenerationRequest(skill="max", count=5)],
    )
    result = ProgrammaticEngine().generate(plan, ENV, context())
    reverse = [ex for ex in result.examples if ex.skills == ["reverse"]]
    assert len(reverse) == 20 and all(len(ex.prompt.split()[1]) >= 7 for ex in reverse)
    assert all(ex.meta == {} for ex in result.examples if ex.skills == ["max"])
    plain = ProgrammaticEngine().generate(plan, LevelFreeWorld(), context())
    assert len(plain.examples) == 25 and all(len(ex.prompt.split()[1]) <= 5 for ex in plain.examples)

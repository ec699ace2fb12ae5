"""A plan over budget: every request scaled in proportion, said, and the report's counts agree."""

from __future__ import annotations

import pytest

from teachloop.agents.policies import POLICIES
from teachloop.runs.config import RunConfig
from teachloop.runs.loop.runner import Loop
from teachloop.runs.loop.store import RunStore
from teachloop.runs.reporting.iteration_data import load_run_data
from teachloop.types import DataPlan, GenerationRequest


class Greedy:
    """Asks for twice its budget, most of it for two skills, a little for a third."""

    name = "greedy"

    def plan(self, state):
        twice = 2 * state.budget
        requests = [
            GenerationRequest(skill="reverse", count=twice * 9 // 20),
            GenerationRequest(skill="max", count=twice * 9 // 20),
            GenerationRequest(skill="len", count=twice // 10),
        ]
        return DataPlan(policy=self.name, iteration=state.iteration, requests=requests, rationale="more!")


@pytest.fixture
def greedy():
    POLICIES.register("greedy", Greedy)
    yield
    POLICIES.unregister("greedy")


@pytest.mark.slow
def test_every_request_is_scaled_in_proportion_and_said(greedy, tmp_path, caplog):
    config = RunConfig(
        out=tmp_path, name="greedy", policy="greedy", iterations=1, budget=40, replay=0,
        environment_options={"eval_per_skill": 4, "pool_per_skill": 4}, train={"epochs": 1},
    )  # fmt: skip
    Loop.create(config, progress=False).run()
    store = RunStore(tmp_path / "greedy")
    plan = store.phase_record(0, "plan").info
    assert plan["allocation"] == {"len": 4, "max": 18, "reverse": 18} and plan["scaled_from"] == 80
    assert "over the budget of 40: every request was scaled in proportion" in caplog.text
    data = load_run_data(tmp_path / "greedy").iterations[0]
    assert "scaled in proportion" in data.plan.rationale
    assert {line.skill: (line.asked, line.kept) for line in data.skill_lines()} == {
        "len": (4, 4), "max": (18, 18), "reverse": (18, 18),
    }  # fmt: skip
    assert store.phase_record(0, "data").info["examples"] == 40
    assert "over budget" not in data.rejections()  # nothing cut after the fact
    assert data.data_yield is not None and (data.data_yield.accepted, data.data_yield.asked) == (40, 40)


def test_a_plan_scales_to_any_budget_without_losing_a_request():
    plan = DataPlan(
        policy="p", iteration=0, pool_samples=20,
        requests=[GenerationRequest(skill="a", count=1), GenerationRequest(skill="b", count=99)],
    )  # fmt: skip
    for budget in (2, 3, 10, 57, 119):
        scaled = plan.scaled_to(budget)
        assert scaled.total_requested + scaled.pool_samples == budget
        assert scaled.allocation()["a"] == 1
    assert plan.scaled_to(120) is plan and plan.scaled_to(500) is plan

"""`none`: the vanilla SFT baseline — no new data; the budget is spent on the seed pool.

Every iteration trains on `budget` items drawn uniformly from the seed pool
(`DataPlan.pool_samples`, `weights=None`), so a run with this policy measures what plain
fine-tuning on the seed data gives for the same number of training items. This is the
"plain SFT" row STAT (arXiv 2510.10023) and LLM2LLM (ACL Findings 2024) compare against.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

from teachloop.agents.policies.base import BasePolicy
from teachloop.agents.state import TeacherState
from teachloop.types import DataPlan


class NoDataOptions(BaseModel):
    """`none` takes no options."""

    model_config = ConfigDict(extra="forbid")


class NoDataPolicy(BasePolicy):
    """The vanilla SFT baseline: no new data; the budget is drawn uniformly from the seed pool."""

    name = "none"
    Options = NoDataOptions
    options: NoDataOptions
    pool_only = True

    def plan(self, state: TeacherState) -> DataPlan:
        return DataPlan(
            policy=self.name,
            iteration=state.iteration,
            pool_samples=state.budget,
            weights=None,
            rationale=f"vanilla SFT: {state.budget} items drawn uniformly from the seed pool, no new data",
        )

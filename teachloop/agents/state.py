"""TeacherState: what a policy sees when it plans (`Policy.plan(state)`), built by the loop
for each iteration. It holds live objects (the probe, the teacher) beside the run's
artifacts, and the skill tree, so it lives here with the agents rather than among the
ground floor's artifacts (teachloop.types).
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from teachloop.skills.tree import SkillTree
from teachloop.types import Attempt, Example, Feedback, HistoryEntry


class TeacherState(BaseModel):
    """Everything a policy may look at when it plans one iteration's data.

    `pool_attempts` holds the student's scored answers on the seed pool, filled only for
    policies that set `needs_pool_attempts = True` (LLM2LLM). `probe` lets a policy ask
    the current student directly (DataEnvGym hands its agents the student too), and
    `teacher` is the run's TeacherLLM (None without one) for policies that ask the LLM;
    `models` builds the other models a policy names in its options, and `forms(skill)` is the
    `ItemForm` the environment declares for a skill's items (what those models must answer in).
    """

    model_config = ConfigDict(arbitrary_types_allowed=True)

    iteration: int
    seed: int
    budget: int = Field(ge=0)
    feedback: Feedback
    skill_tree: SkillTree
    pool: list[Example] = Field(default_factory=list)
    pool_attempts: list[Attempt] = Field(default_factory=list)
    history: list[HistoryEntry] = Field(default_factory=list)
    policy_state: dict[str, Any] = Field(default_factory=dict)
    probe: Any = Field(default=None, exclude=True)
    teacher: Any = Field(default=None, exclude=True)
    # more models, named in a policy's options (delta's chosen and rejected):
    # `models(TeacherConfig, role) -> TeacherLLM`, started once per run, cached in the run folder
    models: Any = Field(default=None, exclude=True)
    forms: Any = Field(default=None, exclude=True)

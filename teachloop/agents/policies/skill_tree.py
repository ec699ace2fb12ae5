"""`skill-tree`: DataEnvGym's skill-tree teacher (Khan et al., "DataEnvGym: Data Generation
Agents in Teacher Environments with Student Feedback", ICLR 2025).

The teacher keeps an allocation of examples over subskills (in `policy_state`) and each
iteration takes one action on it:
- `explore`: add subskills with an allocation;
- `exploit`: shift the allocation by a delta per subskill; a subskill a negative delta
  brings to <= 0 is pruned.
The allocation is then rescaled to the budget. Every action is remembered with the state
it was taken in, and one iteration later with its reward: per subskill, the change of its
skill's evaluation accuracy. This (state, action, reward) history is kept in
`policy_state["history"]` and shown to an LLM teacher.

Subskills are the tree's leaf skills and, with an LLM teacher, finer subskills it names
under a leaf ("reverse" -> "words with repeated letters"). Engines and evaluation only
know tree skills, so a named subskill's data is requested for its leaf, with the
subskill in the instructions, and its reward is its leaf's accuracy change. Without an
LLM no names are invented; the heuristic explores a leaf that has no allocation and is
not mastered (accuracy < `mastered`), and otherwise exploits: each subskill moves a
`step` of the way to a share ∝ (1 - accuracy) + max(last reward, 0), and mastered ones
are pruned. When everything is pruned, the budget is spread evenly again.
"""

from __future__ import annotations

import random
import re
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, create_model

from teachloop.agents.policies.base import BasePolicy, allocate
from teachloop.agents.policies.common import (
    even_requests,
    exemplars_for,
    leaf_accuracy,
    pool_index,
)
from teachloop.agents.state import TeacherState
from teachloop.errors import TeachloopError
from teachloop.skills.tree import SkillTree
from teachloop.types import DataPlan, GenerationRequest, HistoryEntry

SYSTEM = "You are the teacher of a small student model and manage its training data. Reply with JSON only."


# -- what the policy remembers (policy_state) -------------------------------------------------
class Subskill(BaseModel):
    """A subskill the teacher named under a leaf skill (tree leaves themselves are implicit)."""

    skill: str
    name: str
    description: str = ""


class Explore(BaseModel):
    type: Literal["explore"] = "explore"
    add: dict[str, int]
    reasoning: str = ""


class Exploit(BaseModel):
    type: Literal["exploit"] = "exploit"
    delta: dict[str, int]
    reasoning: str = ""


Action = Annotated[Explore | Exploit, Field(discriminator="type")]


class StateSummary(BaseModel):
    """What the teacher saw when it acted: leaf accuracy and the allocation before the action."""

    accuracy: dict[str, float]
    allocation: dict[str, int]


class Pending(BaseModel):
    """The last action, waiting for the evaluation that gives its reward."""

    iteration: int
    state: StateSummary
    action: Action


class Step(BaseModel):
    """One (state, action, reward): reward per subskill = change of its skill's accuracy."""

    iteration: int
    state: StateSummary
    action: Action
    reward: dict[str, float]


class Memory(BaseModel):
    allocation: dict[str, int] = Field(default_factory=dict)
    subskills: dict[str, Subskill] = Field(default_factory=dict)
    pending: Pending | None = None
    history: list[Step] = Field(default_factory=list)

    def skill_of(self, key: str) -> str:
        return self.subskills[key].skill if key in self.subskills else key


# -- the policy ------------------------------------------------------------------------------
class SkillTreeOptions(BaseModel):
    """`skill-tree`'s options."""

    model_config = ConfigDict(extra="forbid")

    step: float = Field(default=0.5, ge=0, le=1, description="heuristic: how far the allocation moves per iteration")
    mastered: float = Field(default=1.0, ge=0, le=1, description="accuracy at which a subskill is pruned")
    exemplars: int = Field(default=3, ge=0, description="pool examples of the skill shown with each request")
    max_new: int = Field(default=3, ge=1, description="subskills the teacher may add in one explore action")
    history_shown: int = Field(default=5, ge=0, description="past (state, action, reward) steps shown to the teacher")
    history_limit: int = Field(default=100, ge=1, description="steps kept in policy_state")
    use_teacher: bool = Field(default=True, description="ask the LLM teacher when the run has one")


class SkillTreePolicy(BasePolicy):
    """DataEnvGym's skill-tree teacher: explore/exploit actions on an allocation over subskills."""

    name = "skill-tree"
    Options = SkillTreeOptions
    options: SkillTreeOptions
    uses_teacher = True  # asks the LLM teacher; without one, a programmatic fallback

    def plan(self, state: TeacherState) -> DataPlan:
        leaves = state.skill_tree.leaves()
        if not leaves:
            return DataPlan(policy=self.name, iteration=state.iteration, requests=even_requests(state))
        memory = _load(state.policy_state, leaves)
        accuracy = leaf_accuracy(state)
        memory.history = (memory.history + _rewarded(memory, state, accuracy))[-self.options.history_limit :]
        last_reward = memory.history[-1].reward if memory.history else {}
        action = self._teacher_action(state, memory, accuracy)
        if action is None:
            action = self.heuristic(memory, accuracy, leaves, state.budget, last_reward)
        before = dict(memory.allocation)
        action = apply_action(memory, action)
        if not memory.allocation:
            reset = Explore(add=_even(state.budget, leaves), reasoning="everything was pruned: an even spread again")
            action = apply_action(memory, reset)
        counts = allocate(state.budget, memory.allocation)
        if state.budget:
            memory.allocation = {k: c for k, c in counts.items() if c}
            memory.subskills = {k: v for k, v in memory.subskills.items() if k in memory.allocation}
        memory.pending = Pending(
            iteration=state.iteration, state=StateSummary(accuracy=accuracy, allocation=before), action=action
        )
        return DataPlan(
            policy=self.name,
            iteration=state.iteration,
            requests=self._requests(state, memory, counts),
            rationale=f"{action.type}: {action.reasoning}",
            policy_state=memory.model_dump(mode="json"),
        )

    # -- the heuristic teacher (no LLM) -----------------------------------------------------
    def heuristic(
        self,
        memory: Memory,
        accuracy: dict[str, float],
        leaves: list[str],
        budget: int,
        last_reward: dict[str, float],
    ) -> Explore | Exploit:
        covered = {memory.skill_of(k) for k in memory.allocation}
        fresh = [s for s in leaves if s not in covered and accuracy[s] < self.options.mastered]
        if not memory.allocation:
            reasoning = "start: an even share for every skill not yet mastered"
            return Explore(add=_even(budget, fresh or leaves), reasoning=reasoning)
        if fresh:
            size = max(1, round(sum(memory.allocation.values()) / len(memory.allocation)))
            return Explore(
                add={s: size for s in fresh}, reasoning="skills without data and not mastered: " + ", ".join(fresh)
            )
        return Exploit(
            delta=self.deltas(memory, accuracy, budget, last_reward),
            reasoning="shift towards low accuracy and positive reward; prune mastered subskills",
        )

    def deltas(
        self, memory: Memory, accuracy: dict[str, float], budget: int, last_reward: dict[str, float]
    ) -> dict[str, int]:
        """Per subskill: a `step` of the way to its target share; minus all of it when mastered."""
        open_keys = [k for k in memory.allocation if accuracy.get(memory.skill_of(k), 0.0) < self.options.mastered]
        priority = {k: 1.0 - accuracy[memory.skill_of(k)] + max(last_reward.get(k, 0.0), 0.0) for k in open_keys}
        total = sum(priority.values())
        delta = {}
        for key, current in memory.allocation.items():
            if key not in priority:
                delta[key] = -current
            else:
                delta[key] = round(self.options.step * (budget * priority[key] / total - current))
        return {k: d for k, d in delta.items() if d}

    # -- the LLM teacher --------------------------------------------------------------------
    def _teacher_action(
        self, state: TeacherState, memory: Memory, accuracy: dict[str, float]
    ) -> Explore | Exploit | None:
        if state.teacher is None or not self.options.use_teacher or not state.budget:
            return None
        leaves = state.skill_tree.leaves()
        schema = action_schema(leaves, list(memory.allocation), state.budget, self.options.max_new)
        prompt = self._prompt(state, memory, accuracy)
        conversation = [{"role": "system", "content": SYSTEM}, {"role": "user", "content": prompt}]
        reply = state.teacher.structured([conversation], schema, purpose="policy:skill-tree")[0]
        return _from_reply(reply, memory, leaves) if reply is not None else None

    def _prompt(self, state: TeacherState, memory: Memory, accuracy: dict[str, float]) -> str:
        tree = state.skill_tree
        lines = ["Skill tree (skills and skill groups with the student's evaluation accuracy):"]
        lines += _render(tree, {**state.feedback.node_accuracy, **accuracy})  # groups: all items below them
        lines += ["", f"Current allocation of the {state.budget} examples per iteration over subskills:"]
        lines += [f"- {k}{_about(memory, k)}: {n}" for k, n in memory.allocation.items()] or ["(empty)"]
        shown = memory.history[-self.options.history_shown :] if self.options.history_shown else []
        lines += ["", "Past actions and their rewards (change of the skill's accuracy):"]
        lines += [_show_step(step) for step in shown] or ["(none yet)"]
        lines += [
            "",
            "Choose one action. explore: add up to "
            f"{self.options.max_new} new subskills under leaf skills (a name, a description and a number of examples). "
            "exploit: change the allocation by a delta per subskill (a negative delta that brings a subskill "
            "to 0 or below removes it). The allocation is rescaled to the budget afterwards.",
        ]
        return "\n".join(lines)

    def _requests(self, state: TeacherState, memory: Memory, counts: dict[str, int]) -> list[GenerationRequest]:
        rng = random.Random(f"{state.seed}:{state.iteration}:skill-tree")
        index = pool_index(state.pool)
        requests = []
        for key, count in counts.items():
            if not count:
                continue
            skill = memory.skill_of(key)
            requests.append(
                GenerationRequest(
                    skill=skill,
                    count=count,
                    instructions=_instructions(key, memory, state.skill_tree),
                    exemplars=exemplars_for(index, state.skill_tree, skill, self.options.exemplars, rng),
                )
            )
        return requests


# -- memory and rewards ------------------------------------------------------------------------
def _load(policy_state: dict[str, Any], leaves: list[str]) -> Memory:
    """The memory of the previous plan, keeping only subskills of skills the tree still has."""
    try:
        memory = Memory.model_validate(policy_state)
    except ValidationError as exc:
        raise TeachloopError(f"skill-tree: policy_state was not written by this policy: {exc}") from exc
    memory.allocation = {k: n for k, n in memory.allocation.items() if memory.skill_of(k) in leaves and n > 0}
    memory.subskills = {k: v for k, v in memory.subskills.items() if k in memory.allocation}
    return memory


def _even(budget: int, skills: list[str]) -> dict[str, int]:
    return {s: n for s, n in allocate(max(budget, len(skills)), {s: 1.0 for s in skills}).items() if n}


def _rewarded(memory: Memory, state: TeacherState, accuracy: dict[str, float]) -> list[Step]:
    """The pending action as a finished step, rewarded by its skills' accuracy change."""
    pending = memory.pending
    if pending is None:
        return []
    after = _accuracy_after(state.history, pending.iteration) or accuracy
    before = pending.state.accuracy
    reward = {}
    for key in memory.allocation:
        skill = memory.skill_of(key)
        if skill in after and skill in before:
            reward[key] = after[skill] - before[skill]
    memory.pending = None
    return [Step(iteration=pending.iteration, state=pending.state, action=pending.action, reward=reward)]


def _accuracy_after(history: list[HistoryEntry], iteration: int) -> dict[str, float] | None:
    """The evaluation that followed `iteration`, as the loop's history records it."""
    return next((h.next_skill_accuracy for h in history if h.iteration == iteration), None)


def apply_action(memory: Memory, action: Explore | Exploit) -> Explore | Exploit:
    """Change the allocation in place; the action as applied (unknown subskills dropped)."""
    if isinstance(action, Explore):
        for key, count in action.add.items():
            memory.allocation[key] = memory.allocation.get(key, 0) + max(count, 0)
        return action
    applied = {k: d for k, d in action.delta.items() if k in memory.allocation}
    for key, change in applied.items():
        memory.allocation[key] += change
        if memory.allocation[key] <= 0:
            del memory.allocation[key]
            memory.subskills.pop(key, None)
    return action.model_copy(update={"delta": applied})


# -- the LLM's reply -----------------------------------------------------------------------------
def action_schema(leaves: list[str], keys: list[str], budget: int, max_new: int) -> type[BaseModel]:
    """{action, reasoning, new_subskills: [{skill ∈ leaves, name, description, count}],
    deltas: [{subskill ∈ allocation, delta}]}: one flat object, easy for small models."""
    leaf = Literal[tuple(leaves)]  # type: ignore[valid-type]
    target = Literal[tuple(dict.fromkeys(keys + leaves))]  # type: ignore[valid-type]
    limit = max(budget, 1)
    new_subskill = create_model(
        "NewSubskill",
        skill=(leaf, ...),
        name=(str, Field(min_length=1, max_length=60)),
        description=(str, Field(max_length=200)),
        count=(int, Field(ge=1, le=limit)),
    )
    delta = create_model("AllocationDelta", subskill=(target, ...), delta=(int, Field(ge=-limit, le=limit)))
    return create_model(
        "SkillTreeAction",
        action=(Literal["explore", "exploit"], ...),
        reasoning=(str, Field(max_length=400)),
        new_subskills=(list[new_subskill], Field(max_length=max_new)),  # type: ignore[valid-type]
        deltas=(list[delta], Field(max_length=len(keys) + len(leaves))),  # type: ignore[valid-type]
    )


def _from_reply(reply: BaseModel, memory: Memory, leaves: list[str]) -> Explore | Exploit | None:
    """The teacher's action; None (use the heuristic) for an explore that adds nothing."""
    if reply.action == "exploit":
        delta: dict[str, int] = {}
        for item in reply.deltas:
            delta[item.subskill] = delta.get(item.subskill, 0) + item.delta
        return Exploit(delta=delta, reasoning=reply.reasoning)
    add: dict[str, int] = {}
    for item in reply.new_subskills:
        key = _key(item.skill, item.name, leaves)
        if key != item.skill:
            memory.subskills[key] = Subskill(skill=item.skill, name=item.name.strip(), description=item.description)
        add[key] = add.get(key, 0) + item.count
    return Explore(add=add, reasoning=reply.reasoning) if add else None


def _key(skill: str, name: str, leaves: list[str]) -> str:
    slug = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")[:40]
    return skill if not slug or slug == skill or slug in leaves else f"{skill}/{slug}"


# -- text --------------------------------------------------------------------------------------
def _render(tree: SkillTree, accuracy: dict[str, float]) -> list[str]:
    lines = []
    for skill in tree.skills():
        depth = 0
        parent = tree.parent(skill)
        while parent is not None:
            depth, parent = depth + 1, tree.parent(parent)
        score = f" — accuracy {accuracy[skill]:.0%}" if skill in accuracy else ""
        lines.append("  " * depth + f"- {skill}: {tree.description(skill)}{score}")
    return lines


def _about(memory: Memory, key: str) -> str:
    sub = memory.subskills.get(key)
    return f" ({sub.description})" if sub and sub.description else ""


def _show_step(step: Step) -> str:
    if isinstance(step.action, Explore):
        what = "explore, added " + ", ".join(f"{k}+{n}" for k, n in step.action.add.items())
    else:
        what = "exploit, " + (", ".join(f"{k}{d:+d}" for k, d in step.action.delta.items()) or "no change")
    rewards = ", ".join(f"{k} {r:+.2f}" for k, r in step.reward.items()) or "none measured"
    return f"- iteration {step.iteration}: {what}; reward: {rewards}"


def _instructions(key: str, memory: Memory, tree: SkillTree) -> str:
    sub = memory.subskills.get(key)
    skill = memory.skill_of(key)
    if sub is None:
        return f"Practise '{skill}' ({tree.description(skill)})."
    about = f": {sub.description}" if sub.description else ""
    return (
        f"Subskill '{sub.name}' of '{skill}' ({tree.description(skill)}){about}. "
        "Write examples that exercise exactly this subskill, in the references' format."
    )

"""assemble_run: a RunConfig turned, once, into the parts a run is made of.

The environment (its files read, its generator set up), the policy, every `auto` resolved
(`ResolvedRun`) and the engine's class with its options validated are built here, each
check run as its part is built. The CLI, `Loop` and the bench take the `RunParts` and never
build or resolve them again; the engine itself is built by the loop, once its teacher has
started (the llm engine needs it)."""

from __future__ import annotations

from dataclasses import dataclass, replace

from teachloop.agents.engines import ENGINES
from teachloop.agents.engines.base import missing_teacher
from teachloop.agents.policies import Policy, get_policy
from teachloop.agents.policies.base import policy_teach
from teachloop.agents.teacher import backend_class
from teachloop.environments import Environment, get_environment
from teachloop.errors import ConfigError
from teachloop.registry import check_component_class, options_model, validate_options
from teachloop.runs.config import RunConfig
from teachloop.runs.loop.checks import (
    check_data_source,
    check_distill,
    check_models,
    check_pool_draws,
    check_processes,
)
from teachloop.runs.loop.resolved import ResolvedRun, resolve_run
from teachloop.runs.loop.tracking import check_tracker
from teachloop.students.eval_backends import check_eval_backend
from teachloop.students.registry import STUDENTS


@dataclass(frozen=True)
class RunParts:
    """What a run is made of, built from `config` by `assemble_run`.

    `models_checked`: the student (and a local teacher) checkpoint resolved and the student
    shown able to read the task (`check_models`); a run does that before its folder is made,
    a command that never loads a model (`teacher check`, a bench's validation) does not."""

    config: RunConfig
    env: Environment
    policy: Policy
    resolved: ResolvedRun
    models_checked: bool = False

    def named(self, name: str) -> RunParts:
        """The same parts for the config under another run name (nothing is rebuilt)."""
        return replace(self, config=self.config.model_copy(update={"name": name}))

    def with_models_checked(self) -> RunParts:
        """The parts after `check_models` (a .gguf student converted into the model cache once)."""
        if self.models_checked:
            return self
        check_models(self.config, self.env)
        return replace(self, models_checked=True)


def assemble_run(config: RunConfig, models: bool = True) -> RunParts:
    """The run's parts, each validated as it is built: a one-line error on unknown names, bad
    options, components that do not fit together or (with `models`) missing models, before
    anything heavy loads or anything is written."""
    env = get_environment(config.environment, **config.environment_options)
    policy = get_policy(config.policy, **config.policy_options)
    resolved = resolve_run(config, env)
    check_data_source(config, env, policy, resolved.engine)
    check_eval_backend(resolved.eval_backend, resolved.train.method)
    check_engine(resolved, has_teacher=config.teacher is not None)
    if config.teacher is None:
        for option, value in (("diagnosis", config.diagnosis), ("skills", config.skills)):
            if value in ("llm", "discover"):
                raise ConfigError(f"{option}: {value} needs a teacher (--teacher vllm:<model> or openai:<model>)")
    else:
        backend_class(config.teacher.backend)
    STUDENTS.check_name(config.student_backend)  # its class loads (and torch with it) when the student does
    check_tracker(config.tracking, config.tracking_options)
    check_processes(config.train)
    check_distill(config, policy_teach(policy))
    check_pool_draws(config, env, policy)
    parts = RunParts(config=config, env=env, policy=policy, resolved=resolved)
    return parts.with_models_checked() if models else parts


def check_engine(resolved: ResolvedRun, has_teacher: bool) -> None:
    """The resolved engine's options fit its `Options`, its class keeps the engine contract,
    and it has the teacher it needs; the loop builds it once, with the run's teacher."""
    engine_class = ENGINES.load(resolved.engine)
    if getattr(engine_class, "needs_teacher", False) and not has_teacher:
        raise missing_teacher(resolved.engine)
    model = options_model(engine_class, "engine", resolved.engine)
    if model is not None:
        validate_options("engine", resolved.engine, model, dict(resolved.engine_options))
    if ENGINES.contract is not None and isinstance(engine_class, type):
        check_component_class(engine_class, ENGINES.contract, resolved.engine)

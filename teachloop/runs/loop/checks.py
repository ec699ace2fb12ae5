"""Checks a run passes before anything heavy loads or anything is written: every named
plug-in exists, accepts its options and keeps its contract, the components fit together
(a policy that writes new examples has a generator or a teacher to write them), the
models exist. Whatever can be known before iteration 0 fails here, in a second, not after
an evaluation has been paid for."""

from __future__ import annotations

import importlib.util
from pathlib import Path

from teachloop.agents.engines import check_engine_name, get_engine
from teachloop.agents.policies import Policy, get_policy, pool_only
from teachloop.agents.teacher import backend_class
from teachloop.environments import Environment, ProgrammaticEnvironment, get_environment
from teachloop.environments.base import checker_of
from teachloop.errors import ConfigError
from teachloop.runs.config import RunConfig
from teachloop.runs.loop.resolved import resolve_run
from teachloop.runs.loop.tracking import check_tracker
from teachloop.students.eval_backends import check_eval_backend
from teachloop.types import TrainConfig

POOL_ONLY_HINT = "none, stat-sel"  # the built-in policies that only draw from the seed pool


def check_run_config(config: RunConfig, models: bool = True) -> Environment:
    """Fail fast, with a one-line error, on unknown names, bad options, components that do
    not fit together or missing models; returns the environment it built (a run reuses it
    rather than reading the task's files again).

    `models`: also resolve the student (and a local teacher) checkpoint; a .gguf file is
    converted here, once, into the model cache."""
    env = get_environment(config.environment, **config.environment_options)
    policy = get_policy(config.policy, **config.policy_options)
    check_engine_name(resolve_run(config).engine)
    check_data_source(config, env, policy)
    resolved = resolve_run(config, env)
    check_eval_backend(resolved.eval_backend, resolved.train.method)
    if config.teacher is None:
        get_engine(resolved.engine, **resolved.engine_options)
        for option, value in (("diagnosis", config.diagnosis), ("skills", config.skills)):
            if value in ("llm", "discover"):
                raise ConfigError(f"{option}: {value} needs a teacher (--teacher vllm:<model> or openai:<model>)")
    else:
        backend_class(config.teacher.backend)
    check_tracker(config.tracking, config.tracking_options)
    check_processes(config.train)
    if models:
        check_models(config)
    return env


def check_models(config: RunConfig) -> None:
    """The student (and a local teacher) checkpoint resolves; a .gguf file is converted
    here, once, into the model cache."""
    from teachloop.students.checkpoints import resolve_checkpoint

    resolve_checkpoint(config.student_model)
    if config.teacher is not None and backend_class(config.teacher.backend).local_weights:
        resolve_checkpoint(config.teacher.model)


def check_data_source(config: RunConfig, env: Environment, policy: Policy) -> None:
    """The run has what its policy's plans need: a generator (a programmatic environment)
    or a teacher for new examples, and a checker when `verify: checker` asks for one."""
    engine = resolve_run(config).engine
    if engine == "programmatic" and not pool_only(policy) and not isinstance(env, ProgrammaticEnvironment):
        raise ConfigError(
            f"policy {config.policy!r} writes new examples, but environment {config.environment!r} has no "
            "generator for the programmatic engine: configure an LLM teacher (--teacher vllm:<model> or "
            f"openai:<model>), use an environment with a generator, or a policy that only draws from the seed "
            f"pool ({POOL_ONLY_HINT})"
        )
    if engine == "llm" and config.verify == "checker" and checker_of(env) is None:
        raise ConfigError(
            f"verify: checker, but environment {config.environment!r} has no checker (check(example)); "
            "use --verify consistency or auto"
        )


def check_processes(cfg: TrainConfig) -> None:
    """What `processes > 1` needs (teachloop.students.hf.distributed runs it)."""
    if cfg.processes == 1:
        return
    if cfg.batch_size % cfg.processes:
        raise ConfigError(
            f"train.batch_size {cfg.batch_size} does not split over {cfg.processes} processes: "
            "make it a multiple of train.processes"
        )
    if cfg.accelerate_config is not None and not Path(cfg.accelerate_config).is_file():
        raise ConfigError(f"train.accelerate_config {cfg.accelerate_config} does not exist")
    if importlib.util.find_spec("accelerate") is None:
        raise ConfigError(f"train.processes {cfg.processes} needs accelerate: pip install accelerate")

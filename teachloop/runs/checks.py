"""Checks a run passes before anything heavy loads or anything is written: every named
plug-in exists and accepts its options, the options fit together, the models exist."""

from __future__ import annotations

from teachloop.agents.backends import backend_class
from teachloop.agents.engines import get_engine
from teachloop.agents.policies import get_policy
from teachloop.environments import get_environment
from teachloop.errors import ConfigError
from teachloop.runs.config import RunConfig


def check_run_config(config: RunConfig, models: bool = True) -> None:
    """Fail fast, with a one-line error, on unknown names, bad options or missing models.

    `models`: also resolve the student (and a local teacher) checkpoint; a .gguf file is
    converted here, once, into the model cache."""
    get_environment(config.environment, **config.environment_options)
    get_policy(config.policy, **config.policy_options)
    if config.eval_backend == "vllm" and config.resolved_train().method != "lora":
        raise ConfigError("eval_backend vllm serves LoRA adapters: it needs train.method lora")
    if config.teacher is None:
        get_engine(config.engine)
        for option, value in (("diagnosis", config.diagnosis), ("skills", config.skills)):
            if value in ("llm", "discover"):
                raise ConfigError(f"{option}: {value} needs a teacher (--teacher vllm:<model> or openai:<model>)")
    else:
        backend = backend_class(config.teacher.backend)
    if not models:
        return
    from teachloop.students.checkpoints import resolve_checkpoint

    resolve_checkpoint(config.student_model)
    if config.teacher is not None and getattr(backend, "local_weights", False):
        resolve_checkpoint(config.teacher.model)

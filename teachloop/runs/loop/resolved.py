"""ResolvedRun: every `auto` of a RunConfig resolved once, for the checks, the loop, the
reports and the bench labels to read, so no two of them can resolve it differently."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict

from teachloop.agents.engines.llm import resolve_verify
from teachloop.environments import Environment
from teachloop.runs.config import EMBEDDED_STUDENT, RunConfig
from teachloop.types import TrainConfig


class ResolvedRun(BaseModel):
    """What a run does where its config says `auto`.

    - `engine`: the llm engine with a teacher, else programmatic; `engine_options` are the
      ones that engine is built with (the llm engine's `verify` resolved for the environment);
    - `train`: method full for the embedded student, LoRA for any other;
    - `eval_backend`: vLLM on a GPU for LoRA training when vLLM is installed, else
      transformers."""

    model_config = ConfigDict(frozen=True)

    engine: str
    engine_options: dict[str, Any]
    train: TrainConfig
    eval_backend: str  # a registered eval backend's name

    @property
    def verify(self) -> str | None:
        """How the llm engine verifies (None for other engines)."""
        return self.engine_options.get("verify") if self.engine == "llm" else None


def resolve_run(config: RunConfig, env: Environment | None = None) -> ResolvedRun:
    """`env`: the run's environment, where `verify: auto` is resolved (without one it stays
    `auto`, for labels that need only the engine)."""
    engine = config.engine if config.engine != "auto" else ("llm" if config.teacher is not None else "programmatic")
    options = dict(config.engine_options)
    if engine == "llm":
        options = {"verify": config.verify, "answer_samples": config.answer_samples} | options
        if env is not None:
            options["verify"] = resolve_verify(options["verify"], env)
    train = config.train
    if train.method == "auto":
        train = train.model_copy(update={"method": "full" if config.student_model == EMBEDDED_STUDENT else "lora"})
    return ResolvedRun(engine=engine, engine_options=options, train=train, eval_backend=_eval_backend(config, train))


def _eval_backend(config: RunConfig, train: TrainConfig) -> str:
    if config.eval_backend != "auto":
        return config.eval_backend
    from teachloop.inference.vllm_options import on_gpu, vllm_available

    return "vllm" if train.method == "lora" and on_gpu() and vllm_available() else "transformers"

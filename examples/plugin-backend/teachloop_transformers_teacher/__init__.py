"""`hf`: a teacher backend that runs any causal LM in-process with transformers.

A complete teachloop teacher-backend plug-in: one class, registered under the entry point
`hf` in the `teachloop.teacher_backends` group (see pyproject.toml), used as
`teachloop run --teacher hf:<model folder, .gguf file or hub id>`. teachloop builds it as
`TransformersTeacher(cfg, model)` and calls `complete(jobs, events)`; the cache, the
ledger, reply validation, re-asks, failure records and the circuit breaker are teachloop's.

Unlike vLLM it cannot constrain decoding to the JSON schema, so it shows the schema in the
system prompt and leaves invalid replies to teachloop's validation and re-asks. It needs
no vLLM: any machine that runs the student can run this teacher.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any, ClassVar

__all__ = ["TransformersTeacher"]


class TransformersTeacher:
    local_weights: ClassVar[bool] = True  # `model` arrives as a local checkpoint folder

    def __init__(self, cfg: Any, model: str) -> None:
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        self.cfg = cfg
        self.tokenizer = AutoTokenizer.from_pretrained(model)
        self.tokenizer.padding_side = "left"
        if self.tokenizer.pad_token is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token
        self.model = AutoModelForCausalLM.from_pretrained(model, dtype=torch.float32).eval()

    def _render(self, messages: list[dict[str, str]], schema: dict[str, Any]) -> str:
        instruction = {"role": "system", "content": "Reply with JSON that fits this schema: " + json.dumps(schema)}
        return self.tokenizer.apply_chat_template([instruction, *messages], tokenize=False, add_generation_prompt=True)

    def complete(self, jobs: Sequence[Any], events: Any) -> None:
        import torch
        from teachloop.agents.backends import Completion, NotRun

        for index, job in enumerate(jobs):
            if events.stopped:
                events.done(index, NotRun("circuit breaker open"))
                continue
            try:
                encoded = self.tokenizer(self._render(job.messages, job.json_schema), return_tensors="pt")
                sample = job.params["temperature"] > 0
                torch.manual_seed(job.params.get("seed", 0))
                with torch.inference_mode():
                    out = self.model.generate(
                        **encoded,
                        max_new_tokens=job.params["max_tokens"],
                        do_sample=sample,
                        temperature=job.params["temperature"] if sample else None,
                        pad_token_id=self.tokenizer.pad_token_id,
                    )
                new = out[0, encoded["input_ids"].shape[1] :]
                text = self.tokenizer.decode(new, skip_special_tokens=True)
            except Exception as exc:  # noqa: BLE001  (reported; teachloop records it and may stop the run)
                events.done(index, exc)
                continue
            events.done(
                index, Completion(text=text, prompt_tokens=encoded["input_ids"].shape[1], completion_tokens=len(new))
            )

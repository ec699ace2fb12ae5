"""`hf`: a teacher backend that runs any causal LM in-process with transformers.

A complete teachloop teacher-backend plug-in: one class, registered under the entry point
`hf` in the `teachloop.teacher_backends` group (see pyproject.toml), used as
`teachloop run --teacher hf:<model folder, .gguf file or hub id>`. Its settings are its
`Options` (`teachloop backends show hf`), set as `--teacher-option dtype=bfloat16` or under
`teacher.options` in a config. teachloop builds it as
`TransformersTeacher(options, teacher=cfg, model=folder)` and calls `complete(jobs, events)`;
the cache, the ledger, reply validation, re-asks, failure records and the circuit breaker
are teachloop's.

Unlike vLLM it cannot constrain decoding to the JSON schema, so it shows the schema in the
system prompt and leaves invalid replies to teachloop's validation and re-asks. It needs
no vLLM: any machine that runs the student can run this teacher.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any, ClassVar, Literal

from pydantic import Field
from teachloop.agents.teacher import Backend, BackendOptions, CallEvents, Completion, Job, NotRun

__all__ = ["TransformersTeacher", "TransformersTeacherOptions"]


class TransformersTeacherOptions(BackendOptions):
    dtype: Literal["float32", "bfloat16"] = Field(default="float32", description="weights' dtype")
    schema_prompt: str = Field(
        default="Reply with JSON that fits this schema: ",
        description="system message put before the request's JSON schema",
    )


class TransformersTeacher(Backend):
    """Any causal LM, in-process with transformers; replies are not constrained to the schema."""

    Options = TransformersTeacherOptions
    options: TransformersTeacherOptions
    local_weights: ClassVar[bool] = True  # `model` arrives as a local checkpoint folder

    def setup(self) -> None:
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        self.tokenizer = AutoTokenizer.from_pretrained(self.model)
        self.tokenizer.padding_side = "left"
        if self.tokenizer.pad_token is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token
        dtype = getattr(torch, self.options.dtype)
        self.lm = AutoModelForCausalLM.from_pretrained(self.model, dtype=dtype).eval()

    def _render(self, messages: list[dict[str, str]], schema: dict[str, Any]) -> str:
        instruction = {"role": "system", "content": self.options.schema_prompt + json.dumps(schema)}
        return self.tokenizer.apply_chat_template([instruction, *messages], tokenize=False, add_generation_prompt=True)

    def complete(self, jobs: Sequence[Job], events: CallEvents) -> None:
        import torch

        for index, job in enumerate(jobs):
            if events.stopped:
                events.done(index, NotRun("circuit breaker open"))
                continue
            try:
                encoded = self.tokenizer(self._render(job.messages, job.json_schema), return_tensors="pt")
                sample = job.params["temperature"] > 0
                torch.manual_seed(job.params.get("seed", 0))
                with torch.inference_mode():
                    out = self.lm.generate(
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

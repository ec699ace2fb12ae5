"""StudentLifecycle: which checkpoint answers at iteration i, and through which backend.

The loop asks it for answers, a probe or a student to train; it decides what to load:
the base checkpoint (resolved once: a folder, a converted .gguf, a hub id) for iteration
0, else the checkpoint iteration i-1 published (a full model, or a LoRA adapter loaded
over the base). Models are loaded only when a phase needs them and one at a time.
Evaluation runs through the run's eval backend (`students/eval_backends.py`): transformers,
or vLLM with the base loaded once and each iteration's adapter served by a LoRARequest.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

from teachloop.environments.base import Environment
from teachloop.students.base import Reply
from teachloop.students.checkpoints import resolve_checkpoint
from teachloop.students.eval_backends import EVAL_BACKENDS, EvalBackend
from teachloop.students.hf.student import release_memory
from teachloop.students.probe import PROBE_LEARNING_RATE, LoopProbe
from teachloop.students.protocol import Student
from teachloop.students.registry import student_class


class StudentLifecycle:
    def __init__(
        self,
        spec: str,
        checkpoint: Callable[[int], Path],
        eval_backend: str = "transformers",
        max_lora_rank: int = 16,
        student_backend: str = "transformers",
    ) -> None:
        """`checkpoint(i)`: the folder holding the student after i rounds (i >= 1);
        `student_backend`: the registered student class that loads them."""
        self.spec = spec
        self.student_class = student_class(student_backend)
        self.base_path = resolve_checkpoint(spec)
        self.checkpoint = checkpoint
        self.eval_backend = eval_backend
        self.max_lora_rank = max_lora_rank
        self._loaded: tuple[int, Student] | None = None
        self._backend: EvalBackend | None = None  # built on first use

    # -- which model --------------------------------------------------------------------
    def base(self) -> Student:
        """A fresh copy of the base checkpoint."""
        return self.student_class.load_pretrained(self.base_path)

    def at(self, i: int) -> Student:
        """The student after i rounds (kept loaded until another round's is asked for)."""
        if self._loaded is None or self._loaded[0] != i:
            self._loaded = None  # release the previous model before loading the next
            student = self.base() if i == 0 else self.student_class.load(self.checkpoint(i), base=self.base_path)
            self._loaded = (i, student)
        return self._loaded[1]

    def trainee(self, i: int, restart: bool) -> Student:
        """The model round i trains: the base (restart) or the student after i rounds. It is
        trained in place, so it is no longer the published student i: forget it."""
        student = self.base() if restart else self.at(i)
        self._loaded = None
        return student

    def start_path(self, i: int, restart: bool) -> str:
        """The folder round i trains from (a model, or an adapter over `base_path`)."""
        return self.base_path if restart or i == 0 else str(self.checkpoint(i))

    def release(self) -> None:
        """Drop the loaded model and give its memory back (after training, before the next load)."""
        self._loaded = None
        release_memory()

    # -- what the loop asks ----------------------------------------------------------------
    def answer(
        self, i: int, prompts: Sequence[str], max_new_tokens: int, progress: bool = False, stop: Sequence[str] = ()
    ) -> list[str]:
        """Greedy answers of the student after i rounds, each cut before its first stop string."""
        return [r.text for r in self.reply(i, prompts, max_new_tokens, progress, stop)]

    def reply(
        self, i: int, prompts: Sequence[str], max_new_tokens: int, progress: bool = False, stop: Sequence[str] = ()
    ) -> list[Reply]:
        """The answers with whether each hit the token limit, through the run's eval backend."""
        if self._backend is None:
            self._backend = EVAL_BACKENDS.build(self.eval_backend, lifecycle=self)
        return self._backend.reply(i, prompts, max_new_tokens, progress, stop)

    def probe(
        self, i: int, env: Environment, max_new_tokens: int, learning_rate: float = PROBE_LEARNING_RATE
    ) -> LoopProbe:
        """The student after i rounds as a policy may query it; nothing loads until it is used."""
        return LoopProbe(lambda: self.at(i), env, learning_rate=learning_rate, max_new_tokens=max_new_tokens)

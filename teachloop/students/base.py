"""What every student module shares: a `Reply`, and `ProbedStudent`, what the probe
(`teachloop.students.probe`) needs of the student it questions. Both the probe and the
transformers student import this module; neither imports the other's internals for types.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, NamedTuple, Protocol

if TYPE_CHECKING:
    import torch
    from transformers import PreTrainedTokenizerBase, StoppingCriteriaList


class Reply(NamedTuple):
    """A greedy answer, and whether it ran to `max_new_tokens` without ending (no stop token,
    no stop string): a student that does not stop, or a limit too low for the task."""

    text: str
    hit_limit: bool


class ProbedStudent(Protocol):
    """A loaded causal LM the probe can question (`TransformersStudent` is one): its model and
    tokenizer, the prompt rendering and answer ends of evaluation and training, and its
    greedy replies."""

    model: Any  # a transformers PreTrainedModel, or a peft model over one
    tokenizer: PreTrainedTokenizerBase
    stop_token_ids: list[int]
    answer_suffix: str
    answer_end_ids: list[int]

    def render(self, prompt: str) -> str: ...

    def reply(
        self,
        prompts: Sequence[str],
        max_new_tokens: int = 16,
        progress: bool = False,
        batch_size: int | None = None,
        stop: Sequence[str] = (),
    ) -> list[Reply]: ...

    def stopping_criteria(self, stop: Sequence[str]) -> StoppingCriteriaList | None: ...

    def decode_replies(self, generated: torch.Tensor, stop: Sequence[str]) -> list[Reply]: ...

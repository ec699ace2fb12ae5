"""LoopProbe: what a policy may ask the current student (answers, samples, influence).

The student is loaded on first use, so a plan phase whose policy never probes loads no
model. Every question renders its prompts exactly as evaluation and training do (the
chat template, when the model has one), and answers end where evaluation's do (the
student's stop tokens, the environment's stop strings).
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Sequence

import torch

from teachloop.environments.base import Environment, stop_strings
from teachloop.students.base import ProbedStudent, Reply
from teachloop.types import Attempt, Example

# The SGD step of `influence`. It must be small enough for the first-order picture to hold
# (a step on an item lowers that item's loss): at 0.05 the embedded student overshot, and a
# step on an item raised its own loss in 4 of 5 tries; at 0.01 and 0.001 it never did.
PROBE_LEARNING_RATE = 1e-3


class LoopProbe:
    def __init__(
        self,
        load: Callable[[], ProbedStudent],
        env: Environment,
        learning_rate: float,
        max_new_tokens: int = 16,
    ) -> None:
        self._load = load
        self._student: ProbedStudent | None = None
        self.env = env
        self.learning_rate = learning_rate
        self.max_new_tokens = max_new_tokens
        self.stop = stop_strings(env)

    @property
    def student(self) -> ProbedStudent:
        if self._student is None:
            self._student = self._load()
        return self._student

    @property
    def loaded(self) -> bool:
        return self._student is not None

    def answer(self, prompts: list[str]) -> list[str]:
        return [r.text for r in self.reply(prompts)]

    def reply(self, prompts: list[str]) -> list[Reply]:
        return self.student.reply(prompts, max_new_tokens=self.max_new_tokens, stop=self.stop)

    @torch.inference_mode()
    def sample(self, prompts: list[str], n: int, temperature: float = 1.0) -> list[list[str]]:
        student = self.student
        tok, model = student.tokenizer, student.model
        rendered = [student.render(p) for p in prompts]
        enc = tok(rendered, return_tensors="pt", padding=True, add_special_tokens=False)
        out = model.generate(
            **enc,
            do_sample=True,
            temperature=temperature,
            num_return_sequences=n,
            max_new_tokens=self.max_new_tokens,
            pad_token_id=tok.pad_token_id,
            eos_token_id=student.stop_token_ids,
            stopping_criteria=student.stopping_criteria(self.stop),
        )
        texts = [r.text for r in student.decode_replies(out[:, enc["input_ids"].shape[1] :], self.stop)]
        return [texts[i * n : (i + 1) * n] for i in range(len(prompts))]

    def score(self, examples: list[Example]) -> list[Attempt]:
        replies = self.reply([ex.prompt for ex in examples])
        return [scored_reply(self.env, ex, r) for ex, r in zip(examples, replies, strict=True)]

    def _batch(self, examples: Sequence[Example]) -> dict[str, torch.Tensor]:
        """Rendered prompt + answer + its end (the template's end of turn, else eos), the
        loss on the answer only (as in training)."""
        student = self.student
        tok = student.tokenizer
        ids, labels = [], []
        for ex in examples:
            p = tok(student.render(ex.prompt), add_special_tokens=False)["input_ids"]
            a = tok(ex.answer + student.answer_suffix, add_special_tokens=False)["input_ids"] + student.answer_end_ids
            ids.append(p + a)
            labels.append([-100] * len(p) + a)
        width = max(map(len, ids))
        pad = tok.pad_token_id
        # padded on the right, as the trainer does: with left padding the model would see
        # shifted positions (none are passed), and the losses would not be the training losses
        return {
            "input_ids": torch.tensor([x + [pad] * (width - len(x)) for x in ids]),
            "attention_mask": torch.tensor([[1] * len(x) + [0] * (width - len(x)) for x in ids]),
            "labels": torch.tensor([y + [-100] * (width - len(y)) for y in labels]),
        }

    def influence(self, candidates: list[Example], reference: list[Example]) -> list[float]:
        """Loss change on `reference` after one SGD step on each candidate alone (negative = helpful)."""
        if not candidates or not reference:
            return [0.0] * len(candidates)
        model = self.student.model
        saved = copy.deepcopy(model.state_dict())
        ref = self._batch(reference)
        with torch.no_grad():
            base = model(**ref).loss.item()
        scores = []
        try:
            for candidate in candidates:
                model.train()
                model.zero_grad(set_to_none=True)
                model(**self._batch([candidate])).loss.backward()
                with torch.no_grad():
                    for param in model.parameters():
                        if param.grad is not None:
                            param -= self.learning_rate * param.grad
                    model.eval()
                    scores.append(model(**ref).loss.item() - base)
                    model.load_state_dict(saved)
        finally:
            model.zero_grad(set_to_none=True)
            model.load_state_dict(saved)
            model.eval()
        return scores


def scored_reply(env: Environment, example: Example, reply: Reply) -> Attempt:
    """The environment's score of a reply, with whether the reply hit the token limit."""
    return env.score(example, reply.text).model_copy(update={"hit_limit": reply.hit_limit})

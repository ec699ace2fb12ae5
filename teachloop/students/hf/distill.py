"""On-policy distillation: the student learns from the teacher's distribution over the
student's own tokens, on prompts alone.

For each batch of prompts the student samples an answer; the teacher reads the same prompt
and answer and gives its next-token distribution at every answer position; the loss pulls
the student's distribution towards the teacher's. No answer is ever written by the teacher:
the student is corrected where it actually goes.

- A teacher with the student's vocabulary trains through TRL's `DistillationTrainer` (the
  generalized Jensen-Shannon divergence, `beta`, over the whole vocabulary).
- A teacher with another tokenizer trains through TRL's `GOLDTrainer` with ULD's hybrid
  loss: the student's answer text is re-tokenized for the teacher and positions are aligned
  by their bytes; at each, the probabilities of tokens both vocabularies hold (the same
  string) are matched by the generalized JSD (`beta`), the rest by ULD's sorted-probability
  distance (plain ULD compares sorted distributions only, blind to which token is which).
- `on_policy` below 1 (TRL's lmbda) mixes in batches of the iteration's own answers, scored
  by the teacher (GKD's supervised share); only GOLD implements that mix, so such a run
  goes through GOLD whatever the tokenizers.

The teacher is loaded from its local folder for the phase and released after it.
"""

from __future__ import annotations

import logging
import os
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from pydantic import BaseModel
from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer, PreTrainedTokenizerBase

from teachloop.errors import TeachloopError
from teachloop.types import TrainConfig

log = logging.getLogger(__name__)

DEFAULT_NEW_TOKENS = 128  # what the student samples per prompt when neither the config nor the caller says


class DistillInfo(BaseModel):
    """What one distillation phase did, beside its TrainStats."""

    prompts: int
    trainer: str  # "distillation" (same vocabulary) or "gold-uld" / "gold" (GOLD's trainer)
    same_tokenizer: bool
    teacher_tokens: int  # answer tokens the teacher scored, counted in the teacher's own tokenizer, every step
    student_tokens: int  # prompt and answer tokens the student put through its forward pass, every step
    max_new_tokens: int
    off_policy_answers: int  # the iteration's answers given for the off-policy share (on_policy < 1)


def same_vocabulary(student_tokenizer: PreTrainedTokenizerBase, teacher_tokenizer: PreTrainedTokenizerBase) -> bool:
    """The two tokenizers map the same token strings to the same ids (so a teacher's
    distribution is one over the student's tokens)."""
    return student_tokenizer.get_vocab() == teacher_tokenizer.get_vocab()


def train_distill(
    student: Any,
    prompts: Sequence[str],
    cfg: TrainConfig,
    teacher_path: str | Path,
    seed: int = 0,
    progress: bool = False,
    workdir: Path | None = None,
    answers: Sequence[str] | None = None,
    max_new_tokens: int | None = None,
) -> DistillInfo | None:
    """Distil the teacher at `teacher_path` (a local model folder) into `student` (a
    `TransformersStudent`: its trainer arguments, micro batches and `_fit` are reused), in place, on
    `prompts`; records `student.train_stats["distill"]` and returns what the phase did (None
    when there is nothing to train on). `answers` (one per prompt) are read only when
    `cfg.distill.on_policy` < 1. `max_new_tokens`: the run's answer limit, used when
    `cfg.distill.max_new_tokens` is not set."""
    settings = cfg.distill
    limit = settings.max_new_tokens or max_new_tokens or DEFAULT_NEW_TOKENS
    mixed = settings.on_policy < 1
    by_prompt: dict[str, str] = {}
    if mixed:
        if answers is None or len(answers) != len(prompts):
            raise TeachloopError(
                "train.distill.on_policy below 1 needs the iteration's answers (one per prompt) for the off-policy share"
            )
        for prompt, answer in zip(prompts, answers, strict=True):
            by_prompt.setdefault(prompt, answer)  # a prompt twice keeps its first answer
    prompts = list(dict.fromkeys(prompts))  # a prompt twice would only be sampled twice
    if not prompts:
        return None

    teacher_tokenizer = _load_tokenizer(teacher_path)
    teacher_vocab = AutoConfig.from_pretrained(str(teacher_path)).get_text_config().vocab_size
    same = same_vocabulary(student.tokenizer, teacher_tokenizer) and (
        teacher_vocab == student.model.config.get_text_config().vocab_size
    )
    kind = "distillation" if same and not mixed else ("gold" if same else "gold-uld")
    if not same:
        _check_cross_tokenizer(student.tokenizer, teacher_tokenizer, teacher_path)
    bf16 = student.bf16(cfg)
    teacher = _load_teacher(teacher_path, torch.bfloat16 if bf16 else torch.float32)

    # at most one optimizer step's worth of prompts per batch: a batch larger than the prompts would take no step
    cfg = cfg.model_copy(update={"batch_size": min(cfg.batch_size, len(prompts))})
    lengths = [
        len(ids) + limit
        for ids in student.tokenizer([student.render(p) for p in prompts], add_special_tokens=False)["input_ids"]
    ]
    micro = student.fitted_micro_batch(cfg, max(lengths))
    counter = _Counter(teacher_tokenizer)
    rows = [_row(student, p, by_prompt.get(p, ""), with_completion=kind != "distillation") for p in prompts]
    try:
        # how the student samples and the divergence it is pulled by: the same for both trainers
        sampling = {
            "temperature": settings.temperature,
            "top_p": 1.0,
            "top_k": 0,
            "beta": settings.beta,
            "max_completion_length": limit,
        }
        with tempfile.TemporaryDirectory(prefix="teachloop-distill-", dir=workdir) as tmp:
            if kind == "distillation":
                from trl import DistillationConfig, DistillationTrainer

                args = student._trainer_args(
                    DistillationConfig,
                    cfg,
                    seed,
                    len(rows),
                    tmp,
                    micro,
                    disable_dropout=True,
                    **sampling,
                )
                trainer_cls = _counting(DistillationTrainer, counter.distillation)
            else:
                os.environ.setdefault("TRL_EXPERIMENTAL_SILENCE", "1")  # a warning per run about code users do not own
                from trl.experimental.gold import GOLDConfig, GOLDTrainer

                # one vocabulary: GKD's JSD (no byte alignment); else ULD with the teacher's own tokenizer
                uld = (
                    {"use_extended_uld": False}
                    if same
                    else {
                        "use_uld_loss": True,
                        "teacher_tokenizer_name_or_path": str(teacher_path),
                        # tokens both vocabularies hold are matched by identity (JSD, beta), the rest sorted
                        "uld_use_hybrid_loss": True,
                    }
                )
                args = student._trainer_args(
                    GOLDConfig,
                    cfg,
                    seed,
                    len(rows),
                    tmp,
                    micro,
                    lmbda=settings.on_policy,
                    **sampling,
                    uld_student_temperature=settings.temperature,
                    uld_teacher_temperature=settings.temperature,
                    **uld,
                )
                trainer_cls = _counting(GOLDTrainer, counter.gold_uld if not same else counter.gold)
            stats = student._fit(trainer_cls, args, rows, lengths, cfg, progress, teacher_model=teacher)
    finally:
        del teacher  # the caller hands the freed memory back to the OS (release_memory)
    student.train_stats["distill"] = stats.model_copy(update={"tokens": counter.student_tokens or stats.tokens})
    return DistillInfo(
        prompts=len(prompts),
        trainer=kind,
        same_tokenizer=same,
        teacher_tokens=counter.teacher_tokens,
        student_tokens=counter.student_tokens,
        max_new_tokens=limit,
        off_policy_answers=len(by_prompt),
    )


def _check_cross_tokenizer(
    student_tokenizer: PreTrainedTokenizerBase, teacher_tokenizer: PreTrainedTokenizerBase, teacher_path: str | Path
) -> None:
    """Across tokenizers, GOLD aligns the two tokenizations by their bytes: both must be
    byte-level BPE tokenizers (Llama 3, Qwen, SmolLM, ...). Refused in one line otherwise."""
    from trl.experimental.utils import is_byte_level_tokenizer

    for who, tokenizer in (("student", student_tokenizer), (f"teacher ({teacher_path})", teacher_tokenizer)):
        backend = getattr(tokenizer, "backend_tokenizer", None)
        if backend is None or not is_byte_level_tokenizer(backend):
            raise TeachloopError(
                f"distilling across tokenizers needs byte-level BPE tokenizers on both sides, and the {who}'s is not "
                "one: use a teacher with the student's tokenizer, or --train.objective auto"
            )


def _load_tokenizer(path: str | Path) -> PreTrainedTokenizerBase:
    try:
        return AutoTokenizer.from_pretrained(str(path))
    except OSError as exc:
        raise TeachloopError(f"could not load the teacher's tokenizer from {path}: {exc}") from exc


def _load_teacher(path: str | Path, dtype: torch.dtype):
    try:
        teacher = AutoModelForCausalLM.from_pretrained(str(path), dtype=dtype)
    except OSError as exc:
        raise TeachloopError(f"could not load the teacher model from {path}: {exc}") from exc
    teacher.eval()
    teacher.requires_grad_(False)
    return teacher


def _row(student: Any, prompt: str, answer: str, with_completion: bool) -> dict[str, Any]:
    """A trainer row: the prompt (conversational when the student has a chat template) and,
    for GOLD, a completion: the iteration's answer for the off-policy share, else empty (an
    on-policy batch replaces it with the student's sample)."""
    if student.chat:
        row: dict[str, Any] = {"prompt": [{"role": "user", "content": prompt}]}
        if with_completion:
            row["completion"] = [{"role": "assistant", "content": answer}]
    else:
        row = {"prompt": prompt}
        if with_completion:
            row["completion"] = answer
    return row


class _Counter:
    """Tokens each training step put through the two models (every micro batch, every epoch)."""

    def __init__(self, teacher_tokenizer: PreTrainedTokenizerBase) -> None:
        self.teacher_tokenizer = teacher_tokenizer
        self.teacher_tokens = 0
        self.student_tokens = 0

    def distillation(self, inputs: dict[str, Any]) -> None:
        # one vocabulary: the teacher scores exactly the student's answer tokens
        self.teacher_tokens += int(inputs["completion_mask"].sum())
        self.student_tokens += int(inputs["prompt_mask"].sum() + inputs["completion_mask"].sum())

    def gold(self, inputs: dict[str, Any]) -> None:
        self.teacher_tokens += int((inputs["labels"] != -100).sum())
        self.student_tokens += int(inputs["attention_mask"].sum())

    def gold_uld(self, inputs: dict[str, Any]) -> None:
        # the teacher reads the answer text re-tokenized in its own vocabulary, plus its eos
        texts = list(inputs["original_completion_text"])
        ids = self.teacher_tokenizer(texts, add_special_tokens=False)["input_ids"]
        self.teacher_tokens += sum(len(row) + 1 for row in ids)
        self.student_tokens += int(inputs["attention_mask"].sum())


def _counting(trainer_cls: type, count) -> type:
    """`trainer_cls` that counts each training micro batch's tokens before its loss."""

    class Counting(trainer_cls):  # type: ignore[misc, valid-type]
        def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
            if model.training:
                count(inputs)
            return super().compute_loss(
                model, inputs, return_outputs=return_outputs, num_items_in_batch=num_items_in_batch
            )

    Counting.__name__ = trainer_cls.__name__
    return Counting

"""The Student protocol, and its implementation: a transformers causal LM that answers
prompts by batched greedy decoding and learns through TRL (SFT, DPO; full or LoRA)."""

from __future__ import annotations

import logging
import os
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Protocol, runtime_checkable

import torch
from transformers import (
    AutoModelForCausalLM,
    AutoTokenizer,
    PreTrainedModel,
    PreTrainedTokenizerBase,
    PrinterCallback,
    TrainerCallback,
)

from teachloop.errors import TeachloopError
from teachloop.io import follow_umask
from teachloop.types import Example, TrainConfig

from teachloop.students.probe import PROBE_LEARNING_RATE, LoopProbe

if TYPE_CHECKING:
    from teachloop.environments.base import Environment

log = logging.getLogger(__name__)

LOGITS_PER_POSITION = 2**20  # micro batch x vocabulary size, see TransformersStudent.micro_batch


@runtime_checkable
class Student(Protocol):
    """What the loop needs of a student. Prompts are plain task prompts: a student renders
    them for its model (chat template) the same way for answering, training and probing."""

    source: str

    def answer(self, prompts: Sequence[str], max_new_tokens: int = 16, progress: bool = False) -> list[str]:
        """Greedy answers, one per prompt."""
        ...

    def train(
        self, data: Sequence[Example], cfg: TrainConfig, seed: int = 0, progress: bool = False, workdir: Path | None = None
    ) -> Student:
        """Supervised fine-tuning on (prompt, answer) examples, in place."""
        ...

    def train_preferences(
        self, pairs: Sequence[Example], cfg: TrainConfig, seed: int = 0, progress: bool = False, workdir: Path | None = None
    ) -> Student:
        """Preference training (DPO) on examples that carry a `rejected` answer, in place."""
        ...

    def save(self, path: str | Path) -> None:
        ...

    @classmethod
    def load(cls, path: str | Path, base: str | None = None) -> Student:
        ...

    def probe(self, env: Environment, max_new_tokens: int, learning_rate: float = PROBE_LEARNING_RATE) -> LoopProbe:
        """What a policy may ask this student (answers, samples, influence)."""
        ...


def quiet_hf_libraries() -> None:
    """Silence the per-call progress bars and info logs of datasets/transformers (TRL's
    dataset preparation, weight loading); teachloop shows its own progress."""
    import datasets
    import transformers

    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    datasets.disable_progress_bars()
    datasets.logging.set_verbosity_error()
    transformers.logging.set_verbosity_error()
    transformers.utils.logging.disable_progress_bar()


def release_memory() -> None:
    """Hand freed tensors back to the OS: glibc keeps a trained model's freed buffers in its
    arenas, so a process that trained once stayed at its training peak (9.9 GB vs 1.2 GB
    after a trim, measured with SmolLM2)."""
    import ctypes
    import gc

    gc.collect()
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):  # not glibc: nothing to trim
        pass


def render_prompt(tokenizer: PreTrainedTokenizerBase, prompt: str) -> str:
    """The text a model sees for a prompt: through its chat template when it has one."""
    if not getattr(tokenizer, "chat_template", None):
        return prompt
    messages = [{"role": "user", "content": prompt}]
    return tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)


def load_tokenizer(path: str) -> PreTrainedTokenizerBase:
    try:
        return AutoTokenizer.from_pretrained(path)
    except (OSError, ValueError) as exc:
        raise TeachloopError(f"could not load the tokenizer of {path!r}: {exc}") from exc


class TransformersStudent:
    """A causal LM and its tokenizer. Models with a chat template are prompted through it
    (training and generation alike); others see the raw prompt. A LoRA-trained student
    is its base model plus a peft adapter, saved as the adapter alone."""

    def __init__(self, model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, source: str = "") -> None:
        self.model = model
        self.tokenizer = tokenizer
        self.source = source
        self.chat = bool(getattr(tokenizer, "chat_template", None))
        if tokenizer.pad_token is None:
            tokenizer.pad_token = tokenizer.eos_token
        tokenizer.padding_side = "left"

    # -- persistence ----------------------------------------------------------------
    @classmethod
    def load(cls, path: str | Path, base: str | None = None) -> TransformersStudent:
        """A saved model folder, or an adapter folder loaded over `base` (default: the base
        recorded in the adapter's config)."""
        path = Path(path)
        if (path / "adapter_config.json").exists():
            import json

            from peft import PeftModel

            base = base or json.loads((path / "adapter_config.json").read_text())["base_model_name_or_path"]
            student = cls.load_pretrained(base)
            student.model = PeftModel.from_pretrained(student.model, str(path), is_trainable=True)
            student.model.eval()
            return student
        if not (path / "config.json").exists():
            raise TeachloopError(f"no model at {path} (config.json missing)")
        return cls.load_pretrained(str(path))

    @property
    def is_adapter(self) -> bool:
        return hasattr(self.model, "peft_config")

    def render(self, prompt: str) -> str:
        """The text the model sees for a prompt (through the chat template when it has one)."""
        return render_prompt(self.tokenizer, prompt)

    def probe(self, env: Environment, max_new_tokens: int, learning_rate: float = PROBE_LEARNING_RATE) -> LoopProbe:
        return LoopProbe(lambda: self, env, learning_rate=learning_rate, max_new_tokens=max_new_tokens)

    @classmethod
    def load_pretrained(cls, name_or_path: str) -> TransformersStudent:
        """A local folder or a hub id (the hub needs a network connection)."""
        try:
            tokenizer = AutoTokenizer.from_pretrained(name_or_path)
            model = AutoModelForCausalLM.from_pretrained(name_or_path, dtype=torch.float32)
        except OSError as exc:
            raise TeachloopError(f"could not load student model {name_or_path!r}: {exc}") from exc
        model.eval()
        return cls(model, tokenizer, source=name_or_path)

    def save(self, path: str | Path) -> None:
        self.model.save_pretrained(path)
        self.tokenizer.save_pretrained(path)
        follow_umask(Path(path))

    # -- inference ------------------------------------------------------------------
    @torch.inference_mode()
    def answer(
        self,
        prompts: Sequence[str],
        max_new_tokens: int = 16,
        progress: bool = False,
        batch_size: int | None = None,
    ) -> list[str]:
        """Greedy answers, batched with left padding; special tokens stripped. The default
        batch keeps a batch's logits near 2^22 values (256 prompts for the embedded student,
        85 for a 49k vocabulary: at 256 its peak memory doubled for no speed)."""
        from tqdm.auto import tqdm

        batch_size = batch_size or min(256, max(8, 4 * LOGITS_PER_POSITION // self.model.config.vocab_size))
        self.model.eval()
        order = sorted(range(len(prompts)), key=lambda i: len(prompts[i]))  # similar lengths pad less
        outputs: list[str] = [""] * len(prompts)
        batches = [order[i : i + batch_size] for i in range(0, len(order), batch_size)]
        for batch in tqdm(batches, desc="evaluate", unit="batch", disable=not progress, leave=False):
            enc = self.tokenizer(
                [self.render(prompts[i]) for i in batch], return_tensors="pt", padding=True, add_special_tokens=False
            )
            out = self.model.generate(
                **enc,
                max_new_tokens=max_new_tokens,
                do_sample=False,
                pad_token_id=self.tokenizer.pad_token_id,
                eos_token_id=self.tokenizer.eos_token_id,
            )
            texts = self.tokenizer.batch_decode(out[:, enc["input_ids"].shape[1] :], skip_special_tokens=True)
            for i, text in zip(batch, texts, strict=True):
                outputs[i] = text
        return outputs

    # -- training -------------------------------------------------------------------
    def micro_batch(self, cfg: TrainConfig) -> int:
        """Examples per forward pass: a divisor of the batch size (so the optimizer step sees
        exactly `batch_size` examples), small enough that the logits of a micro batch stay
        near 2^20 values per position. A 49k vocabulary at batch 64 otherwise peaked at 12.7
        GB resident on CPU; 16 x 4 accumulated steps peaked at 4.2 GB, same losses."""
        limit = cfg.micro_batch_size or max(1, LOGITS_PER_POSITION // self.model.config.vocab_size)
        return max(d for d in range(1, cfg.batch_size + 1) if cfg.batch_size % d == 0 and d <= limit)

    def _trainer_args(self, config_cls: type, cfg: TrainConfig, seed: int, n_rows: int, output_dir: str, **extra):
        micro = self.micro_batch(cfg)
        return config_cls(
            output_dir=output_dir,
            per_device_train_batch_size=micro,
            gradient_accumulation_steps=cfg.batch_size // micro,
            num_train_epochs=cfg.epochs,
            learning_rate=cfg.learning_rate,
            lr_scheduler_type=cfg.lr_scheduler,
            warmup_steps=cfg.warmup_ratio,  # a float in [0, 1) is a ratio of the steps
            weight_decay=cfg.weight_decay,
            seed=seed,
            data_seed=seed,
            max_length=self.tokenizer.model_max_length,
            use_cpu=not torch.cuda.is_available(),
            bf16=False,
            fp16=False,
            gradient_checkpointing=False,
            save_strategy="no",
            report_to=[],
            logging_steps=max(1, n_rows // cfg.batch_size // 4),
            dataloader_num_workers=0,
            disable_tqdm=True,  # our own bar below; TRL's also prints every log dict
            **extra,
        )

    def _fit(self, trainer_cls: type, args, dataset, cfg: TrainConfig, progress: bool) -> None:
        peft_config = None
        if cfg.method == "lora" and not self.is_adapter:
            from peft import LoraConfig

            peft_config = LoraConfig(
                r=cfg.lora.r,
                lora_alpha=cfg.lora.alpha,
                lora_dropout=cfg.lora.dropout,
                target_modules=cfg.lora.target_modules,
                task_type="CAUSAL_LM",
            )
        self.model.train()
        trainer = trainer_cls(
            model=self.model,
            args=args,
            train_dataset=dataset,
            processing_class=self.tokenizer,
            callbacks=[_ProgressBar()] if progress else None,
            peft_config=peft_config,
        )
        trainer.remove_callback(PrinterCallback)  # it prints every log dict to stdout
        start = time.perf_counter()
        trainer.train()
        log.debug("%s: %d rows in %.1fs", trainer_cls.__name__, len(dataset), time.perf_counter() - start)
        self.model = trainer.model  # the peft-wrapped model when an adapter was added
        self.model.eval()

    def _rows(self, data: Sequence[Example], answer_key: str) -> list[dict]:
        """TRL rows: conversational when the model has a chat template, else plain text."""
        rows = []
        for ex in data:
            if self.chat:
                row = {
                    "prompt": [{"role": "user", "content": ex.prompt}],
                    answer_key: [{"role": "assistant", "content": ex.answer}],
                }
                if ex.rejected is not None:
                    row["rejected"] = [{"role": "assistant", "content": ex.rejected}]
            else:
                row = {"prompt": ex.prompt, answer_key: ex.answer}
                if ex.rejected is not None:
                    row["rejected"] = ex.rejected
            rows.append(row)
        return rows

    def train(
        self, data: Sequence[Example], cfg: TrainConfig, seed: int = 0, progress: bool = False, workdir: Path | None = None
    ) -> TransformersStudent:
        """Supervised fine-tuning with TRL's SFTTrainer (completion-only loss), in place.

        `workdir`: where the trainer's scratch folder goes (the loop passes the phase's
        temporary folder, so a killed run leaves nothing in the system temp directory)."""
        if not data:
            return self
        from datasets import Dataset
        from trl import SFTConfig, SFTTrainer

        rows = self._rows(data, "completion")
        with tempfile.TemporaryDirectory(prefix="teachloop-sft-", dir=workdir) as tmp:
            args = self._trainer_args(SFTConfig, cfg, seed, len(rows), tmp, completion_only_loss=True)
            self._fit(SFTTrainer, args, Dataset.from_list(rows), cfg, progress)
        return self

    def train_preferences(
        self,
        pairs: Sequence[Example],
        cfg: TrainConfig,
        seed: int = 0,
        progress: bool = False,
        workdir: Path | None = None,
        beta: float = 0.1,
        sft_weight: float = 1.0,
    ) -> TransformersStudent:
        """DPO with TRL's DPOTrainer on examples that carry a `rejected` answer, in place.

        With `sft_weight` > 0 the NLL of the chosen answer is added to the DPO loss (RPO):
        pushing away from a wrong answer alone does not teach a skill the student lacks.
        """
        pairs = [ex for ex in pairs if ex.rejected is not None]
        if not pairs:
            return self
        from datasets import Dataset
        from trl import DPOConfig, DPOTrainer

        rows = self._rows(pairs, "chosen")
        with tempfile.TemporaryDirectory(prefix="teachloop-dpo-", dir=workdir) as tmp:
            losses = {"loss_type": ["sigmoid", "sft"], "loss_weights": [1.0, sft_weight]} if sft_weight > 0 else {}
            args = self._trainer_args(DPOConfig, cfg, seed, len(rows), tmp, beta=beta, **losses)
            self._fit(DPOTrainer, args, Dataset.from_list(rows), cfg, progress)
        return self


class _ProgressBar(TrainerCallback):
    """One tqdm bar over optimizer steps, showing the latest loss."""

    def __init__(self) -> None:
        self.bar = None

    def on_train_begin(self, args, state, control, **kwargs):  # noqa: ANN001
        from tqdm.auto import tqdm

        self.bar = tqdm(total=state.max_steps, desc="train", unit="step", leave=False)

    def on_step_end(self, args, state, control, **kwargs):  # noqa: ANN001
        if self.bar is not None:
            self.bar.update(state.global_step - self.bar.n)

    def on_log(self, args, state, control, logs=None, **kwargs):  # noqa: ANN001
        if self.bar is not None and logs and "loss" in logs:
            self.bar.set_postfix(loss=f"{float(logs['loss']):.3f}")

    def on_train_end(self, args, state, control, **kwargs):  # noqa: ANN001
        if self.bar is not None:
            self.bar.close()
            self.bar = None

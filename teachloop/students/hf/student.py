"""The Student on transformers: a causal LM that answers
prompts by batched greedy decoding and learns through TRL (SFT, DPO, on-policy distillation
from a teacher in `distill.py`; full or LoRA).

An answer ends at the token a trained student learned to end it with. Through a chat
template that is the template's end-of-turn token (`<|im_end|>`, `<end_of_turn>`,
`<|eot_id|>`), which need not be the tokenizer's eos: generation stops on the eos, the
generation config's eos ids and the end-of-turn token alike (`stop_token_ids`), and a
template that closes a turn with no special token gets the eos appended to each answer in
training. An answer also ends at the environment's stop strings; one that ends at neither
before `max_new_tokens` is reported as having hit the limit (`Reply.hit_limit`).
"""

from __future__ import annotations

import logging
import os
import tempfile
import time
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import torch
from transformers import (
    AutoModelForCausalLM,
    AutoTokenizer,
    PreTrainedModel,
    PreTrainedTokenizerBase,
    PrinterCallback,
    StoppingCriteriaList,
    StopStringCriteria,
    TrainerCallback,
)

from teachloop.errors import TeachloopError
from teachloop.inference.chat import (
    cut_at_stop,
    end_of_turn_id,
    render_prompt,
    stop_token_ids,
    turn_end_ids,
)
from teachloop.io import follow_umask
from teachloop.students.base import Reply
from teachloop.students.hf.memory import fitted_decode_batch
from teachloop.students.probe import PROBE_LEARNING_RATE, LoopProbe
from teachloop.students.registry import BaseStudent
from teachloop.types import Example, TrainConfig, TrainStats

if TYPE_CHECKING:
    from teachloop.environments.base import Environment
    from teachloop.students.hf.distill import DistillInfo

log = logging.getLogger(__name__)

LOGITS_PER_POSITION = 2**20  # micro batch x vocabulary size, see TransformersStudent.micro_batch


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
    # transformers 5.2x renames gradient checkpointing; TRL still uses the old names
    # internally, so every training call would warn about code the user does not own.
    warnings.filterwarnings("ignore", message=r".*gradient_checkpointing.* is deprecated", category=FutureWarning)


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


class TransformersStudent(BaseStudent):
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
        self.stop_token_ids = stop_token_ids(tokenizer, model.generation_config)
        turn_end = turn_end_ids(tokenizer)
        # a template that ends a turn with no special token teaches no end: the eos is added
        ends_turn = not self.chat or end_of_turn_id(tokenizer, turn_end) is not None
        self.answer_suffix = "" if ends_turn else tokenizer.eos_token
        # the tokens training puts after an answer's text (and its suffix)
        self.answer_end_ids = turn_end if self.chat else [tokenizer.eos_token_id]
        self._stop_criteria: dict[tuple[str, ...], StopStringCriteria] = {}
        # the last train / train_preferences / train_distill call's loss, speed and memory: {"sft": ..., "dpo": ...}
        self.train_stats: dict[str, TrainStats] = {}
        self.distill_info: DistillInfo | None = None  # what the last train_distill call did (prompts, teacher tokens)

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
    def train_losses(self) -> dict[str, float]:
        """Mean training loss of the last train / train_preferences call, per trainer."""
        return {trainer: stats.loss for trainer, stats in self.train_stats.items()}

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
    def answer(
        self,
        prompts: Sequence[str],
        max_new_tokens: int = 16,
        progress: bool = False,
        batch_size: int | None = None,
        stop: Sequence[str] = (),
    ) -> list[str]:
        """Greedy answers (see `reply`)."""
        return [r.text for r in self.reply(prompts, max_new_tokens, progress, batch_size, stop)]

    @torch.inference_mode()
    def reply(
        self,
        prompts: Sequence[str],
        max_new_tokens: int = 16,
        progress: bool = False,
        batch_size: int | None = None,
        stop: Sequence[str] = (),
        decoder: Literal["auto", "fast", "generate"] = "auto",
    ) -> list[Reply]:
        """Greedy answers, batched with left padding, prompts sorted by length; special tokens
        stripped; each cut before the first `stop` string. `decoder`: `fast` is
        `decode.greedy_decode`, `generate` transformers' own `generate`, `auto` the fast one
        where it was verified for the model's architecture (`decode.supports`), else
        `generate` (the same tokens either way). The default batch keeps a batch's logits near
        2^22 values (256 prompts for the embedded student, 85 for a 49k vocabulary: at 256 its
        peak memory doubled for no speed)."""
        from teachloop.students.hf.decode import greedy_decode, supports

        fast = decoder == "fast" or (decoder == "auto" and supports(self.model))
        decode = greedy_decode if fast else self._generate
        batch_size = batch_size or min(256, max(8, 4 * LOGITS_PER_POSITION // self.model.config.vocab_size))
        # each prompt rendered and tokenized once: the longest sizes the batch, the batches pad these
        rendered = [self.render(p) for p in prompts]
        encoded = self.tokenizer(rendered, add_special_tokens=False)["input_ids"] if prompts else []
        if encoded:  # shrunk to what fits in the memory free now; a prompt that cannot fit is refused
            batch_size = fitted_decode_batch(
                self.model.config, batch_size, max(map(len, encoded)), max_new_tokens, self.model.dtype.itemsize
            )
        self.model.eval()
        order = sorted(range(len(prompts)), key=lambda i: len(prompts[i]))  # similar lengths pad less
        outputs: list[Reply] = [Reply("", False)] * len(prompts)
        batches = [order[i : i + batch_size] for i in range(0, len(order), batch_size)]
        stopping = self.stopping_criteria(stop)
        with answer_progress(len(prompts), progress) as bar:
            for batch in batches:
                enc = self.tokenizer.pad({"input_ids": [encoded[i] for i in batch]}, return_tensors="pt")
                done = bar.n
                new_tokens = decode(
                    self.model,
                    enc["input_ids"],
                    enc["attention_mask"],
                    max_new_tokens,
                    self.stop_token_ids,
                    stopping,
                    on_step=lambda finished, done=done: bar.update(done + finished - bar.n),
                )
                generated = torch.full((len(batch), max(map(len, new_tokens))), self.tokenizer.pad_token_id)
                for row, ids in enumerate(new_tokens):
                    generated[row, : len(ids)] = torch.tensor(ids)
                for i, reply in zip(batch, self.decode_replies(generated, stop), strict=True):
                    outputs[i] = reply
        return outputs

    def _generate(
        self,
        model: PreTrainedModel,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor,
        max_new_tokens: int,
        stop_ids: Sequence[int],
        stopping: StoppingCriteriaList | None,
        on_step=None,
    ) -> list[list[int]]:
        """`greedy_decode`'s result through transformers' `generate`: each row's new tokens up
        to and including its first stop id (any architecture; slower on a CPU)."""
        out = model.generate(
            input_ids=input_ids,
            attention_mask=attention_mask,
            max_new_tokens=max_new_tokens,
            do_sample=False,
            temperature=None,
            top_p=None,
            top_k=None,
            eos_token_id=list(stop_ids),
            pad_token_id=self.tokenizer.pad_token_id,
            stopping_criteria=stopping,
        )
        stops = set(stop_ids)
        rows = []
        for row in out[:, input_ids.shape[1] :].tolist():
            end = next((k + 1 for k, token in enumerate(row) if token in stops), len(row))
            rows.append(row[:end])
        if on_step is not None:
            on_step(len(rows))
        return rows

    def stopping_criteria(self, stop: Sequence[str]) -> StoppingCriteriaList | None:
        """Stops a row at a stop string (the text is cut there afterwards). Built once per
        set of strings: it scans the whole vocabulary (0.7 s for SmolLM2's 49k tokens)."""
        key = tuple(s for s in stop if s)
        if not key:
            return None
        if key not in self._stop_criteria:
            self._stop_criteria[key] = StopStringCriteria(self.tokenizer, list(key))
        return StoppingCriteriaList([self._stop_criteria[key]])

    def decode_replies(self, generated: torch.Tensor, stop: Sequence[str]) -> list[Reply]:
        """Decoded rows; a row hit the limit when it holds no stop token and no stop string
        (rows that ended are padded, and generation runs until every row ended)."""
        stops = torch.tensor(self.stop_token_ids)
        ended = torch.isin(generated, stops).any(dim=1).tolist()
        texts = self.tokenizer.batch_decode(generated, skip_special_tokens=True)
        replies = []
        for text, stopped in zip(texts, ended, strict=True):
            text, cut = cut_at_stop(text, stop)
            replies.append(Reply(text, not (stopped or cut)))
        return replies

    # -- training -------------------------------------------------------------------
    def token_lengths(self, rows: Sequence[dict], answer_key: str) -> list[int]:
        """Tokens each training row puts through the model (prompt, answer and end; a
        preference row's chosen and rejected answers both), capped at the trainer's
        `max_length`. Counted on the rendered text: the trainers' own count differs by the
        few tokens a template adds around an answer."""
        texts = []
        for row in rows:
            prompt = row["prompt"][0]["content"] if self.chat else row["prompt"]
            answers = [row[answer_key]] + ([row["rejected"]] if "rejected" in row else [])
            for answer in answers:
                texts.append(self.render(prompt) + (answer[0]["content"] if self.chat else answer))
        ends = len(self.answer_end_ids)
        counts = [len(ids) + ends for ids in self.tokenizer(texts, add_special_tokens=False)["input_ids"]]
        per_row = len(texts) // max(1, len(rows))
        cap = self.tokenizer.model_max_length
        return [min(cap, sum(counts[i * per_row : (i + 1) * per_row])) for i in range(len(rows))]

    def micro_batch(self, cfg: TrainConfig, longest: int = 1) -> int:
        """Examples per forward pass: a divisor of the batch size (so the optimizer step sees
        exactly `batch_size` examples), small enough that a micro batch of the longest
        example holds at most `micro_batch_tokens` tokens (the activations autograd keeps
        grow with them: `memory.py`) and its logits stay near 2^20 values per position."""
        from teachloop.students.hf.memory import micro_batch_tokens

        if cfg.micro_batch_size:
            limit = cfg.micro_batch_size
        else:
            tokens = cfg.micro_batch_tokens or micro_batch_tokens(self.model.config)
            limit = min(LOGITS_PER_POSITION // self.model.config.vocab_size, tokens // max(1, longest))
        return max(d for d in range(1, cfg.batch_size + 1) if cfg.batch_size % d == 0 and d <= max(1, limit))

    def step_bytes(self, cfg: TrainConfig, longest: int, micro: int) -> int:
        """What a training step of `micro` examples of `longest` tokens adds to the memory:
        the activations autograd keeps and, for full training, gradients and AdamW's moments."""
        from teachloop.students.hf.memory import activation_bytes_per_token

        trained = sum(p.numel() for p in self.model.parameters()) if cfg.method == "full" else 0
        return activation_bytes_per_token(self.model.config) * longest * micro + 12 * trained

    def fitted_micro_batch(self, cfg: TrainConfig, longest: int) -> int:
        """The micro batch, shrunk (to smaller divisors of the batch) until a step fits in the
        memory free now; a phase whose one-example step does not fit is refused in one line
        before any step runs."""
        from teachloop.students.hf.memory import check_step_fits, fits, gb

        micro = self.micro_batch(cfg, longest)
        while micro > 1 and not fits(self.step_bytes(cfg, longest, micro)):
            smaller = [d for d in range(1, micro) if cfg.batch_size % d == 0]
            log.warning("a micro batch of %d examples of %d tokens does not fit: %d", micro, longest, smaller[-1])
            micro = smaller[-1]
        check_step_fits(
            self.step_bytes(cfg, longest, micro),
            f"a training step of {micro} example(s) of up to {longest} tokens "
            f"({gb(self.step_bytes(cfg, longest, 1))} for one example)",
            "train on shorter examples (drop or cut the long ones), free memory or use a machine with more",
        )
        return micro

    @staticmethod
    def bf16(cfg: TrainConfig) -> bool:
        """Whether training runs its matrix products under bfloat16 autocast (`precision`)."""
        from teachloop.students.hf.memory import native_bf16

        if cfg.precision == "auto":
            return cfg.method == "lora" and native_bf16()
        return cfg.precision == "bf16"

    def _trainer_args(
        self, config_cls: type, cfg: TrainConfig, seed: int, n_rows: int, output_dir: str, micro: int, **extra
    ):
        import dataclasses

        if "max_length" in {f.name for f in dataclasses.fields(config_cls)}:  # not every trainer cuts sequences
            extra.setdefault("max_length", self.tokenizer.model_max_length)
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
            use_cpu=not torch.cuda.is_available(),
            bf16=self.bf16(cfg),
            fp16=False,
            gradient_checkpointing=False,
            save_strategy="no",
            report_to=[],  # the loop logs each iteration's loss to the run's tracker (runs/loop/tracking.py)
            logging_steps=max(1, n_rows // cfg.batch_size // 4),
            dataloader_num_workers=0,
            ddp_find_unused_parameters=False,  # under accelerate launch: every parameter trained gets a gradient
            disable_tqdm=True,  # our own bar below; TRL's also prints every log dict
            **extra,
        )

    def _fit(
        self,
        trainer_cls: type,
        args,
        rows: list[dict],
        lengths: list[int],
        cfg: TrainConfig,
        progress: bool,
        **trainer_kwargs,
    ):
        """Train in place; the mean training loss over every step, the tokens per second
        and the phase's peak resident memory (`TrainStats`). `trainer_kwargs`: what a trainer
        takes beside the common ones (a distillation trainer's `teacher_model`)."""
        from datasets import Dataset

        from teachloop.students.hf.memory import PeakResident

        dataset = Dataset.from_list(rows)
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
            **trainer_kwargs,
        )
        trainer.remove_callback(PrinterCallback)  # it prints every log dict to stdout
        start = time.perf_counter()
        with PeakResident() as memory:
            output = trainer.train()
        seconds = time.perf_counter() - start
        log.debug("%s: %d rows in %.1fs", trainer_cls.__name__, len(dataset), seconds)
        # the peft-wrapped model when an adapter was added; without the bf16 autocast wrapper
        # accelerate put around its forward, so it answers in float32 like a reloaded one
        self.model = trainer.accelerator.unwrap_model(trainer.model, keep_fp32_wrapper=False)
        self.model.eval()
        return TrainStats(
            loss=float(output.training_loss),
            examples=len(rows),
            tokens=round(sum(lengths) * cfg.epochs),
            seconds=round(seconds, 3),
            micro_batch=args.per_device_train_batch_size,
            peak_gb=round(memory.peak / 1e9, 3),
        )

    def _sized(self, rows: list[dict], answer_key: str, cfg: TrainConfig) -> tuple[list[int], int]:
        """The rows' token lengths and the micro batch they allow; refuses a phase that
        cannot fit in memory."""
        lengths = self.token_lengths(rows, answer_key)
        longest = max(lengths)
        return lengths, self.fitted_micro_batch(cfg, longest)

    def _rows(self, data: Sequence[Example], answer_key: str) -> list[dict]:
        """TRL rows: conversational when the model has a chat template, else plain text.
        Every answer ends with what generation stops on: TRL appends the eos to plain-text
        answers and renders conversational ones through the template, whose end-of-turn
        closes the answer (`answer_suffix` adds the eos where the template has none)."""
        rows = []
        for ex in data:
            if self.chat:
                row = {
                    "prompt": [{"role": "user", "content": ex.prompt}],
                    answer_key: [{"role": "assistant", "content": ex.answer + self.answer_suffix}],
                }
                if ex.rejected is not None:
                    row["rejected"] = [{"role": "assistant", "content": ex.rejected + self.answer_suffix}]
            else:
                row = {"prompt": ex.prompt, answer_key: ex.answer}
                if ex.rejected is not None:
                    row["rejected"] = ex.rejected
            rows.append(row)
        return rows

    def train(
        self,
        data: Sequence[Example],
        cfg: TrainConfig,
        seed: int = 0,
        progress: bool = False,
        workdir: Path | None = None,
    ) -> TransformersStudent:
        """Supervised fine-tuning with TRL's SFTTrainer (completion-only loss), in place.

        `workdir`: where the trainer's scratch folder goes (the loop passes the phase's
        temporary folder, so a killed run leaves nothing in the system temp directory)."""
        if not data:
            return self
        from trl import SFTConfig, SFTTrainer

        rows = self._rows(data, "completion")
        lengths, micro = self._sized(rows, "completion", cfg)
        with tempfile.TemporaryDirectory(prefix="teachloop-sft-", dir=workdir) as tmp:
            args = self._trainer_args(SFTConfig, cfg, seed, len(rows), tmp, micro, completion_only_loss=True)
            self.train_stats["sft"] = self._fit(SFTTrainer, args, rows, lengths, cfg, progress)
        return self

    def train_preferences(
        self,
        pairs: Sequence[Example],
        cfg: TrainConfig,
        seed: int = 0,
        progress: bool = False,
        workdir: Path | None = None,
    ) -> TransformersStudent:
        """DPO with TRL's DPOTrainer on examples that carry a `rejected` answer, in place
        (`cfg.dpo`: beta, sft_weight).

        With `sft_weight` > 0 the NLL of the chosen answer is added to the DPO loss (RPO):
        pushing away from a wrong answer alone does not teach a skill the student lacks.
        """
        beta, sft_weight = cfg.dpo.beta, cfg.dpo.sft_weight
        pairs = [ex for ex in pairs if ex.rejected is not None]
        if not pairs:
            return self
        from trl import DPOConfig, DPOTrainer

        rows = self._rows(pairs, "chosen")
        lengths, micro = self._sized(rows, "chosen", cfg)
        with tempfile.TemporaryDirectory(prefix="teachloop-dpo-", dir=workdir) as tmp:
            losses = {"loss_type": ["sigmoid", "sft"], "loss_weights": [1.0, sft_weight]} if sft_weight > 0 else {}
            args = self._trainer_args(DPOConfig, cfg, seed, len(rows), tmp, micro, beta=beta, **losses)
            self.train_stats["dpo"] = self._fit(DPOTrainer, args, rows, lengths, cfg, progress)
        return self

    def train_distill(
        self,
        prompts: Sequence[str],
        cfg: TrainConfig,
        teacher_path: str | Path,
        seed: int = 0,
        progress: bool = False,
        workdir: Path | None = None,
        answers: Sequence[str] | None = None,
        max_new_tokens: int | None = None,
    ) -> TransformersStudent:
        """On-policy distillation from the teacher at `teacher_path` (a local model folder) on
        `prompts`, in place (`cfg.distill`; `distill.py`): the student samples, the teacher
        scores the student's tokens. Records `train_stats["distill"]` and `distill_info`.
        `answers` only feed the off-policy share (`cfg.distill.on_policy` < 1)."""
        from teachloop.students.hf.distill import train_distill

        try:
            self.distill_info = train_distill(
                self,
                prompts,
                cfg,
                teacher_path,
                seed,
                progress,
                workdir,
                answers=answers,
                max_new_tokens=max_new_tokens,
            )
        finally:
            release_memory()  # the teacher's weights, gone with the phase
        return self


def answer_progress(total: int, enabled: bool):
    """The evaluation's bar: it moves as answers finish (not per batch), with a rate and the
    time left. Shown only when enabled and stderr is a terminal (tqdm's `disable=None`)."""
    from tqdm.auto import tqdm

    return tqdm(
        total=total, desc="evaluate", unit="answer", leave=False, dynamic_ncols=True, disable=None if enabled else True
    )


class _ProgressBar(TrainerCallback):
    """One tqdm bar over optimizer steps, showing the latest loss; none when stderr is not a
    terminal (tqdm's `disable=None`): a pipe or a log gets no stream of carriage returns."""

    def __init__(self) -> None:
        self.bar = None

    def on_train_begin(self, args, state, control, **kwargs):
        from tqdm.auto import tqdm

        self.bar = tqdm(total=state.max_steps, desc="train", unit="step", leave=False, disable=None)

    def on_step_end(self, args, state, control, **kwargs):
        if self.bar is not None:
            self.bar.update(state.global_step - self.bar.n)

    def on_log(self, args, state, control, logs=None, **kwargs):
        if self.bar is not None and logs and "loss" in logs:
            self.bar.set_postfix(loss=f"{float(logs['loss']):.3f}")

    def on_train_end(self, args, state, control, **kwargs):
        if self.bar is not None:
            self.bar.close()
            self.bar = None

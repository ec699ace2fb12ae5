"""A model's chat template and its end-of-turn tokens, shared by every backend that renders
prompts for a causal LM or stops its answers (the transformers student, vLLM evaluation):
an answer ends at the template's end-of-turn token (`<|im_end|>`, `<end_of_turn>`,
`<|eot_id|>`), the eos and the generation config's eos ids alike, and at the environment's
stop strings."""

from __future__ import annotations

from collections.abc import Sequence

from transformers import AutoTokenizer, GenerationConfig, PreTrainedTokenizerBase

from teachloop.errors import TeachloopError


def render_prompt(tokenizer: PreTrainedTokenizerBase, prompt: str) -> str:
    """The text a model sees for a prompt: through its chat template when it has one."""
    if not getattr(tokenizer, "chat_template", None):
        return prompt
    messages = [{"role": "user", "content": prompt}]
    return tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)


_ANSWER_MARK = "TEACHLOOP-ANSWER-MARK"


def turn_end_ids(tokenizer: PreTrainedTokenizerBase) -> list[int]:
    """The tokens the chat template writes after an assistant answer (`<|im_end|>` and a
    newline for SmolLM2 and Qwen, `<end_of_turn>` and a newline for Gemma, `<|eot_id|>` for
    Llama 3): what SFT through the template teaches a student to end an answer with. []
    without a chat template or when the template cannot render an assistant turn."""
    import jinja2

    if not getattr(tokenizer, "chat_template", None):
        return []
    messages = [{"role": "user", "content": "?"}, {"role": "assistant", "content": _ANSWER_MARK}]
    try:
        text = tokenizer.apply_chat_template(messages, tokenize=False)
    except (jinja2.TemplateError, ValueError, TypeError, KeyError):
        return []
    if not isinstance(text, str) or _ANSWER_MARK not in text:
        return []
    return tokenizer(text.split(_ANSWER_MARK, 1)[1], add_special_tokens=False)["input_ids"]


def end_of_turn_id(tokenizer: PreTrainedTokenizerBase, turn_end: list[int] | None = None) -> int | None:
    """The special token the chat template closes an assistant turn with, if it does."""
    ids = turn_end_ids(tokenizer) if turn_end is None else turn_end
    if not ids:
        return None
    special = tokenizer.added_tokens_decoder.get(ids[0])
    if ids[0] in tokenizer.all_special_ids or (special is not None and special.special):
        return ids[0]
    return None


def stop_token_ids(tokenizer: PreTrainedTokenizerBase, generation: GenerationConfig | None) -> list[int]:
    """The tokens an answer ends at: the tokenizer's eos, the generation config's eos ids
    (instruct models list their end-of-turn there too) and the template's end-of-turn.
    Stopping on the tokenizer's eos alone let a chat student whose end-of-turn is another
    token (Gemma, Llama 3, Phi 3) write to the limit once SFT taught it that token."""
    configured = generation.eos_token_id if generation is not None else None
    if isinstance(configured, int):
        configured = [configured]
    ids = [tokenizer.eos_token_id, *(configured or []), end_of_turn_id(tokenizer)]
    return list(dict.fromkeys(i for i in ids if i is not None))


def model_stop_token_ids(path: str, tokenizer: PreTrainedTokenizerBase) -> list[int]:
    """`stop_token_ids` of a saved model (its generation_config.json, when it has one)."""
    try:
        generation = GenerationConfig.from_pretrained(path)
    except OSError:
        generation = None
    return stop_token_ids(tokenizer, generation)


def cut_at_stop(text: str, stop: Sequence[str]) -> tuple[str, bool]:
    """The text before the earliest stop string (what vLLM returns), and whether one occurred."""
    cut = min((i for i in (text.find(s) for s in stop if s) if i >= 0), default=-1)
    return (text[:cut], True) if cut >= 0 else (text, False)


def load_tokenizer(path: str) -> PreTrainedTokenizerBase:
    try:
        return AutoTokenizer.from_pretrained(path)
    except (OSError, ValueError) as exc:
        raise TeachloopError(f"could not load the tokenizer of {path!r}: {exc}") from exc

"""The embedded student: a character tokenizer and a tiny Llama, both built locally.

Its limits, which a task must fit (`teachloop.runs.loop.checks` refuses one that does not,
before the first evaluation; docs/environments.md, "The embedded student's limits"):
`CHARACTERS` is its whole vocabulary (96 characters plus 3 special tokens: any other
character is read as `<unk>`), and it has `MAX_POSITIONS` positions for a prompt and its
answer together. The torch / transformers imports wait until a model is built, so the
pre-flight checks can read these limits in a second.
"""

from __future__ import annotations

import json
import string
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from transformers import LlamaForCausalLM, PreTrainedTokenizerFast

PAD, EOS, UNK = "<pad>", "</s>", "<unk>"
CHARACTERS = string.digits + string.ascii_letters + string.punctuation + " \n"
MAX_POSITIONS = 64  # the embedded base checkpoint's max_position_embeddings


@dataclass(frozen=True)
class CharacterLimits:
    """What a character-vocabulary student can read: these characters, this many positions."""

    characters: frozenset[str]
    positions: int

    def unreadable(self, text: str) -> list[str]:
        """The characters of `text` outside the vocabulary (each once, in order of appearance)."""
        return list(dict.fromkeys(c for c in text if c not in self.characters))


def character_limits(folder: str | Path) -> CharacterLimits | None:
    """The limits of the model in `folder` when its tokenizer is this module's character
    tokenizer (the embedded base, or a student trained from it); None for any other model
    or a folder that cannot be read."""
    folder = Path(folder)
    try:
        tokenizer = json.loads((folder / "tokenizer.json").read_text(encoding="utf-8"))
        config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
        vocab = tokenizer["model"]["vocab"]
        if tokenizer["model"]["type"] != "WordLevel" or set(vocab) != {PAD, EOS, UNK, *CHARACTERS}:
            return None
        return CharacterLimits(frozenset(CHARACTERS), int(config.get("max_position_embeddings", MAX_POSITIONS)))
    except (OSError, ValueError, KeyError, TypeError):
        return None


def build_char_tokenizer() -> PreTrainedTokenizerFast:
    """One token per character (digits, letters, punctuation, space, newline)."""
    from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    vocab = {tok: i for i, tok in enumerate([PAD, EOS, UNK, *CHARACTERS])}
    core = Tokenizer(models.WordLevel(vocab=vocab, unk_token=UNK))
    core.pre_tokenizer = pre_tokenizers.Split(Regex(r"(?m)."), behavior="isolated")
    core.decoder = decoders.Fuse()
    return PreTrainedTokenizerFast(
        tokenizer_object=core,
        pad_token=PAD,
        eos_token=EOS,
        unk_token=UNK,
        padding_side="left",
        model_max_length=128,
    )


def build_tiny_llama(
    tokenizer: PreTrainedTokenizerFast,
    hidden_size: int = 128,
    layers: int = 4,
    heads: int = 4,
    intermediate_size: int = 512,
    max_positions: int = MAX_POSITIONS,
    seed: int = 0,
) -> LlamaForCausalLM:
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(seed)
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=hidden_size,
        intermediate_size=intermediate_size,
        num_hidden_layers=layers,
        num_attention_heads=heads,
        num_key_value_heads=heads,
        max_position_embeddings=max_positions,
        pad_token_id=tokenizer.pad_token_id,
        eos_token_id=tokenizer.eos_token_id,
        bos_token_id=None,
        tie_word_embeddings=True,
    )
    model = LlamaForCausalLM(config)
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    return model


CHAT_TEMPLATE = (  # assistant turns end with the eos token, so a trained model learns to stop
    "{% for message in messages %}{{ message['role'] }}: {{ message['content'] }}"
    "{% if message['role'] == 'assistant' %}{{ eos_token }}{% endif %}{{ '\\n' }}{% endfor %}"
    "{% if add_generation_prompt %}assistant: {% endif %}"
)


def save_random_model(path: str, max_positions: int = 2048, seed: int = 0) -> str:
    """A random-weight tiny Llama with a chat template, saved for vLLM / `vllm serve`.

    Its replies are nonsense, but structured outputs still make them schema-valid: enough
    to exercise every teacher code path offline."""
    tokenizer = build_char_tokenizer()
    tokenizer.chat_template = CHAT_TEMPLATE
    tokenizer.model_max_length = max_positions
    model = build_tiny_llama(tokenizer, max_positions=max_positions, seed=seed)
    model.save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path

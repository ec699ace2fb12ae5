"""Filters every engine applies: de-duplication and eval decontamination."""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Literal

from teachloop.types import Example, Rejected

_SPACE = re.compile(r"\s+")


def normalize(text: str) -> str:
    return _SPACE.sub(" ", text.strip().lower())


def ngrams(text: str, n: int) -> set[tuple[str, ...]]:
    words = normalize(text).split()
    return {tuple(words[i : i + n]) for i in range(len(words) - n + 1)}


class DataFilter:
    """Keeps an example only if its prompt is new and not (near-)identical to an eval item.

    Identity is on normalised prompts. With `ngram` set, a prompt that shares a word
    n-gram of that length with any eval prompt is contaminated too (for long-form tasks;
    short procedural prompts use identity alone).
    """

    def __init__(
        self,
        eval_prompts: Iterable[str],
        seen_prompts: Iterable[str] = (),
        ngram: int | None = None,
        identity: Literal["prompt", "pair"] = "prompt",
    ):
        self.eval = {normalize(p) for p in eval_prompts}
        self.seen = {normalize(p) for p in seen_prompts}
        self.ngram = ngram
        self.identity = identity  # pair: one question may come back with other answers (answer augmentation)
        self.eval_ngrams: set[tuple[str, ...]] = set()
        if ngram:
            for prompt in self.eval:
                self.eval_ngrams |= ngrams(prompt, ngram)

    def check(self, example: Example) -> str | None:
        """None when the example is kept (and remembered), else the rejection reason."""
        key = normalize(example.prompt)
        if key in self.eval:
            return "contaminated: identical to an eval prompt"
        if self.ngram and ngrams(key, self.ngram) & self.eval_ngrams:
            return f"contaminated: shares a {self.ngram}-gram with an eval prompt"
        if self.identity == "pair":
            key += "\x00" + normalize(example.answer)
        if key in self.seen:
            return (
                "duplicate: prompt already generated"
                if self.identity == "prompt"
                else "duplicate: pair already generated"
            )
        self.seen.add(key)
        return None

    def split(self, candidates: Iterable[Example]) -> tuple[list[Example], list[Rejected]]:
        kept: list[Example] = []
        rejected: list[Rejected] = []
        for example in candidates:
            reason = self.check(example)
            if reason is None:
                kept.append(example)
            else:
                rejected.append(Rejected(example=example, reason=reason))
        return kept, rejected

"""Rows of user data for file-backed environments (`math`, `jsonl`): loading with `datasets`
(local JSON / JSONL / parquet files, or a hub id when online), field checks, a
deterministic train/eval split, prompt templates and option validation.

Every problem a user can fix is raised as a TeachloopError that names the environment,
the file and the option to change.
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel

from teachloop.errors import TeachloopError
from teachloop.io import read_text
from teachloop.types import Example

Row = dict[str, Any]
Options = TypeVar("Options", bound=BaseModel)

# file suffix -> the `datasets` packaged builder that reads it
BUILDERS = {".json": "json", ".jsonl": "json", ".parquet": "parquet"}


def _builder(path: Path, env: str) -> str:
    builder = BUILDERS.get(path.suffix.lower())
    if builder is None:
        raise TeachloopError(f"{env}: cannot read {path}: use a .json, .jsonl or .parquet file")
    return builder


def read_file(path: str | Path, env: str, option: str) -> list[Row]:
    """All rows of a local JSON / JSONL / parquet file, read with `datasets` (no network)."""
    path = Path(path).expanduser()
    if path.is_dir():
        raise TeachloopError(f"{env}: {option} {path} is a folder; give a .json, .jsonl or .parquet file")
    if not path.is_file():
        raise TeachloopError(f"{env}: {option} {path} does not exist")
    builder = _builder(path, env)
    if path.stat().st_size == 0:
        raise TeachloopError(f"{env}: {option} {path} is empty; it needs one row per line")
    if builder == "json":  # a text file must be UTF-8: said naming the file (datasets' own error does not)
        read_text(path, f"{env}: {option}")
    import datasets

    try:
        with quiet_datasets():
            data = datasets.load_dataset(builder, data_files=str(path.resolve()), split="train")
    except Exception as exc:
        raise TeachloopError(f"{env}: could not read {option} {path}: {_one_line(exc)}") from exc
    rows = data.to_list()
    if not rows:
        raise TeachloopError(f"{env}: {option} {path} has no rows")
    return rows


@contextmanager
def quiet_datasets() -> Iterator[None]:
    """No progress bars from `datasets` (a command prints its own lines)."""
    import datasets

    was_enabled = datasets.is_progress_bar_enabled()
    datasets.disable_progress_bars()
    try:
        yield
    finally:
        if was_enabled:
            datasets.enable_progress_bars()


def read_hub(source: str, subset: str | None, split: str, env: str) -> list[Row]:
    """One split of a hub dataset (needs a network connection or a warm `datasets` cache)."""
    import datasets

    try:
        data = datasets.load_dataset(source, subset, split=split)
    except Exception as exc:
        raise TeachloopError(
            f"{env}: could not load {source!r} (subset {subset!r}, split {split!r}) from the hub: "
            f"{_one_line(exc)}. Offline, give local files instead (train_file / eval_file)."
        ) from exc
    rows = data.to_list()
    if not rows:
        raise TeachloopError(f"{env}: split {split!r} of {source!r} has no rows")
    return rows


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split())[:500] or type(exc).__name__


def require_fields(rows: Sequence[Row], fields: Iterable[tuple[str, str]], env: str, where: str) -> None:
    """Every (option, field) names a column of the data, else a message listing the columns."""
    columns = sorted({key for row in rows for key in row})
    for option, field in fields:
        if field not in columns:
            raise TeachloopError(
                f"{env}: {where} has no field {field!r} (its fields: {', '.join(columns)}); set {option}"
            )


def split_rows(rows: Sequence[Row], eval_fraction: float, seed: int, env: str) -> tuple[list[Row], list[Row]]:
    """(train, eval) from one list of rows: a seeded shuffle, the first share is eval."""
    if len(rows) < 2:
        raise TeachloopError(f"{env}: one file with {len(rows)} row(s) cannot be split; give eval_file too")
    order = list(range(len(rows)))
    random.Random(seed).shuffle(order)
    n_eval = min(len(rows) - 1, max(1, round(eval_fraction * len(rows))))
    eval_idx = sorted(order[:n_eval])
    train_idx = sorted(order[n_eval:])
    return [rows[i] for i in train_idx], [rows[i] for i in eval_idx]


def read_splits(
    path: Path, option: str, eval_file: Path | None, eval_fraction: float, seed: int, env: str
) -> tuple[list[Row], list[Row], str]:
    """(train rows, eval rows, where) from local files: `eval_file` when given, else a
    seeded `eval_fraction` of `path` is held out; `where` names the source in errors."""
    rows = read_file(path, env, option)
    where = f"{option} {path}"
    if eval_file:
        return rows, read_file(eval_file, env, "eval_file"), where
    train, evals = split_rows(rows, eval_fraction, seed, env)
    return train, evals, where


def cap(examples: list[Example], limit: int | None, seed: int) -> list[Example]:
    """At most `limit` examples: a seeded sample that keeps the original order."""
    if limit is None or len(examples) <= limit:
        return examples
    keep = sorted(random.Random(seed).sample(range(len(examples)), limit))
    return [examples[i] for i in keep]


def unique(examples: Iterable[Example], exclude: set[str] | None = None) -> list[Example]:
    """Drop repeated prompts, and prompts in `exclude` (eval items kept out of the train pool)."""
    seen = set(exclude or ())
    out = []
    for ex in examples:
        if ex.prompt not in seen:
            seen.add(ex.prompt)
            out.append(ex)
    return out


def skills_of(value: Any) -> list[str]:
    """A skills cell (one label or a list of labels) as a list of labels."""
    if value is None:
        return []
    if isinstance(value, str):
        return [value.strip()] if value.strip() else []
    if isinstance(value, Iterable):
        return [str(v).strip() for v in value if v is not None and str(v).strip()]
    return [str(value)]


def text_of(value: Any) -> str:
    """A prompt or answer cell as text (numbers allowed; None is empty)."""
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


class Template:
    """A prompt template with one `{slot}`: fill it, or take a filled prompt apart again."""

    def __init__(self, template: str, slot: str) -> None:
        marker = "{" + slot + "}"
        if template.count(marker) != 1:
            raise TeachloopError(f"a prompt template needs exactly one {marker}, got {template!r}")
        self.prefix, self.suffix = template.split(marker)

    def fill(self, text: str) -> str:
        return f"{self.prefix}{text}{self.suffix}"

    def unfill(self, prompt: str) -> str:
        """The text of a prompt that may already carry the template (a teacher copying it)."""
        text = prompt.strip()
        prefix, suffix = self.prefix.strip(), self.suffix.strip()
        if prefix and text.startswith(prefix):
            text = text[len(prefix) :]
        if suffix and text.endswith(suffix):
            text = text[: len(text) - len(suffix)]
        return text.strip()

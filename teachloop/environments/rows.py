"""Rows of user data for file-backed environments (`math`, `jsonl`): loading with `datasets`
(local JSON / JSONL / parquet files, or a hub id when online), field checks, a
deterministic train/eval split, prompt templates and option validation.

Every problem a user can fix is raised as a TeachloopError that names the environment,
the file and the option to change.
"""

from __future__ import annotations

import json
import math
import random
from collections.abc import Hashable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
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


# a character of a row's JSON text takes at most 12 bytes (an escaped astral character,
# "\\ud83d\\ude00"): a line longer than LINE_FACTOR * max_chars + LINE_SLACK (the row's other
# fields) cannot hold a prompt and answer within max_chars, and is skipped without being held
LINE_FACTOR = 12
LINE_SLACK = 65_536
SKIP_CHUNK = 1 << 16  # an over-long line is passed over in pieces of this many bytes


@dataclass
class Oversize:
    """Rows left out at load for their size: how many, and the longest (characters or bytes)."""

    rows: int = 0
    longest: int = 0

    def add(self, size: int) -> None:
        self.rows += 1
        self.longest = max(self.longest, size)


def row_bound(max_chars: int) -> int:
    """The longest row (a JSONL line in bytes, or a row's text in characters) read at all."""
    return LINE_FACTOR * max_chars + LINE_SLACK


def read_rows(path: str | Path, env: str, option: str, max_chars: int) -> tuple[list[Row], Oversize]:
    """The rows of a local file, and those left out unread because no prompt and answer within
    `max_chars` fit in them. A .jsonl file is read line by line: an over-long line is skipped
    in pieces, never held whole. A .json or .parquet file is read with `datasets` (into its
    memory-mapped Arrow cache) and over-long rows are dropped there, before they become Python
    objects."""
    path = _checked(Path(path).expanduser(), env, option)
    if path.suffix.lower() == ".jsonl":
        rows, skipped = _jsonl_lines(path, env, option, row_bound(max_chars))
    else:
        rows, skipped = _dataset_rows(path, env, option, row_bound(max_chars))
    if not rows and not skipped.rows:
        raise TeachloopError(f"{env}: {option} {path} has no rows")
    return rows, skipped


def _checked(path: Path, env: str, option: str) -> Path:
    if path.is_dir():
        raise TeachloopError(f"{env}: {option} {path} is a folder; give a .json, .jsonl or .parquet file")
    if not path.is_file():
        raise TeachloopError(f"{env}: {option} {path} does not exist")
    _builder(path, env)
    if path.stat().st_size == 0:
        raise TeachloopError(f"{env}: {option} {path} is empty; it needs one row per line")
    return path


def _jsonl_lines(path: Path, env: str, option: str, bound: int) -> tuple[list[Row], Oversize]:
    rows: list[Row] = []
    skipped = Oversize()
    offset = 0
    with path.open("rb") as file:
        for number in range(1, 1 << 62):
            line = file.readline(bound + 1)
            if not line:
                break
            if len(line) > bound and not line.endswith(b"\n"):
                size = len(line)
                del line
                while True:  # the rest of the line, a piece at a time
                    piece = file.readline(SKIP_CHUNK)
                    size += len(piece)
                    if not piece or piece.endswith(b"\n"):
                        break
                skipped.add(size)
                offset += size
                continue
            try:
                text = line.decode("utf-8")
            except UnicodeDecodeError as exc:
                raise TeachloopError(
                    f"{env}: {option} {path} is not UTF-8 text (byte 0x{line[exc.start]:02x} at offset "
                    f"{offset + exc.start}, line {number}); save it as UTF-8"
                ) from None
            offset += len(line)
            if not text.strip():
                continue
            try:
                row = json.loads(text)
            except json.JSONDecodeError as exc:
                raise TeachloopError(
                    f"{env}: could not read {option} {path}: line {number} is not JSON ({exc.msg}, column "
                    f"{exc.colno}); a .jsonl file holds one JSON object per line"
                ) from None
            if not isinstance(row, dict):
                raise TeachloopError(
                    f"{env}: could not read {option} {path}: line {number} is a JSON {type(row).__name__}, not an "
                    'object; a .jsonl file holds one object per line, such as {"prompt": "...", "answer": "..."}'
                )
            rows.append(row)
    return rows, skipped


def _dataset_rows(path: Path, env: str, option: str, bound: int) -> tuple[list[Row], Oversize]:
    """A .json / .parquet file through `datasets`; rows whose text columns together exceed
    `bound` characters are dropped in Arrow."""
    import pyarrow as pa
    import pyarrow.compute as pc

    data = _load_local(path, env, option)
    table = data.data.table
    total = None
    for column in table.columns:
        if pa.types.is_string(column.type) or pa.types.is_large_string(column.type):
            length = pc.fill_null(pc.utf8_length(column), 0)
            total = length if total is None else pc.add(total, length)
    skipped = Oversize()
    if total is not None:
        over = pc.greater(total, bound)
        if pc.any(over).as_py():
            for size in pc.filter(total, over).to_pylist():
                skipped.add(size)
            table = table.filter(pc.invert(over))
    return table.to_pylist(), skipped


def _load_local(path: Path, env: str, option: str) -> Any:
    if _builder(path, env) == "json":  # a text file must be UTF-8: said naming the file (datasets' own error does not)
        read_text(path, f"{env}: {option}")
    import datasets

    try:
        with quiet_datasets():
            return datasets.load_dataset(_builder(path, env), data_files=str(path.resolve()), split="train")
    except Exception as exc:
        raise TeachloopError(f"{env}: could not read {option} {path}: {_one_line(exc)}") from exc


def split_by_key(
    keys: Sequence[Hashable], eval_fraction: float, seed: int, env: str, spare: Iterable[Hashable] = ()
) -> tuple[list[int], list[int], list[Hashable]]:
    """(train indices, eval indices, keys left without eval items) of one list of items,
    stratified by `keys` (an item's skills). The eval share is `eval_fraction` of the items, as
    in `split_rows`; every key with two items or more gets at least one eval item while that
    share allows (the `spare` keys, measured through others such as a group through its skills,
    lose it first, then the smallest keys), the rest is shared out in proportion to the keys'
    sizes (largest remainder); within a key the items are taken in one seeded shuffle of all
    items. With a single key this is exactly `split_rows`' split."""
    n = len(keys)
    if n < 2:
        raise TeachloopError(
            f"{env}: one file with {n} usable row(s) (distinct prompts) cannot be split; add rows or give eval_file too"
        )
    order = list(range(n))
    random.Random(seed).shuffle(order)
    n_eval = min(n - 1, max(1, round(eval_fraction * n)))
    strata: dict[Hashable, list[int]] = {}
    for i in order:
        strata.setdefault(keys[i], []).append(i)
    position = {key: p for p, key in enumerate(strata)}
    share = n_eval / n
    most = {key: len(members) - 1 if len(members) > 1 else 1 for key, members in strata.items()}
    quota = {
        key: min(len(members) - 1, max(1, math.floor(share * len(members) + 1e-9))) if len(members) > 1 else 0
        for key, members in strata.items()
    }
    spared = set(spare)
    while sum(quota.values()) > n_eval:  # too many keys for one eval item each: the most over-represented give
        key = max((k for k in quota if quota[k]), key=lambda k: (k in spared, quota[k] / len(strata[k]), -position[k]))
        quota[key] -= 1
    while sum(quota.values()) < n_eval:
        room = [k for k in quota if quota[k] < most[k]]
        if not room:
            break
        key = max(room, key=lambda k: (share * len(strata[k]) - quota[k], -position[k]))
        quota[key] += 1
    eval_idx = sorted(i for key, members in strata.items() for i in members[: quota[key]])
    chosen = set(eval_idx)
    train_idx = [i for i in range(n) if i not in chosen]
    return train_idx, eval_idx, [key for key in strata if not quota[key]]


def cell_text(value: Any, field: str, env: str, where: str, row: int) -> str:
    """A prompt or answer cell as text: text as it is, a number as its shortest text (4, 2.5;
    4.0 is 4), None as empty. A list, an object or a boolean is refused, naming the row: turning
    [4] into the text "[4]" would make a reference no answer matches."""
    if value is None or isinstance(value, str):
        return value or ""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return text_of(value)
    shown = repr(value)
    shown = shown if len(shown) <= 40 else shown[:37] + "..."
    kind = {list: "a list", tuple: "a list", dict: "an object", bool: "a boolean"}.get(
        type(value), type(value).__name__
    )
    raise TeachloopError(
        f"{env}: row {row} of {where}: {field!r} is {kind} ({shown}), not text: write it as a string "
        "(or a number) in the file"
    )


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

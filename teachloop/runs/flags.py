"""Command-line flags derived from the config models, as TRL derives its parser from its
dataclasses: one flag per field (dotted for nested models: `--train.epochs`,
`--teacher.max-retries`), its help the field's description with the allowed values and the
default, a repeatable `KEY=VALUE` flag per options mapping (`--environment-options`).
Values become dotted overrides for `load_config`, so the flags are validated by the same
pydantic models, with the same one-line errors, as a YAML file.

The short names of the hand-written CLI stay as aliases (`--epochs`, `--lr`, `--env-option`).
"""

from __future__ import annotations

import json
import types
import typing
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Union

from pydantic import BaseModel
from pydantic.fields import FieldInfo

from teachloop.errors import ConfigError

# dotted key -> the shorter names the hand-written CLI had (and the README uses)
ALIASES: dict[str, tuple[str, ...]] = {
    "environment": ("--env",),
    "environment_options": ("--env-option",),
    "policy_options": ("--policy-option",),
    "engine_options": ("--engine-option",),
    "tracking_options": ("--tracking-option",),
    "teacher.options": ("--teacher-option",),
    "train.epochs": ("--epochs",),
    "train.learning_rate": ("--lr",),
    "train.batch_size": ("--batch-size",),
    "train.method": ("--train-method",),
    "train.processes": ("--train-processes",),
    "train.accelerate_config": ("--accelerate-config",),
}
# flags for a key inside an options mapping, for the settings most runs set
SHORTCUTS: dict[str, tuple[str, str]] = {
    "teacher.options.base_url": (
        "--teacher-base-url",
        (
            "the openai/raydata backend's base_url, e.g. http://127.0.0.1:8000/v1 "
            "[default: $OPENAI_BASE_URL, else the OpenAI API]"
        ),
    ),
    "teacher.options.concurrency": (
        "--teacher-concurrency",
        "the openai/raydata backend's concurrency: requests in flight at once (Ray workers) [default: 8]",
    ),
}
SHORTCUT_TYPES: dict[str, type] = {"teacher.options.base_url": str, "teacher.options.concurrency": int}


@dataclass(frozen=True)
class Flag:
    """One command-line flag for the config key `key`.

    `kind`: "value" (one value of `type`), "switch" (a bool: `--x/--no-x`), "mapping" (a
    repeatable KEY=VALUE for an options dict) or "text" (parsed like a YAML scalar or list:
    a field that takes text or a list)."""

    key: str
    names: tuple[str, ...]
    type: type
    kind: Literal["value", "switch", "mapping", "text"]
    help: str
    section: str
    metavar: str | None = None

    @property
    def param(self) -> str:
        """The Python identifier the CLI passes the value under."""
        return self.key.replace(".", "__")


SECTIONS = ("run", "train", "teacher")  # the order of `--help`


def flags_of(model: type[BaseModel], skip: frozenset[str] = frozenset()) -> list[Flag]:
    """Every flag of `model`'s fields (nested models recursively) and the shortcuts, the
    top-level settings first, then each nested model's."""
    found = list(_walk(model, "", "run", skip))
    for key, (name, help_text) in SHORTCUTS.items():
        found.append(Flag(key, (name,), SHORTCUT_TYPES[key], "value", help_text, "teacher"))
    order = {section: rank for rank, section in enumerate(SECTIONS)}
    return sorted(found, key=lambda flag: order.get(flag.section, len(order)))


def _walk(model: type[BaseModel], prefix: str, section: str, skip: frozenset[str]) -> Iterator[Flag]:
    for field, info in model.model_fields.items():
        key = prefix + field
        if key in skip:
            continue
        annotation = _without_none(info.annotation)
        if isinstance(annotation, type) and issubclass(annotation, BaseModel) and annotation.model_fields:
            yield from _walk(annotation, key + ".", key.split(".")[0], skip)
            continue
        names = ("--" + key.replace("_", "-"), *ALIASES.get(key, ()))
        kind, value_type = _kind(annotation, key)
        yield Flag(key, names, value_type, kind, _help(info, annotation, kind), section, _metavar(annotation, kind))


def _metavar(annotation: Any, kind: str) -> str | None:
    if kind == "mapping":
        return "KEY=VALUE"
    if typing.get_origin(annotation) is Literal:
        return "|".join(str(v) for v in typing.get_args(annotation))
    return None


def _without_none(annotation: Any) -> Any:
    if typing.get_origin(annotation) in (Union, types.UnionType):
        rest = [arg for arg in typing.get_args(annotation) if arg is not type(None)]
        if len(rest) == 1:
            return rest[0]
    return annotation


def _kind(annotation: Any, key: str) -> tuple[Literal["value", "switch", "mapping", "text"], type]:
    origin = typing.get_origin(annotation)
    if annotation is bool:
        return "switch", bool
    if annotation in (int, float, str, Path):
        return "value", annotation
    if origin is Literal:
        return "value", str
    if origin is dict or annotation is dict:
        return "mapping", str
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):  # a component's options: KEY=VALUE
        return "mapping", str
    return "text", str  # unions of text and lists, SecretStr, ...


def _help(info: FieldInfo, annotation: Any, kind: str) -> str:
    parts = [info.description or ""]
    if kind == "mapping":
        parts.append("repeatable")
    elif not info.is_required():
        default = info.get_default(call_default_factory=True)
        if default is not None and default != {}:
            shown = default.as_posix() if isinstance(default, Path) else default
            parts.append(f"[default: {shown}]")
    return ". ".join(p.rstrip(".") for p in parts if p)


def overrides_from(flags: list[Flag], values: dict[str, Any]) -> dict[str, Any]:
    """The dotted overrides for `load_config` from the values the CLI parsed (by `param`)."""
    overrides: dict[str, Any] = {}
    for flag in flags:
        value = values.get(flag.param)
        if value is None or value == [] or value == ():
            continue
        if flag.kind == "mapping":
            for key, item in key_values(list(value)).items():
                overrides[f"{flag.key}.{key}"] = item
        elif flag.kind == "text":
            overrides[flag.key] = option_value(value)
        else:
            overrides[flag.key] = value
    return overrides


def key_values(items: list[str]) -> dict[str, Any]:
    """KEY=VALUE strings. A value stays the text as typed unless it is exactly a number,
    true/false or null (`3`, `0.5`, `true`), or a YAML list or mapping (`[a, b]`, `{x: 1}`);
    the component's `Options` model then converts it to the option's declared type (text
    where the option is a string: `subset=2023` stays "2023")."""
    parsed: dict[str, Any] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ConfigError(f"expected KEY=VALUE, got {item!r}")
        parsed[key] = option_value(value)
    return parsed


def option_value(text: str) -> Any:
    import yaml

    if not text:
        return ""
    try:
        value = yaml.safe_load(text)
    except yaml.YAMLError:
        return text
    if isinstance(value, dict | list):
        # only written as one (`[a, b]`, `{x: 1}`): `JSON please: ` or `- x` stay text
        return value if text.lstrip()[:1] in "[{" else text
    if value is None or isinstance(value, bool | int | float):
        # only when typed exactly so: `yes`, `1.10`, `007` and `1_000` stay text
        return value if json.dumps(value) == text.lower() else text
    return text

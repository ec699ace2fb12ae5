"""User-facing errors: the CLI prints them as one line and exits non-zero."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pydantic import ValidationError


class TeachloopError(Exception):
    """A problem the user can fix; the message says what to do."""


class ConfigError(TeachloopError):
    pass


class RunStoreError(TeachloopError):
    pass


class PluginError(TeachloopError):
    pass


class UnknownName(PluginError, ConfigError):
    """A name no plug-in of its kind is registered under (a config error and a plug-in error:
    callers catch it as either)."""


class RunStopped(TeachloopError):
    """A run stopped on purpose because going on would waste or hide something (a teacher
    that is down, data too poor to train on). The message names the cause and the file to
    read; `teachloop resume` continues once the cause is fixed."""


class DiskFull(TeachloopError):
    """No space left (or the disk quota spent) where teachloop writes `path`. `then` says what
    continues the work once space is freed; who knows better (the loop: `teachloop resume`)
    sets it on the way up. Nothing half-written is left: every write is whole or removed."""

    def __init__(self, path: object, quota: bool = False, then: str | None = None) -> None:
        super().__init__(path)
        self.path, self.quota, self.then = path, quota, then

    def __str__(self) -> str:
        what = "the disk quota is spent" if self.quota else "no space left on the disk"
        where = f" of {self.path}" if self.path is not None else " (the file was not named)"
        return f"{what}{where}: free some space there, then {self.then or 'run the command again'}"


def format_validation_error(exc: ValidationError, kind: str, source: str) -> str:
    """One line naming every invalid field: `invalid <kind> (<source>): field: problem; ...`."""
    parts = []
    for err in exc.errors():
        where = ".".join(str(p) for p in err["loc"]) or f"({kind})"
        parts.append(f"{where}: {err['msg'].removeprefix('Value error, ')}")
    return f"invalid {kind} ({source}): " + "; ".join(parts)

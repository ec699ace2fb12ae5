"""Ground-floor file helpers: atomic writes, JSON/JSONL/YAML reading with clear errors.

Every file teachloop writes goes through `atomic_write_text` (a temporary file in the same
folder, fsynced, renamed into place), so a kill never leaves half a file behind. Files and
temporary folders get the permissions the umask allows, like any file the user creates:
`tempfile` would make them owner-only.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from teachloop.errors import ConfigError, DiskFull, TeachloopError, format_validation_error

M = TypeVar("M", bound=BaseModel)


SECRET_KEYS = frozenset({"api_key", "token", "access_token", "authorization", "password", "secret"})
REDACTED = "<given; never stored>"


def redact_secrets(value: Any) -> Any:
    """A copy of nested dicts/lists with the value of every credential-like key replaced:
    what teachloop writes to disk never holds a key, token or authorization header."""
    if isinstance(value, dict):
        return {
            k: (REDACTED if str(k).lower() in SECRET_KEYS and v is not None else redact_secrets(v))
            for k, v in value.items()
        }
    if isinstance(value, list):
        return [redact_secrets(v) for v in value]
    return value


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def make_temp_dir(parent: Path, prefix: str, suffix: str = ".tmp") -> Path:
    """A fresh folder inside `parent`, with the umask's permissions (not mkdtemp's 0700)."""
    parent.mkdir(parents=True, exist_ok=True)
    path = Path(tempfile.mkdtemp(dir=parent, prefix=prefix, suffix=suffix))
    os.chmod(path, 0o777 & ~_umask())
    return path


def file_digest(path: Path) -> str:
    """sha256 of a file's content, read in blocks."""
    digest = hashlib.sha256()
    with Path(path).open("rb") as handle:
        while block := handle.read(1 << 22):
            digest.update(block)
    return digest.hexdigest()


def follow_umask(folder: Path) -> None:
    """Give the files a library wrote under `folder` the umask's permissions (safetensors
    writes its weights owner-only, which locks a team out of a shared run folder)."""
    mask = _umask()
    for path in [Path(folder), *Path(folder).rglob("*")]:
        if path.is_symlink():
            continue
        os.chmod(path, (0o777 if path.is_dir() else 0o666) & ~mask)


FULL_DISK_TEXT = {"No space left on device": False, "Disk quota exceeded": True}  # strerror -> quota


def full_disk(exc: BaseException | None) -> DiskFull | None:
    """A DiskFull (its path left to the caller) when `exc`, or an exception it came from, says
    the disk is full or the quota spent: an OSError with ENOSPC or EDQUOT, or a library's own
    error carrying that text (safetensors' SafetensorError, pyarrow's); None otherwise."""
    seen: list[BaseException] = []
    while exc is not None and not any(exc is s for s in seen):
        seen.append(exc)
        if isinstance(exc, DiskFull):
            return exc
        if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT):
            return DiskFull(exc.filename, quota=exc.errno == errno.EDQUOT)
        for text, quota in FULL_DISK_TEXT.items():
            if text in str(exc):
                return DiskFull(None, quota=quota)
        exc = exc.__cause__ or exc.__context__
    return None


def atomic_write_text(path: Path, text: str) -> None:
    """Write a file whole or not at all; a folder that may not be written, or a full disk, is
    one TeachloopError naming the file (DiskFull for a full disk)."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    except OSError as exc:
        if (full := full_disk(exc)) is not None:
            raise DiskFull(path, full.quota) from None
        raise TeachloopError(f"cannot write {path}: {exc.strerror or exc} (is its folder read-only?)") from None
    try:
        os.fchmod(fd, 0o666 & ~_umask())
        with os.fdopen(fd, "w") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException as exc:
        Path(tmp).unlink(missing_ok=True)
        if isinstance(exc, OSError):  # a full disk (the usual one here), an I/O error
            if (full := full_disk(exc)) is not None:
                raise DiskFull(path, full.quota) from None
            raise TeachloopError(f"cannot write {path}: {exc.strerror or exc}") from None
        raise


def write_json(path: Path, value: BaseModel | dict[str, Any] | list[Any]) -> None:
    if isinstance(value, BaseModel):
        text = value.model_dump_json(indent=2)
    else:
        text = json.dumps(value, indent=2)
    atomic_write_text(path, text + "\n")


def write_jsonl(path: Path, rows: Iterable[BaseModel | dict[str, Any]]) -> None:
    lines = [r.model_dump_json() if isinstance(r, BaseModel) else json.dumps(r) for r in rows]
    atomic_write_text(path, "".join(line + "\n" for line in lines))


def read_text(path: Path | str, what: str = "") -> str:
    """A text file's content, as UTF-8. Every text file teachloop reads comes through here, so
    a file that is missing, a folder, unreadable or not UTF-8 is one TeachloopError naming it
    (`what` says what the file is for: "config file", "labels file")."""
    path = Path(path)
    name = f"{what} {path}" if what else str(path)
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise TeachloopError(f"{name} does not exist") from None
    except IsADirectoryError:
        raise TeachloopError(f"{name} is a folder, not a file") from None
    except PermissionError:
        raise TeachloopError(f"{name} cannot be read: permission denied") from None
    except UnicodeDecodeError as exc:
        raise TeachloopError(
            f"{name} is not UTF-8 text (byte 0x{exc.object[exc.start]:02x} at offset {exc.start}); "
            "save it as UTF-8 or restore it"
        ) from None
    except OSError as exc:
        raise TeachloopError(f"{name} cannot be read: {exc.strerror or exc}") from None


def read_model(path: Path, model: type[M]) -> M:
    """One pydantic model from a JSON file; a TeachloopError that names the file otherwise."""
    if not Path(path).exists():
        raise TeachloopError(f"{path} is missing")
    try:
        return model.model_validate_json(read_text(path))
    except ValidationError as exc:
        raise TeachloopError(format_validation_error(exc, model.__name__, str(path))) from None


def read_jsonl(path: Path, model: type[M]) -> list[M]:
    """Rows of a JSONL file (none when it does not exist); a bad line names file and line."""
    path = Path(path)
    if not path.exists():
        return []
    rows = []
    for number, line in enumerate(read_text(path).splitlines(), start=1):
        if not line.strip():
            continue
        try:
            rows.append(model.model_validate_json(line))
        except ValidationError as exc:
            raise TeachloopError(format_validation_error(exc, model.__name__, f"{path} line {number}")) from None
    return rows


def read_yaml_mapping(path: str | Path, kind: str) -> dict[str, Any]:
    """A YAML file that must hold a mapping; clear errors for a missing or malformed file."""
    import yaml

    path = Path(path)
    if not path.exists():
        raise ConfigError(f"{kind} {path} does not exist")
    try:
        text = read_text(path, kind)
    except TeachloopError as exc:
        raise ConfigError(str(exc)) from None
    if not text.strip():
        raise ConfigError(f"{kind} {path} is empty; give it options (or leave it out to run the defaults)")
    try:
        loaded = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{kind} {path} is not valid YAML: {' '.join(str(exc).split())}") from None
    if loaded is None:
        raise ConfigError(f"{kind} {path} holds no options (only comments); give it options or leave it out")
    if not isinstance(loaded, dict):
        raise ConfigError(f"{kind} {path} must hold a mapping of options")
    return loaded


def cache_root() -> Path:
    """teachloop's model cache: $TEACHLOOP_CACHE, else $XDG_CACHE_HOME/teachloop or ~/.cache/teachloop."""
    base = os.environ.get("TEACHLOOP_CACHE") or Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "teachloop"
    return Path(base)

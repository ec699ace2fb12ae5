"""The one guard for writes that replace or delete a folder a command was pointed at.

Nothing under a run or bench folder is deleted or overwritten except by the phase that owns
it (RunStore's phase writers), so a command's output folder may not lie inside one. A folder
that is not empty is replaced only when it is clearly the command's own earlier output: it
carries the command's marker file (an export folder has `.teachloop-export`)."""

from __future__ import annotations

from pathlib import Path

from teachloop.errors import ConfigError
from teachloop.runs.loop.store import MARKER

BENCH_FILE = "bench.yaml"
EXPORT_MARKER = ".teachloop-export"


def enclosing_run(path: Path) -> Path | None:
    """The run or bench folder `path` is (or lies in), if any."""
    resolved = Path(path).resolve()
    for folder in (resolved, *resolved.parents):
        if (folder / MARKER).is_file() or (folder / BENCH_FILE).is_file():
            return folder
    return None


def check_output_folder(out: Path, option: str, marker: str, overwrite: bool) -> None:
    """Refuse an output folder the command may not write: inside a run or bench folder, a
    file, or a folder that is not empty and not the command's own output (no `marker`)."""
    holder = enclosing_run(out)
    if holder is not None:
        kind = "run" if (holder / MARKER).is_file() else "bench"
        raise ConfigError(
            f"{option} {out} is inside the {kind} folder {holder}, where only its phases write; choose a folder "
            "outside it"
        )
    if out.exists() and not out.is_dir():
        raise ConfigError(f"{option} {out} is a file; choose a folder")
    if out.is_dir() and any(out.iterdir()):
        if not overwrite:
            raise ConfigError(f"{option} {out} exists and is not empty; choose another folder or pass --overwrite")
        if not (out / marker).is_file():
            raise ConfigError(
                f"{option} {out} is not empty and was not written by this command (it has no {marker} marker): "
                "--overwrite only replaces an earlier output; choose another folder or empty it yourself"
            )

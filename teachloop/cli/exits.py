"""How the command line ends: one line on stderr and an exit code for every error a user can
cause (teachloop's errors, bad flags, an unwritable folder, a full disk, a stop signal)."""

from __future__ import annotations

import sys
from typing import Any

import click
import typer
from rich.markup import escape
from typer._click.exceptions import ClickException as TyperClickException  # typer vendors click

from teachloop.cli.output import err_console
from teachloop.errors import TeachloopError


def run_app(app: typer.Typer, argv: list[str] | None) -> None:
    """Run `app` on `argv` (default: the command line); every error a user can cause is one
    line on stderr and an exit code: 2 for teachloop's errors, a bad flag or a full disk, 130
    for Ctrl-C, 128+signal for a stop during run or resume."""
    from teachloop.stopping import Interrupted

    try:
        code = app(args=argv, standalone_mode=False)
        if code == 130:  # typer's answer to a KeyboardInterrupt (Ctrl-C outside run and resume)
            err_console.print("interrupted (exit code 130)")
        if isinstance(code, int) and code:
            sys.exit(code)
    except Interrupted as exc:  # SIGTERM or Ctrl-C during run or resume: what stopped, how to go on
        err_console.print(escape(str(exc)), highlight=False, soft_wrap=True)
        sys.exit(exc.exit_code)
    except TeachloopError as exc:
        err_console.print(f"[red]error:[/] {escape(str(exc))}", highlight=False, soft_wrap=True)  # '.[ray]' stays
        sys.exit(2)
    except (click.ClickException, TyperClickException) as exc:
        message = " ".join(exc.format_message().split())
        ctx = getattr(exc, "ctx", None)
        where = f" (see `{ctx.command_path} --help`)" if ctx is not None and exc.exit_code == 2 else ""
        err_console.print(f"[red]error:[/] {escape(message)}{where}", highlight=False, soft_wrap=True)
        sys.exit(exc.exit_code)
    except OSError as exc:  # a file teachloop may not write (a read-only folder), a full disk
        full = _full_disk(exc)
        target = f" {exc.filename}" if exc.filename else ""
        message = str(full) if full is not None else f"cannot write or read{target}: {exc.strerror or exc}"
        err_console.print(f"[red]error:[/] {escape(message)}", highlight=False, soft_wrap=True)
        sys.exit(2)
    except click.exceptions.Abort:
        err_console.print("aborted")
        sys.exit(130)
    except KeyboardInterrupt:
        err_console.print("interrupted; resume with `teachloop resume <run folder>`")
        sys.exit(130)
    except Exception as exc:  # a library's own error for a full disk (safetensors, pyarrow): one line too
        full = _full_disk(exc)
        if full is None:
            raise
        err_console.print(f"[red]error:[/] {escape(str(full))}", highlight=False, soft_wrap=True)
        sys.exit(2)


def _full_disk(exc: BaseException) -> Any:
    """The DiskFull `exc` stands for (None when it is not a full disk), with the file it
    names where the code that wrote it did not say (the run's phases and files all do)."""
    from teachloop.io import full_disk

    full = full_disk(exc)
    if full is not None and full.path is None:
        full.path = getattr(exc, "filename", None)
    return full

"""`teachloop <kind> list | show NAME`, one pair per registry, and `teachloop environments check`."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from teachloop.cli.output import console
from teachloop.runs.flags import key_values

if TYPE_CHECKING:
    from teachloop.registry import Kind


BUILT_IN_NAMES = {
    "trackers": {
        "none": "none (tracker)\n  No tracker, the default: the run writes metrics.jsonl, report.md and its plots "
        "only.\n\noptions: none"
    },
}


def _add_registry_commands(app: typer.Typer, kind: Kind) -> None:
    """`teachloop <command> list` and `show NAME` for a kind's registry (imported only when the
    command runs, so `teachloop --help` stays fast)."""
    command = kind.command
    kind_app = typer.Typer(
        help=f"{kind.summary} (the `{kind.group}` entry points; a run names one as {kind.config_key}).",
        no_args_is_help=True,
    )

    built_in = BUILT_IN_NAMES.get(command, {})  # names a run takes that no entry point registers

    @kind_app.command("list")
    def list_names() -> None:
        """List the installed names, one per line (`show NAME` describes one)."""
        for name in [*built_in, *kind.load_registry().names()]:
            console.print(name)

    def show(name: str) -> None:
        """Its description, its options (type, default, help) and its declared capabilities."""
        typer.echo(built_in[name] if name in built_in else kind.load_registry().describe(name))

    # set here, not written as an annotation: typer evaluates annotation text in the module's
    # namespace, where `command` does not exist
    show.__annotations__ = {
        "name": Annotated[str, typer.Argument(help=f"A name from `teachloop {command} list`.")],
        "return": None,
    }
    kind_app.command("show")(show)
    if command == "environments":
        kind_app.command("check")(check_environment_command)

    app.add_typer(kind_app, name=command)


def check_environment_command(
    name: Annotated[str, typer.Argument(help="A name from `teachloop environments list`.")],
    env_option: Annotated[
        list[str] | None, typer.Option("--env-option", help="Environment option KEY=VALUE (repeatable).")
    ] = None,
    items: Annotated[int, typer.Option(min=0, help="Eval items to print.")] = 3,
) -> None:
    """Load an environment as a run would and print what it is: its skill tree, its split sizes,
    a few eval items scored against their own answers, and its capabilities. The load-time
    checks (labels in the tree, `score` returns an Attempt) run first; a failure is one line."""
    from teachloop.environments import get_environment
    from teachloop.environments.check import describe_environment

    env = get_environment(name, **key_values(env_option or []))  # runs check_environment
    for line in describe_environment(env, items):
        typer.echo(line)


def add_kind_commands(app: typer.Typer) -> None:
    """`list` and `show NAME` (and `environments check`) for every kind, in the order of KINDS."""
    from teachloop.registry import KINDS

    for kind in KINDS:
        _add_registry_commands(app, kind)

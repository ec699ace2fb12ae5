"""The `teachloop` command line."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Any

import click
import typer
from rich.console import Console

from teachloop.errors import TeachloopError

app = typer.Typer(
    name="teachloop",
    help=(
        "Closed-loop teacher-student data generation: evaluate the student, diagnose its missing skills, "
        "plan and generate targeted data, train, repeat. `teachloop run` with no options runs the embedded "
        "default (skillworld + tiny student, CPU only, a few minutes)."
    ),
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
policies_app = typer.Typer(help="Data-generation policies (the `teachloop.policies` entry points).", no_args_is_help=True)
environments_app = typer.Typer(help="Environments (the `teachloop.environments` entry points).", no_args_is_help=True)
app.add_typer(policies_app, name="policies")
app.add_typer(environments_app, name="environments")

console = Console()
err_console = Console(stderr=True)


def _finish(run_dir: Path, quiet: bool) -> None:
    from teachloop.runs.report import load_metrics, rich_table, write_report

    report = write_report(run_dir)
    if not quiet:
        Console(width=max(console.width, 160)).print(rich_table(load_metrics(run_dir)))
        console.print(f"report: {report}  curves: {report.parent / 'learning_curves.png'}")


@app.command()
def run(
    config: Annotated[Path | None, typer.Option("--config", "-c", help="YAML run config; flags override it.")] = None,
    out: Annotated[Path | None, typer.Option(help="Folder the run folder is created in [default: runs].")] = None,
    name: Annotated[str | None, typer.Option(help="Run folder name [default: <policy>-<env>-s<seed>-<time>].")] = None,
    environment: Annotated[str | None, typer.Option("--environment", "--env", help="Environment name.")] = None,
    policy: Annotated[str | None, typer.Option(help="Policy name (see `teachloop policies list`).")] = None,
    student_model: Annotated[
        str | None, typer.Option(help="'embedded', a local model folder, or a hub id (needs network).")
    ] = None,
    iterations: Annotated[int | None, typer.Option(help="Rounds of diagnose-plan-generate-train [default: 4].")] = None,
    budget: Annotated[int | None, typer.Option(help="New training examples per iteration [default: 600].")] = None,
    data: Annotated[
        str | None, typer.Option(help="accumulate: train on all data so far; replace: this iteration's only.")
    ] = None,
    student: Annotated[
        str | None, typer.Option(help="continue: from the last checkpoint; restart: from the base each iteration.")
    ] = None,
    replay: Annotated[int | None, typer.Option(help="Seed-pool examples mixed into every training set.")] = None,
    epochs: Annotated[float | None, typer.Option(help="Training epochs per iteration.")] = None,
    lr: Annotated[float | None, typer.Option(help="Learning rate.")] = None,
    batch_size: Annotated[int | None, typer.Option(help="Training batch size.")] = None,
    seed: Annotated[int | None, typer.Option(help="Seed for data, sampling and training.")] = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress output.")] = False,
) -> None:
    """Start a new run: evaluate -> diagnose -> plan -> generate -> train, for N iterations.

    Writes everything to <out>/<name>/ (resumable with `teachloop resume`), then prints the
    per-iteration, per-skill accuracy table and writes report.md and learning_curves.png.
    """
    from teachloop.runs.config import load_config

    overrides: dict[str, Any] = {
        "out": out,
        "name": name,
        "environment": environment,
        "policy": policy,
        "student_model": student_model,
        "iterations": iterations,
        "budget": budget,
        "data": data,
        "student": student,
        "replay": replay,
        "train.epochs": epochs,
        "train.learning_rate": lr,
        "train.batch_size": batch_size,
        "seed": seed,
    }
    cfg = load_config(config, overrides)
    cfg.check_plugins()  # a typo fails in a second, before torch and transformers load
    from teachloop.runs.loop import Loop

    loop = Loop.create(cfg, progress=not quiet)
    loop.run()
    _finish(loop.store.root, quiet)


@app.command()
def resume(
    run_dir: Annotated[Path, typer.Argument(help="A run folder made by `teachloop run`.")],
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress output.")] = False,
) -> None:
    """Continue a stopped or killed run from its first unfinished phase."""
    from teachloop.runs.store import RunStore

    RunStore.open(run_dir).config().check_plugins()
    from teachloop.runs.loop import Loop

    loop = Loop.resume(run_dir, progress=not quiet)
    loop.run()
    _finish(loop.store.root, quiet)


@app.command()
def report(run_dir: Annotated[Path, typer.Argument(help="A run folder.")]) -> None:
    """Print the accuracy table of a run and (re)write its report.md and learning_curves.png."""
    _finish(run_dir, quiet=False)


@policies_app.command("list")
def policies_list() -> None:
    """List the installed policies."""
    from teachloop.agents.policies import available_policies

    for name in available_policies():
        console.print(name)


@environments_app.command("list")
def environments_list() -> None:
    """List the installed environments."""
    from teachloop.environments import available_environments

    for name in available_environments():
        console.print(name)


@app.command("build-base")
def build_base(
    out: Annotated[Path | None, typer.Option(help="Where to write the checkpoint [default: the packaged one].")] = None,
    seed: Annotated[int, typer.Option(help="Seed for data and initialisation.")] = 0,
) -> None:
    """Rebuild the embedded student's base checkpoint (tiny Llama + char tokenizer) reproducibly."""
    from teachloop.students import EMBEDDED_BASE
    from teachloop.students.build_base import build_base_checkpoint

    target = out or EMBEDDED_BASE
    build_base_checkpoint(target, seed=seed, progress=True)
    console.print(f"base checkpoint written to {target}")


def main(argv: list[str] | None = None) -> None:
    try:
        app(args=argv, standalone_mode=False)
    except TeachloopError as exc:
        err_console.print(f"[red]error:[/] {exc}", highlight=False, soft_wrap=True)
        sys.exit(2)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except click.exceptions.Abort:
        err_console.print("aborted")
        sys.exit(130)
    except KeyboardInterrupt:
        err_console.print("interrupted; resume with `teachloop resume <run folder>`")
        sys.exit(130)


if __name__ == "__main__":
    main()

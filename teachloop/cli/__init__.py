"""The `teachloop` command line: the commands. What they print is built where its subject
lives (runs/reporting, runs/loop/teacher_check, environments/check, inference/vllm_server);
here and in the modules beside this one are the commands, their flags and how they exit."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from teachloop.cli.exits import run_app
from teachloop.cli.kinds import add_kind_commands
from teachloop.cli.output import VERBOSE, VERBOSE_HELP, console, engines_verbose, err_console
from teachloop.cli.run_options import RUN_FLAGS, run_command
from teachloop.cli.teacher import skills_app, teacher_app
from teachloop.errors import ConfigError
from teachloop.runs.flags import overrides_from

app = typer.Typer(
    name="teachloop",
    help=(
        "Closed-loop teacher-student data generation: evaluate the student, diagnose its missing skills, "
        "plan and generate targeted data, train, repeat. `teachloop run` with no options runs the embedded "
        "default (skillworld + tiny student, CPU only, about a minute)."
    ),
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,  # help texts are plain: "[default: 600]" must not be read as a markup tag
)
app.add_typer(skills_app, name="skills")
app.add_typer(teacher_app, name="teacher")

add_kind_commands(app)


def _finish(run_dir: Path, quiet: bool) -> None:
    from teachloop.runs.reporting.finish import finish_run

    finish_run(run_dir, quiet, console, err_console)


def _run(config: Path | None, teacher: str | None, quiet: bool, verbose: bool = False, **values: Any) -> None:
    """Start a new run: evaluate -> diagnose -> plan -> generate -> train, for N iterations.

    Writes everything to <out>/<name>/ (resumable with `teachloop resume`), then prints the
    per-iteration, per-skill accuracy table and writes report.md and learning_curves.png.
    Every setting of the run config (`--config FILE`) has a flag, dotted for nested ones
    (`--train.epochs 2`, `--teacher.max-retries 8`); flags override the file.
    """
    from teachloop.runs.config import load_config

    overrides = overrides_from(RUN_FLAGS, values)
    if teacher is not None:
        from teachloop.agents.teacher import parse_teacher_spec

        overrides["teacher.backend"], overrides["teacher.model"] = parse_teacher_spec(teacher)
    cfg = load_config(config, overrides)
    engines_verbose(verbose)
    from datetime import datetime

    if cfg.name is None:  # named here, so that the folder checked now is the one made
        cfg = cfg.model_copy(update={"name": cfg.default_name(datetime.now().strftime("%Y%m%d-%H%M%S"))})
    from teachloop.runs.loop.assemble import assemble_run

    parts = assemble_run(cfg, models=False)  # a typo fails in a second, before torch and transformers load
    from teachloop.runs.loop.checks import check_teacher_reachable
    from teachloop.runs.loop.store import RunStore

    RunStore.check_new(cfg.out / cfg.name)  # a bad --out, too, fails before torch loads
    if cfg.teacher is not None:
        check_teacher_reachable(cfg.teacher)  # a refused connection: one line now, not after torch loads
    from teachloop.runs.loop.runner import Loop
    from teachloop.stopping import stop_signals

    with stop_signals():  # SIGTERM, Ctrl-C: replies in flight are kept, then one line says what stopped
        loop = Loop.create(parts, progress=not quiet)
        loop.run()
        _finish(loop.store.root, quiet)


app.command("run")(run_command(_run))


@app.command()
def resume(
    run_dir: Annotated[Path, typer.Argument(help="A run folder made by `teachloop run`.")],
    min_yield: Annotated[
        float | None,
        typer.Option(help="Change the run's min_yield (e.g. after it stopped on a low yield you accept)."),
    ] = None,
    iterations: Annotated[
        int | None,
        typer.Option(help="Extend the run to this many iterations (a finished run continues from its last one)."),
    ] = None,
    allow_config_change: Annotated[
        bool,
        typer.Option(
            "--allow-config-change",
            help="Continue although config.yaml was edited in a way that changes results (recorded in run.json).",
        ),
    ] = False,
    tracking: Annotated[
        str | None,
        typer.Option(
            help="Change the tracker: none or a registered one (`teachloop trackers list`); the new one gets the whole history, with default options."
        ),
    ] = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress output.")] = False,
    verbose: Annotated[bool, typer.Option(*VERBOSE, help=VERBOSE_HELP)] = False,
) -> None:
    """Continue a stopped or killed run from its first unfinished phase.

    Teacher replies already paid for come from the run's cache. `--iterations N` extends a
    finished run to N iterations."""
    from teachloop.runs.loop.assemble import assemble_run
    from teachloop.runs.loop.store import RunStore

    engines_verbose(verbose)
    store = RunStore.open(run_dir)
    with store.lock():  # first: a run another process holds is refused before anything changes
        store.check_integrity()  # a damaged run is refused before torch loads (and checked once)
        if tracking is not None:
            from teachloop.runs.loop.tracking import check_tracker

            check_tracker(tracking)  # before the run folder's config says so
        changes: dict[str, Any] = {
            k: v
            for k, v in (("min_yield", min_yield), ("tracking", tracking), ("iterations", iterations))
            if v is not None
        }
        if iterations is not None and iterations < store.config().iterations:
            raise ConfigError(
                f"--iterations {iterations}: the run already has {store.config().iterations} iterations planned; a "
                "run is extended, never shortened (its finished iterations stay)"
            )
        if tracking is not None and tracking != store.config().tracking:
            changes["tracking_options"] = {}  # the options were the old tracker's
        config = store.changed_config(**changes)
        parts = assemble_run(config, models=False)  # every check before config.yaml changes
        if changes:
            store.save_config(config)
        from teachloop.runs.loop.runner import Loop
        from teachloop.stopping import stop_signals

        with stop_signals():  # SIGTERM, Ctrl-C: replies in flight are kept, then one line says what stopped
            loop = Loop.resume(run_dir, progress=not quiet, allow_config_change=allow_config_change, parts=parts)
            loop.run()
    _finish(loop.store.root, quiet)


@app.command()
def report(run_dir: Annotated[Path, typer.Argument(help="A run folder.")]) -> None:
    """Print the accuracy table of a run and (re)write its report.md and learning_curves.png."""
    _finish(run_dir, quiet=False)


@app.command("show")
def show_command(
    folder: Annotated[Path, typer.Argument(help="A run folder or a bench folder.")],
    no_open: Annotated[bool, typer.Option("--no-open", help="Only write the page; do not open a browser.")] = False,
) -> None:
    """Write show.html, one self-contained HTML page of a run or bench (works offline), and open it.

    A run's page: accuracy per skill-tree node and iteration, learning curves, a heat map, and
    per iteration the plan and its rationale, the examples per skill with their lineage, the
    rejected ones by reason and the teacher's failures; a skill filter (or #skill=NAME in the
    URL). A bench's page: the leaderboard, linked to each run's own page (written too). The
    browser is not opened with --no-open, with CI=true or without a display; the path is printed.
    """
    from teachloop.runs.reporting.show import open_page, write_show

    path = write_show(folder)
    console.print(f"page: {path}", soft_wrap=True, highlight=False)
    if not no_open:
        open_page(path)


@app.command()
def export(
    source: Annotated[Path, typer.Argument(help="A run folder, or a bench folder (its finished runs).")],
    out: Annotated[Path, typer.Option(help="Folder to write the dataset and its card (README.md) to.")],
    fmt: Annotated[
        str,
        typer.Option(
            "--format",
            help="hf: DatasetDict.save_to_disk (load_from_disk) | parquet: <split>.parquet | jsonl: <split>.jsonl.",
        ),
    ] = "hf",
    merged: Annotated[
        bool,
        typer.Option("--merged", help="One 'train' split instead of one per iteration (run) or per run (bench)."),
    ] = False,
    overwrite: Annotated[bool, typer.Option("--overwrite", help="Replace OUT when it is not empty.")] = False,
    push_to_hub: Annotated[
        str | None,
        typer.Option(
            "--push-to-hub",
            metavar="REPO",
            help="Also push the splits and the card to this hub dataset (needs network and a hub login).",
        ),
    ] = None,
) -> None:
    """Export the generated training data, with each example's lineage, as a Hugging Face dataset.

    Only finished generate phases are exported. OUT gets the splits and README.md, a dataset
    card with the run's configuration, policy, teacher, per-iteration yields and accuracy.
    """
    from teachloop.runs.export.dataset import export as export_data

    result = export_data(source, out, fmt, merged=merged, overwrite=overwrite, push_to_hub=push_to_hub)
    console.print(result.summary(), soft_wrap=True, highlight=False)
    if result.skipped:
        console.print(f"not exported (unfinished runs): {', '.join(result.skipped)}", soft_wrap=True)
    console.print(f"card: {result.out / 'README.md'}", soft_wrap=True, highlight=False)
    if result.pushed:
        console.print(f"pushed to {result.pushed}", soft_wrap=True, highlight=False)


@app.command()
def bench(
    bench_file: Annotated[Path, typer.Argument(help="Bench file (YAML): environments, policies, seeds, budget, ...")],
    out: Annotated[
        Path | None, typer.Option(help="Bench folder [default: bench-runs/<file stem>, '-quick' added with --quick].")
    ] = None,
    workers: Annotated[int, typer.Option(help="Runs in parallel, each in its own process.")] = 1,
    quick: Annotated[bool, typer.Option("--quick", help="Apply the bench file's quick: overrides.")] = False,
    ray: Annotated[
        bool,
        typer.Option(
            "--ray",
            help="Run every run as a Ray task asking the bench file's resources: (default 1 CPU, 0 GPUs), on a "
            "local Ray instance (pip install 'teachloop[ray]').",
        ),
    ] = False,
    ray_address: Annotated[
        str | None,
        typer.Option(
            "--ray-address",
            metavar="ADDRESS",
            help="With --ray (implies it): join this Ray cluster instead ('auto', 'HOST:6379', 'ray://HOST:10001'). "
            "--out must then be on storage every node mounts at the same path.",
        ),
    ] = None,
    verbose: Annotated[
        bool,
        typer.Option(
            *VERBOSE,
            help="Leave vLLM's, Ray's and Triton's output in each run's log in the bench folder's logs/ "
            "(default: the run folder's logs/engines.log).",
        ),
    ] = False,
) -> None:
    """Benchmark policies: every (environment, policy, seed) as a resumable run with the same budget.

    Finished runs are skipped and unfinished ones resumed, so a rerun redoes nothing that finished.
    Writes leaderboard.md, learning_curves.png and skill_heatmap.png to the bench folder.
    Runs go one at a time, in --workers processes, or as Ray tasks (--ray, --ray-address).
    """
    from teachloop.runs.bench.harness import run_bench
    from teachloop.runs.reporting.finish import finish_bench
    from teachloop.runs.reporting.report import write_report

    engines_verbose(verbose)

    def progress(line: str) -> None:
        err_console.print(line, highlight=False, soft_wrap=True)

    done = run_bench(
        bench_file,
        out=out,
        workers=workers,
        quick=quick,
        progress=progress,
        ray=ray,
        ray_address=ray_address,
        finished=write_report,  # each run's report.md as soon as it finishes
    )
    finish_bench(done, console).raise_for_failures()


@app.command()
def serve(
    model: Annotated[str, typer.Argument(help="A model folder, a .gguf file or a hub id (needs network).")],
    port: Annotated[int, typer.Option(help="Port on 127.0.0.1.")] = 8000,
    name: Annotated[
        str | None, typer.Option(help="The model name clients ask for [default: the model as given].")
    ] = None,
    log: Annotated[Path, typer.Option(help="Where the server's log goes.")] = Path("vllm-serve.log"),
) -> None:
    """Serve a teacher model with `vllm serve` (OpenAI-compatible, structured outputs), set up
    for this machine (CPU settings without a GPU; a .gguf file converted once and cached).

    Then: teachloop run --teacher openai:<name> --teacher-base-url http://127.0.0.1:<port>/v1
    """
    from teachloop.inference.vllm_server import serve_until_stopped
    from teachloop.students.checkpoints import resolve_checkpoint

    serve_until_stopped(model, log, port=port, served=name or model, resolve=resolve_checkpoint, say=console.print)


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
    """The `teachloop` command (argv: the command line's arguments); errors end in one line."""
    run_app(app, argv)

"""The `teachloop` command line."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import click
import typer
from rich.console import Console
from rich.markup import escape
from typer._click.exceptions import ClickException as TyperClickException  # typer vendors click

from teachloop.errors import ConfigError, TeachloopError
from teachloop.runs.flags import key_values, overrides_from

if TYPE_CHECKING:
    from teachloop.registry import Registry

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
skills_app = typer.Typer(help="Skill trees: discover them with the teacher.", no_args_is_help=True)
app.add_typer(skills_app, name="skills")
teacher_app = typer.Typer(help="The LLM teacher: check what it writes before a run pays for it.", no_args_is_help=True)
app.add_typer(teacher_app, name="teacher")

# soft_wrap: piped or logged output keeps each line whole (rich cuts at 80 columns off a terminal)
console = Console(soft_wrap=True)
err_console = Console(stderr=True, soft_wrap=True)


# -- `teachloop <kind> list | show NAME`, one pair per registry ------------------------------
def _registry(where: str, attribute: str) -> Registry:
    import importlib

    registry: Registry = getattr(importlib.import_module(where), attribute)
    return registry


BUILT_IN_NAMES = {
    "trackers": {
        "none": "none (tracker)\n  No tracker, the default: the run writes metrics.jsonl, report.md and its plots "
        "only.\n\noptions: none"
    },
}


def _add_registry_commands(command: str, summary: str, group: str, where: str, attribute: str) -> None:
    """`teachloop <command> list` and `show NAME` for the registry `where.attribute` (imported
    only when the command runs, so `teachloop --help` stays fast)."""
    kind_app = typer.Typer(help=f"{summary} (the `{group}` entry points).", no_args_is_help=True)

    built_in = BUILT_IN_NAMES.get(command, {})  # names a run takes that no entry point registers

    @kind_app.command("list")
    def list_names() -> None:
        """List the installed names, one per line (`show NAME` describes one)."""
        for name in [*built_in, *_registry(where, attribute).names()]:
            console.print(name)

    def show(name: str) -> None:
        """Its description, its options (type, default, help) and its declared capabilities."""
        typer.echo(built_in[name] if name in built_in else _registry(where, attribute).describe(name))

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


for _command, _summary, _group, _where, _attribute in (
    ("policies", "Data-generation policies", "teachloop.policies", "teachloop.agents.policies", "POLICIES"),
    ("environments", "Environments", "teachloop.environments", "teachloop.environments", "ENVIRONMENTS"),
    ("engines", "Data-generation engines", "teachloop.engines", "teachloop.agents.engines", "ENGINES"),
    ("backends", "Teacher backends", "teachloop.teacher_backends", "teachloop.agents.teacher", "TEACHER_BACKENDS"),
    ("trackers", "Experiment trackers", "teachloop.trackers", "teachloop.runs.loop.tracking", "TRACKERS"),
    (
        "eval-backends",
        "Student evaluation backends",
        "teachloop.eval_backends",
        "teachloop.students.eval_backends",
        "EVAL_BACKENDS",
    ),
):
    _add_registry_commands(_command, _summary, _group, _where, _attribute)


VERBOSE = ("--verbose", "-v")
VERBOSE_HELP = "Show vLLM's, Ray's and Triton's own output on the terminal (default: the run's logs/engines.log)."


def _engines_verbose(verbose: bool) -> None:
    """-v: the inference engines write to the terminal, as without teachloop."""
    from teachloop.inference.engine_logs import set_verbose

    set_verbose(verbose)


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
    _engines_verbose(verbose)
    from teachloop.runs.loop.checks import check_run_config

    env = check_run_config(cfg, models=False)  # a typo fails in a second, before torch and transformers load
    from datetime import datetime

    from teachloop.runs.loop.checks import check_teacher_reachable
    from teachloop.runs.loop.store import RunStore

    if cfg.name is None:  # named here, so that the folder checked now is the one made
        cfg = cfg.model_copy(update={"name": cfg.default_name(datetime.now().strftime("%Y%m%d-%H%M%S"))})
    RunStore.check_new(cfg.out / cfg.name)  # a bad --out, too, fails before torch loads
    if cfg.teacher is not None:
        check_teacher_reachable(cfg.teacher)  # a refused connection: one line now, not after torch loads
    from teachloop.runs.loop.runner import Loop
    from teachloop.stopping import stop_signals

    with stop_signals():  # SIGTERM, Ctrl-C: replies in flight are kept, then one line says what stopped
        loop = Loop.create(cfg, progress=not quiet, env=env)
        loop.run()
        _finish(loop.store.root, quiet)


def _run_command() -> Any:
    """`_run` with one typer option per flag of the run config (`teachloop.runs.flags`)."""
    import inspect

    def option(annotation: Any, *names: str, help: str, metavar: str | None = None) -> Any:
        return Annotated[annotation, typer.Option(*names, help=help, metavar=metavar, show_default=False)]

    keyword = inspect.Parameter.KEYWORD_ONLY
    params = [
        inspect.Parameter(
            "config", keyword, default=None,
            annotation=option(Path | None, "--config", "-c", help="YAML run config; flags override it."),
        ),
        inspect.Parameter(
            "teacher", keyword, default=None,
            annotation=option(
                str | None, "--teacher",
                help="LLM teacher <backend>:<model>: 'vllm:<folder, .gguf or hub id>' (in-process vLLM), "
                "'openai:<model>' (any OpenAI-compatible endpoint), 'raydata:<model>' (that endpoint through Ray "
                "Data LLM), 'raydata-vllm:<folder, .gguf or hub id>' (vLLM engines run by Ray Data) or "
                "'<plug-in backend>:<model>' (`teachloop backends list`).",
            ),
        ),
    ]  # fmt: skip
    for flag in RUN_FLAGS:
        if flag.kind == "switch":
            names = tuple(f"{name}/--no-{name[2:]}" for name in flag.names)
            annotation = option(bool | None, *names, help=flag.help)
        elif flag.kind == "mapping":
            annotation = option(list[str] | None, *flag.names, help=flag.help, metavar=flag.metavar)
        else:
            annotation = option(flag.type | None, *flag.names, help=flag.help, metavar=flag.metavar)
        params.append(inspect.Parameter(flag.param, keyword, default=None, annotation=annotation))
    params.append(
        inspect.Parameter(
            "quiet", keyword, default=False, annotation=option(bool, "--quiet", "-q", help="No progress output.")
        )
    )
    params.append(
        inspect.Parameter("verbose", keyword, default=False, annotation=option(bool, *VERBOSE, help=VERBOSE_HELP))
    )

    def run(**values: Any) -> None:
        _run(**values)

    run.__doc__ = _run.__doc__
    run.__signature__ = inspect.Signature(params, return_annotation=None)  # type: ignore[attr-defined]
    run.__annotations__ = {p.name: p.annotation for p in params} | {"return": None}
    return run


def _run_flags() -> list[Any]:
    from teachloop.runs.config import RunConfig
    from teachloop.runs.flags import flags_of

    # --teacher <backend>:<model> sets these two
    return flags_of(RunConfig, skip=frozenset({"teacher.backend", "teacher.model"}))


RUN_FLAGS = _run_flags()
app.command("run")(_run_command())


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
    from teachloop.runs.loop.checks import check_run_config
    from teachloop.runs.loop.store import RunStore

    _engines_verbose(verbose)
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
        env = check_run_config(config, models=False)  # every check before config.yaml changes
        if changes:
            store.save_config(config)
        from teachloop.runs.loop.runner import Loop
        from teachloop.stopping import stop_signals

        with stop_signals():  # SIGTERM, Ctrl-C: replies in flight are kept, then one line says what stopped
            loop = Loop.resume(run_dir, progress=not quiet, allow_config_change=allow_config_change, env=env)
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
    from teachloop.runs.bench.harness import rich_leaderboard, run_bench
    from teachloop.runs.bench.results import table_width

    _engines_verbose(verbose)

    def progress(line: str) -> None:
        err_console.print(line, highlight=False, soft_wrap=True)

    results = run_bench(
        bench_file, out=out, workers=workers, quick=quick, progress=progress, ray=ray, ray_address=ray_address
    )
    table = rich_leaderboard(results)
    Console(width=max(console.width, table_width(table))).print(table)  # no cell split, whatever the terminal
    plots = "  plots: learning_curves.png, skill_heatmap.png" if results.rows else ""
    console.print(f"leaderboard: {results.bench_dir / 'leaderboard.md'}{plots}", soft_wrap=True)
    results.raise_for_failures()


@teacher_app.command("check")
def teacher_check(
    teacher: Annotated[str, typer.Option(help="'vllm:<folder or .gguf>', 'openai:<model>' or '<backend>:<model>'.")],
    config: Annotated[
        Path | None, typer.Option("--config", "-c", help="YAML run config (teacher settings, verify, environment).")
    ] = None,
    environment: Annotated[str | None, typer.Option("--environment", "--env", help="Environment name.")] = None,
    env_option: Annotated[list[str] | None, typer.Option(help="Environment option KEY=VALUE (repeatable).")] = None,
    per_skill: Annotated[int, typer.Option(min=1, help="Items the teacher writes per leaf skill.")] = 5,
    teacher_base_url: Annotated[str | None, typer.Option(help="OpenAI-compatible base URL.")] = None,
    verify: Annotated[str | None, typer.Option(help="auto | checker | consistency | none.")] = None,
    answer_samples: Annotated[int | None, typer.Option(help="The teacher's re-answers per item [default: 1].")] = None,
    seed: Annotated[int | None, typer.Option(help="Seed of the requests and the teacher's samples.")] = None,
    cache: Annotated[
        Path | None, typer.Option(help="Teacher reply cache folder (a rerun pays nothing) [default: none].")
    ] = None,
    json_out: Annotated[Path | None, typer.Option("--json", help="Also write the counts as JSON here.")] = None,
) -> None:
    """Have a teacher write PER_SKILL items of every skill of an environment, as the default
    policy asks for them, verified as a run verifies them, and print the yield per skill with
    the reason for every item lost (and a few of them): a weak teacher shows wrong answers,
    a bad prompt shows wrong forms."""
    from teachloop.agents.teacher import parse_teacher_spec
    from teachloop.runs.config import load_config
    from teachloop.runs.loop.checks import check_run_config
    from teachloop.runs.loop.teacher_check import check_teacher, report_lines, rich_table

    backend, model = parse_teacher_spec(teacher)
    overrides: dict[str, Any] = {
        "environment": environment,
        "teacher.backend": backend,
        "teacher.model": model,
        "teacher.options.base_url": teacher_base_url,
        "verify": verify,
        "answer_samples": answer_samples,
        "seed": seed,
    }
    for key, value in key_values(env_option or []).items():
        overrides[f"environment_options.{key}"] = value
    cfg = load_config(config, overrides)
    env = check_run_config(cfg, models=False)
    report = check_teacher(cfg, env, per_skill, cache=cache)
    Console(width=max(console.width, 120)).print(rich_table(report))
    for line in report_lines(report):
        console.print(line, highlight=False, soft_wrap=True)
    if json_out is not None:
        from teachloop.io import atomic_write_text

        atomic_write_text(json_out, report.model_dump_json(indent=2))


@skills_app.command("discover")
def skills_discover(
    teacher: Annotated[str, typer.Option(help="'vllm:<path-or-id>' or 'openai:<model>'.")],
    out: Annotated[
        Path, typer.Option(help="Where to write the skill tree (.yaml, .yml or .json); labels go beside it.")
    ],
    environment: Annotated[str, typer.Option("--environment", "--env", help="Environment name.")] = "skillworld",
    env_option: Annotated[list[str] | None, typer.Option(help="Environment option KEY=VALUE (repeatable).")] = None,
    teacher_base_url: Annotated[str | None, typer.Option(help="OpenAI-compatible base URL.")] = None,
    sample: Annotated[int, typer.Option(help="Training examples the teacher reads to propose skills.")] = 20,
    max_skills: Annotated[int, typer.Option(help="At most this many skills.")] = 12,
    cache: Annotated[Path, typer.Option(help="Teacher reply cache (reruns pay nothing).")] = Path(".teachloop-cache"),
    seed: Annotated[int, typer.Option(help="Seed for the sample.")] = 0,
) -> None:
    """Have the teacher propose a skill tree for an environment and label every example with it.

    Writes OUT, a skill-tree file (name, parent, description per skill; edit it freely), and
    OUT's stem + '.labels.jsonl', one {"prompt": <question>, "skills": [...]} line per example.
    The jsonl and math environments read them with --env-option skill_tree=OUT
    --env-option labels_file=<labels>.
    """
    from teachloop.agents.teacher import TeacherConfig, TeacherLLM
    from teachloop.environments import get_environment
    from teachloop.environments.rows import Template
    from teachloop.skills.discovery import discover, save_discovered
    from teachloop.skills.tree_file import SUFFIXES
    from teachloop.students.checkpoints import resolve_checkpoint

    if out.suffix.lower() not in SUFFIXES:
        raise ConfigError(f"--out {out}: the skill tree is written as .yaml, .yml or .json")
    env = get_environment(environment, **key_values(env_option or []))
    cfg = TeacherConfig.from_spec(teacher, base_url=teacher_base_url)
    client = TeacherLLM(cfg, cache_dir=cache, resolve_model=resolve_checkpoint)
    examples = [*env.train_pool(), *env.eval_set()]
    found = discover(client, env.train_pool(), env.eval_set(), sample_size=sample, max_skills=max_skills, seed=seed)
    template = getattr(env, "template", None)  # file-backed environments: label the question, not the prompt
    question = template.unfill if isinstance(template, Template) else str.strip
    labels = save_discovered(found, examples, out, question)
    console.print(found.tree.render())
    console.print(f"{len(found.labels)} examples labelled; teacher: {client.ledger.model_dump(exclude_none=True)}")
    console.print(f"wrote {out} and {labels}", soft_wrap=True)
    console.print(f"use them with: --env-option skill_tree={out} --env-option labels_file={labels}", soft_wrap=True)


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


if __name__ == "__main__":
    main()

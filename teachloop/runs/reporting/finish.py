"""What `teachloop run`, `resume` and `report` print when a run is over: the report written
(report.md, learning_curves.png), the accuracy table, the run's outcome, where the engines'
logs are, and a warning for phases missing from the run folder. And what `teachloop bench`
writes and prints when its runs are over (`finish_bench`): each finished run's report, the
leaderboard and its plots."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from rich.console import Console

from teachloop.inference.engine_logs import ENGINE_LOG
from teachloop.io import full_disk
from teachloop.runs.loop.store import RunStore
from teachloop.runs.reporting.leaderboard import BenchResults, collect, rich_leaderboard, table_width, write_outputs
from teachloop.runs.reporting.outcome import run_outcome
from teachloop.runs.reporting.report import load_metrics, rich_summary, run_tree, write_report

if TYPE_CHECKING:
    from teachloop.runs.bench.harness import BenchRun

REPORT = "report.md"


def finish_run(run_dir: Path, quiet: bool, console: Console, err_console: Console) -> None:
    """(Re)write the run's report and, unless `quiet`, print its table and outcome on `console`;
    phases missing from the folder are one warning on `err_console`. A full disk is a DiskFull
    that says how to write the report later."""
    try:
        report = write_report(run_dir)
    except Exception as exc:  # a full disk: report.md and the plot are whole or not there
        full = full_disk(exc)
        if full is None:
            raise
        full.path = full.path or run_dir
        full.then = f"`teachloop report {run_dir}` writes the report (the run's phases are kept)"
        raise full from None
    store = RunStore.open(run_dir)
    if not quiet:
        records = load_metrics(run_dir)
        Console(width=max(console.width, 160)).print(rich_summary(records, tree=run_tree(run_dir)))
        outcome = run_outcome(store, records)
        for line in outcome.lines() if outcome else []:
            console.print(line, highlight=False, soft_wrap=True)
        console.print(f"report: {report}  curves: {report.parent / 'learning_curves.png'}")
        log = run_dir / ENGINE_LOG
        if log.is_file() and log.stat().st_size:
            console.print(f"engine logs: {log}", soft_wrap=True, highlight=False)
    missing = store.missing_phases(store.config().iterations)
    if missing:
        err_console.print(
            f"[yellow]warning:[/] {', '.join(missing)} missing in {run_dir}: the table stops before them and "
            f"metrics.jsonl is kept as it was; `teachloop resume {run_dir}` redoes them",
            highlight=False,
            soft_wrap=True,
        )


def finish_bench(done: BenchRun, console: Console) -> BenchResults:
    """After `teachloop bench`'s runs (`run_bench`, which wrote each run's report.md as it
    finished): report.md for any run that finished before without one (a bench killed between
    a run's last phase and its report), then leaderboard.md/.json and the plots from every
    finished run folder, and the leaderboard printed on `console`. Failed runs are in the
    results (`raise_for_failures`); a full disk is a DiskFull that says how to finish later."""
    skipped = {o.name for o in done.outcomes if o.status == "skipped"}
    try:
        for config in done.configs:
            run_dir = config.out / str(config.name)
            if str(config.name) in skipped and not (run_dir / REPORT).is_file():
                write_report(run_dir)
        results = collect(done.bench, done.configs, done.bench_dir)
        results.failed = done.failed
        results.errors_log = done.errors_log
        write_outputs(results)
    except Exception as exc:  # a full disk: every report and the leaderboard are whole or not there
        full = full_disk(exc)
        if full is None:
            raise
        full.path = full.path or done.bench_dir
        full.then = "run the bench again: finished runs are skipped, their reports and the leaderboard written"
        raise full from None
    table = rich_leaderboard(results)
    Console(width=max(console.width, table_width(table))).print(table)  # no cell split, whatever the terminal
    plots = "  plots: learning_curves.png, skill_heatmap.png" if results.rows else ""
    console.print(f"leaderboard: {results.bench_dir / 'leaderboard.md'}{plots}", soft_wrap=True)
    return results

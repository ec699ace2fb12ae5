"""What `teachloop run`, `resume` and `report` print when a run is over: the report written
(report.md, learning_curves.png), the accuracy table, the run's outcome, where the engines'
logs are, and a warning for phases missing from the run folder."""

from __future__ import annotations

from pathlib import Path

from rich.console import Console

from teachloop.inference.engine_logs import ENGINE_LOG
from teachloop.io import full_disk
from teachloop.runs.loop.store import RunStore
from teachloop.runs.reporting.outcome import run_outcome
from teachloop.runs.reporting.report import load_metrics, rich_summary, run_tree, write_report


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

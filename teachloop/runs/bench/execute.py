"""Taking a bench's runs to the end: finished ones skipped, unfinished ones resumed,
the rest created; in this process, in worker processes, or as Ray tasks (on_ray.py).
Each run goes through cell.py's `execute_run` either way; `finished`, given by the caller
(the CLI: the run's report), is called here, in this process, on each run folder as soon as
its run finishes."""

from __future__ import annotations

import os
import traceback
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ProcessPoolExecutor, as_completed
from multiprocessing import get_context
from pathlib import Path
from typing import TYPE_CHECKING

from teachloop.runs.bench.cell import Cell, Progress, RunOutcome, execute_run
from teachloop.runs.config import RunConfig
from teachloop.runs.loop.store import MARKER, RunStore

if TYPE_CHECKING:
    from teachloop.runs.bench.on_ray import RaySettings


def _init_worker(threads: int) -> None:
    import torch

    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    torch.set_num_threads(threads)


def pending_runs(configs: Sequence[RunConfig]) -> tuple[list[RunConfig], list[RunOutcome]]:
    """The runs left to do, and an outcome for each one that finished before (skipped)."""
    todo, skipped = [], []
    for config in configs:
        run_dir = config.out / str(config.name)
        if (run_dir / MARKER).exists() and RunStore(run_dir).is_finished():
            skipped.append(RunOutcome(name=run_dir.name, status="skipped", summary="finished before"))
        else:
            todo.append(config)
    return todo, skipped


def execute_runs(
    configs: Sequence[RunConfig],
    workers: int = 1,
    progress: Progress | None = None,
    ray: RaySettings | None = None,
    log_dir: Path | None = None,
    finished: Callable[[Path], object] | None = None,
) -> list[RunOutcome]:
    """Run every unfinished run: in this process, in `workers` spawned processes, or (`ray`)
    as Ray tasks; with `log_dir`, each run writes its own log there (cell_log.py). `finished`
    is called with each run folder whose run finished; if it raises, that run failed."""
    say = progress or (lambda _line: None)
    todo, outcomes = pending_runs(configs)
    run_dirs = {str(c.name): c.out / str(c.name) for c in todo}
    if outcomes:
        say(f"{len(outcomes)} of {len(configs)} runs already finished: skipped")
    cells = [
        Cell(
            name=str(c.name),
            config=c.model_dump(mode="json", context={"reveal_secrets": True}),  # in memory only
            log=str(Path(log_dir) / f"{c.name}.log") if log_dir is not None else None,
        )
        for c in todo
    ]
    done: list[RunOutcome] = []

    def record(outcome: RunOutcome) -> None:
        if outcome.status == "finished" and finished is not None:
            outcome = _after_run(outcome, run_dirs[outcome.name], finished)
        done.append(outcome)
        detail = outcome.summary if outcome.status == "finished" else outcome.error
        if outcome.status == "failed" and outcome.log:
            detail = f"{detail} (log: {outcome.log})"
        say(f"[{len(done)}/{len(cells)}] {outcome.name} {outcome.status} in {outcome.seconds:.0f}s: {detail}")

    if ray is not None:
        from teachloop.runs.bench.on_ray import execute_on_ray

        if cells:
            execute_on_ray(cells, ray, record, say)
        return outcomes + done
    if workers <= 1 or len(cells) <= 1:
        for cell in cells:
            say(f"running {cell.name} ..." + (f" (log: {cell.log})" if cell.log else ""))
            record(execute_run(cell.config, cell.log))
        return outcomes + done
    workers = min(workers, len(cells))
    threads = max(1, (os.cpu_count() or 1) // workers)
    where = f"; logs in {log_dir}" if log_dir is not None else ""
    say(f"running {len(cells)} runs in {workers} processes, {threads} torch thread(s) each{where}")
    context = get_context("spawn")
    with ProcessPoolExecutor(workers, mp_context=context, initializer=_init_worker, initargs=(threads,)) as pool:
        futures = {pool.submit(execute_run, cell.config, cell.log): cell for cell in cells}
        try:
            for future in as_completed(futures):
                record(_outcome(future, futures[future]))
        except BaseException:  # Ctrl-C: drop the queued runs; the finished ones stay finished
            pool.shutdown(wait=False, cancel_futures=True)
            raise
    return outcomes + done


def _after_run(outcome: RunOutcome, run_dir: Path, finished: Callable[[Path], object]) -> RunOutcome:
    """`finished(run_dir)` for a run that finished; one that raises makes the run failed."""
    try:
        finished(run_dir)
    except Exception as exc:  # one broken run must not stop the others
        error = " ".join(f"{type(exc).__name__}: {exc}".split())
        return outcome.model_copy(update={"status": "failed", "error": error, "traceback": traceback.format_exc()})
    return outcome


def _outcome(future: Future[RunOutcome], cell: Cell) -> RunOutcome:
    """A worker's outcome; a worker that died (killed, out of memory) counts as a failed run."""
    try:
        return future.result()
    except Exception as exc:
        error = " ".join(f"worker process failed: {type(exc).__name__}: {exc}".split())
        return RunOutcome(name=cell.name, status="failed", error=error, traceback=traceback.format_exc(), log=cell.log)

"""Taking a bench's runs to the end: finished ones skipped, unfinished ones resumed,
the rest created; in this process or in worker processes."""

from __future__ import annotations

import os
import time
import traceback
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ProcessPoolExecutor, as_completed
from multiprocessing import get_context
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel

from teachloop.runs.config import RunConfig
from teachloop.runs.store import MARKER, RunStore

if TYPE_CHECKING:
    from teachloop.runs.bench_ray import RaySettings

Progress = Callable[[str], None]


# -- running ------------------------------------------------------------------------------
class RunOutcome(BaseModel):
    name: str
    status: Literal["skipped", "finished", "failed"]
    seconds: float = 0.0
    summary: str = ""
    error: str | None = None
    traceback: str | None = None


def execute_run(config_data: dict[str, Any]) -> RunOutcome:
    """Create or resume one run and take it to the end (in-process or in a worker process)."""
    from teachloop.runs.loop import Loop
    from teachloop.runs.report import write_report

    config = RunConfig.model_validate(config_data)
    run_dir = config.out / str(config.name)
    start = time.perf_counter()
    try:
        if (run_dir / MARKER).exists():
            loop = Loop.resume(run_dir, progress=False, config=config)
        else:
            loop = Loop.create(config, progress=False)
        records = loop.run()
        write_report(run_dir)
    except Exception as exc:  # one broken run must not stop the others
        return RunOutcome(
            name=run_dir.name,
            status="failed",
            seconds=time.perf_counter() - start,
            error=" ".join(f"{type(exc).__name__}: {exc}".split()),
            traceback=traceback.format_exc(),
        )
    summary = f"accuracy {records[0].accuracy:.3f} -> {records[-1].accuracy:.3f}" if records else ""
    return RunOutcome(name=run_dir.name, status="finished", seconds=time.perf_counter() - start, summary=summary)


def _init_worker(threads: int) -> None:
    import torch

    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    torch.set_num_threads(threads)


def _pending(configs: Sequence[RunConfig]) -> tuple[list[RunConfig], list[RunOutcome]]:
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
) -> list[RunOutcome]:
    """Run every unfinished run: in this process, in `workers` spawned processes, or (`ray`)
    as Ray tasks."""
    say = progress or (lambda _line: None)
    todo, outcomes = _pending(configs)
    if outcomes:
        say(f"{len(outcomes)} of {len(configs)} runs already finished: skipped")
    payloads = [c.model_dump(mode="json", context={"reveal_secrets": True}) for c in todo]  # in memory only
    done: list[RunOutcome] = []

    def record(outcome: RunOutcome) -> None:
        done.append(outcome)
        detail = outcome.summary if outcome.status == "finished" else outcome.error
        say(f"[{len(done)}/{len(payloads)}] {outcome.name} {outcome.status} in {outcome.seconds:.0f}s: {detail}")

    if ray is not None:
        from teachloop.runs.bench_ray import execute_on_ray

        if payloads:
            execute_on_ray(payloads, ray, record, say)
        return outcomes + done
    if workers <= 1 or len(payloads) <= 1:
        for payload in payloads:
            say(f"running {payload['name']} ...")
            record(execute_run(payload))
        return outcomes + done
    workers = min(workers, len(payloads))
    threads = max(1, (os.cpu_count() or 1) // workers)
    say(f"running {len(payloads)} runs in {workers} processes, {threads} torch thread(s) each")
    context = get_context("spawn")
    with ProcessPoolExecutor(workers, mp_context=context, initializer=_init_worker, initargs=(threads,)) as pool:
        futures = {pool.submit(execute_run, payload): payload["name"] for payload in payloads}
        try:
            for future in as_completed(futures):
                record(_outcome(future, futures[future]))
        except BaseException:  # Ctrl-C: drop the queued runs; the finished ones stay finished
            pool.shutdown(wait=False, cancel_futures=True)
            raise
    return outcomes + done


def _outcome(future: Future[RunOutcome], name: str) -> RunOutcome:
    """A worker's outcome; a worker that died (killed, out of memory) counts as a failed run."""
    try:
        return future.result()
    except Exception as exc:
        error = " ".join(f"worker process failed: {type(exc).__name__}: {exc}".split())
        return RunOutcome(name=name, status="failed", error=error, traceback=traceback.format_exc())

"""A bench's runs as Ray tasks (`teachloop bench --ray`): each run one task asking the bench
file's `resources:`, on a local Ray instance or on a cluster.

Every task calls the same `execute_run` as the worker processes, so the run folders, the
skip/resume rules and the failure records are the same. On a cluster the run folders (and
any relative path in the bench file) must be on storage every node mounts at the same path.
"""

from __future__ import annotations

import os
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from teachloop.errors import ConfigError
from teachloop.runs.bench.cell import Cell, Progress, RunOutcome, execute_run
from teachloop.runs.bench.config import CellResources

INSTALL_HINT = "pip install 'teachloop[ray]'"
LOCAL_OBJECT_STORE_BYTES = 200 * 1024**2  # the tasks pass only run configs and outcomes
# what a run reads from its environment, for workers on other nodes (local ones inherit it)
FORWARDED_ENV = (
    "PYTHONPATH", "HF_HOME", "XDG_CACHE_HOME", "TEACHLOOP_CACHE", "TOKENIZERS_PARALLELISM",
    "OPENAI_API_KEY", "OPENAI_BASE_URL",
)  # fmt: skip


@dataclass(frozen=True)
class RaySettings:
    """Where the runs go: `address` None starts a local Ray instance on this machine's cores;
    'auto' or 'ray://host:port' / 'host:port' joins a running cluster."""

    address: str | None = None
    resources: CellResources = field(default_factory=CellResources)


def import_ray() -> Any:
    try:
        import ray
    except ImportError:
        raise ConfigError(f"--ray needs Ray, which is not installed: {INSTALL_HINT}") from None
    return ray


def _run_cell(payload: dict[str, Any], log: str | None, threads: int, cwd: str) -> RunOutcome:
    """One run inside a Ray worker: the driver's folder (when this node has it) so relative
    paths mean the same, torch threads matching the CPUs the task asked for."""
    import torch

    if os.path.isdir(cwd):
        os.chdir(cwd)
    torch.set_num_threads(threads)
    return execute_run(payload, log)


def _runtime_env() -> dict[str, Any]:
    env_vars = {name: os.environ[name] for name in FORWARDED_ENV if name in os.environ}
    env_vars.setdefault("TOKENIZERS_PARALLELISM", "false")
    return {"env_vars": env_vars}


def _connect(ray: Any, settings: RaySettings) -> str:
    if settings.address is None:
        ray.init(
            address="local",
            num_cpus=len(os.sched_getaffinity(0)),
            object_store_memory=LOCAL_OBJECT_STORE_BYTES,
            include_dashboard=False,
            runtime_env=_runtime_env(),
            log_to_driver=True,
        )
        return "a local Ray instance"
    try:
        ray.init(address=settings.address, runtime_env=_runtime_env(), log_to_driver=True)
    except ConnectionError as exc:
        raise ConfigError(
            f"--ray-address {settings.address}: no Ray cluster there ({exc}); start one with `ray start --head` "
            "or leave out --ray-address for a local instance"
        ) from None
    return f"the Ray cluster at {settings.address}"


def _check_fits(ray: Any, resources: CellResources, local: bool) -> str:
    """The cluster's size; on a local instance (which cannot grow), a run that asks for more
    than it has is refused instead of waiting forever."""
    total = ray.cluster_resources()
    cpus, gpus = total.get("CPU", 0), total.get("GPU", 0)
    if local and (resources.cpus > cpus or resources.gpus > gpus):
        raise ConfigError(
            f"each run asks for {resources.cpus:g} CPU(s) and {resources.gpus:g} GPU(s) (bench file resources:), "
            f"but this machine's Ray instance has {cpus:g} CPU(s) and {gpus:g} GPU(s); lower resources: "
            "or use --ray-address for a cluster"
        )
    return f"{cpus:g} CPU(s), {gpus:g} GPU(s)"


def _ray_outcome(ray: Any, ref: Any, cell: Cell) -> RunOutcome:
    """A task's outcome; an exception outside the run, or a task whose worker died (killed,
    out of memory, node lost), counts as a failed run."""
    try:
        return ray.get(ref)
    except ray.exceptions.RayTaskError as exc:
        cause = exc.cause if isinstance(exc.cause, BaseException) else exc
        error = " ".join(f"Ray task failed: {type(cause).__name__}: {cause}".split())
        return RunOutcome(name=cell.name, status="failed", error=error, traceback=str(exc), log=cell.log)
    except ray.exceptions.RayError as exc:
        first_line = (str(exc).strip().splitlines() or [""])[0]
        error = " ".join(f"Ray worker failed: {type(exc).__name__}: {first_line}".split())
        return RunOutcome(name=cell.name, status="failed", error=error, traceback=traceback.format_exc(), log=cell.log)


def execute_on_ray(
    cells: Sequence[Cell],
    settings: RaySettings,
    record: Callable[[RunOutcome], None],
    progress: Progress,
) -> None:
    """Submit every run as a Ray task and record each outcome as it finishes. Ctrl-C (or a
    kill) cancels the tasks still running; the finished runs stay finished."""
    ray = import_ray()
    where = _connect(ray, settings)
    try:
        resources = settings.resources
        size = _check_fits(ray, resources, local=settings.address is None)
        task = ray.remote(_run_cell).options(
            num_cpus=resources.cpus, num_gpus=resources.gpus, max_retries=0, name="teachloop-bench-run"
        )
        threads, cwd = max(1, int(resources.cpus)), os.getcwd()
        progress(
            f"running {len(cells)} runs as Ray tasks on {where} ({size}), "
            f"each asking {resources.cpus:g} CPU(s) and {resources.gpus:g} GPU(s)"
        )
        submitted = {task.remote(cell.config, cell.log, threads, cwd): cell for cell in cells}
        pending = list(submitted)
        try:
            while pending:
                ready, pending = ray.wait(pending, num_returns=1)
                for ref in ready:
                    record(_ray_outcome(ray, ref, submitted[ref]))
        except BaseException:  # Ctrl-C or a kill: stop the runs still going; resume them later
            for ref in pending:
                ray.cancel(ref, force=True)
            raise
    finally:
        ray.shutdown()

"""Benchmark harness: every (environment, policy, seed) of a bench file as a resumable run.

A bench file (YAML)::

    environments: [skillworld]
    policies: [uniform, stat-syn]
    seeds: [0, 1, 2]
    budget: 200                        # new training examples per iteration, the same for every run
    iterations: 4
    teacher_tokens_per_iteration: 50000   # optional; only used when run.teacher is set
    resources: {cpus: 1, gpus: 0}      # optional; what each run asks of Ray with --ray
    baseline: uniform                  # optional; every other policy is compared with it (default: uniform)
    run:                               # any other RunConfig field, applied to every run
      train: {epochs: 2}
      policy_options: {stat-syn: {floor: 0.1}}   # per policy
    quick:                             # overrides for `teachloop bench --quick`
      seeds: [0]
      iterations: 1
      train: {epochs: 1}               # RunConfig fields go into run:

Each run is a normal run folder `<bench dir>/runs/<env>-<policy>-s<seed>`: a finished one
is skipped, an unfinished one resumed, so rerunning a half-finished benchmark redoes
nothing that finished. The bench dir gets `leaderboard.md` (+ `leaderboard.json`),
`learning_curves.png` and `skill_heatmap.png`, and every run writes its output to
`logs/<run>.log` (appended to by each attempt). Runs go one at a time, in `--workers`
processes (execute.py) or as Ray tasks asking `resources:` (`--ray`, on_ray.py).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import yaml

from teachloop.errors import ConfigError
from teachloop.io import atomic_write_text, redact_secrets
from teachloop.runs.bench.cell import Progress, RunOutcome
from teachloop.runs.bench.cell_log import LOG_DIR
from teachloop.runs.bench.config import DEFAULT_OUT, BenchConfig, check_runs, load_bench, plan_runs
from teachloop.runs.bench.execute import execute_runs, pending_runs
from teachloop.runs.bench.on_ray import RaySettings, import_ray
from teachloop.runs.bench.results import BenchResults, LeaderRow, collect, rich_leaderboard, write_outputs
from teachloop.runs.config import RunConfig
from teachloop.runs.loop.checks import check_teacher_reachable
from teachloop.runs.loop.guard import BENCH_FILE


# -- the command --------------------------------------------------------------------------
def default_bench_dir(bench_file: Path, quick: bool) -> Path:
    return DEFAULT_OUT / (Path(bench_file).stem + ("-quick" if quick else ""))


def _write_errors(bench_dir: Path, outcomes: Sequence[RunOutcome]) -> Path | None:
    path = bench_dir / "errors.log"
    failed = [o for o in outcomes if o.status == "failed"]
    if not failed:
        path.unlink(missing_ok=True)
        return None
    entries = (f"== {o.name}" + (f" (its log: {o.log})" if o.log else "") + f"\n{o.traceback}" for o in failed)
    atomic_write_text(path, "\n".join(entries))
    return path


def check_teachers(configs: Sequence[RunConfig]) -> None:
    """Every distinct teacher of the runs left to do, checked once before the first of them
    starts: a teacher that refuses connections stops the bench with one line, before anything
    is written, instead of failing each of its runs after loading it."""
    checked: set[tuple[str, str, str]] = set()
    for config in pending_runs(configs)[0]:
        teacher = config.teacher
        if teacher is None:
            continue
        key = (teacher.backend, teacher.model, teacher.options.model_dump_json())
        if key not in checked:
            checked.add(key)
            check_teacher_reachable(teacher)


def run_bench(
    bench_file: Path,
    out: Path | None = None,
    workers: int = 1,
    quick: bool = False,
    progress: Progress | None = None,
    ray: bool = False,
    ray_address: str | None = None,
) -> BenchResults:
    """`teachloop bench`: validate, run what is unfinished, write the leaderboard and plots.

    `ray`/`ray_address`: every run a Ray task on a local instance / on that cluster.
    Failed runs do not stop the others; they are listed in the results (`raise_for_failures`).
    """
    if workers < 1:
        raise ConfigError(f"--workers must be >= 1, got {workers}")
    use_ray = ray or ray_address is not None
    if use_ray and workers != 1:
        raise ConfigError(
            "--workers does not apply with --ray: the bench file's resources: decide how many run at once"
        )
    if use_ray:
        import_ray()  # before anything is written
    bench = load_bench(bench_file, quick=quick)
    bench_dir = Path(out) if out is not None else default_bench_dir(bench_file, quick)
    configs = plan_runs(bench, bench_dir)
    check_runs(configs)  # nothing is written before every run is known to be valid
    check_teachers(configs)  # a teacher that is down: one line now, not one failure per run
    bench_dir.mkdir(parents=True, exist_ok=True)
    copy = redact_secrets(bench.model_dump(exclude={"quick"}))
    atomic_write_text(bench_dir / BENCH_FILE, yaml.safe_dump(copy, sort_keys=False))
    settings = RaySettings(address=ray_address, resources=bench.resources) if use_ray else None
    log_dir = bench_dir / LOG_DIR
    outcomes = execute_runs(configs, workers=workers, progress=progress, ray=settings, log_dir=log_dir)
    results = collect(bench, configs, bench_dir)
    results.failed = [o.name for o in outcomes if o.status == "failed"]
    results.errors_log = _write_errors(bench_dir, outcomes)
    write_outputs(results)
    return results


__all__ = [
    "BenchConfig",
    "BenchResults",
    "LeaderRow",
    "collect",
    "execute_runs",
    "load_bench",
    "plan_runs",
    "rich_leaderboard",
    "run_bench",
    "write_outputs",
]

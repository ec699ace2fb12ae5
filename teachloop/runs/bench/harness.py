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
nothing that finished. Every run writes its output to `logs/<run>.log` (appended to by each
attempt). Runs go one at a time, in `--workers` processes (execute.py) or as Ray tasks asking
`resources:` (`--ray`, on_ray.py).

The bench produces run folders only; the views of them are written by reporting: each run's
report.md as soon as it finishes (the `finished` the CLI passes), then the bench dir's
`leaderboard.md` (+ `leaderboard.json`), `learning_curves.png` and `skill_heatmap.png` by
`finish_bench` (runs/reporting/finish.py).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import yaml

from teachloop.errors import ConfigError
from teachloop.io import atomic_write_text, redact_secrets
from teachloop.runs.bench.cell import Progress, RunOutcome
from teachloop.runs.bench.cell_log import LOG_DIR
from teachloop.runs.bench.config import DEFAULT_OUT, BenchConfig, check_runs, load_bench, plan_runs
from teachloop.runs.bench.execute import execute_runs, pending_runs
from teachloop.runs.bench.on_ray import RaySettings, import_ray
from teachloop.runs.config import RunConfig
from teachloop.runs.loop.checks import check_teacher_reachable
from teachloop.runs.loop.guard import BENCH_FILE


# -- the command --------------------------------------------------------------------------
@dataclass
class BenchRun:
    """What `run_bench` did: the bench, its folder, every run's config and how each ended
    (finished now, skipped as finished before, failed), and errors.log when some failed."""

    bench: BenchConfig
    bench_dir: Path
    configs: list[RunConfig]
    outcomes: list[RunOutcome]
    errors_log: Path | None = None

    @property
    def failed(self) -> list[str]:
        return [o.name for o in self.outcomes if o.status == "failed"]


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
    finished: Callable[[Path], object] | None = None,
) -> BenchRun:
    """`teachloop bench`'s runs: validate, then take every unfinished run to the end.

    `ray`/`ray_address`: every run a Ray task on a local instance / on that cluster.
    Failed runs do not stop the others; they are in the outcomes and errors.log. `finished` is
    called here with each run folder as soon as its run finishes (the CLI writes its report.md);
    the leaderboard is written from the run folders by `finish_bench` (runs/reporting).
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
    outcomes = execute_runs(
        configs, workers=workers, progress=progress, ray=settings, log_dir=log_dir, finished=finished
    )
    return BenchRun(bench, bench_dir, list(configs), outcomes, errors_log=_write_errors(bench_dir, outcomes))


__all__ = [
    "BenchConfig",
    "BenchRun",
    "execute_runs",
    "load_bench",
    "plan_runs",
    "run_bench",
]

"""The bench file: validated, expanded into one RunConfig per (environment, policy, seed),
and checked against run folders that already exist."""

from __future__ import annotations

import copy
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from teachloop.agents.teacher import TeacherConfig
from teachloop.errors import ConfigError, format_validation_error
from teachloop.io import read_yaml_mapping
from teachloop.runs.config import RunConfig
from teachloop.runs.loop.assemble import assemble_run
from teachloop.runs.loop.store import MARKER, RunStore

# RunConfig fields the bench sets itself, so every run gets the same budget
RESERVED_RUN_FIELDS = ("name", "out", "environment", "policy", "seed", "budget", "iterations")
DEFAULT_OUT = Path("bench-runs")
TEACHER_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.]*$")  # part of a run folder's name: no '-', no '/'


# -- the bench file -----------------------------------------------------------------------
def _no_duplicates(values: list[Any]) -> list[Any]:
    seen = [v for i, v in enumerate(values) if v in values[:i]]
    if seen:
        raise ValueError(f"listed twice: {', '.join(map(str, seen))}")
    return values


class CellResources(BaseModel):
    """What one run asks of a Ray cluster (`teachloop bench --ray`); fractions share a device."""

    model_config = ConfigDict(extra="forbid")

    cpus: float = Field(default=1, gt=0, description="CPU cores per run (also its torch threads)")
    gpus: float = Field(default=0, ge=0, description="GPUs per run (Ray sets CUDA_VISIBLE_DEVICES)")


class BenchConfig(BaseModel):
    """A bench file, validated."""

    model_config = ConfigDict(extra="forbid")

    environments: list[str] = Field(default_factory=lambda: ["skillworld"], min_length=1)
    policies: list[str] = Field(min_length=1)
    seeds: list[Annotated[int, Field(ge=0)]] = Field(min_length=1)
    budget: int = Field(ge=1, description="new training examples per iteration, equal for every run")
    iterations: int = Field(ge=1, le=1000)
    teacher_tokens_per_iteration: int | None = Field(default=None, ge=1, description="every teacher's token budget")
    teacher_calls_per_iteration: int | None = Field(default=None, ge=1, description="every teacher's paid calls")
    teacher_cost_per_iteration: float | None = Field(default=None, gt=0, description="every priced teacher's cost")
    resources: CellResources = Field(default_factory=CellResources, description="per run, with --ray")
    teachers: dict[str, TeacherConfig | None] | None = Field(
        default=None,
        description="a teachers axis: name -> teacher (a `<backend>:<model>` string or a teacher mapping; "
        "null: no LLM teacher, the environment's own generator), crossed with policies and seeds",
    )
    run: dict[str, Any] = Field(default_factory=dict, description="other RunConfig fields for every run")
    quick: dict[str, Any] | None = Field(default=None, description="overrides for --quick")
    baseline: str | None = Field(
        default=None,
        description="the policy every other is compared with, paired on seeds and eval items "
        "(default: uniform when the bench has it)",
    )

    _unique = field_validator("environments", "policies", "seeds")(_no_duplicates)

    @field_validator("teachers", mode="before")
    @classmethod
    def _teacher_specs(cls, teachers: Any) -> Any:
        if not isinstance(teachers, dict):
            return teachers
        for name in teachers:
            if not isinstance(name, str) or not TEACHER_NAME.match(name):
                raise ValueError(f"teacher name {name!r}: letters, digits, '_' and '.' only (it names run folders)")
        return {
            name: TeacherConfig.from_spec(spec) if isinstance(spec, str) else spec for name, spec in teachers.items()
        }

    @field_validator("teachers")
    @classmethod
    def _some_teachers(cls, teachers: dict[str, TeacherConfig | None] | None) -> dict[str, TeacherConfig | None] | None:
        if teachers is not None and not teachers:
            raise ValueError("list at least one teacher, or leave teachers: out")
        return teachers

    @model_validator(mode="after")
    def _one_place_for_the_teacher(self) -> BenchConfig:
        if self.teachers is not None and "teacher" in self.run:
            raise ValueError("run.teacher and teachers: both name the teacher; keep one")
        return self

    @field_validator("run")
    @classmethod
    def _run_fields(cls, run: dict[str, Any]) -> dict[str, Any]:
        for key in run:
            if key in RESERVED_RUN_FIELDS:
                raise ValueError(f"{key} is set by the bench for every run (use the top-level keys)")
            if key not in RunConfig.model_fields:
                raise ValueError(f"unknown run field {key!r}")
        return run

    @field_validator("quick")
    @classmethod
    def _quick_fields(cls, quick: dict[str, Any] | None) -> dict[str, Any] | None:
        for key in quick or {}:
            if key == "quick" or (key not in cls.model_fields and key not in RunConfig.model_fields):
                raise ValueError(f"unknown field {key!r}")
        return quick

    @model_validator(mode="after")
    def _baseline_is_a_policy(self) -> BenchConfig:
        names = [*self.policies, *(self.teachers or {})]
        if self.baseline is not None and self.baseline not in names:
            kind = "policies or teachers" if self.teachers else "policies"
            raise ValueError(f"baseline {self.baseline!r} is not one of the {kind} ({', '.join(names)})")
        return self

    @property
    def baseline_policy(self) -> str | None:
        """What the leaderboard compares every row with (a policy, or with a teachers axis a
        teacher's name), None for no comparison."""
        if self.baseline is not None:
            return self.baseline
        return "uniform" if "uniform" in self.policies else None

    @property
    def baseline_is_teacher(self) -> bool:
        """The baseline names a teacher: rows are compared with the same policy taught by it."""
        return (
            self.teachers is not None
            and self.baseline_policy in self.teachers
            and self.baseline_policy not in self.policies
        )

    def teacher_budgets(self) -> dict[str, int | float]:
        """The per-iteration budgets the bench gives every teacher (TeacherConfig fields)."""
        given = {
            "max_tokens_per_iteration": self.teacher_tokens_per_iteration,
            "max_calls_per_iteration": self.teacher_calls_per_iteration,
            "max_cost_per_iteration": self.teacher_cost_per_iteration,
        }
        return {key: value for key, value in given.items() if value is not None}

    def teacher_names(self) -> list[str]:
        """The teachers axis, or [""]: one implicit teacher (`run.teacher`, or none)."""
        return list(self.teachers) if self.teachers is not None else [""]

    @model_validator(mode="after")
    def _policy_options(self) -> BenchConfig:
        options = self.run.get("policy_options", {})
        if not isinstance(options, dict) or not all(isinstance(v, dict) for v in options.values()):
            raise ValueError("run.policy_options must map policy names to option mappings")
        unknown = sorted(set(options) - set(self.policies))
        if unknown:
            raise ValueError(f"run.policy_options names policies the bench does not run: {', '.join(unknown)}")
        return self


def _deep_merge(base: Any, override: Any) -> Any:
    if isinstance(base, dict) and isinstance(override, dict):
        merged = dict(base)
        for key, value in override.items():
            merged[key] = _deep_merge(base.get(key), value)
        return merged
    return copy.deepcopy(override)


def apply_quick(data: dict[str, Any], source: str) -> dict[str, Any]:
    """The bench file with its `quick:` overrides applied; RunConfig fields go into `run:`."""
    quick = data.get("quick")
    if not quick:
        raise ConfigError(f"--quick: {source} has no quick: section")
    merged = {k: copy.deepcopy(v) for k, v in data.items() if k != "quick"}
    for key, value in quick.items():
        if key == "run":
            merged["run"] = _deep_merge(merged.get("run", {}), value)
        elif key in BenchConfig.model_fields:
            merged[key] = copy.deepcopy(value)
        else:
            run = merged.setdefault("run", {})
            run[key] = _deep_merge(run.get(key), value)
    return merged


def _validate(data: dict[str, Any], source: str) -> BenchConfig:
    try:
        return BenchConfig.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(format_validation_error(exc, "bench file", source)) from None


def load_bench(path: Path, quick: bool = False) -> BenchConfig:
    """Read and validate a bench file; with `quick`, its quick: overrides applied."""
    data = read_yaml_mapping(path, "bench file")
    bench = _validate(data, str(path))
    return _validate(apply_quick(data, str(path)), f"{path}, quick") if quick else bench


# -- planning the runs --------------------------------------------------------------------
def run_name(environment: str, policy: str, seed: int, teacher: str = "") -> str:
    """`<environment>-<policy>-s<seed>`; with a teachers axis `<environment>-<teacher>-<policy>-s<seed>`."""
    return f"{environment}-{teacher}-{policy}-s{seed}" if teacher else f"{environment}-{policy}-s{seed}"


def run_config(
    bench: BenchConfig, runs_dir: Path, environment: str, policy: str, seed: int, teacher: str = ""
) -> RunConfig:
    """One run's config: the bench's `run:` fields plus the equal budget and this cell's names."""
    name = run_name(environment, policy, seed, teacher)
    data = copy.deepcopy(bench.run)
    if bench.teachers is not None:
        chosen = bench.teachers[teacher]
        data["teacher"] = None if chosen is None else chosen.model_dump(mode="json")
    options = data.pop("policy_options", {})
    data.update(
        name=name,
        out=str(runs_dir),
        environment=environment,
        policy=policy,
        seed=seed,
        budget=bench.budget,
        iterations=bench.iterations,
        policy_options=options.get(policy, {}),
    )
    if data.get("tracking", "none") != "none" and not data.get("tracking_project"):
        data["tracking_project"] = runs_dir.parent.name  # one tracker project per bench, one run per cell
    if isinstance(data.get("teacher"), dict):
        data["teacher"] = {**data["teacher"], **bench.teacher_budgets()}
    try:
        return RunConfig.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(format_validation_error(exc, "config", f"bench run {name}")) from None


def plan_runs(bench: BenchConfig, bench_dir: Path) -> list[RunConfig]:
    """Every (environment, seed, teacher, policy), seeds outer so early results compare policies."""
    runs_dir = bench_dir.resolve() / "runs"
    return [
        run_config(bench, runs_dir, env, policy, seed, teacher)
        for env in bench.environments
        for seed in bench.seeds
        for teacher in bench.teacher_names()
        for policy in bench.policies
    ]


def cell_teacher(bench: BenchConfig, config: RunConfig) -> str:
    """The teachers-axis name of a run the bench planned ("" without a teachers axis)."""
    if bench.teachers is None:
        return ""
    for name in bench.teachers:
        if config.name == run_name(config.environment, config.policy, config.seed, name):
            return name
    raise ValueError(f"run {config.name} is not one of the bench's cells")


def _comparable(config: RunConfig) -> dict[str, Any]:
    """What a run folder must share with the bench's run: not where it is or is tracked."""
    return config.model_dump(mode="json", exclude={"out", "tracking", "tracking_project"})


def check_runs(configs: Sequence[RunConfig]) -> None:
    """Fail before anything runs: unknown names/options, or a run folder made with another config."""
    checked: set[tuple[str, str, str]] = set()
    for config in configs:
        cell = (config.environment, config.policy, config.teacher.spec if config.teacher else "")
        if cell not in checked:
            assemble_run(config, models=False)
            checked.add(cell)
        run_dir = config.out / str(config.name)
        if (run_dir / MARKER).exists():
            stored = RunStore.open(run_dir).config()
            if _comparable(stored) != _comparable(config):
                changed = sorted(k for k, v in _comparable(config).items() if _comparable(stored).get(k) != v)
                raise ConfigError(
                    f"run folder {run_dir} was made with a different config (differs in: {', '.join(changed)}); "
                    "use another --out or delete it"
                )

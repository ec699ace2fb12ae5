"""A bench's results: the leaderboard (each figure with its 95 % interval, and the paired
difference against the bench's baseline with a verdict), learning curves and the per-skill
heat map. Everything is recomputed from the run folders (`runs/bench/stats.py` has the bootstrap).

Skills are shown over the environment's skill tree: the heat map has a cell for every node
(groups included, each group followed by its skills), and leaderboard.md a table of final
accuracy per top-level group, so a task with a hundred skills stays readable.
"""

from __future__ import annotations

import dataclasses
import math
import statistics
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, Field

from teachloop.errors import TeachloopError
from teachloop.io import atomic_write_text, write_json
from teachloop.runs.bench.config import BenchConfig, cell_teacher
from teachloop.runs.bench.stats import (
    FIGURES,
    Forgetting,
    Interval,
    PairedDifference,
    RunItems,
    detectable_difference,
    forgetting,
    group_final_accuracy,
    interval,
    paired_difference,
)
from teachloop.runs.config import RunConfig
from teachloop.runs.loop.metrics import load_tree
from teachloop.runs.loop.resolved import resolve_run
from teachloop.runs.loop.store import MARKER, RunStore
from teachloop.runs.reporting.intrinsic import (
    DataMeasures,
    Predictor,
    eval_prompts,
    measure_run,
    predictors,
    reference_bigrams,
)
from teachloop.runs.reporting.report import (
    WEAK_THRESHOLD,
    SkillLayout,
    load_metrics,
    mean_accuracy,
    node_value,
    skill_layout,
    weak_gain,
    weak_skills,
)

if TYPE_CHECKING:
    from rich.table import Table

    from teachloop.runs.loop.metrics import MetricsRecord
    from teachloop.skills.tree import SkillTree

WEAK_NAMES_SHOWN = 8  # a list of weak skills longer than this is cut, with a count of the rest
RowKey = tuple[str, str, str]  # (environment, policy, teacher: its name on a teachers axis, else "")


# -- results ------------------------------------------------------------------------------
class MeanStd(BaseModel):
    """A figure over seeds: its mean and spread, and its 95 % bootstrap interval over seeds
    and eval items (`lo`, `hi`; None where the runs' items could not be read)."""

    mean: float
    std: float
    n: int
    lo: float | None = None
    hi: float | None = None

    @classmethod
    def of(cls, values: Sequence[float]) -> MeanStd:
        std = statistics.stdev(values) if len(values) > 1 else 0.0
        return cls(mean=statistics.fmean(values) if values else 0.0, std=std, n=len(values))

    def show(self, scale: float = 1.0, digits: int = 3, signed: bool = False) -> str:
        """`mean [lo, hi]` with an interval; without one `mean ± std` over seeds, or `mean (n=1)`
        for one seed, whose spread is unknown (not 0); `—` for none."""
        sign = "+" if signed else ""
        if not self.n:
            return "—"
        if self.lo is not None and self.hi is not None:
            return (
                f"{self.mean * scale:{sign}.{digits}f} "
                f"[{self.lo * scale:{sign}.{digits}f}, {self.hi * scale:{sign}.{digits}f}]"
            )
        if self.n == 1:
            return f"{self.mean * scale:{sign}.{digits}f} (n=1)"
        return f"{self.mean * scale:{sign}.{digits}f} ± {self.std * scale:.{digits}f}"

    def with_interval(self, found: Interval) -> MeanStd:
        return self.model_copy(update={"lo": found.lo, "hi": found.hi})


def row_label(key: RowKey) -> str:
    """A row's name in plots and tables: its policy, and its teacher on a teachers axis."""
    _, policy, teacher = key
    return f"{policy} / {teacher}" if teacher else policy


class LeaderRow(BaseModel):
    """One (environment, policy, teacher): statistics over its finished seeds."""

    environment: str
    policy: str
    teacher: str  # which teacher the runs had: "openai:<model>", "none", "none: offline fallback"
    teacher_name: str = ""  # its name on the bench's teachers axis ("" without one)
    seeds: list[int]
    weak_skills: list[str]
    final_accuracy: MeanStd
    auc: MeanStd
    weak_gain: MeanStd
    examples_trained: float
    examples_generated: float
    teacher_tokens: float
    wall_seconds: float
    teacher_calls: float = 0.0  # paid calls per run (cache hits not counted)
    train_seconds: float = 0.0  # per run, summed over its train phases
    eval_seconds: float = 0.0  # per run, summed over its evaluations

    @property
    def key(self) -> RowKey:
        return (self.environment, self.policy, self.teacher_name)

    @property
    def label(self) -> str:
        """The row in plots and tables: its policy, and its teacher on a teachers axis."""
        return row_label(self.key)

    @property
    def gain_per_1k_tokens(self) -> float | None:
        """Weak-skill gain (points) per 1000 teacher tokens; None for a run without a teacher."""
        return self.weak_gain.mean * 100 / (self.teacher_tokens / 1000) if self.teacher_tokens else None

    @property
    def gain_per_100_examples(self) -> float | None:
        """Weak-skill gain (points) per 100 examples trained on."""
        return self.weak_gain.mean * 100 / (self.examples_trained / 100) if self.examples_trained else None

    # figure -> this policy minus the baseline's, paired on seeds and eval items (none for the baseline)
    versus: dict[str, PairedDifference] = Field(default_factory=dict)
    tied_with_previous: bool = False  # its weak-skill gain is not distinguishable from the row above's
    forgetting: Forgetting | None = None  # what happened to the skills that were not weak
    data: DataMeasures | None = None  # what the runs' new data looks like (intrinsic.py), mean over seeds


@dataclass
class BenchResults:
    """Finished runs' metrics per (environment, policy), the rows computed from them, what failed."""

    bench: BenchConfig
    bench_dir: Path
    records: dict[RowKey, list[list[MetricsRecord]]]  # per seed, in seed order
    missing: list[str]
    rows: list[LeaderRow] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    errors_log: Path | None = None
    trees: dict[str, SkillTree | None] = field(default_factory=dict)  # per environment, from a run's skills.json
    items: dict[RowKey, dict[int, RunItems]] = field(default_factory=dict)  # per seed, item by item
    detectable: dict[str, float] = field(default_factory=dict)  # per environment, weak-gain points
    predictors: dict[str, list[Predictor]] = field(default_factory=dict)  # per environment, across its runs

    @property
    def baseline(self) -> str | None:
        return self.bench.baseline_policy

    def environments(self) -> list[str]:
        return [env for env in self.bench.environments if any(r.environment == env for r in self.rows)]

    def env_rows(self, environment: str) -> list[LeaderRow]:
        return [r for r in self.rows if r.environment == environment]

    def env_weak_skills(self, environment: str) -> list[str]:
        return sorted({s for row in self.env_rows(environment) for s in row.weak_skills})

    def layout(self, environment: str) -> SkillLayout:
        """The environment's skills as its first finished run records them, over its tree;
        weak: weak at iteration 0 in any of its runs."""
        rows = self.env_rows(environment)
        records = self.records[rows[0].key][0] if rows else []
        layout = skill_layout(records, self.trees.get(environment))
        return dataclasses.replace(layout, weak=frozenset(self.env_weak_skills(environment)))

    def raise_for_failures(self) -> None:
        if self.failed:
            raise TeachloopError(
                f"{len(self.failed)} run(s) failed ({', '.join(self.failed)}); tracebacks in {self.errors_log}, "
                f"each run's output in {self.bench_dir / 'logs'}; "
                f"the leaderboard in {self.bench_dir} holds the others; rerun the bench to resume"
            )


def _teacher_tokens(record: MetricsRecord) -> int:
    """What the teacher read, wrote and (distilling) scored: the cost runs are compared at."""
    teacher = record.teacher or {}
    return sum(teacher.get(key, 0) for key in ("prompt_tokens", "completion_tokens", "scored_tokens"))


def _wall_seconds(records: Sequence[MetricsRecord]) -> float:
    return sum(sum(r.phase_seconds.values()) for r in records)


def teacher_label(config: RunConfig) -> str:
    """What taught in a run: the LLM teacher (and whether it wrote the data), or none, and
    whether a policy built to ask an LLM ran its offline fallback instead."""
    if config.teacher is None:
        from teachloop.agents.policies import POLICIES

        uses = getattr(POLICIES.load(config.policy), "uses_teacher", False)
        return "none: offline fallback" if uses else "none"
    name = config.teacher.spec
    engine = resolve_run(config).engine
    return name if engine == "llm" else f"{name} (data: {engine})"


def leader_row(key: RowKey, teacher: str, seeds: list[int], runs: list[list[MetricsRecord]]) -> LeaderRow:
    def mean(values: Sequence[float]) -> float:
        return statistics.fmean(values) if values else 0.0

    weak = sorted({s for records in runs for s in weak_skills(records)})
    environment, policy, teacher_name = key
    return LeaderRow(
        environment=environment,
        policy=policy,
        teacher=teacher,
        teacher_name=teacher_name,
        seeds=seeds,
        weak_skills=weak,
        final_accuracy=MeanStd.of([records[-1].accuracy for records in runs]),
        auc=MeanStd.of([statistics.fmean(r.accuracy for r in records) for records in runs]),
        weak_gain=MeanStd.of([weak_gain(records) for records in runs]),
        examples_trained=mean([sum(r.examples_trained for r in records) for records in runs]),
        examples_generated=mean([records[-1].examples_generated for records in runs]),
        teacher_tokens=mean([_teacher_tokens(records[-1]) for records in runs]),
        teacher_calls=mean([(records[-1].teacher or {}).get("calls", 0) for records in runs]),
        wall_seconds=mean([_wall_seconds(records) for records in runs]),
        train_seconds=mean([sum(r.phase_seconds.get("train", 0.0) for r in records) for records in runs]),
        eval_seconds=mean([sum(r.phase_seconds.get("evaluate", 0.0) for r in records) for records in runs]),
    )


def collect(bench: BenchConfig, configs: Sequence[RunConfig], bench_dir: Path) -> BenchResults:
    """Metrics of every finished run, grouped; rows sorted by final accuracy per environment."""
    records: dict[RowKey, list[list[MetricsRecord]]] = {}
    items: dict[RowKey, dict[int, RunItems]] = {}
    seeds: dict[RowKey, list[int]] = {}
    teachers: dict[RowKey, str] = {}
    trees: dict[str, SkillTree | None] = {}
    measures: dict[RowKey, list[DataMeasures]] = {}
    pools: dict[str, set[tuple[str, str]] | None] = {}
    missing = []
    for config in configs:
        key = (config.environment, config.policy, cell_teacher(bench, config))
        teachers[key] = teacher_label(config)
        run_dir = config.out / str(config.name)
        finished = (run_dir / MARKER).exists() and RunStore(run_dir).is_finished()
        metrics = load_metrics(run_dir) if finished else []
        if not metrics:
            missing.append(str(config.name))
            continue
        records.setdefault(key, []).append(metrics)
        seeds.setdefault(key, []).append(config.seed)
        items.setdefault(key, {})[config.seed] = RunItems.load(run_dir, weak_skills(metrics))
        measures.setdefault(key, []).append(
            measure_run(run_dir, _pool_bigrams(config, pools), reference_bigrams(eval_prompts(run_dir)))
        )
        if trees.get(config.environment) is None:
            trees[config.environment] = load_tree(RunStore(run_dir))
    rows = [
        leader_row(key, teachers[key], seeds[key], runs).model_copy(update={"data": DataMeasures.mean(measures[key])})
        for key, runs in records.items()
    ]
    rows = [with_uncertainty(row, items, bench) for row in rows]
    order = {env: i for i, env in enumerate(bench.environments)}
    # a bench ranks what a run hands back: the student's final accuracy, then the targeted gain
    rows.sort(key=lambda r: (order[r.environment], -r.final_accuracy.mean, -r.weak_gain.mean))
    rows = mark_ties(rows, items)
    results = BenchResults(
        bench=bench, bench_dir=bench_dir, records=records, missing=missing, rows=rows, trees=trees, items=items
    )
    for env in results.environments():
        found = detectable_difference([d for r in results.env_rows(env) if (d := r.versus.get("weak_gain"))])
        if found is not None:
            results.detectable[env] = found
        keys = [key for key in records if key[0] == env]
        results.predictors[env] = predictors(
            [m for key in keys for m in measures[key]],
            [weak_gain(run) for key in keys for run in records[key]],
        )
    return results


def _pool_bigrams(config: RunConfig, cache: dict[str, set[tuple[str, str]] | None]) -> set[tuple[str, str]] | None:
    """The seed pool's prompt bigrams (novelty's reference), once per environment and options;
    None where the environment cannot be loaded here (a plug-in no longer installed)."""
    import json

    from teachloop.environments import get_environment

    key = json.dumps([config.environment, config.environment_options], sort_keys=True, default=str)
    if key not in cache:
        try:
            pool = get_environment(config.environment, **config.environment_options).train_pool()
        except Exception:  # noqa: BLE001 - novelty is left out, the leaderboard still stands
            cache[key] = None
        else:
            cache[key] = reference_bigrams(e.prompt for e in pool)
    return cache[key]


def baseline_key(bench: BenchConfig, row: LeaderRow) -> RowKey | None:
    """The row a row is compared with: the baseline policy under the same teacher, or (when the
    baseline names a teacher) the same policy under the baseline teacher; None for the baseline."""
    baseline = bench.baseline_policy
    if baseline is None:
        return None
    env, policy, teacher = row.key
    key = (env, policy, baseline) if bench.baseline_is_teacher else (env, baseline, teacher)
    return None if key == row.key else key


def _rng_key(key: RowKey) -> tuple[str, ...]:
    """The bootstrap's seed material for a row: (environment, policy), as before teachers were an axis."""
    return key if key[2] else key[:2]


def with_uncertainty(row: LeaderRow, items: dict[RowKey, dict[int, RunItems]], bench: BenchConfig) -> LeaderRow:
    """The row's figures with their intervals, and its paired differences with the baseline."""
    runs = items[row.key]
    key = _rng_key(row.key)
    update: dict[str, Any] = {
        figure: getattr(row, figure).with_interval(interval(list(runs.values()), figure, *key)) for figure in FIGURES
    }
    update["forgetting"] = forgetting(list(runs.values()), *key)
    partner = baseline_key(bench, row)
    if partner is not None and partner in items:
        # named by the partner's label, as mark_ties names the row above: one bootstrap for both
        name = row_label(partner)
        versus = {figure: paired_difference(runs, items[partner], figure, name, *key) for figure in FIGURES}
        update["versus"] = {figure: diff for figure, diff in versus.items() if diff is not None}
    return row.model_copy(update=update)


RANKED_BY = "final_accuracy"  # the figure rows are sorted by and ties are tested on


def mark_ties(rows: list[LeaderRow], items: dict[RowKey, dict[int, RunItems]]) -> list[LeaderRow]:
    """A row whose final accuracy the paired test cannot tell from the row above's is a tie."""
    marked: list[LeaderRow] = []
    for k, row in enumerate(rows):
        above = rows[k - 1] if k else None
        tied = False
        if above is not None and above.environment == row.environment:
            # the arguments (and so the bootstrap's draws) of with_uncertainty's comparison: against
            # the baseline in the row above, the tie and the "vs baseline" verdict are one test
            diff = paired_difference(items[row.key], items[above.key], RANKED_BY, above.label, *_rng_key(row.key))
            tied = diff is not None and diff.verdict == "not distinguishable"
        marked.append(row.model_copy(update={"tied_with_previous": tied}))
    return marked


# -- the leaderboard ----------------------------------------------------------------------
# columns the terminal leaves to leaderboard.md, so the table fits a wide terminal
LEADERBOARD_MD_ONLY = frozenset(
    {"AUC", "trained", "generated", "teacher calls", "gain / 100 trained", "train s", "eval s"}
)


TITLE_COLUMNS = ("environment", "teacher", "seeds")  # shared by every row: said once, in the title
EMPTY_CELLS = frozenset({"0", "–", "—"})


def headers(baseline: str | None) -> tuple[str, ...]:
    final_vs = (f"final vs {baseline}",) if baseline else ()
    gain_vs = (f"gain vs {baseline}",) if baseline else ()
    return (
        "rank", "environment", "policy", "teacher", "seeds", "final accuracy", *final_vs, "forgotten",
        "weak-skill gain (points)", *gain_vs, "AUC", "other skills (points)", "trained", "generated",
        "teacher tokens", "teacher calls", "gain / 1k tokens", "gain / 100 trained", "train s", "eval s",
        "wall s / run",
    )  # fmt: skip


def _versus(row: LeaderRow, figure: str, scale: float, short: bool = False) -> str:
    diff = row.versus.get(figure)
    if diff is None:
        return "(baseline)"
    shown = diff.show(scale=scale, digits=1 if scale == 100 else 3)
    return shown.replace(" not distinguishable", " ≈") if short else shown  # the terminal's legend explains ≈


def _forgotten_cell(found: Forgetting | None) -> str:
    return "–" if found is None or found.untargeted is None else ", ".join(found.forgotten) or "none"


def _other_skills_cell(found: Forgetting | None) -> str:
    if found is None or found.untargeted is None:
        return "–"
    change = found.untargeted
    worst = f"; worst {found.worst_skill} {found.worst_change * 100:+.1f}" if found.worst_change is not None else ""
    return f"{change.estimate * 100:+.1f} [{change.lo * 100:+.1f}, {change.hi * 100:+.1f}]{worst}"


def _cells(rank: int, row: LeaderRow, baseline: str | None, short: bool = False) -> list[str]:
    final_vs = [_versus(row, "final_accuracy", 1, short)] if baseline else []
    gain_vs = [_versus(row, "weak_gain", 100, short)] if baseline else []
    return [
        f"{rank}=" if row.tied_with_previous else str(rank),
        row.environment,
        row.policy,
        row.teacher_name or row.teacher,
        str(len(row.seeds)),
        row.final_accuracy.show(),
        *final_vs,
        _forgotten_cell(row.forgetting),
        row.weak_gain.show(scale=100, digits=1, signed=True),
        *gain_vs,
        row.auc.show(),
        _other_skills_cell(row.forgetting),
        f"{row.examples_trained:.0f}",
        f"{row.examples_generated:.0f}",
        f"{row.teacher_tokens:.0f}",
        f"{row.teacher_calls:.0f}",
        "–" if row.gain_per_1k_tokens is None else f"{row.gain_per_1k_tokens:+.2f}",
        "–" if row.gain_per_100_examples is None else f"{row.gain_per_100_examples:+.2f}",
        f"{row.train_seconds:.0f}",
        f"{row.eval_seconds:.0f}",
        f"{row.wall_seconds:.0f}",
    ]


def _ranked(rows: Sequence[LeaderRow]) -> list[tuple[int, LeaderRow]]:
    ranked, last_env, rank = [], None, 0
    for row in rows:
        rank = 1 if row.environment != last_env else rank + 1
        last_env = row.environment
        ranked.append((rank, row))
    return ranked


def short_columns(names: Sequence[str], rows: Sequence[Sequence[str]]) -> tuple[list[int], list[str]]:
    """The columns a short leaderboard (the terminal's, `teachloop show`'s) keeps, and what it says
    once instead: it leaves out leaderboard.md's extra columns and what every row says alike: a
    shared environment, teacher or seed count goes in the title, a column that is 0 or – in every
    row (teacher tokens offline) goes."""
    shown = [k for k, header in enumerate(names) if header not in LEADERBOARD_MD_ONLY]
    common = {
        names[k]: rows[0][k] for k in shown if rows and names[k] in TITLE_COLUMNS and len({r[k] for r in rows}) == 1
    }
    shown = [k for k in shown if names[k] not in common and not (rows and all(r[k] in EMPTY_CELLS for r in rows))]
    said = [common["environment"]] if "environment" in common else []
    said += [f"teacher {common['teacher']}"] if "teacher" in common else []
    said += [f"{common['seeds']} seed{'s' if common['seeds'] != '1' else ''}"] if "seeds" in common else []
    return shown, said


def rich_leaderboard(results: BenchResults) -> Table:
    from rich.markup import escape
    from rich.table import Table

    names = headers(results.baseline)
    rows = [_cells(rank, row, results.baseline, short=True) for rank, row in _ranked(results.rows)]
    shown, said = short_columns(names, rows)
    table = Table(title=f"leaderboard: {results.bench_dir}" + (f" ({'; '.join(said)})" if said else ""))
    for k in shown:  # no cell is split over lines: the caller prints the table as wide as it is
        left = names[k] in ("environment", "policy", "teacher")
        table.add_column(names[k], justify="left" if left else "right", no_wrap=True)
    for cells in rows:
        table.add_row(*(cells[k] for k in shown))
    bench = results.bench
    versus = f"; ≈: not distinguishable from {results.baseline}" if results.baseline else ""
    table.caption = escape(
        f"{bench.budget} examples x {bench.iterations} iterations per run; mean [95% interval]; sorted by the "
        f"final accuracy of the students handed back (=: not distinguishable from the row above){versus}; the "
        f"gain on the skills weak at iteration 0 beside it; every column in "
        f"leaderboard.md" + (f"\n{_caveat(results)}" if _caveat(results) else "")
    )
    return table


def table_width(table: Table) -> int:
    """The width a rich table takes with no cell wrapped (its columns are no_wrap)."""
    from rich.console import Console

    return Console(width=10_000).measure(table).maximum


def one_seed_policies(results: BenchResults) -> list[str]:
    """The rows (environment/policy) measured on a single seed."""
    return [f"{row.environment}/{row.label}" for row in results.rows if len(row.seeds) < 2]


def _caveat(results: BenchResults) -> str:
    """The line under the leaderboard when a row has one seed: its intervals come from
    resampling that run's eval items only (stats.py), so they leave out how much another
    seed moves a figure, and the ranking cannot separate policies."""
    single = one_seed_policies(results)
    if not single:
        return ""
    which = "every row" if len(single) == len(results.rows) else shorten(single)
    return (
        f"caveat: one seed ({which}) cannot separate policies: its [interval] resamples the eval items of that "
        "one run only, not seeds, so it leaves out how much another seed moves the figure; a first reading, not "
        "a ranking: run more seeds (`seeds: [0, 1, 2]`) to rank"
    )


def markdown_leaderboard(results: BenchResults) -> str:
    bench = results.bench
    has_teacher = bench.run.get("teacher") or any((bench.teachers or {}).values())
    budgets = [
        f"{value} teacher {what}" for what, value in (
            ("tokens", bench.teacher_tokens_per_iteration), ("calls", bench.teacher_calls_per_iteration),
            ("cost", bench.teacher_cost_per_iteration),
        ) if value is not None
    ] if has_teacher else []  # fmt: skip
    weak = "; ".join(f"{env}: {shorten(results.env_weak_skills(env))}" for env in results.environments())
    weak = f" ({weak})" if weak else ""
    lines = [
        f"# teachloop benchmark `{results.bench_dir.name}`",
        "",
        f"- every run: {bench.budget} new examples x {bench.iterations} iterations"
        + (f", at most {' and '.join(budgets)} per iteration" if budgets else "")
        + f"; seeds {', '.join(map(str, bench.seeds))}",
        f"- environments: {', '.join(bench.environments)}; policies: {', '.join(bench.policies)}",
        *([f"- teachers: {_teachers_line(results)}"] if bench.teachers else []),
        "- run folders: `runs/<environment>-" + ("<teacher>-" if bench.teachers else "") + "<policy>-s<seed>`",
        "",
        "| " + " | ".join(headers(results.baseline)) + " |",
        "|" + "---|" * len(headers(results.baseline)),
    ]
    lines += ["| " + " | ".join(_cells(rank, row, results.baseline)) + " |" for rank, row in _ranked(results.rows)]
    baseline = results.baseline
    versus = (
        f" *vs {baseline}*: the policy's figure minus {baseline}'s on the same seeds and eval items, with its "
        "95 % interval and a verdict (better / worse when the interval excludes 0, else not distinguishable)."
        if baseline
        else ""
    )
    detectable = "; ".join(f"{env}: about {points * 100:.1f} points" for env, points in results.detectable.items())
    lines += [
        "",
        "Each figure: the mean over seeds of the per-run figure, with its 95 % interval from a bootstrap that "
        "resamples the seeds and, within each seed, the eval items (the same items at every iteration). "
        "Rows are ranked by *final accuracy* (what the runs hand back); rank `=`: its final accuracy is not "
        "distinguishable from the row above's by the paired test."
        + versus
        + (
            f" The smallest weak-skill difference these seeds and items tell apart (2.8 standard errors of "
            f"the paired differences): {detectable}."
            if detectable
            else ""
        )
        + (
            " One seed: the intervals resample eval items only, so they say nothing of how much another seed "
            "moves a figure: a first reading, not a ranking."
            if _caveat(results)
            else ""
        ),
        *(["", f"**{_caveat(results)}**"] if _caveat(results) else []),
        "",
        "*other skills*: the mean accuracy change, first to last iteration, on the skills that were not weak "
        "at iteration 0 (the data did not target them), with its interval and the worst change of any of "
        "them; *forgotten*: those whose interval lies below 0 (lost more than the interval allows).",
        "",
        "*Weak-skill gain*: the mean accuracy gain, first to "
        f"last iteration, on the skills below {WEAK_THRESHOLD} at iteration 0{weak}. *AUC*: the overall "
        "accuracy averaged over iterations 0..N. *trained*: examples trained on, summed over iterations "
        "(with `data: accumulate` earlier data counts again); *generated*: examples the data phase produced "
        "(new ones, plus pool draws for policies that reweight the seed pool); *teacher*: the LLM teacher "
        'of the runs ("none: offline fallback": a policy built to ask an LLM ran without one, so its '
        "programmatic stand-in was measured); *teacher tokens*: prompt + completion; *teacher calls*: paid calls "
        "per run (cached replies are free); *gain / 1k tokens* and "
        "*gain / 100 trained*: weak-skill gain points per 1000 teacher tokens and per 100 examples trained on; "
        "*train s*, *eval s*: seconds per run in its train phases and evaluations; *wall s*: seconds in the "
        "loop's phases.",
        "",
    ]
    for env in results.environments():
        lines += markdown_group_table(results, env)
        lines += markdown_data_tables(results.env_rows(env), results.predictors.get(env, []), env)
    if results.missing:
        lines += [f"Not finished, so not in the table (rerun the bench to resume): {', '.join(results.missing)}", ""]
    if results.rows:
        lines += ["![learning curves](learning_curves.png)", "", "![final accuracy per skill](skill_heatmap.png)", ""]
    return "\n".join(lines)


def _teachers_line(results: BenchResults) -> str:
    """'qwen = vllm:/path/model.gguf, programmatic = none' (what each teacher name stands for)."""
    given = results.bench.teachers or {}
    return ", ".join(
        f"{name} = {'none (the environment generator)' if t is None else t.spec}" for name, t in given.items()
    )


def shorten(names: Sequence[str], shown: int = WEAK_NAMES_SHOWN) -> str:
    """'a, b, c' or 'a, b, ... and 12 more'; 'none' for no names."""
    if not names:
        return "none"
    rest = len(names) - shown
    return ", ".join(names[:shown]) + (f" and {rest} more" if rest > 0 else "")


def final_node_accuracy(results: BenchResults, row: LeaderRow, node: str) -> float | None:
    """A node's accuracy at the last iteration, mean over the seeds that measured it."""
    values = [node_value(records[-1], node) for records in results.records[row.key]]
    measured = [v for v in values if v is not None]
    return statistics.fmean(measured) if measured else None


def _group_cell(results: BenchResults, row: LeaderRow, group: str, layout: SkillLayout) -> str:
    """A group's final accuracy with its interval from the item scores; a bare mean of the
    recorded node accuracy where the runs kept no item scores; '–' where nothing measured it."""
    runs = list(results.items.get(row.key, {}).values())
    members = {group} | {node for node, top in layout.top.items() if top == group}
    found = group_final_accuracy(runs, members, *_rng_key(row.key)) if runs else None
    if found is not None:
        return f"{found.estimate:.3f} [{found.lo:.3f}, {found.hi:.3f}]"
    value = final_node_accuracy(results, row, group)
    return "–" if value is None else f"{value:.3f}"


def markdown_group_table(results: BenchResults, env: str) -> list[str]:
    """Final accuracy per top-level skill group and policy (mean over seeds); nothing for a
    tree without groups."""
    layout = results.layout(env)
    groups = layout.top_groups
    if not groups:
        return []
    head = ["policy" + (" / teacher" if results.bench.teachers else ""), *(layout.label(g) for g in groups)]
    lines = [
        f"## {env}: final accuracy per skill group",
        "",
        "Mean over seeds [95 % interval, resampling seeds and eval items]; a group holds every eval item "
        f"labelled with it or a skill below it ({len(layout.leaves)} skills in {len(groups)} groups; every "
        "skill is in skill_heatmap.png).",
        "",
        "| " + " | ".join(head) + " |",
        "|" + "---|" * len(head),
    ]
    for row in results.env_rows(env):
        cells = [_group_cell(results, row, group, layout) for group in groups]
        lines.append("| " + " | ".join([row.label, *cells]) + " |")
    return [*lines, ""]


DATA_HEAD = (
    "policy", "teacher", "kept / asked", "rejected (most)", "prompt words", "answer words", "distinct-1",
    "distinct-2", "near-duplicates", "novel vs pool", "novel vs eval",
)  # fmt: skip
DATA_NOTE = (
    "The new examples each row's runs kept, measured on the data alone (mean over seeds): *kept / asked* "
    "(the yield), the most frequent rejection reasons, mean prompt and answer length in words, *distinct-n*: "
    "distinct word n-grams / all of them, *near-duplicates*: examples whose prompt shares 80 % of its words "
    "with another's, *novel vs pool / eval*: the share of a prompt's word pairs found in no seed-pool / eval "
    "prompt. *Predicts the gain*: Spearman's correlation of each measure with the weak-skill gain across this "
    "environment's runs (a first reading with few runs)."
)


def _share(value: float | None) -> str:
    return "–" if value is None else f"{value:.0%}"


def _number(value: float | None, digits: int = 2) -> str:
    return "–" if value is None else f"{value:.{digits}f}"


def data_cells(row: LeaderRow) -> list[str]:
    """One row of the data table (DATA_HEAD)."""
    found = row.data or DataMeasures()
    reasons = sorted(found.rejected.items(), key=lambda kv: -kv[1])[:3]
    rejected = ", ".join(f"{name} {n:.0f}" for name, n in reasons) or "none"
    kept = f"{found.kept:.0f} / {found.asked:.0f} ({_share(found.yield_ratio)})" if found.asked else f"{found.kept:.0f}"
    return [
        row.policy, row.teacher_name or row.teacher, kept, rejected, _number(found.prompt_words, 1),
        _number(found.answer_words, 1), _number(found.distinct_1), _number(found.distinct_2),
        _share(found.near_duplicates), _share(found.novelty_pool), _share(found.novelty_eval),
    ]  # fmt: skip


def predictor_cells(found: Predictor) -> list[str]:
    return [found.measure, _number(found.spearman), str(found.runs)]


def markdown_data_tables(rows: Sequence[LeaderRow], found: Sequence[Predictor], env: str) -> list[str]:
    """The data each row wrote, and which measure of it predicts the gain."""
    if not any(row.data is not None and row.data.kept for row in rows):
        return []
    lines = [f"## {env}: the data each row wrote", "", DATA_NOTE, "", "| " + " | ".join(DATA_HEAD) + " |"]
    lines += ["|" + "---|" * len(DATA_HEAD)] + ["| " + " | ".join(data_cells(row)) + " |" for row in rows]
    if any(p.spearman is not None for p in found):
        lines += ["", "| measure | predicts the gain (Spearman) | runs |", "|---|---|---|"]
        lines += ["| " + " | ".join(predictor_cells(p)) + " |" for p in found]
    return [*lines, ""]


# -- plots --------------------------------------------------------------------------------
def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _mean_curve(series: Sequence[Sequence[float]]) -> tuple[list[float], list[float]]:
    """Mean and std over runs, iteration by iteration (runs cut to the shortest)."""
    length = min(len(values) for values in series)
    stats = [MeanStd.of([values[i] for values in series]) for i in range(length)]
    return [s.mean for s in stats], [s.std for s in stats]


def _weak_series(records: Sequence[MetricsRecord]) -> list[float]:
    weak = weak_skills(records)
    return [mean_accuracy(r, weak) for r in records]


def _overall_series(records: Sequence[MetricsRecord]) -> list[float]:
    return [r.accuracy for r in records]


Series = Callable[[Sequence["MetricsRecord"]], list[float]]


LINE_STYLES = ("-", "--", ":", "-.")


def _plot_panel(ax: Any, results: BenchResults, env: str, series: Series) -> None:
    import matplotlib

    colors = matplotlib.colormaps["tab20"].colors  # 12+ policies must not share a colour
    for k, row in enumerate(results.env_rows(env)):
        runs = results.records[row.key]
        means, stds = _mean_curve([series(records) for records in runs])
        xs = list(range(len(means)))
        style = {"color": colors[(2 * k) % 20 + (k // 10) % 2], "linestyle": LINE_STYLES[k % len(LINE_STYLES)]}
        (line,) = ax.plot(xs, means, marker="o", label=row.label, **style)
        if len(runs) > 1:
            lo = [m - s for m, s in zip(means, stds, strict=True)]
            hi = [m + s for m, s in zip(means, stds, strict=True)]
            ax.fill_between(xs, lo, hi, color=line.get_color(), alpha=0.15)
        ax.set_xticks(xs)
    ax.set_xlabel("iteration (rounds of new data)")
    ax.set_ylabel("eval accuracy")
    ax.set_ylim(-0.02, 1.02)
    ax.grid(alpha=0.3)


def plot_learning_curves(results: BenchResults, path: Path) -> Path:
    """Per environment: mean accuracy on the weak skills, and overall, per policy vs iteration."""
    plt = _pyplot()
    envs = results.environments()
    fig, axes = plt.subplots(len(envs), 2, figsize=(12, 4.2 * len(envs)), squeeze=False)
    for (weak_ax, all_ax), env in zip(axes, envs, strict=True):
        _plot_panel(weak_ax, results, env, _weak_series)
        weak_ax.set_title(f"{env}: weak skills ({shorten(results.env_weak_skills(env), 4)})", fontsize=10)
        _plot_panel(all_ax, results, env, _overall_series)
        all_ax.set_title(f"{env}: all skills", fontsize=10)
        all_ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110, bbox_inches="tight")  # the legend sits outside the axes: keep all of it
    plt.close(fig)
    return path


def _final_matrix(results: BenchResults, env: str, nodes: Sequence[str]) -> list[list[float]]:
    """Final accuracy (mean over seeds) per policy (rows) and node (columns); NaN: not measured."""
    return [
        [math.nan if (v := final_node_accuracy(results, row, n)) is None else v for n in nodes]
        for row in results.env_rows(env)
    ]


def _heatmap_size(results: BenchResults, env: str) -> tuple[float, float]:
    layout, policies = results.layout(env), len(results.env_rows(env))
    if layout.many:  # one row per node: a hundred skills stay legible
        return 3.0 + 0.9 * policies, 1.2 + 0.24 * len(layout.nodes)
    return 3.0 + 0.85 * len(layout.nodes), 1.2 + 0.45 * policies


# accuracy 0 .. 0.5 .. 1: red .. yellow .. green, in the bench's heat map and on `teachloop show`'s pages
HEAT_STOPS: tuple[tuple[float, tuple[int, int, int]], ...] = (
    (0.0, (215, 48, 39)),
    (0.5, (254, 224, 139)),
    (1.0, (26, 152, 80)),
)


def heat_colormap() -> Any:
    """HEAT_STOPS as a matplotlib colormap, light grey for a node no eval item reached."""
    from matplotlib.colors import LinearSegmentedColormap

    stops = [(at, tuple(c / 255 for c in rgb)) for at, rgb in HEAT_STOPS]
    return LinearSegmentedColormap.from_list("teachloop-accuracy", stops).with_extremes(bad="lightgrey")


def plot_skill_heatmap(results: BenchResults, path: Path) -> Path:
    """Per environment: final accuracy (mean over seeds) of every policy on every node of the
    skill tree, in tree order (a group, then its skills), a white line between top-level
    groups. A small tree has a column per node; a big one (more than MAX_SKILL_COLUMNS leaves)
    a row per node."""
    plt = _pyplot()
    envs = results.environments()
    sizes = [_heatmap_size(results, env) for env in envs]
    width = max(5.0, *(w for w, _ in sizes))
    heights = [h for _, h in sizes]
    fig, axes = plt.subplots(len(envs), 1, figsize=(width, sum(heights)), squeeze=False,
                             gridspec_kw={"height_ratios": heights})  # fmt: skip
    cmap = heat_colormap()  # the run pages' scale; grey: a node no eval item reached
    for ax, env in zip(axes[:, 0], envs, strict=True):
        layout = results.layout(env)
        policies = [row.label for row in results.env_rows(env)]
        matrix = _final_matrix(results, env, layout.nodes)
        if layout.many:
            matrix = [list(column) for column in zip(*matrix, strict=True)] if matrix else []
        image = ax.imshow(matrix, vmin=0.0, vmax=1.0, cmap=cmap, aspect="auto")
        crowded = layout.many and len(policies) > 12  # too many cells to print a number in each
        for i, values in enumerate(matrix):
            for j, value in enumerate(values):
                if math.isnan(value) or crowded:
                    continue
                color = "white" if value < 0.15 or value > 0.9 else "black"
                ax.text(j, i, f"{value:.2f}", ha="center", va="center", fontsize=6 if layout.many else 8, color=color)
        names = [
            "· " * layout.depth.get(n, 0) + layout.label(n) if layout.many else layout.label(n) for n in layout.nodes
        ]
        if layout.many:
            ax.set_yticks(range(len(names)), names, fontsize=7)
            ax.set_xticks(range(len(policies)), policies, rotation=30, ha="right")
            labels = ax.get_yticklabels()
        else:
            ax.set_xticks(
                range(len(names)),
                names,
                rotation=30 if len(names) > 6 else 0,
                ha="right" if len(names) > 6 else "center",
            )
            ax.set_yticks(range(len(policies)), policies)
            labels = ax.get_xticklabels()
        for k in range(1, len(layout.nodes)):  # a white line between top-level groups
            if layout.top.get(layout.nodes[k]) != layout.top.get(layout.nodes[k - 1]):
                (ax.axhline if layout.many else ax.axvline)(k - 0.5, color="white", linewidth=2)
        for node, label in zip(layout.nodes, labels, strict=True):
            if node in layout.groups:
                label.set_fontweight("bold")
        ax.set_title(f"{env}: final accuracy per skill ([group], * weak at iteration 0)", fontsize=10)
        fig.colorbar(image, ax=ax, fraction=0.03)
    fig.tight_layout()
    fig.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(fig)
    return path


def write_outputs(results: BenchResults) -> Path:
    """leaderboard.md/.json and the two plots in the bench dir; returns the leaderboard's path."""
    bench_dir = results.bench_dir
    path = bench_dir / "leaderboard.md"
    atomic_write_text(path, markdown_leaderboard(results))
    rows = [r.model_dump() for r in results.rows]
    predictors = {env: [p.model_dump() for p in found] for env, found in results.predictors.items()}
    write_json(
        bench_dir / "leaderboard.json",
        {"rows": rows, "missing": results.missing, "failed": results.failed, "predictors": predictors},
    )
    if results.rows:
        plot_learning_curves(results, bench_dir / "learning_curves.png")
        plot_skill_heatmap(results, bench_dir / "skill_heatmap.png")
    return path

"""Reports: the per-iteration, per-skill accuracy table, learning curves and weak-skill gains."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from rich.table import Table

from teachloop.faults import kill_point
from teachloop.io import atomic_write_text
from teachloop.runs.metrics import MetricsRecord, compute_metrics
from teachloop.runs.store import RunStore

WEAK_THRESHOLD = 0.5


def load_metrics(run_dir: Path) -> list[MetricsRecord]:
    """The run's per-iteration records, rebuilt from its phase artifacts (metrics.jsonl is
    only a copy of them: a cut or stale file is never what a report shows)."""
    store = RunStore.open(run_dir)
    store.check_integrity()
    return compute_metrics(store, store.config().policy)


def skill_names(records: Sequence[MetricsRecord]) -> list[str]:
    return list(records[0].skill_accuracy) if records else []


def weak_skills(records: Sequence[MetricsRecord], threshold: float = WEAK_THRESHOLD) -> list[str]:
    """Skills the student was weak on before any new data (iteration-0 accuracy < threshold)."""
    if not records:
        return []
    return [s for s, acc in records[0].skill_accuracy.items() if acc < threshold]


def mean_accuracy(record: MetricsRecord, skills: Sequence[str]) -> float:
    return sum(record.skill_accuracy[s] for s in skills) / len(skills) if skills else 0.0


def weak_gain(records: Sequence[MetricsRecord], skills: Sequence[str] | None = None) -> float:
    """Mean accuracy gain on the (initially) weak skills, first to last iteration."""
    skills = weak_skills(records) if skills is None else skills
    if len(records) < 2 or not skills:
        return 0.0
    return mean_accuracy(records[-1], skills) - mean_accuracy(records[0], skills)


def rich_table(records: Sequence[MetricsRecord], title: str = "accuracy per iteration and skill") -> Table:
    weak = set(weak_skills(records))
    table = Table(title=title)
    table.add_column("iter", justify="right")
    table.add_column("all", justify="right", style="bold")
    for skill in skill_names(records):
        table.add_column(skill + ("*" if skill in weak else ""), justify="right")
    table.add_column("trained", justify="right")
    table.add_column("seconds", justify="right")
    for r in records:
        table.add_row(
            str(r.iteration),
            f"{r.accuracy:.3f}",
            *(f"{r.skill_accuracy[s]:.2f}" for s in skill_names(records)),
            str(r.examples_trained),
            f"{sum(r.phase_seconds.values()):.1f}",
        )
    if weak:
        table.caption = f"* weak at iteration 0; mean gain on them: {weak_gain(records) * 100:+.1f} points"
    return table


def markdown_table(records: Sequence[MetricsRecord]) -> str:
    skills = skill_names(records)
    weak = set(weak_skills(records))
    head = ["iter", "all", *(s + ("*" if s in weak else "") for s in skills), "trained", "seconds", "overhead s"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in records:
        cells = [
            str(r.iteration),
            f"{r.accuracy:.3f}",
            *(f"{r.skill_accuracy[s]:.2f}" for s in skills),
            str(r.examples_trained),
            f"{sum(r.phase_seconds.values()):.1f}",
            f"{r.overhead_seconds:.2f}",
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def plot_curves(records: Sequence[MetricsRecord], path: Path, title: str = "") -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    iterations = [r.iteration for r in records]
    weak = set(weak_skills(records))
    fig, ax = plt.subplots(figsize=(7, 4.2))
    for skill in skill_names(records):
        ax.plot(
            iterations,
            [r.skill_accuracy[skill] for r in records],
            marker="o",
            linestyle="-" if skill in weak else "--",
            linewidth=2 if skill in weak else 1,
            label=skill + (" (weak)" if skill in weak else ""),
        )
    ax.plot(iterations, [r.accuracy for r in records], color="black", linewidth=3, label="all")
    ax.set_xlabel("iteration (rounds of new data)")
    ax.set_ylabel("eval accuracy")
    ax.set_ylim(-0.02, 1.02)
    ax.set_xticks(iterations)
    ax.set_title(title or "learning curve per skill")
    ax.grid(alpha=0.3)
    ax.legend(loc="center left", bbox_to_anchor=(1.0, 0.5), fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def write_report(run_dir: Path) -> Path:
    """report.md + learning_curves.png in the run folder; returns the report's path."""
    store = RunStore.open(run_dir)
    config = store.config()
    records = load_metrics(run_dir)
    store.write_metrics(records)
    png = plot_curves(records, store.root / "learning_curves.png", title=f"{store.root.name}") if records else None
    weak = weak_skills(records)
    lines = [
        f"# teachloop run `{store.root.name}`",
        "",
        f"- environment: `{config.environment}`, policy: `{config.policy}`, engine: `{config.engine}`",
        f"- student: `{config.student_model}` ({config.student}), data: {config.data}, "
        f"budget {config.budget} examples x {config.iterations} iterations, seed {config.seed}",
        f"- status: {'finished' if store.is_finished() else 'unfinished (resume with `teachloop resume`)'}",
        "",
        "## Accuracy per iteration and skill",
        "",
        markdown_table(records) if records else "(no evaluation yet)",
        "",
    ]
    if weak and len(records) > 1:
        lines += [
            f"Weak skills at iteration 0 (accuracy < {WEAK_THRESHOLD}): {', '.join(weak)}; "
            f"mean accuracy {mean_accuracy(records[0], weak):.3f} -> {mean_accuracy(records[-1], weak):.3f} "
            f"({weak_gain(records) * 100:+.1f} points).",
            "",
        ]
    if png:
        lines += [f"![learning curves]({png.name})", ""]
    if records:
        total = sum(sum(r.phase_seconds.values()) for r in records)
        overhead = sum(r.overhead_seconds for r in records)
        lines += [f"Wall time in phases: {total:.1f}s, of which framework overhead {overhead:.2f}s.", ""]
    path = store.root / "report.md"
    kill_point("report")
    atomic_write_text(path, "\n".join(lines))
    return path

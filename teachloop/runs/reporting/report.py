"""Reports: the per-iteration accuracy table over the skill tree, learning curves and
weak-skill gains.

Every node of the run's skill tree has an accuracy (a group aggregates every item labelled
with it or a skill below it). A small tree is shown whole, one column per node; a tree with
more than MAX_SKILL_COLUMNS leaves is shown, in the terminal and the curves, as its top-level
groups plus its weakest leaves, while report.md always holds every node. Group names are
written in brackets ("[text]") everywhere.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from rich.console import Group
from rich.table import Table
from rich.text import Text

from teachloop.faults import kill_point
from teachloop.io import atomic_write_text
from teachloop.runs.loop.metrics import WEAK_THRESHOLD, MetricsRecord, compute_metrics, load_tree, weak_skills
from teachloop.runs.loop.store import RunStore
from teachloop.runs.reporting.iteration_data import IterationData, load_run_data
from teachloop.runs.reporting.outcome import run_outcome
from teachloop.skills.tree import SkillTree
from teachloop.types import UNLABELLED

MAX_SKILL_COLUMNS = 10  # more leaves than this: summaries show the top-level groups, not every skill
MAX_GROUP_COLUMNS = 10  # at most this many group columns (the weakest, when there are more)
WEAKEST_SHOWN = 8  # leaves listed under a summary of groups


def load_metrics(run_dir: Path) -> list[MetricsRecord]:
    """The run's per-iteration records, rebuilt from its phase artifacts (metrics.jsonl is
    only a copy of them: a cut or stale file is never what a report shows)."""
    store = RunStore.open(run_dir)
    store.check_integrity()
    return compute_metrics(store, store.config().policy)


def run_tree(run_dir: Path) -> SkillTree | None:
    """The skill tree a run evaluated with (its skills.json), None when it has none yet."""
    return load_tree(RunStore(run_dir))


def mean_accuracy(record: MetricsRecord, skills: Sequence[str]) -> float:
    return sum(record.skill_accuracy[s] for s in skills) / len(skills) if skills else 0.0


def weak_gain(records: Sequence[MetricsRecord], skills: Sequence[str] | None = None) -> float:
    """Mean accuracy gain on the (initially) weak skills, first to last iteration."""
    skills = weak_skills(records) if skills is None else skills
    if len(records) < 2 or not skills:
        return 0.0
    return mean_accuracy(records[-1], skills) - mean_accuracy(records[0], skills)


# -- the skills a report shows -----------------------------------------------------------------
@dataclass(frozen=True)
class SkillLayout:
    """A run's skills as reports show them: every node in reading order (parents before
    their subtrees), then labels outside the tree, then the unlabelled bucket if any item
    had no skill."""

    nodes: list[str]
    depth: dict[str, int] = field(default_factory=dict)
    groups: frozenset[str] = frozenset()
    top: dict[str, str] = field(default_factory=dict)  # node -> its top-level ancestor (itself at the top)
    weak: frozenset[str] = frozenset()

    @property
    def leaves(self) -> list[str]:
        return [n for n in self.nodes if n not in self.groups and n != UNLABELLED]

    @property
    def top_groups(self) -> list[str]:
        return [n for n in self.nodes if n in self.groups and self.depth.get(n, 0) == 0]

    @property
    def has_unlabelled(self) -> bool:
        return UNLABELLED in self.nodes

    @property
    def many(self) -> bool:
        """Too many skills for one column each: summaries show groups and the weakest leaves."""
        return len(self.leaves) > MAX_SKILL_COLUMNS

    def label(self, node: str) -> str:
        """'[group]', 'skill*' (weak at iteration 0) or 'skill'; never empty."""
        name = node or "(blank)"
        if node in self.groups:
            return f"[{name}]"
        return name + ("*" if node in self.weak else "")


def skill_layout(records: Sequence[MetricsRecord], tree: SkillTree | None = None) -> SkillLayout:
    if not records:
        return SkillLayout(nodes=[])
    known: dict[str, None] = {}
    for record in records:
        known.update(dict.fromkeys(record.node_counts or record.skill_accuracy))
    unlabelled = any(r.node_counts.get(UNLABELLED) for r in records)
    known.pop(UNLABELLED, None)
    weak = frozenset(weak_skills(records))
    if tree is None:
        return SkillLayout(nodes=list(known) + [UNLABELLED] * unlabelled, weak=weak)
    nodes = tree.preorder() + [n for n in known if n not in tree]
    top = {n: (tree.ancestors(n) or [n])[-1] if n in tree else n for n in nodes}
    return SkillLayout(
        nodes=nodes + [UNLABELLED] * unlabelled,
        depth={n: tree.depth(n) for n in tree.preorder()},
        groups=frozenset(n for n in nodes if tree.is_group(n)),
        top=top,
        weak=weak,
    )


def node_value(record: MetricsRecord, node: str) -> float | None:
    """A node's accuracy in one record; None when no evaluated item reached it."""
    if node in record.node_accuracy:
        return record.node_accuracy[node]
    return record.skill_accuracy.get(node)


def _cell(value: float | None, digits: int = 2) -> str:
    return "–" if value is None else f"{value:.{digits}f}"


def summary_columns(records: Sequence[MetricsRecord], layout: SkillLayout) -> tuple[list[str], str]:
    """The skill columns of a summary table, and a note on what was left out.

    A small tree: every node. A big one: its top-level groups (the MAX_GROUP_COLUMNS weakest
    at the last iteration when there are more, in tree order), then the unlabelled bucket."""
    if not layout.many:
        return list(layout.nodes), ""
    groups = layout.top_groups
    note = f"{len(layout.leaves)} skills: columns are the top-level groups"
    if len(groups) > MAX_GROUP_COLUMNS:
        last = records[-1]
        weakest = set(sorted(groups, key=lambda g: _sort_value(node_value(last, g)))[:MAX_GROUP_COLUMNS])
        groups = [g for g in groups if g in weakest]
        note = (
            f"{len(layout.leaves)} skills: columns are the {MAX_GROUP_COLUMNS} weakest of "
            f"{len(layout.top_groups)} top-level groups"
        )
    if not groups:
        note = f"{len(layout.leaves)} skills"
    return groups + [UNLABELLED] * layout.has_unlabelled, note


def _sort_value(value: float | None) -> float:
    return math.inf if value is None else value


def weakest_leaves(records: Sequence[MetricsRecord], layout: SkillLayout, k: int = WEAKEST_SHOWN) -> list[str]:
    """The k leaves with the lowest accuracy at the last iteration (ties: lower at the first)."""
    first, last = records[0], records[-1]
    measured = [s for s in layout.leaves if node_value(last, s) is not None]
    return sorted(measured, key=lambda s: (node_value(last, s), _sort_value(node_value(first, s))))[:k]


# -- the terminal ------------------------------------------------------------------------------
def rich_table(
    records: Sequence[MetricsRecord], title: str = "accuracy per iteration and skill", tree: SkillTree | None = None
) -> Table:
    layout = skill_layout(records, tree)
    columns, note = summary_columns(records, layout)
    table = Table(title=title)
    table.add_column("iter", justify="right")
    table.add_column("all", justify="right", style="bold")
    for node in columns:
        style = "bold" if node in layout.groups else ""
        table.add_column(Text(layout.label(node)), justify="right", style=style, overflow="fold")  # a long name wraps
    table.add_column("trained", justify="right")
    table.add_column("seconds", justify="right")
    for r in records:
        table.add_row(
            str(r.iteration),
            f"{r.accuracy:.3f}",
            *(_cell(node_value(r, s)) for s in columns),
            str(r.examples_trained),
            f"{sum(r.phase_seconds.values()):.1f}",
        )
    table.caption = Text("; ".join(_caption_parts(records, layout, note, columns)))  # plain: "[group]" is no markup
    return table


def _caption_parts(records: Sequence[MetricsRecord], layout: SkillLayout, note: str, columns: list[str]) -> list[str]:
    parts = [note] if note else []
    if any(c in layout.groups for c in columns):
        parts.append("[group]: every item of the group's skills")
    if layout.weak:
        weak = f"{len(layout.weak)} skills (*) weak" if layout.many else "* weak"
        gain = f"; mean gain on them: {weak_gain(records) * 100:+.1f} points" if len(records) > 1 else ""
        parts.append(f"{weak} at iteration 0{gain}")
    if layout.has_unlabelled:
        parts.append(f"{UNLABELLED}: {records[-1].node_counts.get(UNLABELLED, 0)} items with no skill label")
    return parts


def rich_weakest(records: Sequence[MetricsRecord], layout: SkillLayout, k: int = WEAKEST_SHOWN) -> Table:
    """The weakest leaves with their accuracy at the first and the last iteration."""
    first, last = records[0], records[-1]
    table = Table(title=f"weakest {min(k, len(layout.leaves))} of {len(layout.leaves)} skills")
    table.add_column("skill", overflow="fold")
    if layout.groups:
        table.add_column("group", overflow="fold")
    table.add_column("items", justify="right")
    table.add_column(f"iter {first.iteration}", justify="right")
    table.add_column(f"iter {last.iteration}", justify="right", style="bold")
    for skill in weakest_leaves(records, layout, k):
        top = layout.top.get(skill, skill)
        group = [Text(layout.label(top) if top != skill else "–")] if layout.groups else []
        table.add_row(
            Text(layout.label(skill)),
            *group,
            str(last.node_counts.get(skill, "")),
            _cell(node_value(first, skill)),
            _cell(node_value(last, skill)),
        )
    return table


def rich_summary(records: Sequence[MetricsRecord], tree: SkillTree | None = None) -> Group:
    """What a finished run prints: the summary table and, for a big tree, its weakest leaves."""
    parts: list[Table] = [rich_table(records, tree=tree)]
    layout = skill_layout(records, tree)
    if records and layout.many:
        parts.append(rich_weakest(records, layout))
    return Group(*parts)


# -- report.md ---------------------------------------------------------------------------------
def _md_row(cells: Sequence[str]) -> str:
    return "| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |"


def markdown_table(records: Sequence[MetricsRecord], tree: SkillTree | None = None) -> str:
    """One row per iteration: overall accuracy, the summary's skill columns, data and time."""
    layout = skill_layout(records, tree)
    columns, _ = summary_columns(records, layout)
    head = ["iter", "all", *(layout.label(s) for s in columns), "trained", "seconds", "overhead s"]
    lines = [_md_row(head), "|" + "---|" * len(head)]
    counts = records[-1].node_counts if records else {}
    if counts:  # how many eval items each accuracy is measured on (a skill of 4 items moves 25 points at a time)
        lines.append(_md_row(["eval items", "", *(str(counts.get(s, 0)) for s in columns), "", "", ""]))
    for r in records:
        cells = [
            str(r.iteration),
            f"{r.accuracy:.3f}",
            *(_cell(node_value(r, s)) for s in columns),
            str(r.examples_trained),
            f"{sum(r.phase_seconds.values()):.1f}",
            f"{r.overhead_seconds:.2f}",
        ]
        lines.append(_md_row(cells))
    return "\n".join(lines)


def _tree_cell(layout: SkillLayout, node: str) -> str:
    return "· " * layout.depth.get(node, 0) + layout.label(node)


def markdown_node_table(records: Sequence[MetricsRecord], tree: SkillTree | None = None) -> str:
    """Every node of the tree, one row each (parents before their subtrees), one column per
    iteration: the full table behind a summary of groups."""
    layout = skill_layout(records, tree)
    first, last = records[0], records[-1]
    head = ["skill", "items", *(f"iter {r.iteration}" for r in records), "change"]
    lines = [_md_row(head), "|" + "---|" * len(head)]
    for node in layout.nodes:
        start, end = node_value(first, node), node_value(last, node)
        change = "–" if start is None or end is None else f"{(end - start) * 100:+.0f}"
        count = last.node_counts.get(node)
        cells = [_tree_cell(layout, node), "–" if count is None else str(count)]
        lines.append(_md_row(cells + [_cell(node_value(r, node)) for r in records] + [change]))
    return "\n".join(lines)


def markdown_profile_table(records: Sequence[MetricsRecord], tree: SkillTree | None = None) -> str | None:
    """The Missing-Skill-Profile per node (hard items naming it or a skill below it), one
    column per diagnosed iteration; None when no iteration was diagnosed."""
    diagnosed = [r for r in records if r.missing_skills is not None]
    if not diagnosed:
        return None
    layout = skill_layout(records, tree)
    named = {n for r in diagnosed for n, c in (r.missing_skills or {}).items() if c}
    rows = [n for n in layout.nodes if n in named] + sorted(named - set(layout.nodes))
    head = ["skill", *(f"iter {r.iteration}" for r in diagnosed)]
    lines = [_md_row(head), "|" + "---|" * len(head)]
    for node in rows:
        counts = [str((r.missing_skills or {}).get(node, 0)) for r in diagnosed]
        lines.append(_md_row([_tree_cell(layout, node), *counts]))
    return "\n".join(lines) if rows else "(no hard items)"


# -- the curves --------------------------------------------------------------------------------
def curve_lines(records: Sequence[MetricsRecord], layout: SkillLayout) -> tuple[list[str], str]:
    """The skills a learning-curve plot draws, and what they are: every leaf of a small tree;
    of a big one its top-level groups (up to 12, the weakest), else its weakest leaves."""
    if not layout.many:
        return layout.leaves + [UNLABELLED] * layout.has_unlabelled, "per skill"
    groups = layout.top_groups
    if groups:
        if len(groups) > 12:
            last = records[-1]
            keep = set(sorted(groups, key=lambda g: _sort_value(node_value(last, g)))[:12])
            return [g for g in groups if g in keep], f"the 12 weakest of {len(groups)} top-level skill groups"
        return groups + [UNLABELLED] * layout.has_unlabelled, "per top-level skill group"
    return weakest_leaves(records, layout), f"the {WEAKEST_SHOWN} weakest of {len(layout.leaves)} skills"


def plot_curves(records: Sequence[MetricsRecord], path: Path, title: str = "", tree: SkillTree | None = None) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    iterations = [r.iteration for r in records]
    layout = skill_layout(records, tree)
    lines, what = curve_lines(records, layout)
    fig, ax = plt.subplots(figsize=(7, 4.2))
    palette = matplotlib.colormaps["tab20" if len(lines) > 10 else "tab10"].colors  # no two lines share a colour
    for k, node in enumerate(lines):
        weak = node in layout.weak
        values = [node_value(r, node) for r in records]
        ax.plot(
            iterations,
            [math.nan if v is None else v for v in values],
            color=palette[k % len(palette)],
            marker="o",
            linestyle=":" if node == UNLABELLED else "-" if weak or node in layout.groups else "--",
            linewidth=2 if weak or node in layout.groups else 1,
            label=layout.label(node).rstrip("*") + (" (weak)" if weak else ""),
        )
    ax.plot(iterations, [r.accuracy for r in records], color="black", linewidth=3, label="all")
    ax.set_xlabel("iteration (rounds of new data)")
    ax.set_ylabel("eval accuracy")
    ax.set_ylim(-0.02, 1.02)
    ax.set_xticks(iterations)
    ax.set_title(title or "learning curve", fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(
        loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8, title=what, title_fontsize=8,
        ncol=1 + len(lines) // 24,
    )  # fmt: skip
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp")  # whole or not at all (a full disk): renamed when written
    try:
        fig.savefig(tmp, dpi=110, bbox_inches="tight", format="png")  # the legend sits outside the axes: keep all
        os.replace(tmp, path)
    finally:
        plt.close(fig)
        tmp.unlink(missing_ok=True)
    return path


# -- the run's report ----------------------------------------------------------------------------
def write_report(run_dir: Path) -> Path:
    """report.md + learning_curves.png in the run folder; returns the report's path.

    metrics.jsonl is rewritten from the artifacts, unless phases are missing (removed since
    they finished) or it would get shorter: a report never drops what it cannot rebuild. The
    report then says which phases are missing and that `teachloop resume` redoes them."""
    store = RunStore.open(run_dir)
    config = store.config()
    records = load_metrics(run_dir)
    tree = load_tree(store)
    missing = store.missing_phases(config.iterations)
    if not missing and len(records) >= store.metrics_lines():
        store.write_metrics(records)
    if missing:
        status = (
            f"incomplete: {', '.join(missing)} {'is' if len(missing) == 1 else 'are'} missing (removed after "
            f"{'it' if len(missing) == 1 else 'they'} finished); `teachloop resume {store.root}` redoes "
            f"{'it' if len(missing) == 1 else 'them'}, metrics.jsonl is kept as it was"
        )
    elif store.is_finished():
        status = "finished"
    else:
        status = "unfinished (resume with `teachloop resume`)"
    png = (
        plot_curves(records, store.root / "learning_curves.png", title=f"{store.root.name}", tree=tree)
        if records
        else None
    )
    layout = skill_layout(records, tree)
    weak = weak_skills(records)
    lines = [
        f"# teachloop run `{store.root.name}`",
        "",
        f"- environment: `{config.environment}`, policy: `{config.policy}`, engine: `{config.engine}`",
        f"- student: `{config.student_model}` ({config.student}), data: {config.data}, "
        f"budget {config.budget} examples x {config.iterations} iterations, seed {config.seed}",
        f"- status: {status}",
        "",
        *_outcome_section(store, records),
        "## Accuracy per iteration and skill",
        "",
        markdown_table(records, tree) if records else "(no evaluation yet)",
        "",
    ]
    if records:
        lines += _legend(records, layout)
    if weak and len(records) > 1:
        named = f"{len(weak)} skills (marked `*`)" if layout.many else ", ".join(weak)
        lines += [
            f"Weak skills at iteration 0 (accuracy < {WEAK_THRESHOLD}): {named}; "
            f"mean accuracy {mean_accuracy(records[0], weak):.3f} -> {mean_accuracy(records[-1], weak):.3f} "
            f"({weak_gain(records) * 100:+.1f} points).",
            "",
        ]
    if records and layout.many:
        lines += [
            "## Accuracy of every skill",
            "",
            "Every node of the skill tree, parents before the skills below them (`·` per level); "
            "*change*: last minus first iteration, in points.",
            "",
            markdown_node_table(records, tree),
            "",
        ]
    profile = markdown_profile_table(records, tree)
    if profile:
        lines += [
            "## Missing-Skill-Profile",
            "",
            "Hard items (scored wrong) per skill at each diagnosed iteration; a group counts every hard "
            "item of its skills once.",
            "",
            profile,
            "",
        ]
    if png:
        lines += [f"![learning curves]({png.name})", ""]
    lines += markdown_data_section(load_run_data(store.root).iterations)
    if records:
        total = sum(sum(r.phase_seconds.values()) for r in records)
        overhead = sum(r.overhead_seconds for r in records)
        lines += [f"Wall time in phases: {total:.1f}s, of which framework overhead {overhead:.2f}s.", ""]
    path = store.root / "report.md"
    kill_point("report")
    atomic_write_text(path, "\n".join(lines))
    return path


def _outcome_section(store: RunStore, records: Sequence[MetricsRecord]) -> list[str]:
    outcome = run_outcome(store, records)
    if outcome is None:
        return []
    return ["## What the run hands back", "", *[f"- {line}" for line in outcome.lines()], ""]


def _legend(records: Sequence[MetricsRecord], layout: SkillLayout) -> list[str]:
    notes = []
    if layout.groups:
        notes.append("`[group]`: accuracy over every item labelled with the group or a skill below it")
    if layout.weak:
        notes.append(f"`*`: weak at iteration 0 (accuracy < {WEAK_THRESHOLD})")
    if records[-1].node_counts:
        notes.append("*eval items*: the items each column's accuracy is measured on")
    if layout.many:
        notes.append(f"{len(layout.leaves)} skills: the table shows the top-level groups, every skill is below")
    if layout.has_unlabelled:
        notes.append(
            f"`{UNLABELLED}`: {records[-1].node_counts.get(UNLABELLED, 0)} eval items carry no skill label; they "
            "count in `all` and nowhere else"
        )
    return ["; ".join(notes) + ".", ""] if notes else []


# -- the data section ------------------------------------------------------------------------------
def markdown_iteration(data: IterationData) -> list[str]:
    """One iteration's data: limit hits of its evaluation, the plan per skill, yield,
    rejections by reason, shortfall, train loss, teacher failures."""
    lines = [f"### Iteration {data.iteration}", ""]
    lines += [f"- {fact}" for fact in data.facts()]
    if data.plan is not None and data.plan.rationale.strip():
        lines += [f"- rationale: {' '.join(data.plan.rationale.split())}"]
    skills = data.skill_lines()
    if skills:
        head = ["skill", "asked", "kept", "rejected", "shortfall"]
        lines += ["", _md_row(head), "|" + "---|" * len(head)]
        lines += [_md_row([s.skill, str(s.asked), str(s.kept), str(s.rejected), str(s.shortfall)]) for s in skills]
    return lines + [""]


def markdown_data_section(iterations: Sequence[IterationData]) -> list[str]:
    """## Data per iteration: what each iteration asked for, got and trained on."""
    if not iterations:
        return []
    lines = [
        "## Data per iteration",
        "",
        "Per iteration: replies of its evaluation that hit the max-new-tokens limit; the policy's plan "
        "and rationale; what the data phase kept of what it asked (*yield*), what it rejected by reason, "
        "the slots nothing was made for (*shortfall*); the train phase's loss. Per skill: *asked* by the "
        "plan, *kept*, *rejected*, *shortfall*. `teachloop show` has the examples themselves.",
        "",
    ]
    for data in iterations:
        lines += markdown_iteration(data)
    return lines

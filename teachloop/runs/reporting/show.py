"""`teachloop show`: one self-contained HTML page (show.html) of a run or a bench.

A run's page: the accuracy of every skill-tree node per iteration, learning curves and a heat
map (inline SVG), and per iteration its data (iteration_data.py reads it, as report.md does):
the plan and its rationale, the examples per skill with their lineage, a sample of the
rejected ones by reason, the teacher's failures. A <select> (or `#skill=NAME` in the URL)
keeps one skill (a group: its subtree). A bench's page: the leaderboard (leaderboard.json),
each run linked to its own page, and the bench's plots. No server, no network: styles, script
and images are inside the file.
"""

from __future__ import annotations

import base64
import json
import os
import sys
import webbrowser
from collections import Counter
from collections.abc import Iterable, Sequence
from html import escape
from pathlib import Path
from typing import Any

from teachloop.errors import TeachloopError
from teachloop.io import atomic_write_text, read_text
from teachloop.runs.bench.config import load_bench, run_name
from teachloop.runs.loop.artifacts import EvalFiles
from teachloop.runs.loop.guard import BENCH_FILE
from teachloop.runs.loop.metrics import MetricsRecord
from teachloop.runs.loop.store import MARKER, RunStore
from teachloop.runs.reporting.intrinsic import Predictor
from teachloop.runs.reporting.iteration_data import IterationData, example_skill, load_run_data
from teachloop.runs.reporting.leaderboard import (
    DATA_HEAD,
    DATA_NOTE,
    HEAT_STOPS,
    LeaderRow,
    _cells,
    _ranked,
    data_cells,
    headers,
    predictor_cells,
    short_columns,
)
from teachloop.runs.reporting.outcome import run_outcome
from teachloop.runs.reporting.report import SkillLayout, curve_lines, load_metrics, node_value, run_tree, skill_layout
from teachloop.skills.tree import SkillTree
from teachloop.types import UNLABELLED, Attempt, Example

PAGE = "show.html"
EXAMPLES_SHOWN = 40  # per skill and iteration; the rest are in iter_<i>/data/examples.jsonl
REJECTED_SHOWN = 8  # per reason and iteration
FAILURES_SHOWN = 10
WRONG_SHOWN = 8  # the student's wrong answers per skill and evaluation
PALETTE = [
    "#1f77b4",
    "#ff7f0e",
    "#2ca02c",
    "#d62728",
    "#9467bd",
    "#8c564b",
    "#e377c2",
    "#7f7f7f",
    "#bcbd22",
    "#17becf",
    "#aec7e8",
    "#ffbb78",
    "#98df8a",
    "#ff9896",
    "#c5b0d5",
    "#c49c94",
    "#f7b6d2",
    "#c7c7c7",
    "#dbdb8d",
    "#9edae5",
]

STYLE = """
body{font:14px/1.4 system-ui,sans-serif;margin:1.5em auto;max-width:1200px;padding:0 1em;color:#222}
h1{font-size:1.5em}h2{border-bottom:1px solid #ccc;margin-top:1.6em}h3{margin-bottom:.3em}
table{border-collapse:collapse;margin:.4em 0}th,td{border:1px solid #ddd;padding:2px 6px;vertical-align:top}
th{background:#f3f3f3}td.num{text-align:right;font-variant-numeric:tabular-nums}tr.group td:first-child{font-weight:bold}
pre{margin:0;white-space:pre-wrap;word-break:break-word;font-size:12px;max-width:36em}
.meta{color:#555}.note{color:#666;font-size:12px}details{margin:.3em 0}summary{cursor:pointer}
.filtered-out{display:none}#filter{position:sticky;top:0;background:#fff;padding:.4em 0;border-bottom:1px solid #eee}
.listing.empty>*{display:none}.listing.empty>p.none{display:block}.listing>p.none{display:none;color:#666}
body:not([data-filter="(all)"]) ul.facts::before{content:"every skill's figures (the filter does not narrow them):";color:#666}
th[title]{text-decoration:underline dotted;cursor:help}td.lineage{color:#555;font-size:12px}
"""

SCRIPT = """
(function () {
  var select = document.getElementById('skill-filter');
  function wanted() {
    var m = /[#&?]skill=([^&]*)/.exec(location.hash + location.search);
    return m ? decodeURIComponent(m[1].replace(/\\+/g, ' ')) : '';
  }
  function apply(skill) {
    var shown = 0, all = document.querySelectorAll('[data-skills]');
    all.forEach(function (el) {
      var keep = !skill || JSON.parse(el.getAttribute('data-skills')).indexOf(skill) >= 0;
      el.classList.toggle('filtered-out', !keep);
      if (keep) shown++;
      if (keep && skill && el.tagName === 'DETAILS') el.open = true;
    });
    // a count of the items of the chosen skill (its subtree), in place of every skill's
    document.querySelectorAll('[data-counts]').forEach(function (el) {
      var counts = JSON.parse(el.getAttribute('data-counts'));
      el.textContent = skill ? (counts[skill] || 0) : el.getAttribute('data-total');
    });
    // a list the filter emptied says so, rather than leaving a blank gap
    document.querySelectorAll('.listing').forEach(function (el) {
      var any = Array.prototype.some.call(el.querySelectorAll('[data-skills]'), function (c) {
        return !c.classList.contains('filtered-out');
      });
      el.classList.toggle('empty', !any);
    });
    // the rows of a picture close up over the hidden ones
    document.querySelectorAll('svg[data-row-height]').forEach(function (svg) {
      var h = +svg.getAttribute('data-row-height'), gone = 0;
      svg.querySelectorAll('[data-row]').forEach(function (row) {
        if (row.classList.contains('filtered-out')) { gone++; return; }
        row.setAttribute('transform', 'translate(0,' + (-gone * h) + ')');
      });
      if (svg.hasAttribute('data-height')) svg.setAttribute('height', +svg.getAttribute('data-height') - gone * h);
    });
    if (select) select.value = skill;
    document.body.setAttribute('data-filter', skill || '(all)');
    var status = document.getElementById('filter-status');
    if (status) status.textContent = skill ? shown + ' of ' + all.length + ' parts shown' : '';
  }
  if (select) select.addEventListener('change', function () {
    location.hash = select.value ? 'skill=' + encodeURIComponent(select.value) : '';
    apply(select.value);
  });
  window.addEventListener('hashchange', function () { apply(wanted()); });
  apply(wanted());
})();
"""


# -- small pieces of HTML -------------------------------------------------------------------
def _e(value: Any) -> str:
    return escape(str(value), quote=True)


def _skills_attr(skills: Iterable[str]) -> str:
    return f' data-skills="{_e(json.dumps(sorted(set(skills))))}"'


def _with_ancestors(skills: Iterable[str], tree: SkillTree | None) -> list[str]:
    found = []
    for skill in skills:
        found.append(skill)
        if tree is not None and skill in tree:
            found += tree.ancestors(skill)
    return found


def _table(head: Sequence[str], rows: Iterable[str], cls: str = "") -> str:
    header = "".join(f"<th>{_e(h)}</th>" for h in head)
    return f'<table class="{cls}"><thead><tr>{header}</tr></thead><tbody>{"".join(rows)}</tbody></table>'


def _row(cells: Sequence[str], attrs: str = "") -> str:
    """`cells` are HTML already; one that is a whole <td> (a number from _num) is kept as it is."""
    tds = (c if c.startswith("<td") else f"<td>{c}</td>" for c in cells)
    return f"<tr{attrs}>{''.join(tds)}</tr>"


def _num(value: float | str | None, digits: int = 2) -> str:
    """A right-aligned number cell ('–' for none)."""
    if value is None:
        value = "–"
    elif isinstance(value, float):
        value = f"{value:.{digits}f}"
    return f'<td class="num">{_e(value)}</td>'


def _heat(value: float) -> str:
    """red (0) .. yellow (0.5) .. green (1): the bench's heat map's scale (HEAT_STOPS)."""
    stops = HEAT_STOPS
    value = min(1.0, max(0.0, value))
    (a, ca), (b, cb) = (stops[0], stops[1]) if value <= 0.5 else (stops[1], stops[2])
    t = (value - a) / (b - a)
    return "#" + "".join(f"{round(x + (y - x) * t):02x}" for x, y in zip(ca, cb, strict=True))


def _page(title: str, body: Sequence[str]) -> str:
    return (
        f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>{_e(title)}</title>'
        f"<style>{STYLE}</style></head><body>{''.join(body)}<script>{SCRIPT}</script></body></html>"
    )


# -- the accuracy table, the curves, the heat map -------------------------------------------
def accuracy_table(records: Sequence[MetricsRecord], layout: SkillLayout, tree: SkillTree | None) -> str:
    first, last = records[0], records[-1]
    head = ["skill", "items", *(f"iter {r.iteration}" for r in records), "change (points)"]
    rows = [
        _row(["<b>all</b>", _num(""), *(_num(r.accuracy, 3) for r in records), _change(first.accuracy, last.accuracy)])
    ]
    for node in layout.nodes:
        indent = "&nbsp;&nbsp;" * layout.depth.get(node, 0)
        cls = ' class="group"' if node in layout.groups else ""
        values = [node_value(r, node) for r in records]
        cells = [indent + _e(layout.label(node)), _num(last.node_counts.get(node)), *(_num(v) for v in values)]
        attrs = cls + _skills_attr(_with_ancestors([node], tree))
        rows.append(_row([*cells, _change(values[0], values[-1])], attrs))
    return _table(head, rows, "accuracy")


def _change(start: float | None, end: float | None) -> str:
    return _num(None if start is None or end is None else f"{(end - start) * 100:+.0f}")


def curves_svg(records: Sequence[MetricsRecord], layout: SkillLayout, tree: SkillTree | None) -> str:
    lines, what = curve_lines(records, layout)
    width, height, left, top, plot_w, plot_h = 760, 320, 44, 14, 500, 270
    steps = max(1, len(records) - 1)

    def x(k: int) -> float:
        return left + plot_w * k / steps

    def y(v: float) -> float:
        return top + plot_h * (1 - v)

    svg_height = max(height, 40 + 16 * len(lines))  # the legend's entries close up under a skill filter (data-row)
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{svg_height}" data-row-height="16">']
    for v in (0, 0.25, 0.5, 0.75, 1):
        parts.append(f'<line x1="{left}" x2="{left + plot_w}" y1="{y(v)}" y2="{y(v)}" stroke="#ddd"/>')
        parts.append(f'<text x="{left - 6}" y="{y(v) + 4}" text-anchor="end" font-size="11">{v:.2f}</text>')
    for k, r in enumerate(records):
        parts.append(
            f'<text x="{x(k)}" y="{top + plot_h + 16}" text-anchor="middle" font-size="11">{r.iteration}</text>'
        )
    parts.append(
        f'<text x="{left + plot_w / 2}" y="{top + plot_h + 30}" text-anchor="middle" font-size="11">iteration</text>'
    )
    series = [("all", [r.accuracy for r in records], "#000", 3)]
    series += [(n, [node_value(r, n) for r in records], PALETTE[k % len(PALETTE)], 1.5) for k, n in enumerate(lines)]
    for k, (node, values, colour, stroke) in enumerate(series):
        label = "all" if k == 0 else layout.label(node)
        attrs = "" if k == 0 else _skills_attr(_with_ancestors([node], tree))
        points = [(x(j), y(v), v) for j, v in enumerate(values) if v is not None]
        path = " ".join(f"{px:.1f},{py:.1f}" for px, py, _ in points)
        dots = "".join(
            f'<circle cx="{px:.1f}" cy="{py:.1f}" r="3" fill="{colour}"><title>{_e(label)}: {v:.3f}</title></circle>'
            for px, py, v in points
        )
        ly = top + 8 + 16 * k
        parts.append(
            f'<g{attrs}><polyline points="{path}" fill="none" stroke="{colour}" stroke-width="{stroke}"/>{dots}</g>'
            f'<g{attrs} data-row="{k}"><rect x="{left + plot_w + 20}" y="{ly - 8}" width="12" height="10" '
            f'fill="{colour}"/><text x="{left + plot_w + 38}" y="{ly + 1}" font-size="11">{_e(label)}</text></g>'
        )
    return "".join(parts) + f'</svg><p class="note">lines: {_e(what)}; "all": every eval item</p>'


def heatmap_svg(records: Sequence[MetricsRecord], layout: SkillLayout, tree: SkillTree | None) -> str:
    cell_w, cell_h = 48, 18
    left = 12 + 7 * max([len(layout.label(n)) for n in layout.nodes] or [4])
    width, height = left + cell_w * len(records) + 10, 24 + cell_h * len(layout.nodes)
    size = f'width="{width}" height="{height}" data-row-height="{cell_h}" data-height="{height}"'  # rows close up
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" {size} font-size="11">']  # under a skill filter (data-row)
    for k, r in enumerate(records):
        parts.append(
            f'<text x="{left + cell_w * k + cell_w / 2}" y="14" text-anchor="middle">iter {r.iteration}</text>'
        )
    for j, node in enumerate(layout.nodes):
        ty = 20 + cell_h * j
        weight = ' font-weight="bold"' if node in layout.groups else ""
        cells = [f'<text x="{left - 6}" y="{ty + 13}" text-anchor="end"{weight}>{_e(layout.label(node))}</text>']
        for k, r in enumerate(records):
            v = node_value(r, node)
            fill, text = ("#eee", "–") if v is None else (_heat(v), f"{v:.2f}")
            cx = left + cell_w * k
            cells.append(
                f'<rect x="{cx}" y="{ty}" width="{cell_w - 1}" height="{cell_h - 1}" fill="{fill}">'
                f"<title>{_e(layout.label(node))}, iteration {r.iteration}: {text}</title></rect>"
                f'<text x="{cx + cell_w / 2}" y="{ty + 13}" text-anchor="middle">{text}</text>'
            )
        parts.append(f'<g{_skills_attr(_with_ancestors([node], tree))} data-row="{j}">{"".join(cells)}</g>')
    return "".join(parts) + "</svg>"


# -- an iteration's data ----------------------------------------------------------------------
def _pre(text: str | None) -> str:
    return "–" if text is None else f"<pre>{_e(text)}</pre>"


def _lineage_parts(example: Example) -> list[str]:
    line = example.lineage
    parts = [f"source {example.source}"]
    if line is not None:
        parts += [f"iteration {line.iteration}", f"skill {line.skill or '*'}", f"policy {line.policy}"]
        parts += [f"teacher {line.teacher}", f"parent {line.parent_id or '–'}"]
    if example.meta:
        parts.append("meta " + json.dumps(example.meta, sort_keys=True, default=str)[:300])
    return parts


def _counts_attr(skill_lists: Iterable[Sequence[str]]) -> str:
    """data-counts (items per skill-tree node, a group counting its subtree) and data-total: the
    page's script shows the count of the skill a filter keeps in place of the total."""
    counts: dict[str, int] = {}
    total = 0
    for skills in skill_lists:
        total += 1
        for node in set(skills):
            counts[node] = counts.get(node, 0) + 1
    return f' data-counts="{_e(json.dumps(counts, sort_keys=True))}" data-total="{total}"'


def _listing(blocks: Sequence[str], none: str, filtered_none: str) -> str:
    """Blocks of filterable parts; under a skill filter that hides them all, `filtered_none`."""
    if not blocks:
        return f"<p>{_e(none)}</p>"
    return f'<div class="listing">{"".join(blocks)}<p class="none">{_e(filtered_none)}</p></div>'


def examples_html(data: IterationData, tree: SkillTree | None) -> str:
    """Per skill, its examples; what every shown example's lineage says alike (source, iteration,
    skill, policy, teacher) is said once above its table, a row keeps what is its own; the id is
    the row's tooltip."""
    pairs = any(ex.rejected is not None for ex in data.examples or [])
    blocks = []
    for skill, examples in data.examples_by_skill().items():
        shown = examples[:EXAMPLES_SHOWN]
        lineages = [_lineage_parts(ex) for ex in shown]
        common = [part for part in lineages[0] if all(part in parts for parts in lineages)]
        own = [[part for part in parts if part not in common] for parts in lineages]
        same_skills = all(ex.skills == [skill] for ex in shown)
        if same_skills:
            common.append(f"skills {skill}")
        head = [
            "prompt", "answer", *(["rejected answer"] if pairs else []), *([] if same_skills else ["skills"]),
            *(["lineage"] if any(own) else []),
        ]  # fmt: skip
        rows = [
            _row(
                [
                    _pre(ex.prompt),
                    _pre(ex.answer),
                    *([_pre(ex.rejected)] if pairs else []),
                    *([] if same_skills else [_e(", ".join(ex.skills))]),
                    *([f'<td class="lineage">{_e("; ".join(parts))}</td>'] if any(own) else []),
                ],
                ' class="example"'
                + _skills_attr(_with_ancestors([*ex.skills, example_skill(ex)], tree))
                + f' title="id {_e(ex.id)}"',
            )
            for ex, parts in zip(shown, own, strict=True)
        ]
        more = f", the first {EXAMPLES_SHOWN} shown" if len(examples) > EXAMPLES_SHOWN else ""
        alike = f'<p class="note">every one: {_e("; ".join(common))} (hover a row for its id)</p>' if common else ""
        blocks.append(
            f"<details{_skills_attr(_with_ancestors([skill], tree))}><summary>{_e(skill)}: "
            f"{len(examples)} examples{more}</summary>{alike}{_table(head, rows)}</details>"
        )
    return _listing(blocks, "no examples kept", "no examples of this skill")


def rejected_html(data: IterationData, tree: SkillTree | None) -> str:
    blocks = []
    for reason, items in data.rejections().items():
        skills = [_with_ancestors([*r.example.skills, example_skill(r.example)], tree) for r in items]
        rows = [
            _row(
                [_e(example_skill(r.example)), _pre(r.example.prompt), _pre(r.example.answer), _e(r.reason)],
                ' class="rejected"' + _skills_attr(found),
            )
            for r, found in zip(items[:REJECTED_SHOWN], skills, strict=False)
        ]
        sample = f", a sample of {REJECTED_SHOWN}" if len(items) > REJECTED_SHOWN else ""
        head = ["skill", "prompt", "answer", "reason"]
        count = f"<span{_counts_attr(skills)}>{len(items)}</span>"
        blocks.append(
            f"<details{_skills_attr(node for found in skills for node in found)}><summary>{_e(reason)}: {count}"
            f"{sample}</summary>{_table(head, rows)}</details>"
        )
    return _listing(blocks, "none rejected", "none of this skill rejected")


def wrong_html(attempts: Sequence[Attempt], tree: SkillTree | None) -> str:
    """The student's wrong answers per skill (a sample of each): what the diagnosis read."""
    groups: dict[str, list[Attempt]] = {}
    totals: Counter[str] = Counter()
    for attempt in attempts:
        skill = attempt.skills[0] if attempt.skills else UNLABELLED
        totals[skill] += 1
        if not attempt.correct:
            groups.setdefault(skill, []).append(attempt)
    partial = any(0.0 < a.score < 1.0 for a in attempts)
    head = ["prompt", "reference", "the student's answer", *(["score"] if partial else [])]
    blocks = []
    for skill, wrong in sorted(groups.items(), key=lambda kv: -len(kv[1])):
        rows = [
            _row(
                [
                    _pre(a.prompt),
                    _pre(a.reference),
                    _pre(a.response) + (' <span class="note">(ran to the token limit)</span>' if a.hit_limit else ""),
                    *([_num(a.score)] if partial else []),
                ],
                ' class="wrong"' + _skills_attr(_with_ancestors(a.skills or [skill], tree)),
            )
            for a in wrong[:WRONG_SHOWN]
        ]
        sample = f", the first {WRONG_SHOWN} shown" if len(wrong) > WRONG_SHOWN else ""
        blocks.append(
            f"<details{_skills_attr(_with_ancestors([skill], tree))}><summary>{_e(skill)}: {len(wrong)} wrong of "
            f"{totals[skill]}{sample}</summary>{_table(head, rows)}</details>"
        )
    return _listing(blocks, "no wrong answers", "no wrong answers of this skill")


PLAN_HEAD_HELP = {
    "asked": "new examples the plan asked for (0: pool draws or a selecting policy's picks, not asked as new)",
    "kept": "examples of the skill that went into the training set",
    "rejected": "candidates the filters dropped (duplicate, contaminated, failed verification); the engine tries "
    "again, so a skill can have every asked slot kept and rejections too",
    "shortfall": "asked slots nothing was kept for",
}


def plan_html(data: IterationData, tree: SkillTree | None, records: Sequence[MetricsRecord]) -> str:
    """The plan per skill, set against the skill's accuracy where it was planned and at the next
    evaluation (what the data did to it)."""
    by_iteration = {r.iteration: r for r in records}
    before, after = by_iteration.get(data.iteration), by_iteration.get(data.iteration + 1)
    head = [f"accuracy at iter {data.iteration}", "asked", "kept", "rejected", "shortfall"]
    if after is not None:
        head += [f"accuracy at iter {after.iteration}", "change (points)"]
    rows = []
    for s in data.skill_lines():
        start = None if before is None else node_value(before, s.skill)
        cells = [_e(s.skill), _num(start), _num(s.asked), _num(s.kept), _num(s.rejected), _num(s.shortfall)]
        if after is not None:
            end = node_value(after, s.skill)
            cells += [_num(end), _change(start, end)]
        rows.append(_row(cells, _skills_attr(_with_ancestors([s.skill], tree))))
    header = "".join(
        f'<th title="{_e(PLAN_HEAD_HELP[h])}">{_e(h)}</th>' if h in PLAN_HEAD_HELP else f"<th>{_e(h)}</th>"
        for h in ["skill", *head]
    )
    note = "; ".join(f"{name}: {what}" for name, what in PLAN_HEAD_HELP.items())
    table = f'<table class="plan"><thead><tr>{header}</tr></thead><tbody>{"".join(rows)}</tbody></table>'
    return (
        f'<div class="listing">{table}<p class="none">the plan asked nothing of this skill</p></div>'
        f'<p class="note">{_e(note)}</p>'
    )


def failures_html(failures: Sequence[dict[str, Any]]) -> str:
    rows = [
        _row(
            [
                _e(f.get("purpose", "")),
                _e(f.get("kind", "")),
                _pre(str(f.get("error", ""))[:600]),
                _pre(None if f.get("raw") is None else str(f["raw"])[:600]),
            ]
        )
        for f in failures[:FAILURES_SHOWN]
    ]
    more = f'<p class="note">{len(failures)} in all; every one is in teacher_failures.jsonl</p>'
    return _table(["purpose", "kind", "error", "raw reply"], rows) + (more if len(failures) > FAILURES_SHOWN else "")


def iteration_html(
    data: IterationData,
    tree: SkillTree | None,
    policy: str,
    records: Sequence[MetricsRecord] = (),
    attempts: Sequence[Attempt] = (),
) -> str:
    parts = [f'<section class="iteration" id="iter-{data.iteration}"><h2>Iteration {data.iteration}</h2>']
    parts.append('<ul class="facts">' + "".join(f"<li>{_e(f)}</li>" for f in data.facts()) + "</ul>")
    if attempts:
        read = " (what the diagnosis read)" if data.plan is not None else ""
        parts.append(f"<h3>The student's wrong answers{read}</h3>{wrong_html(attempts, tree)}")
    if data.plan is not None:
        parts.append(
            f"<h3>Plan ({_e(data.plan.policy or policy)})</h3><p>{_e(data.plan.rationale or '(no rationale)')}</p>"
        )
        parts.append(plan_html(data, tree, records))
    if data.examples is not None:
        candidates = f" (chosen from {data.candidates} candidates)" if data.candidates is not None else ""
        parts.append(f"<h3>Examples per skill{candidates}</h3>{examples_html(data, tree)}")
        parts.append(f"<h3>Rejected, by reason</h3>{rejected_html(data, tree)}")
    if data.teacher_failures:
        parts.append(f"<h3>Teacher failures ({len(data.teacher_failures)})</h3>{failures_html(data.teacher_failures)}")
    return "".join(parts) + "</section>"


# -- the pages --------------------------------------------------------------------------------
def _filter(layout: SkillLayout) -> str:
    options = ['<option value="">(all skills)</option>']
    for node in layout.nodes:
        indent = "\u00a0\u00a0" * layout.depth.get(node, 0)
        options.append(f'<option value="{_e(node)}">{_e(indent + layout.label(node))}</option>')
    return (
        '<div id="filter"><label>skill: <select id="skill-filter">' + "".join(options) + "</select></label> "
        '<span id="filter-status" class="note"></span></div>'
    )


def run_page(run_dir: Path) -> str:
    store = RunStore.open(run_dir)
    config = store.config()
    records, tree = load_metrics(run_dir), run_tree(run_dir)
    run_data = load_run_data(run_dir)
    iterations = run_data.iterations
    layout = skill_layout(records, tree)
    status = "finished" if store.is_finished() else "unfinished (resume with `teachloop resume`)"
    bench = store.root.parent.parent
    back = f' · <a href="../../{PAGE}">the bench</a>' if (bench / BENCH_FILE).is_file() else ""
    body = [
        f"<h1>teachloop run <code>{_e(store.root.name)}</code></h1>",
        f'<p class="meta">environment {_e(config.environment)}, policy {_e(config.policy)}, engine '
        f"{_e(config.engine)}; student {_e(config.student_model)} ({_e(config.student)}), data {_e(config.data)}; "
        f"budget {config.budget} x {config.iterations} iterations, seed {config.seed}; {_e(status)}{back}</p>",
        _filter(layout),
        '<p class="note">iterations: '
        + " ".join(f'<a href="#iter-{d.iteration}">{d.iteration}</a>' for d in iterations)
        + "</p>",
    ]
    outcome = run_outcome(store, records)
    if outcome is not None:
        items = "".join(f"<li>{_e(line)}</li>" for line in outcome.lines())
        body.append(f'<h2>What the run hands back</h2><ul class="outcome">{items}</ul>')
    body.append("<h2>Accuracy per skill and iteration</h2>")
    if records:
        body += [
            '<p class="note">[group]: every item of the group or a skill below it; *: weak at iteration 0</p>',
            accuracy_table(records, layout, tree),
            "<h2>Learning curves</h2>",
            curves_svg(records, layout, tree),
            "<h2>Heat map</h2>",
            heatmap_svg(records, layout, tree),
        ]
    else:
        body.append("<p>(no evaluation yet)</p>")
    body += [iteration_html(data, tree, config.policy, records, _attempts(store, data)) for data in iterations]
    unplaced = run_data.unplaced_failures
    if unplaced:
        body.append(f"<h2>Teacher failures not tied to an iteration ({len(unplaced)})</h2>{failures_html(unplaced)}")
    return _page(f"teachloop run {store.root.name}", body)


def _attempts(store: RunStore, data: IterationData) -> list[Attempt]:
    """The iteration's scored eval answers (none before its evaluation is done)."""
    folder = store.phase_dir(data.iteration, "eval")
    return EvalFiles.read_attempts(folder) if store.is_done(data.iteration, "eval") else []


def _image(path: Path, alt: str) -> str:
    if not path.is_file():
        return ""
    data = base64.b64encode(path.read_bytes()).decode()
    return f'<h2>{_e(alt)}</h2><img alt="{_e(alt)}" style="max-width:100%" src="data:image/png;base64,{data}">'


def bench_page(bench_dir: Path) -> str:
    board = bench_dir / "leaderboard.json"
    if not board.is_file():
        raise TeachloopError(f"{bench_dir} has no leaderboard.json yet: run `teachloop bench` on it first")
    bench = load_bench(bench_dir / BENCH_FILE)
    found = json.loads(read_text(board, "the bench's leaderboard"))
    rows = [LeaderRow.model_validate(row) for row in found.get("rows", [])]
    found_predictors = found.get("predictors") or {}
    names = headers(bench.baseline_policy)
    ranked = _ranked(rows)
    cells = [_cells(rank, row, bench.baseline_policy, short=True) for rank, row in ranked]
    every = [_cells(rank, row, bench.baseline_policy) for rank, row in ranked]
    shown, said = short_columns(names, cells)  # as the terminal prints it: it fits a 1280-pixel window
    short_rows, every_rows = [], []
    for (_, row), short, full in zip(ranked, cells, every, strict=True):
        links = []
        for seed in row.seeds:
            name = run_name(row.environment, row.policy, seed, row.teacher_name)
            run_dir = bench_dir / "runs" / name
            if (run_dir / MARKER).is_file():
                write_run_page(run_dir)
                links.append(f'<a href="runs/{_e(name)}/{PAGE}" title="{_e(name)}">s{seed}</a>')
            else:
                links.append(f'<span title="{_e(name)} (not finished)">s{seed}</span>')
        short_rows.append(_row([*(_e(short[k]) for k in shown), " ".join(links)]))
        every_rows.append(_row([_e(c) for c in full]))
    versus = f"; ≈: not distinguishable from {bench.baseline_policy}" if bench.baseline_policy else ""
    body = [
        f"<h1>teachloop bench <code>{_e(bench_dir.name)}</code></h1>",
        f'<p class="meta">{bench.budget} examples x {bench.iterations} iterations per run; seeds '
        f"{_e(', '.join(map(str, bench.seeds)))}; environments {_e(', '.join(bench.environments))}; mean "
        "[95% interval]; sorted by final accuracy, the gain on the skills weak at iteration 0 beside it (every "
        "column is explained in leaderboard.md)</p>",
        "<h2>Leaderboard" + (f" ({_e('; '.join(said))})" if said else "") + "</h2>",
        _table([names[k] for k in shown] + ["runs (their pages)"], short_rows, "leaderboard"),
        f'<p class="note">=: not distinguishable from the row above{_e(versus)}</p>',
        '<details><summary>every column (as in leaderboard.md)</summary><div style="overflow-x:auto">',
        _table(names, every_rows, "leaderboard-full"),
        "</div></details>",
    ]
    for env in bench.environments:
        env_rows = [row for row in rows if row.environment == env]
        if any(row.data is not None and row.data.kept for row in env_rows):
            predicted = [Predictor.model_validate(p) for p in found_predictors.get(env, [])]
            body += [
                f"<h2>{_e(env)}: the data each row wrote</h2>",
                f'<p class="note">{_e(DATA_NOTE)}</p>',
                _table(DATA_HEAD, (_row([_e(c) for c in data_cells(row)]) for row in env_rows)),
            ]
            if any(p.spearman is not None for p in predicted):
                head = ["measure", "predicts the gain (Spearman)", "runs"]
                body.append(_table(head, (_row([_e(c) for c in predictor_cells(p)]) for p in predicted)))
    for key, what in (("missing", "not finished"), ("failed", "failed (see errors.log)")):
        if found.get(key):
            body.append(f"<p>{_e(what)}: {_e(', '.join(found[key]))}</p>")
    body += [_image(bench_dir / "learning_curves.png", "Learning curves")]
    body += [_image(bench_dir / "skill_heatmap.png", "Final accuracy per skill")]
    return _page(f"teachloop bench {bench_dir.name}", body)


def write_run_page(run_dir: Path) -> Path:
    path = Path(run_dir) / PAGE
    atomic_write_text(path, run_page(Path(run_dir)))
    return path


def write_show(folder: Path) -> Path:
    """show.html in a run or bench folder (a bench's runs get theirs too); returns its path."""
    folder = Path(folder)
    if (folder / MARKER).is_file():
        return write_run_page(folder)
    if (folder / BENCH_FILE).is_file():
        path = folder / PAGE
        atomic_write_text(path, bench_page(folder))
        return path
    raise TeachloopError(f"{folder} is neither a run folder (no {MARKER}) nor a bench folder (no {BENCH_FILE})")


def can_open_browser() -> bool:
    """False in CI and on a Linux machine without a display: nothing would show the page."""
    if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
        return False
    if sys.platform.startswith("linux"):
        return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))
    return True


def open_page(path: Path) -> bool:
    """Open the page in the default browser where there is one; True when asked to."""
    if not can_open_browser():
        return False
    return bool(webbrowser.open(path.resolve().as_uri()))

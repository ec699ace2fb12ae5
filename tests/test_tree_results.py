"""Results over the skill tree: every node (groups included) has an accuracy and a
Missing-Skill-Profile count in report.json, metrics.jsonl and report.md; items without a
skill get a visible bucket; a hundred skills keep the terminal table, the curves and a
bench's leaderboard readable. No model: attempts are made by hand."""

import json
from pathlib import Path

import pytest
from rich.console import Console

from teachloop.agents.diagnosis import diagnose
from teachloop.agents.policies import get_policy
from teachloop.agents.state import TeacherState
from teachloop.environments.skillworld import SkillWorld
from teachloop.io import write_json, write_jsonl
from teachloop.runs.bench.config import BenchConfig
from teachloop.runs.config import RunConfig
from teachloop.runs.loop.store import RunStore
from teachloop.runs.reporting.leaderboard import BenchResults, leader_row, write_outputs
from teachloop.runs.reporting.report import (
    MAX_GROUP_COLUMNS,
    WEAKEST_SHOWN,
    load_metrics,
    rich_summary,
    rich_table,
    run_tree,
    write_report,
)
from teachloop.skills.profile import eval_report, profile_from_items
from teachloop.skills.tree import SkillTree
from teachloop.types import UNLABELLED, Attempt, EvalReport, Feedback

GROUPS, LEAVES, ITEMS = 10, 10, 2  # 100 leaves in 10 groups, 2 eval items per leaf
UNLABELLED_ITEMS = 3  # of them 1 correct


def big_tree() -> SkillTree:
    tree = SkillTree("synthetic")
    for g in range(GROUPS):
        tree.add(f"g{g}", f"group {g}")
        for leaf in range(LEAVES):
            tree.add(f"g{g}-s{leaf}", f"skill {leaf} of group {g}", parent=f"g{g}")
    return tree


def attempt(eid: str, correct: bool, skills: list[str]) -> Attempt:
    return Attempt(
        example_id=eid, prompt=eid, response="r", reference="a", correct=correct, score=float(correct), skills=skills
    )


def synthetic_attempts(iteration: int) -> list[Attempt]:
    """At iteration i, skill s<l> of group g<g> is solved iff l < g + i (both of its items);
    one extra item labelled with two skills of g0 is solved; three items carry no skill."""
    attempts = [
        attempt(f"g{g}-s{leaf}-{k}", leaf < g + iteration, [f"g{g}-s{leaf}"])
        for g in range(GROUPS)
        for leaf in range(LEAVES)
        for k in range(ITEMS)
    ]
    attempts.append(attempt("both", True, ["g0-s0", "g0-s1"]))
    attempts += [attempt(f"none-{k}", k == 0, []) for k in range(UNLABELLED_ITEMS)]
    return attempts


def expected_group_accuracy(g: int, iteration: int) -> float:
    solved = min(g + iteration, LEAVES) * ITEMS
    total = LEAVES * ITEMS
    if g == 0:  # the item labelled with two of its skills counts once for the group
        solved, total = solved + 1, total + 1
    return solved / total


def synthetic_run(root: Path, iterations: int = 2, old_format: bool = False) -> Path:
    """A finished run folder with the phases metrics need and hand-made attempts.

    `old_format`: report.json and feedback.json as teachloop wrote them before per-node
    figures existed (no node_accuracy / node_counts)."""
    tree = big_tree()
    store = RunStore.create(root, RunConfig(iterations=iterations, budget=10))
    tree.save(root / "skills.json")
    for i in range(iterations + 1):
        report = eval_report(i, synthetic_attempts(i), tree=tree)
        with store.write_phase(i, "eval") as writer:
            write_jsonl(writer.path / "attempts.jsonl", report.attempts)
            exclude = {"node_accuracy", "node_counts"} if old_format else set()
            saved = report.model_copy(update={"attempts": []})  # as the loop writes it
            (writer.path / "report.json").write_text(saved.model_dump_json(exclude=exclude))
            writer.info = {"accuracy": report.accuracy}
        if i == iterations:
            break
        feedback = diagnose(report, seed=0, tree=tree)
        with store.write_phase(i, "feedback") as writer:
            data = feedback.model_dump(mode="json")
            if old_format:
                del data["profile"]["node_counts"], data["node_accuracy"]
            write_json(writer.path / "feedback.json", data)
        for phase in ("plan", "data", "train"):
            with store.write_phase(i, phase) as writer:
                writer.info = {"examples": 10}
    store.mark_finished()
    return root


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory) -> Path:
    run = synthetic_run(tmp_path_factory.mktemp("tree") / "big")
    write_report(run)
    return run


def test_eval_report_has_every_node_and_an_unlabelled_bucket():
    report = eval_report(0, synthetic_attempts(0), tree=big_tree())
    for g in range(GROUPS):
        assert report.node_accuracy[f"g{g}"] == pytest.approx(expected_group_accuracy(g, 0))
    assert report.node_counts["g0"] == 21 and report.node_counts["g3"] == 20
    assert report.node_accuracy["g0-s0"] == pytest.approx(1 / 3) and report.node_counts["g0-s0"] == 3
    assert report.node_counts[UNLABELLED] == 3 and report.node_accuracy[UNLABELLED] == pytest.approx(1 / 3)
    assert report.unlabelled == 3
    assert list(report.node_counts)[:3] == ["g0", "g0-s0", "g0-s1"]  # reading order: a group, then its skills
    assert len(report.node_counts) == GROUPS * (LEAVES + 1) + 1
    # the profile counts every node too: a group's hard items are its skills' hard items, once each
    profile = diagnose(report, seed=0, tree=big_tree()).profile
    assert profile.node_counts["g0"] == 20 and profile.node_counts["g5"] == 10
    assert profile.node_counts[UNLABELLED] == 2
    # a report.json written before these fields existed still loads
    old = EvalReport.model_validate(
        {"iteration": 0, "attempts": [], "accuracy": 0.5, "skill_accuracy": {}, "skill_counts": {}}
    )
    assert old.node_accuracy == {} and old.unlabelled == 0


def test_metrics_and_report_json_hold_group_accuracy(run_dir):
    report = json.loads((run_dir / "iter_1" / "eval" / "report.json").read_text())
    assert report["node_accuracy"]["g4"] == pytest.approx(expected_group_accuracy(4, 1))
    lines = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    assert [line["iteration"] for line in lines] == [0, 1, 2]
    for line in lines:
        for g in range(GROUPS):
            assert line["node_accuracy"][f"g{g}"] == pytest.approx(expected_group_accuracy(g, line["iteration"]))
        assert line["node_counts"][UNLABELLED] == UNLABELLED_ITEMS
    assert lines[0]["missing_skills"]["g9"] == 2  # g9: only s9 fails at iteration 0, two items
    assert lines[-1]["missing_skills"] is None  # the last evaluation is not diagnosed


def test_a_run_folder_from_before_gets_its_groups_recomputed(tmp_path):
    run = synthetic_run(tmp_path / "old", iterations=1, old_format=True)
    records = load_metrics(run)
    assert records[1].node_accuracy["g2"] == pytest.approx(expected_group_accuracy(2, 1))
    assert records[0].missing_skills["g0"] == 20
    write_report(run)
    assert "[g2]" in (run / "report.md").read_text()


def test_report_md_holds_every_node_in_tree_order(run_dir):
    text = (run_dir / "report.md").read_text()
    every = text.split("## Accuracy of every skill")[1].split("\n## ")[0]
    rows = [
        line.split(" | ") for line in every.splitlines() if line.startswith("| ") and not line.startswith("| skill")
    ]
    names = [row[0].removeprefix("| ").replace("· ", "").rstrip("*") for row in rows]
    tree = big_tree()
    expected = [f"[{n}]" if tree.is_group(n) else n for n in tree.preorder()]
    assert names == [*expected, UNLABELLED]  # every node once, a group before its skills
    assert rows[0][1:4] == ["21", "0.05", "0.14"]  # [g0]: items, accuracy at iterations 0 and 1
    assert rows[1][0] == "| · g0-s0*"
    assert "3 eval items carry no skill label" in text
    profile = text.split("## Missing-Skill-Profile")[1]
    assert "| [g0] | 20 | 18 |" in profile  # hard items of the group at iterations 0 and 1


def test_terminal_summary_stays_small_with_named_columns(run_dir):
    records, tree = load_metrics(run_dir), run_tree(run_dir)
    table = rich_table(records, tree=tree)
    headers = [str(column.header) for column in table.columns]
    assert all(header.strip() for header in headers), headers
    assert len(headers) <= 2 + MAX_GROUP_COLUMNS + 1 + 2  # iter, all, groups, unlabelled, trained, seconds
    assert headers[:3] == ["iter", "all", "[g0]"] and UNLABELLED in headers
    summary = rich_summary(records, tree=tree)
    weakest = summary.renderables[1]
    assert weakest.row_count == WEAKEST_SHOWN
    console = Console(record=True, width=160)
    console.print(summary)
    text = console.export_text()
    assert "g0-s9" in text and "weakest 8 of 100 skills" in text  # g0-s9 never gets solved


def test_plots_are_written(run_dir):
    png = run_dir / "learning_curves.png"
    assert png.stat().st_size > 10_000


def test_bench_outputs_stay_readable_with_a_hundred_skills(run_dir, tmp_path):
    records = load_metrics(run_dir)
    bench = BenchConfig(policies=["uniform", "stat-syn"], seeds=[0], budget=10, iterations=2)
    runs = {("skillworld", p, ""): [records] for p in bench.policies}
    results = BenchResults(
        bench=bench, bench_dir=tmp_path, records=runs, missing=[], trees={"skillworld": run_tree(run_dir)}
    )
    results.rows = [leader_row(("skillworld", p, ""), "none", [0], runs[("skillworld", p, "")]) for p in bench.policies]
    write_outputs(results)
    board = (tmp_path / "leaderboard.md").read_text()
    assert "final accuracy per skill group" in board and "| [g9] |" in board
    assert "more" in board  # the long list of weak skills is cut
    for name in ("learning_curves.png", "skill_heatmap.png"):
        assert (tmp_path / name).stat().st_size > 10_000


def test_skillworld_groups_show_in_a_small_table():
    tree = SkillWorld().skills
    attempts = [attempt(f"{s}-{k}", k == 0, [s]) for s in tree.leaves() for k in range(2)]
    report = eval_report(0, attempts, tree=tree)
    assert report.node_accuracy["text"] == 0.5 and report.node_counts["number"] == 8
    assert UNLABELLED not in report.node_counts


@pytest.mark.parametrize("policy", ["skill-tree", "stat-syn"])
def test_tree_policies_plan_with_group_entries(policy):
    """Accuracy and profile entries for a group (items labelled with the group itself) do not
    break planning, and the programmatic engine makes data for a group skill's leaves."""
    env = SkillWorld()
    attempts = [attempt("t1", False, ["text"]), attempt("t2", True, ["reverse"]), attempt("n1", False, ["number"])]
    report = eval_report(0, attempts, tree=env.skills)
    feedback = diagnose(report, seed=0, tree=env.skills)
    assert feedback.node_accuracy["text"] == 0.5 and feedback.profile.node_counts["number"] == 1
    state = TeacherState(
        iteration=0, seed=0, budget=40, feedback=feedback, skill_tree=env.skills, pool=env.train_pool()
    )
    plan = get_policy(policy).plan(state)
    assert plan.total_requested == 40 and set(plan.allocation()) <= set(env.skills.leaves())


def test_group_skill_requests_are_generated_from_its_leaves():
    from teachloop.agents.engines import ProgrammaticEngine
    from teachloop.types import DataPlan, GenerationContext, GenerationRequest

    env = SkillWorld()
    plan = DataPlan(policy="p", iteration=0, requests=[GenerationRequest(skill="number", count=12)])
    result = ProgrammaticEngine().generate(plan, env, GenerationContext(iteration=0, seed=0, policy="p"))
    assert len(result.examples) == 12
    assert {ex.skills[0] for ex in result.examples} <= set(env.skills.leaves_under("number"))


def test_profile_without_tree_keeps_its_shape():
    profile = profile_from_items({"a": ["x"]})
    assert profile.node_counts == {} and profile.counts == {"x": 1}
    assert Feedback(iteration=0, accuracy=0.0, skill_accuracy={}, profile=profile).node_accuracy == {}


@pytest.mark.slow
def test_default_run_records_group_accuracy(small_run):
    """The default environment's two-level tree: its groups are in metrics.jsonl, report.md and the table."""
    lines = [json.loads(line) for line in (small_run / "metrics.jsonl").read_text().splitlines()]
    tree = SkillWorld().skills
    for line in lines:
        assert set(line["node_accuracy"]) == set(tree.preorder())  # every item is labelled: no bucket
        text = tree.leaves_under("text")  # one label per item: the group's accuracy is its skills' weighted mean
        expected = sum(line["node_accuracy"][s] * line["node_counts"][s] for s in text) / line["node_counts"]["text"]
        assert line["node_accuracy"]["text"] == pytest.approx(expected)
    assert lines[0]["missing_skills"]["text"] >= lines[0]["missing_skills"]["reverse"] > 0
    assert "| [text] |" in (small_run / "report.md").read_text()
    headers = [str(c.header) for c in rich_table(load_metrics(small_run), tree=run_tree(small_run)).columns]
    assert headers[:4] == ["iter", "all", "[text]", "first"] and "[number]" in headers

"""What a run hands back: the validation split chooses the checkpoint, reports lead with the
overall change and what was forgotten, and replay keeps what the student knew by default."""

from __future__ import annotations

import json

import pytest
from conftest import teachloop

from teachloop.runs.config import RunConfig
from teachloop.runs.loop.metrics import MetricsRecord, handed_back
from teachloop.runs.loop.runner import replay_size
from teachloop.runs.loop.store import RunStore
from teachloop.runs.reporting.outcome import paired_change, run_outcome
from teachloop.runs.reporting.report import load_metrics


def record(i: int, validation: float | None) -> MetricsRecord:
    return MetricsRecord(
        iteration=i, policy="p", accuracy=0.5, skill_accuracy={}, examples_trained=0, examples_generated=0,
        phase_seconds={}, overhead_seconds=0, validation_accuracy=validation,
    )  # fmt: skip


def test_the_best_validated_checkpoint_is_handed_back_never_one_below_the_start():
    assert handed_back([record(0, 0.5), record(1, 0.4), record(2, 0.7), record(3, 0.7)]) == 3  # latest best
    assert handed_back([record(0, 0.6), record(1, 0.4), record(2, 0.5)]) == 0  # all below the start
    assert handed_back([record(0, None), record(1, None)]) is None  # no validation split: the last one


def test_a_paired_change_has_an_interval_that_excludes_zero_only_when_it_should():
    lost = paired_change([1.0] * 40, [1.0] * 20 + [0.0] * 20)
    assert lost.delta == -0.5 and lost.high < 0
    noise = paired_change([1, 0] * 20, [0, 1] * 20)
    assert noise.delta == 0 and noise.low < 0 < noise.high


def test_a_per_skill_gain_says_how_many_eval_items_it_rests_on():
    """A skill of 4 eval items moves 25 points at a time: its gain is shown with its items and
    interval, and report.md's table says how many items each column is measured on (issue 34 item 2)."""
    from teachloop.runs.reporting.outcome import RunOutcome
    from teachloop.runs.reporting.report import markdown_table

    few = paired_change([0.0] * 4, [1.0] + [0.0] * 3)
    many = paired_change([0.0] * 100, [1.0] * 50 + [0.0] * 50)
    outcome = RunOutcome(
        iteration=1, chosen_by="last", last=1, overall=many, skills={"few": few, "many": many}, weak=["few", "many"]
    )
    weak = outcome.lines()[-1]
    assert weak.startswith("weak skills (few, many): +37.5 points")
    assert "few +25.0 [-24.0, +74.0] points on 4 items" in weak and "many +50.0 [" in weak and "on 100 items" in weak
    assert paired_change([0.0], [1.0]).measured() == "+100.0 points on 1 item (no interval from one item)"
    records = [
        record(i, None).model_copy(
            update={"skill_accuracy": {"few": acc, "many": 0.5}, "node_accuracy": {"few": acc, "many": 0.5},
                    "node_counts": {"few": 4, "many": 100}}
        )
        for i, acc in ((0, 0.0), (1, 0.25))
    ]  # fmt: skip
    table = markdown_table(records)
    assert "| eval items |  | 4 | 100 |" in table.splitlines()[2]


def test_replay_defaults_to_as_many_pool_examples_as_new_ones():
    assert RunConfig().replay == "auto"
    assert replay_size("auto", 300) == 300 and replay_size(0, 300) == 0 and replay_size(50, 300) == 50


@pytest.mark.slow
def test_a_run_validates_every_checkpoint_and_its_report_leads_with_the_outcome(small_run):
    records = load_metrics(small_run)
    store = RunStore(small_run)
    for r in records:
        assert r.validation_accuracy is not None
        attempts = (store.phase_dir(r.iteration, "eval") / "validation.jsonl").read_text().splitlines()
        assert len(attempts) == 8 * 25  # a quarter of skillworld's 100 eval items per skill
    validation_prompts = {json.loads(line)["prompt"] for line in attempts}
    eval_prompts = {json.loads(line)["prompt"] for line in (store.phase_dir(0, "eval") / "attempts.jsonl").open()}
    assert not validation_prompts & eval_prompts
    for i in (0, 1):  # no training example is a validation item
        data = (store.phase_dir(i, "data") / "examples.jsonl").read_text().splitlines()
        assert not {json.loads(line)["prompt"] for line in data} & validation_prompts

    outcome = run_outcome(store, records)
    assert outcome is not None and outcome.chosen_by == "validation"
    best = max(r.validation_accuracy for r in records)
    assert records[outcome.iteration].validation_accuracy == best >= records[0].validation_accuracy
    assert outcome.overall.end > outcome.overall.start and outcome.overall.low > 0  # the student ends better
    # replay (auto) keeps the skills the plan did not target: no skill loses 10 points (without
    # replay stat-syn's first iteration drops `first` 1.00 -> 0.08: docs/benchmarks.md)
    assert all(change.delta > -0.1 for change in outcome.skills.values()), outcome.skills
    assert sorted(outcome.weak) == ["max", "reverse"]
    report = (small_run / "report.md").read_text()
    handed = report.index("## What the run hands back")
    assert handed < report.index("## Accuracy per iteration and skill")
    assert "forgotten (change interval below 0): " in report and "overall accuracy 0.700 -> " in report


def test_a_bad_replay_is_one_error_line(tmp_path):
    out = teachloop("run", "--replay", "lots", "--out", str(tmp_path))
    assert out.returncode == 2 and not list(tmp_path.iterdir())
    expected = (
        "error: invalid config (command line): replay: must be auto, 0 (no replay) or a number of seed-pool "
        "examples, got 'lots'"
    )
    assert out.stderr.strip().splitlines() == [expected]


@pytest.mark.slow
def test_a_round_that_wrecks_the_student_is_neither_built_upon_nor_handed_back(tmp_path):
    """A learning rate 50x the default breaks the embedded student: the next round trains from
    the starting model again, and the run hands back the starting model, saying why."""
    out = teachloop(
        "run", "--out", str(tmp_path), "--name", "wreck", "--iterations", "2", "--budget", "64", "--epochs", "1",
        "--lr", "0.05", "--env-option", "eval_per_skill=10", "--env-option", "pool_per_skill=10",
    )  # fmt: skip
    assert out.returncode == 0, out.stderr[-3000:]
    records = load_metrics(tmp_path / "wreck")
    assert records[1].validation_accuracy < records[0].validation_accuracy  # round 0 wrecked it
    store = RunStore(tmp_path / "wreck")
    assert store.phase_record(1, "train").info["start"] == "iter_0"  # round 1 starts over from the start
    said = " ".join((out.stdout + out.stderr).split())  # lines wrap at the terminal's width
    assert "from iter 0, the best validated" in said
    assert "handed back: the starting model: every checkpoint validated below it" in said
    outcome = run_outcome(store, records)
    assert outcome is not None and outcome.iteration == 0 and outcome.overall.delta == 0

"""Issue 34 item 11, the terminal: what a run, a resume, a bench and the list/show commands
print, piped (as CI and `| tee` see it) as well as on a terminal."""

import io
import os
import re
import subprocess
from pathlib import Path
from types import SimpleNamespace

import pytest
from conftest import teachloop
from rich.console import Console

REPO = Path(__file__).resolve().parents[1]
# a closed loop in seconds: the embedded default with 5 eval and pool items per skill
TINY_RUN = ["--iterations", "1", "--budget", "20", "--epochs", "1"]
TINY_ENV = ["--env-option", "eval_per_skill=5", "--env-option", "pool_per_skill=5"]


def piped(*args: str) -> SimpleNamespace:
    """`teachloop ARGS` with stdout and stderr pipes and no COLUMNS: rich's 80 columns. Read as
    bytes: text mode would turn a bar's carriage returns into newlines."""
    env = {key: value for key, value in os.environ.items() if key != "COLUMNS"}
    out = subprocess.run(["teachloop", *args], check=False, capture_output=True, env=env, timeout=600)
    return SimpleNamespace(returncode=out.returncode, stdout=out.stdout.decode(), stderr=out.stderr.decode())


@pytest.mark.slow
def test_a_piped_run_prints_whole_lines_no_bar_no_warnings_and_a_resume_says_it_is_finished(tmp_path):
    out = piped("run", "--out", str(tmp_path), "--name", "r", *TINY_RUN, *TINY_ENV)
    assert out.returncode == 0, out.stderr[-3000:]
    assert "\r" not in out.stderr  # the training bar writes nothing into a pipe
    assert "Warning" not in out.stderr, out.stderr  # torch's and transformers' FutureWarnings stay off the terminal
    lines = out.stderr.splitlines()
    assert lines[0].startswith("teachloop run ") and lines[0].endswith("1 iterations x 20 examples")
    assert all(line.startswith("  ") for line in lines[1:]), lines  # no phase line is cut at 80 columns
    evaluate = [line for line in lines if line.startswith("  iter 0 evaluate")]
    assert len(evaluate) == 1 and evaluate[0].endswith("hit the 16-token limit") and len(evaluate[0]) > 80
    assert re.search(r"^report: \S+report\.md  curves: \S+learning_curves\.png$", out.stdout, re.MULTILINE), out.stdout

    again = piped("resume", str(tmp_path / "r"))
    assert again.returncode == 0, again.stderr[-3000:]
    said = again.stderr.splitlines()
    assert said[1] == (
        f"  finished already: every phase of its 1 iteration is done, nothing is left to redo (`teachloop resume "
        f"{tmp_path / 'r'} --iterations N` extends it)"
    ), said
    assert len(said) == 2  # nothing was redone


def test_the_training_bar_writes_nothing_into_a_stderr_that_is_not_a_terminal(capsys):
    from teachloop.students.hf.student import _ProgressBar

    bar, state = _ProgressBar(), SimpleNamespace(max_steps=40, global_step=0)
    bar.on_train_begin(None, state, None)
    for step in range(1, 41):
        state.global_step = step
        bar.on_step_end(None, state, None)
        bar.on_log(None, state, None, logs={"loss": 0.5})
    bar.on_train_end(None, state, None)
    assert capsys.readouterr().err == ""


def offline_bench(tmp_path: Path):
    """Three policies x 3 seeds on skillworld with no teacher, paired against uniform."""
    from teachloop.runs.bench.config import BenchConfig
    from teachloop.runs.bench.stats import Forgetting, Interval, PairedDifference
    from teachloop.runs.reporting.leaderboard import BenchResults, LeaderRow, MeanStd

    def figure(mean: float) -> MeanStd:
        return MeanStd.of([mean - 0.01, mean, mean + 0.01]).model_copy(update={"lo": mean - 0.05, "hi": mean + 0.05})

    def row(policy: str, gain: float) -> LeaderRow:
        diff = PairedDifference(
            baseline="uniform", difference=0.123, lo=-0.021, hi=0.2, seeds=3, verdict="not distinguishable"
        )
        versus = {} if policy == "uniform" else {name: diff for name in ("final_accuracy", "auc", "weak_gain")}
        forgetting = Forgetting(
            untargeted=Interval(estimate=-0.012, lo=-0.03, hi=0.004), worst_skill="parity", worst_change=-0.08,
            forgotten=["first", "parity"],
        )  # fmt: skip
        return LeaderRow(
            environment="skillworld", policy=policy, teacher="none", seeds=[0, 1, 2], weak_skills=["max", "reverse"],
            final_accuracy=figure(0.97), auc=figure(0.9), weak_gain=figure(gain), examples_trained=3200,
            examples_generated=2400, teacher_tokens=0, wall_seconds=45, versus=versus, forgetting=forgetting,
        )  # fmt: skip

    bench = BenchConfig(policies=["uniform", "stat-syn", "stat-syn-mixed"], seeds=[0, 1, 2], budget=600, iterations=4)
    rows = [row("stat-syn", 0.9), row("stat-syn-mixed", 0.8), row("uniform", 0.5)]
    return BenchResults(bench=bench, bench_dir=tmp_path / "bench", records={}, missing=[], rows=rows)


def test_the_printed_leaderboard_keeps_every_cell_on_one_line_and_leaves_out_empty_columns(tmp_path):
    from teachloop.runs.reporting.leaderboard import rich_leaderboard, table_width

    table = rich_leaderboard(offline_bench(tmp_path))
    buffer = io.StringIO()
    Console(file=buffer, width=max(80, table_width(table))).print(table)  # as `teachloop bench` prints it
    text = buffer.getvalue()
    body = [line for line in text.splitlines() if line.startswith("│")]
    assert len(body) == 3, text  # one line per row: no cell is split over lines
    assert max(map(len, text.splitlines())) < 200, text
    # teacher tokens are 0 and gain per 1k tokens – in every row of an offline bench: not printed;
    # the environment, teacher and seed count every row shares are said once, in the title
    assert "teacher tokens" not in text and "1k tokens" not in text and "environment" not in text
    assert "leaderboard: " in text and "(skillworld; teacher none; 3 seeds)" in text
    assert "+0.123 [-0.021, +0.200] ≈" in text and "≈: not distinguishable from uniform" in text
    first = next(line for line in body if "stat-syn " in line)
    assert "first, parity" in first and "-1.2 [-3.0, +0.4]; worst parity -8.0" in first


def test_trackers_list_names_none_and_show_describes_it():
    listed = teachloop("trackers", "list")
    assert listed.returncode == 0 and listed.stdout.splitlines()[0] == "none", listed.stdout
    shown = teachloop("trackers", "show", "none")
    assert shown.returncode == 0 and shown.stdout.startswith("none (tracker)\n  No tracker, the default"), shown


def test_the_readme_and_help_say_the_same_time_for_the_default_run():
    helped = teachloop("--help")
    assert "about a minute" in " ".join(helped.stdout.split())
    readme = " ".join((REPO / "README.md").read_text().split())
    assert "run a complete closed loop on the embedded default (about a minute)" in readme
    assert "45 s wall" in readme

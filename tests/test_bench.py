"""`teachloop bench` (equal budgets, resumable, leaderboard + plots) and a policy plug-in package."""

import itertools
import json
from pathlib import Path

import pytest
import yaml
from conftest import installed_example, teachloop

from teachloop.runs.bench.harness import load_bench, plan_runs

pytestmark = pytest.mark.slow

TINY_BENCH = {
    "environments": ["skillworld"],
    "policies": ["uniform", "stat-syn"],
    "seeds": [0],
    "iterations": 1,
    "budget": 40,
    "run": {"train": {"epochs": 1}},
}


def write_bench(path: Path, data: dict) -> Path:
    path.write_text(yaml.safe_dump(data))
    return path


def test_bench_file_quick_overrides_and_equal_budgets(tmp_path):
    data = {
        **TINY_BENCH,
        "seeds": [0, 1, 2],
        "run": {"train": {"epochs": 2, "batch_size": 32}, "policy_options": {"stat-syn": {"floor": 0.1}}},
        "quick": {"seeds": [0], "budget": 20, "train": {"epochs": 1}},
    }
    path = write_bench(tmp_path / "b.yaml", data)
    full = plan_runs(load_bench(path), tmp_path / "out")
    assert len(full) == 6 and {(c.budget, c.iterations) for c in full} == {(40, 1)}
    assert {c.name for c in full} >= {"skillworld-uniform-s0", "skillworld-stat-syn-s2"}
    assert {c.policy: c.policy_options for c in full} == {"uniform": {}, "stat-syn": {"floor": 0.1}}
    assert all(c.out == (tmp_path / "out" / "runs").resolve() for c in full)

    quick = plan_runs(load_bench(path, quick=True), tmp_path / "out")
    assert [c.seed for c in quick] == [0, 0] and {c.budget for c in quick} == {20}
    assert {(c.train.epochs, c.train.batch_size) for c in quick} == {(1, 32)}  # merged into run.train

    teacher = {"backend": "openai", "model": "m"}
    with_teacher = {**TINY_BENCH, "teacher_tokens_per_iteration": 5000, "run": {"teacher": teacher}}
    path = write_bench(tmp_path / "t.yaml", with_teacher)
    assert {c.teacher.max_tokens_per_iteration for c in plan_runs(load_bench(path), tmp_path)} == {5000}
    calls = write_bench(tmp_path / "c.yaml", {**with_teacher, "teacher_calls_per_iteration": 40})
    assert {c.teacher.max_calls_per_iteration for c in plan_runs(load_bench(calls), tmp_path)} == {40}
    axis = {**TINY_BENCH, "teacher_calls_per_iteration": 40, "teachers": {"a": "openai:m", "gen": None}}
    planned = plan_runs(load_bench(write_bench(tmp_path / "x.yaml", axis)), tmp_path)
    assert [c.teacher.max_calls_per_iteration if c.teacher else None for c in planned] == [40, 40, None, None]
    no_teacher = write_bench(tmp_path / "n.yaml", {**TINY_BENCH, "teacher_tokens_per_iteration": 5000})
    assert all(c.teacher is None for c in plan_runs(load_bench(no_teacher), tmp_path))


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"colour": "blue"}, "error: invalid bench file (bench.yaml): colour: Extra inputs are not permitted"),
        ({"policies": ["uniform", "nope"]}, "error: unknown policy 'nope' (did you mean 'none'?); available:"),
        ({"run": {"budget": 10}}, "error: invalid bench file (bench.yaml): run: budget is set by the bench"),
        ({"run": {"train": {"epochs": 0}}}, "error: invalid config (bench run skillworld-uniform-s0): train.epochs"),
        ({"quick": {"sedes": [0]}}, "error: invalid bench file (bench.yaml): quick: unknown field 'sedes'"),
        ({"resources": {"gpu": 1}}, "error: invalid bench file (bench.yaml): resources.gpu: Extra inputs"),
        ({"baseline": "bandit"}, "error: invalid bench file (bench.yaml): (bench file): baseline 'bandit' is not one"),
    ],
)
def test_bad_bench_file_one_line_error(tmp_path, change, message):
    write_bench(tmp_path / "bench.yaml", {**TINY_BENCH, **change})
    out = teachloop("bench", "bench.yaml", "--out", "b", cwd=tmp_path)
    assert out.returncode == 2, out.stderr
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(message), out.stderr
    assert not (tmp_path / "b").exists()  # nothing written for a refused bench


def test_bench_runs_every_cell_then_skips_finished_runs(tmp_path):
    bench_file = write_bench(tmp_path / "tiny.yaml", TINY_BENCH)
    bench_dir = tmp_path / "bench"
    out = teachloop("bench", str(bench_file), "--out", str(bench_dir))
    assert out.returncode == 0, out.stderr[-3000:]
    assert "uniform" in out.stdout and "stat-syn" in out.stdout and "weak-skill gain" in out.stdout

    board = (bench_dir / "leaderboard.md").read_text()
    rows = [line for line in board.splitlines() if line.startswith("| ") and "skillworld" in line]
    assert {row.split(" | ")[2] for row in rows} == {"uniform", "stat-syn"}
    assert "max" in board and "reverse" in board  # the weak skills are named
    for png in ("learning_curves.png", "skill_heatmap.png"):
        assert (bench_dir / png).stat().st_size > 10_000
    table = json.loads((bench_dir / "leaderboard.json").read_text())["rows"]
    finals = [row["final_accuracy"]["mean"] for row in table]  # ranked by what the runs hand back
    assert finals == sorted(finals, reverse=True)
    # every figure has its interval; stat-syn is compared with uniform, paired, with a verdict
    for row in table:
        for figure in ("final_accuracy", "auc", "weak_gain"):
            assert row[figure]["lo"] <= row[figure]["mean"] <= row[figure]["hi"], (row["policy"], figure)
    versus = next(row for row in table if row["policy"] == "stat-syn")["versus"]["weak_gain"]
    assert versus["baseline"] == "uniform" and versus["seeds"] == 1 and versus["lo"] <= versus["difference"]
    assert versus["verdict"] in ("better", "worse", "not distinguishable")
    assert versus["verdict"] in board and "(baseline)" in board
    # right below the baseline, the rank's tie mark and the verdict against the baseline are one test
    below = [(a, b) for a, b in itertools.pairwise(table) if a["policy"] == "uniform"]
    for _, row in below:
        assert row["tied_with_previous"] == (row["versus"]["final_accuracy"]["verdict"] == "not distinguishable")
    assert "One seed: the intervals resample eval items only" in board  # one seed: said, not hidden
    for row in table:  # next to the targeted gain: what the other skills did
        change = row["forgetting"]["untargeted"]
        assert change["lo"] <= change["estimate"] <= change["hi"] and row["forgetting"]["worst_skill"]
    assert "other skills (points)" in board and "forgotten" in board
    assert all(row["examples_generated"] == 40 and row["teacher_tokens"] == 0 for row in table)

    runs = sorted((bench_dir / "runs").iterdir())
    assert [r.name for r in runs] == ["skillworld-stat-syn-s0", "skillworld-uniform-s0"]
    stamps = {r.name: (r / "metrics.jsonl").stat().st_mtime_ns for r in runs}
    # each cell's phase lines are in its own log, not on the bench's terminal
    for run in runs:
        log = (bench_dir / "logs" / f"{run.name}.log").read_text()
        assert log.startswith("== ") and " started\n" in log, log
        assert "iter 0 evaluate" in log and "iter 1 evaluate" in log and "\n== finished in " in log, log
    assert "iter 0 evaluate" not in out.stderr and "(log: " in out.stderr

    shown = teachloop("show", str(bench_dir), "--no-open")  # the bench's page links each run's page
    assert shown.returncode == 0, shown.stderr[-3000:]
    page = (bench_dir / "show.html").read_text()
    assert 'class="leaderboard"' in page and "data:image/png;base64," in page
    for run in runs:
        assert f'href="runs/{run.name}/show.html"' in page and (run / "show.html").is_file()
    assert {r.name: (r / "metrics.jsonl").stat().st_mtime_ns for r in runs} == stamps  # show wrote only pages

    again = teachloop("bench", str(bench_file), "--out", str(bench_dir))
    assert again.returncode == 0, again.stderr[-3000:]
    assert "2 of 2 runs already finished" in again.stderr and "running" not in again.stderr
    assert {r.name: (r / "metrics.jsonl").stat().st_mtime_ns for r in runs} == stamps
    assert not list((bench_dir / "runs").glob("*/iter_2"))
    assert all((r / "report.md").is_file() for r in runs)  # each written as its run finished

    (runs[0] / "report.md").unlink()  # a bench killed after the run finished, before its report
    third = teachloop("bench", str(bench_file), "--out", str(bench_dir))
    assert third.returncode == 0, third.stderr[-3000:]
    assert (runs[0] / "report.md").is_file() and "running" not in third.stderr
    assert (runs[1] / "metrics.jsonl").stat().st_mtime_ns == stamps[runs[1].name]  # the other run untouched


def test_worker_processes_keep_one_log_per_cell_and_a_failure_names_it(tmp_path):
    bench_file = write_bench(tmp_path / "tiny.yaml", TINY_BENCH)
    bench_dir = tmp_path / "bench"
    (bench_dir / "runs").mkdir(parents=True)
    (bench_dir / "runs" / "skillworld-uniform-s0").write_text("not a run folder")  # passes the check, breaks the run
    out = teachloop("bench", str(bench_file), "--out", str(bench_dir), "--workers", "2")
    assert out.returncode != 0
    failed_log = bench_dir / "logs" / "skillworld-uniform-s0.log"
    assert "skillworld-uniform-s0 failed in" in out.stderr and f"(log: {failed_log})" in out.stderr
    assert "Traceback (most recent call last)" in failed_log.read_text()
    assert "RunStoreError" in failed_log.read_text() and "\n== failed in " in failed_log.read_text()
    assert f"(its log: {failed_log})" in (bench_dir / "errors.log").read_text()
    finished_log = (bench_dir / "logs" / "skillworld-stat-syn-s0.log").read_text()
    assert "iter 0 train" in finished_log and "Traceback" not in finished_log
    assert "iter 0 train" not in out.stderr


def test_policy_plugin_package_installs_and_runs(tmp_path):
    with installed_example("plugin-policy", "teachloop-weakest-first", tmp_path):
        listed = teachloop("policies", "list")
        assert "weakest-first" in listed.stdout.split(), listed.stdout

        out = teachloop(
            "run", "--policy", "weakest-first", "--iterations", "1", "--budget", "40", "--epochs", "1",
            "--out", str(tmp_path / "runs"), "--name", "wf", "--quiet",
        )  # fmt: skip
        assert out.returncode == 0, out.stderr[-3000:]
        run = tmp_path / "runs" / "wf"
        plan = json.loads((run / "iter_0" / "plan" / "plan.json").read_text())
        feedback = json.loads((run / "iter_0" / "feedback" / "feedback.json").read_text())
        accuracy = feedback["skill_accuracy"]
        chosen = {r["skill"]: r["count"] for r in plan["requests"]}
        assert list(chosen.values()) == [20, 20]  # the budget, split over k=2 skills
        assert sorted(accuracy[s] for s in chosen) == sorted(accuracy.values())[:2]  # the two weakest
        assert plan["policy"] == "weakest-first" and plan["policy_state"]["rounds"] == {s: 1 for s in chosen}
        assert (run / "metrics.jsonl").read_text().count("\n") == 2
    assert "weakest-first" not in teachloop("policies", "list").stdout


def test_a_teachers_axis_names_each_cell_and_refuses_a_second_teacher(tmp_path):
    data = {**TINY_BENCH, "teachers": {"qwen": "openai:qwen", "gen": None}, "baseline": "gen"}
    bench = load_bench(write_bench(tmp_path / "t.yaml", data))
    configs = plan_runs(bench, tmp_path / "b")
    names = [c.name for c in configs]
    assert names == [  # in the file's order (safe_dump sorts the keys)
        "skillworld-gen-uniform-s0", "skillworld-gen-stat-syn-s0", "skillworld-qwen-uniform-s0",
        "skillworld-qwen-stat-syn-s0",
    ]  # fmt: skip
    assert [c.teacher.spec if c.teacher else None for c in configs] == [None] * 2 + ["openai:qwen"] * 2
    assert bench.baseline_is_teacher
    for change, message in (
        ({"run": {"teacher": {"backend": "openai", "model": "m"}}}, "run.teacher and teachers: both name"),
        ({"teachers": {"a-b": None}}, "teacher name 'a-b'"),
        ({"teachers": {"q": "no-colon"}}, "--teacher must look like"),
        ({"baseline": "nobody"}, "not one of the policies or teachers"),
    ):
        write_bench(tmp_path / "bad.yaml", {**data, **change})
        out = teachloop("bench", "bad.yaml", "--out", "b", cwd=tmp_path)
        assert out.returncode == 2 and message in out.stderr, (change, out.stderr)


def test_teachers_are_ranked_against_the_generator_with_intervals_and_their_data_measured(
    qwen_teacher, qwen_server, tmp_path
):
    """A real teacher (Qwen2.5-Coder-0.5B behind `vllm serve`) and skillworld's own generator
    teach the same student: one row each, the teacher's compared with the generator's, paired,
    and what each wrote measured on the data alone."""
    teacher = {"backend": "openai", "model": qwen_teacher, "base_url": qwen_server, "max_tokens": 256}
    data = {
        **TINY_BENCH, "policies": ["stat-syn"], "budget": 12, "teachers": {"qwen": teacher, "programmatic": None},
        "baseline": "programmatic", "run": {"train": {"epochs": 1}, "min_yield": 0.1},
    }  # fmt: skip
    bench_dir = tmp_path / "bench"
    out = teachloop("bench", str(write_bench(tmp_path / "t.yaml", data)), "--out", str(bench_dir))
    assert out.returncode == 0, out.stderr[-3000:]
    rows = {row["teacher_name"]: row for row in json.loads((bench_dir / "leaderboard.json").read_text())["rows"]}
    assert set(rows) == {"qwen", "programmatic"}
    qwen, generator = rows["qwen"], rows["programmatic"]
    assert qwen["teacher_tokens"] > 0 and generator["teacher_tokens"] == 0
    assert qwen["weak_gain"]["lo"] <= qwen["weak_gain"]["mean"] <= qwen["weak_gain"]["hi"]
    versus = qwen["versus"]["weak_gain"]
    assert versus["baseline"] == "stat-syn / programmatic" and versus["verdict"] in (
        "better",
        "worse",
        "not distinguishable",
    )
    assert "versus" not in generator or not generator["versus"]
    # the generator keeps all it asks; the teacher's data is measured from what it kept
    assert generator["data"]["kept"] == generator["data"]["asked"] == 12
    measured = qwen["data"]
    assert 0 < measured["kept"] <= measured["asked"] == 12
    for name in ("prompt_words", "answer_words", "distinct_1", "distinct_2", "novelty_pool", "novelty_eval"):
        assert measured[name] is not None and measured[name] >= 0, name
    board = (bench_dir / "leaderboard.md").read_text()
    assert "## skillworld: the data each row wrote" in board and "qwen = openai:" in board
    assert (bench_dir / "runs" / "skillworld-qwen-stat-syn-s0").is_dir()

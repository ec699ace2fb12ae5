"""`teachloop bench --ray`: every run a Ray task on a local Ray instance, with the same run
folders, skip/resume rules, failure records and leaderboard as `--workers`."""

import os
import subprocess

import pytest

from cli_fork import run_teachloop
from conftest import FULL_SUITE, teachloop
from test_bench import TINY_BENCH, write_bench  # the cheapest bench of the bench tests
from teachloop.faults import KILL_AT

pytestmark = pytest.mark.slow

@pytest.fixture(autouse=True)
def _ray_installed():
    try:
        import ray  # noqa: F401
    except ImportError:
        if FULL_SUITE:
            raise
        pytest.skip("Ray is not installed (pip install -e '.[ray]'; `bash scripts/test.sh` does it all)")


def table_rows(board: str) -> list[str]:
    return [line for line in board.splitlines() if line.startswith("| ") and "skillworld" in line]


def test_ray_bench_writes_the_same_leaderboard_and_skips_finished_runs(tmp_path):
    bench_file = write_bench(tmp_path / "tiny.yaml", {**TINY_BENCH, "resources": {"cpus": 1, "gpus": 0}})
    bench_dir = tmp_path / "bench"
    out = teachloop("bench", str(bench_file), "--out", str(bench_dir), "--ray")
    assert out.returncode == 0, out.stderr[-3000:]
    assert "as Ray tasks on a local Ray instance" in out.stderr and "1 CPU(s) and 0 GPU(s)" in out.stderr
    assert "[2/2]" in out.stderr and "weak-skill gain" in out.stdout
    board = (bench_dir / "leaderboard.md").read_text()
    assert {row.split(" | ")[2] for row in table_rows(board)} == {"uniform", "stat-syn"}
    runs = sorted((bench_dir / "runs").iterdir())
    assert [r.name for r in runs] == ["skillworld-stat-syn-s0", "skillworld-uniform-s0"]
    stamps = {r.name: (r / "metrics.jsonl").stat().st_mtime_ns for r in runs}

    again = teachloop("bench", str(bench_file), "--out", str(bench_dir), "--ray")
    assert again.returncode == 0, again.stderr[-3000:]
    assert "2 of 2 runs already finished" in again.stderr and "Ray tasks" not in again.stderr

    # the process-pool path, on the same folders: nothing reruns, the same leaderboard file
    pool = teachloop("bench", str(bench_file), "--out", str(bench_dir), "--workers", "2")
    assert pool.returncode == 0, pool.stderr[-3000:]
    assert "2 of 2 runs already finished" in pool.stderr
    assert (bench_dir / "leaderboard.md").read_text() == board
    assert {r.name: (r / "metrics.jsonl").stat().st_mtime_ns for r in runs} == stamps


def test_a_failing_ray_task_is_recorded_and_the_others_finish(tmp_path):
    bench_file = write_bench(tmp_path / "tiny.yaml", TINY_BENCH)
    bench_dir = tmp_path / "bench"
    (bench_dir / "runs").mkdir(parents=True)
    (bench_dir / "runs" / "skillworld-uniform-s0").write_text("not a run folder")  # passes the check, breaks the run
    out = teachloop("bench", str(bench_file), "--out", str(bench_dir), "--ray")
    assert out.returncode != 0
    assert "skillworld-uniform-s0 failed" in out.stderr and "skillworld-stat-syn-s0 finished" in out.stderr
    assert "1 run(s) failed (skillworld-uniform-s0)" in out.stderr
    assert "== skillworld-uniform-s0" in (bench_dir / "errors.log").read_text()
    assert "RunStoreError" in (bench_dir / "logs" / "skillworld-uniform-s0.log").read_text()
    assert "iter 0 train" in (bench_dir / "logs" / "skillworld-stat-syn-s0.log").read_text()
    rows = table_rows((bench_dir / "leaderboard.md").read_text())
    assert [row.split(" | ")[2] for row in rows] == ["stat-syn"]


def test_a_ray_worker_killed_mid_run_fails_its_run_and_a_rerun_resumes_it(tmp_path):
    bench_file = write_bench(tmp_path / "one.yaml", {**TINY_BENCH, "policies": ["uniform"]})
    bench_dir = tmp_path / "bench"
    args = ["teachloop", "bench", str(bench_file), "--out", str(bench_dir), "--ray"]
    env = {**os.environ, KILL_AT: "metrics"}  # the worker SIGKILLs itself just before the run's end
    killed = run_teachloop(args[1:], env=env)
    assert killed.returncode != 0
    assert "skillworld-uniform-s0 failed" in killed.stderr and "Ray worker failed" in killed.stderr

    resumed = teachloop(*args[1:])
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert "[1/1] skillworld-uniform-s0 finished" in resumed.stderr
    assert len(table_rows((bench_dir / "leaderboard.md").read_text())) == 1
    # the killed attempt's output stays in the log; the resumed attempt appends to it
    log = (bench_dir / "logs" / "skillworld-uniform-s0.log").read_text()
    headers = [line.split()[2] for line in log.splitlines() if line.startswith("== ")]
    assert headers == ["started", "resumed", "in"], log  # "== finished in ..." closes only the second attempt
    assert log.count("iter 0 train") == 1 and log.rstrip().splitlines()[-1].startswith("== finished in "), log


def test_ray_refusals_are_one_line(tmp_path):
    bench_file = write_bench(tmp_path / "big.yaml", {**TINY_BENCH, "resources": {"cpus": 1, "gpus": 64}})
    out = teachloop("bench", str(bench_file), "--out", str(tmp_path / "b"), "--ray")
    assert out.returncode == 2, out.stderr[-3000:]
    assert "error: each run asks for 1 CPU(s) and 64 GPU(s)" in out.stderr
    assert not (tmp_path / "b" / "runs").exists()

    workers = teachloop("bench", str(bench_file), "--out", str(tmp_path / "w"), "--ray", "--workers", "2")
    assert workers.returncode == 2 and workers.stderr.startswith("error: --workers does not apply with --ray")

    shadow = tmp_path / "no-ray" / "ray"  # an installation without Ray
    shadow.mkdir(parents=True)
    (shadow / "__init__.py").write_text("raise ImportError('No module named ray')\n")
    path = os.pathsep.join(filter(None, [str(shadow.parent), os.environ.get("PYTHONPATH")]))
    env = {**os.environ, "PYTHONPATH": path}
    args = ["teachloop", "bench", str(bench_file), "--out", str(tmp_path / "n"), "--ray"]
    missing = subprocess.run(args, capture_output=True, text=True, env=env, timeout=120)
    assert missing.returncode == 2
    assert missing.stderr.strip() == "error: --ray needs Ray, which is not installed: pip install 'teachloop[ray]'"
    assert not (tmp_path / "n").exists()

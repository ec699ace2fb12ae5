"""A tracker plug-in is one class and one entry point: examples/plugin-tracker, installed with
pip, gets every iteration of a real run, its options validated before the run starts, and
a resume adds only what is new."""

import json

import pytest

from conftest import installed_example, teachloop

pytestmark = pytest.mark.slow


def test_tracker_plugin_installs_logs_each_iteration_once_and_refuses_bad_options(tmp_path):
    log_dir = tmp_path / "tracked"
    run_args = ["run", "--iterations", "2", "--budget", "40", "--epochs", "1", "--env-option", "eval_per_skill=4",
                "--out", str(tmp_path / "runs"), "--tracking", "jsonl"]  # fmt: skip
    with installed_example("plugin-tracker", "teachloop-jsonl-tracker", tmp_path):
        shown = teachloop("trackers", "show", "jsonl")
        assert shown.returncode == 0 and "directory: " in shown.stdout and "with_config: bool = True" in shown.stdout

        typo = teachloop(*run_args, "--name", "typo", "--tracking-option", "dir=x", "--quiet")
        assert typo.returncode == 2 and "unknown option 'dir'" in typo.stderr and "directory" in typo.stderr
        assert not (tmp_path / "runs" / "typo" / "iter_0").exists()

        out = teachloop(*run_args, "--name", "t", "--tracking-option", f"directory={log_dir}")
        assert out.returncode == 0, out.stderr[-3000:]
        said = f"tracking: jsonl, project t, run t (file: {log_dir / 't.jsonl'})"
        assert "".join(said.split()) in "".join(out.stderr.split())  # however the terminal wraps it
        rows = [json.loads(line) for line in (log_dir / "t.jsonl").read_text().splitlines()]
        assert "config" in rows[0] and rows[0]["config"]["tracking_options"] == {"directory": str(log_dir)}
        logged = [row for row in rows if "step" in row]
        assert [row["step"] for row in logged] == [0, 1, 2]
        metrics = json.loads((tmp_path / "runs" / "t" / "metrics.jsonl").read_text().splitlines()[-1])
        assert logged[-1]["metrics"]["accuracy"] == metrics["accuracy"]

        # the run folder says which iterations the tracker has: a resume logs nothing again
        again = teachloop("resume", str(tmp_path / "runs" / "t"), "--quiet")
        assert again.returncode == 0, again.stderr[-3000:]
        assert len((log_dir / "t.jsonl").read_text().splitlines()) == len(rows)

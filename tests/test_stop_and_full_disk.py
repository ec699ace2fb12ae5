"""A run stopped on purpose (SIGTERM, Ctrl-C) or by a full disk: one line saying what happened
and how to go on, nothing half-written, and a resume that pays no teacher call twice."""

import json
import os
import signal
import subprocess
import time

import pytest
from conftest import teachloop
from fault_server import FaultServer, copy_items

from teachloop.runs.loop.store import RunStore

pytestmark = pytest.mark.slow

IN_FLIGHT = 4  # the teacher's concurrency: requests in flight at once




def run_args(tmp_path, teacher_url: str) -> list[str]:
    config = tmp_path / "small.yaml"
    config.write_text("environment_options: {eval_per_skill: 10, pool_per_skill: 10}\n")
    return [
        "--config", str(config), "--iterations", "1", "--budget", "24", "--epochs", "1", "--seed", "5",
        "--teacher", "openai:fake", "--teacher-base-url", teacher_url, "--verify", "none", "--quiet",
        "--teacher-option", f"concurrency={IN_FLIGHT}",
    ]  # fmt: skip


def stopped_while_requests_are_in_flight(tmp_path, server: FaultServer, stop: int, let_go_after: float | None):
    """Start a run, send `stop` once the teacher holds IN_FLIGHT requests, let the held replies
    go after `let_go_after` seconds (never: None); the finished process and the seconds from
    the signal to its one line."""
    command = ["teachloop", "run", *run_args(tmp_path, server.base_url), "--out", str(tmp_path), "--name", "k"]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 300
    while server.held < IN_FLIGHT and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert server.held == IN_FLIGHT, process.communicate(timeout=60)[1][-3000:]
    process.send_signal(stop)
    sent = time.monotonic()
    if let_go_after is not None:
        time.sleep(let_go_after)
        server.let_go()
    line = process.stderr.readline()
    said_after = time.monotonic() - sent
    _, err = process.communicate(timeout=60)
    return process.returncode, line + err, said_after


def paid(server: FaultServer) -> list[str]:
    """Every request the teacher answered, as (messages, seed): the same request twice was paid twice."""
    return [json.dumps([r["messages"], r.get("seed")], sort_keys=True) for r in server.requests]


def test_sigterm_keeps_the_replies_in_flight_and_the_resume_pays_nothing_twice(tmp_path):
    """Before: SIGTERM killed the run silently (exit 143) and the 4 replies in flight were paid
    again on resume."""
    with FaultServer(script=["ok"] * 6 + ["hold"] * IN_FLIGHT, content=copy_items) as server:
        code, stderr, said_after = stopped_while_requests_are_in_flight(tmp_path, server, signal.SIGTERM, 0.5)
        assert code == 143, stderr[-3000:]
        lines = stderr.strip().splitlines()
        assert len(lines) == 1, stderr[-3000:]
        assert lines[0].startswith("stopped by SIGTERM during iter 0 generate phase: "), lines[0]
        assert f"{IN_FLIGHT} teacher replies in flight kept in the cache" in lines[0]
        assert "teacher request(s) not sent" in lines[0]
        assert f"`teachloop resume {tmp_path / 'k'}` continues from there" in lines[0] and "(exit code 143)" in lines[0]
        assert said_after < 5, said_after  # the replies landed: no waiting out the grace period
        assert server.total() == 6 + IN_FLIGHT  # nothing was sent after the signal
        run = tmp_path / "k"
        assert not RunStore(run).is_done(0, "data") and not list(run.glob("iter_*/.*.tmp"))
        ledger = json.loads((run / "teacher_ledger.json").read_text())
        assert ledger["calls"] == 6 + IN_FLIGHT
        out = teachloop("resume", str(run), "--quiet")
        assert out.returncode == 0, out.stderr[-3000:]
    assert RunStore(run).is_finished()
    requests = paid(server)
    assert len(requests) == len(set(requests)) == 24  # no request was paid twice
    ledger = json.loads((run / "teacher_ledger.json").read_text())
    assert ledger["calls"] == 24 and ledger["cache_hits"] == 6 + IN_FLIGHT


def test_ctrl_c_gives_up_replies_that_do_not_land_within_the_grace_period(tmp_path):
    with FaultServer(script=["ok"] * 6 + ["hold"] * IN_FLIGHT, content=copy_items) as server:
        code, stderr, said_after = stopped_while_requests_are_in_flight(tmp_path, server, signal.SIGINT, None)
        assert code == 130, stderr[-3000:]
        lines = stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("stopped by SIGINT during iter 0 generate phase: "), stderr
        assert f"{IN_FLIGHT} teacher request(s) still in flight after 5s given up" in lines[0]
        assert "14 teacher request(s) not sent" in lines[0] and "(exit code 130)" in lines[0]
        assert 4.5 < said_after < 30, said_after
        assert server.total() == 6 + IN_FLIGHT
    run = tmp_path / "k"
    assert not RunStore(run).is_done(0, "data") and not list(run.glob("iter_*/.*.tmp"))


def test_a_stop_signal_blocked_by_the_parent_still_stops_the_run():
    """A mask is inherited through exec: a run started by a parent that blocks SIGTERM never
    ran its handler (the signal waited, unseen, and the run finished with exit code 0)."""
    from teachloop.stopping import Interrupted, stop_signals

    before = signal.pthread_sigmask(signal.SIG_BLOCK, [signal.SIGTERM])
    try:
        with pytest.raises(Interrupted) as stopped, stop_signals():
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(1)  # the handler raises before this ends
            pytest.fail("SIGTERM did not stop the body")
        assert stopped.value.exit_code == 143
        assert signal.SIGTERM in signal.pthread_sigmask(signal.SIG_BLOCK, [])  # the caller's mask is back
    finally:
        if signal.SIGTERM in signal.sigpending():  # never handled: take it, or it ends pytest
            signal.sigwait([signal.SIGTERM])
        signal.pthread_sigmask(signal.SIG_SETMASK, before)


def test_sigterm_during_training_stops_at_once_and_keeps_nothing_half_done(tmp_path):
    """No teacher request in flight: the signal stops the run where it is (before: exit 143, silent)."""
    # 40 epochs: training lasts minutes if the signal does not stop it, so the signal cannot miss it
    command = ["teachloop", "run", "--iterations", "1", "--budget", "300", "--epochs", "40", "--quiet"]
    process = subprocess.Popen(
        [*command, "--out", str(tmp_path), "--name", "t"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    deadline = time.monotonic() + 300
    while not (training := list(tmp_path.glob("t/iter_0/.train.*"))) and process.poll() is None:
        assert time.monotonic() < deadline, "the train phase did not start within 300 s"
        time.sleep(0.05)
    assert training, f"the run ended (exit code {process.poll()}) before its train phase was seen"
    time.sleep(0.5)
    process.send_signal(signal.SIGTERM)
    started = time.monotonic()
    _, err = process.communicate(timeout=120)
    assert process.returncode == 143, (time.monotonic() - started, err[-3000:])
    assert err.strip() == (
        f"stopped by SIGTERM during iter 0 train phase; `teachloop resume {tmp_path / 't'}` continues from there "
        "(exit code 143)"
    )
    assert sorted(p.name for p in (tmp_path / "t/iter_0").iterdir()) == ["data", "eval", "feedback", "plan"]


# -- a full disk ------------------------------------------------------------------------------------
def private_mounts() -> list[str]:
    """The command prefix that runs a shell in a mount namespace of its own, where it may mount a
    small tmpfs (a full disk on demand): as root, or as a user with user namespaces."""
    prefix = ["unshare", "--mount"] + ([] if os.geteuid() == 0 else ["--map-root-user"])
    probe = subprocess.run([*prefix, "true"], check=False, capture_output=True, text=True)
    if probe.returncode != 0:
        pytest.skip(f"no private mount namespace here ({probe.stderr.strip()}): a full disk cannot be made")
    return prefix


# Inside the namespace: a run on a 3 MB disk (the checkpoint alone is 4 MB), the disk grown, the
# run resumed; then an export onto a 12 kB disk, the disk grown, the export again.
FULL_DISK_SCRIPT = """
set -u
mount -t tmpfs -o size=3m tmpfs "$DISK"
teachloop run --config "$OUT/small.yaml" --iterations 1 --budget 20 --epochs 1 --quiet --out "$DISK" --name r \
    2> "$OUT/run.err"; echo $? > "$OUT/run.rc"
find "$DISK" -name '.*tmp*' > "$OUT/run.left"; ls "$DISK/r/iter_0" > "$OUT/run.phases"
mount -o remount,size=64m "$DISK"
teachloop resume "$DISK/r" --quiet 2> "$OUT/resume.err"; echo $? > "$OUT/resume.rc"
cp "$DISK/r/metrics.jsonl" "$OUT/metrics.jsonl"
mount -t tmpfs -o size=12k tmpfs "$DISK2"
teachloop export "$DISK/r" --out "$DISK2/data" --format jsonl 2> "$OUT/export.err"; echo $? > "$OUT/export.rc"
ls -A "$DISK2" > "$OUT/export.left"
mount -o remount,size=8m "$DISK2"
teachloop export "$DISK/r" --out "$DISK2/data" --format jsonl > /dev/null 2> "$OUT/again.err"; echo $? > "$OUT/again.rc"
"""


def test_a_full_disk_is_one_line_with_its_path_and_nothing_half_written(tmp_path):
    """Before: a 54-line traceback (SafetensorError ... No space left on device) from the run, and
    'cannot write or read: No space left on device' without a path from the export."""
    prefix = private_mounts()
    (tmp_path / "small.yaml").write_text("environment_options: {eval_per_skill: 10, pool_per_skill: 10}\n")
    disk, disk2 = tmp_path / "disk", tmp_path / "disk2"
    disk.mkdir()
    disk2.mkdir()
    env = {**os.environ, "DISK": str(disk), "DISK2": str(disk2), "OUT": str(tmp_path)}
    script = [*prefix, "sh", "-c", FULL_DISK_SCRIPT]
    done = subprocess.run(script, check=False, env=env, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]

    def said(name: str) -> tuple[int, str]:
        return int((tmp_path / f"{name}.rc").read_text()), (tmp_path / f"{name}.err").read_text()

    code, err = said("run")
    assert code == 2 and len(err.strip().splitlines()) == 1, err[-3000:]
    assert err.startswith(f"error: no space left on the disk of {disk}/r/iter_0/train: free some space there, then ")
    assert f"`teachloop resume {disk}/r` redoes this phase" in err
    assert (tmp_path / "run.left").read_text() == ""  # nothing half-written
    assert (tmp_path / "run.phases").read_text().split() == ["data", "eval", "feedback", "plan"]
    code, err = said("resume")
    assert code == 0, err[-3000:]
    assert (tmp_path / "metrics.jsonl").read_text().count("\n") == 2

    code, err = said("export")
    assert code == 2 and len(err.strip().splitlines()) == 1, err[-3000:]
    assert err.startswith(f"error: no space left on the disk of {disk2}/data: free some space there, then export again")
    assert (tmp_path / "export.left").read_text() == ""  # nothing half-written
    code, err = said("again")
    assert code == 0, err[-3000:]

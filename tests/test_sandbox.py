"""The sandbox contains hostile programs and still passes a correct one, quickly."""

from __future__ import annotations

import os
import socket
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from teachloop.environments.sandbox import SandboxLimits, SandboxResult, run_python

LIMITS = SandboxLimits(wall_seconds=3, cpu_seconds=2, memory_mb=256, max_processes=16, max_file_kb=256)
REPO = Path(__file__).resolve().parents[1]
AS_ROOT = os.geteuid() == 0
root_only = pytest.mark.skipif(not AS_ROOT, reason="file isolation comes from dropping root to a fresh uid")


def run(source: str, **limits: object) -> SandboxResult:
    return run_python(source, limits=LIMITS.model_copy(update=limits))


def processes_of(uid: int) -> list[int]:
    """Live processes (zombies included) whose real uid is `uid`."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            status = (entry / "status").read_text()
        except OSError:
            continue
        uids = next(line.split()[1:] for line in status.splitlines() if line.startswith("Uid:"))
        if int(uids[0]) == uid:
            found.append(int(entry.name))
    return found


def processes_in_session(session: int) -> list[int]:
    """Live processes (zombies included) of a session (field 6 of /proc/<pid>/stat)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if int(fields[3]) == session:
            found.append(int(entry.name))
    return found


def assert_cleaned_up(result: SandboxResult) -> None:
    """Nothing the sandbox started outlives it: no process of its fresh uid (as root) and,
    as any user, none left in its session."""
    isolation = result.isolation
    assert isolation.session is not None
    assert processes_in_session(isolation.session) == [], "processes of the sandbox outlived it"
    if isolation.uid is not None and isolation.uid != 65534:
        assert processes_of(isolation.uid) == [], "processes of the sandbox's uid outlived it"


def test_a_correct_solution_passes_quickly() -> None:
    program = "def add(a, b):\n    return a + b\n"
    result = run_python(program, "assert add(2, 3) == 5\nprint('ok')\n", LIMITS)
    assert result.passed and result.reason == "ok" and result.returncode == 0
    assert result.stdout == "ok\n"
    assert result.seconds < 2


def test_a_failing_test_is_scored_as_failed() -> None:
    result = run_python("def add(a, b):\n    return a - b\n", "assert add(2, 3) == 5\n", LIMITS)
    assert not result.passed and result.reason == "failed" and result.returncode == 1
    assert "AssertionError" in result.stderr


def test_an_infinite_loop_hits_the_cpu_limit() -> None:
    started = time.monotonic()
    result = run("while True:\n    pass\n", wall_seconds=10, cpu_seconds=1)
    assert not result.passed and result.reason == "timeout"
    assert time.monotonic() - started < 6  # RLIMIT_CPU, not the 10 s wall clock, ended it


def test_a_sleeping_program_hits_the_wall_clock_limit() -> None:
    started = time.monotonic()
    result = run("import time\ntime.sleep(60)\n", wall_seconds=1)
    assert not result.passed and result.reason == "timeout" and result.returncode is None
    assert time.monotonic() - started < 4


def test_a_fork_bomb_is_contained_and_leaves_nothing_behind() -> None:
    bomb = "import os\nwhile True:\n    try:\n        os.fork()\n    except OSError:\n        pass\n"
    started = time.monotonic()
    result = run(bomb, wall_seconds=2)
    assert not result.passed and result.reason == "timeout"
    assert time.monotonic() - started < 5
    assert_cleaned_up(result)


def test_the_process_cap_binds() -> None:
    program = (
        "import os, time\n"
        "n = 0\n"
        "for _ in range(100):\n"
        "    try:\n"
        "        if os.fork() == 0:\n"
        "            time.sleep(30)\n"
        "            os._exit(0)\n"
        "    except OSError:\n"
        "        break\n"
        "    n += 1\n"
        "print(n)\n"
    )
    result = run(program, max_processes=8)
    assert result.passed  # it exits by itself; the sleeping children die with it
    assert int(result.stdout) < 8
    assert_cleaned_up(result)


def test_a_memory_hog_is_stopped_by_the_memory_cap() -> None:
    result = run("chunks = []\nwhile True:\n    chunks.append(bytearray(10**7))\n", memory_mb=128)
    assert not result.passed and result.reason == "memory"
    assert result.seconds < 3


def test_a_program_cannot_escape_by_starting_a_new_session() -> None:
    marker_dir = Path(tempfile.mkdtemp(prefix="sandbox-escape-"))
    marker_dir.chmod(0o777)  # writable by the sandbox user, so only death stops the write
    marker = marker_dir / "escaped"
    program = (
        "import os, time\n"
        "if os.fork() == 0:\n"
        "    os.setsid()\n"
        "    time.sleep(1)\n"
        f"    open({str(marker)!r}, 'w').write('alive')\n"
        "    os._exit(0)\n"
    )
    try:
        result = run(program)
        assert result.passed
        time.sleep(1.5)
        assert not marker.exists(), "a daemonised child outlived the sandbox"
        assert_cleaned_up(result)
    finally:
        marker.unlink(missing_ok=True)
        marker_dir.rmdir()


@root_only
@pytest.mark.parametrize("where", ["tmp_path", "repo"])
def test_writing_outside_the_sandbox_fails(tmp_path: Path, where: str) -> None:
    target = (tmp_path if where == "tmp_path" else REPO) / "written-by-sandbox.txt"
    result = run(f"open({str(target)!r}, 'w').write('pwned')\n")
    assert not result.passed and result.reason == "failed"
    assert "PermissionError" in result.stderr
    assert not target.exists()


@root_only
def test_the_program_runs_unprivileged_in_a_private_directory_that_is_removed(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("TEACHLOOP_FAKE_SECRET", "hunter2")
    program = (
        "import os, sys\n"
        "assert os.getuid() != 0 and os.geteuid() != 0 and os.getgroups() == []\n"
        "assert 'TEACHLOOP_FAKE_SECRET' not in os.environ, 'the environment leaked'\n"
        "assert sys.stdin.read() == ''\n"
        "open('scratch.txt', 'w').write('mine')\n"
        "open('/tmp/sandbox-leftover-' + str(os.getuid()), 'w').write('litter')\n"
        "print(os.getcwd())\n"
    )
    result = run(program)
    assert result.passed, result.stderr
    workdir = Path(result.stdout.strip())
    assert workdir.name.startswith("teachloop-sandbox-") and not workdir.exists()
    assert not Path(f"/tmp/sandbox-leftover-{result.isolation.uid}").exists()


def test_output_is_capped_and_truncated() -> None:
    result = run("while True:\n    print('x' * 1000)\n", max_file_kb=64, output_chars=500)
    assert not result.passed and result.reason == "output_limit"
    assert len(result.stdout) <= 500


@pytest.fixture
def local_server() -> Iterator[socket.socket]:
    server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    server.bind(("127.0.0.1", 0))
    server.listen(8)
    server.settimeout(0.5)
    yield server
    server.close()


@pytest.mark.parametrize("network", ["auto", "audit-hook"])
def test_no_network_connection_leaves_the_sandbox(local_server: socket.socket, network: str) -> None:
    port = local_server.getsockname()[1]
    program = f"import socket\nsocket.create_connection(('127.0.0.1', {port}), timeout=2).sendall(b'leak')\n"
    result = run(program, network=network)
    assert not result.passed and result.reason == "failed"
    with pytest.raises(TimeoutError):  # the server saw no connection at all
        local_server.accept()
    if network == "audit-hook":
        assert result.isolation.network == "audit-hook"


def test_the_local_server_is_reachable_without_the_sandbox(local_server: socket.socket) -> None:
    """Control for the test above: the same connection from here does arrive."""
    with socket.create_connection(local_server.getsockname(), timeout=2):
        connection, _ = local_server.accept()
        connection.close()


@root_only
def test_root_callers_get_network_and_pid_namespaces_and_a_fresh_uid() -> None:
    isolation = run("pass\n").isolation
    assert {"net", "pid"} <= set(isolation.namespaces)
    assert isolation.network == "netns"
    assert isolation.uid is not None and isolation.uid >= 1_000_000

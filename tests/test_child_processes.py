"""Processes started inside `die_with_this_process()` (how teachloop starts in-process vLLM,
whose engine processes vLLM spawns on a CPU) end when teachloop does, even by SIGKILL,
which runs no exit handler: they used to idle on, busy, holding the model's memory.

Checked here with a spawned child, the way vLLM starts its engine; by hand with a real
`teachloop run --teacher vllm:` killed after "teacher ready" (its EngineCore and worker
were gone within seconds)."""

import subprocess
import sys
import time
from pathlib import Path

from teachloop.inference.child_processes import descendants, start_time

PARENT = """
import multiprocessing, sys, time
from teachloop.inference.child_processes import die_with_this_process

def engine():
    time.sleep(600)

if __name__ == "__main__":
    with die_with_this_process():
        child = multiprocessing.get_context("spawn").Process(target=engine)
        child.start()
    print("ready", flush=True)
    time.sleep(600)
"""


def test_a_child_started_in_the_block_ends_when_its_parent_is_killed(tmp_path):
    script = tmp_path / "parent.py"
    script.write_text(PARENT)
    parent = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, text=True, cwd=tmp_path)
    children: list[int] = []
    try:
        assert parent.stdout is not None and parent.stdout.readline().strip() == "ready"
        children = descendants(parent.pid)  # the spawned child (and the watchdog, and spawn's resource tracker)
        assert len(children) >= 2
        parent.kill()
        parent.wait(timeout=10)
        deadline = time.time() + 30
        while any(start_time(pid) for pid in children) and time.time() < deadline:
            time.sleep(0.2)
        left = [Path(f"/proc/{pid}/cmdline").read_bytes()[:80] for pid in children if start_time(pid)]
        assert not left, f"outlived their killed parent: {left}"
    finally:
        parent.kill()
        for pid in children:
            if start_time(pid):
                subprocess.run(["kill", "-9", str(pid)], check=False)

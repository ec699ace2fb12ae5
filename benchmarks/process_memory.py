"""Peak resident memory of every process a command starts (issue 32: "the 1.5 B teacher run
peaks <= 6 GB in any process").

    python benchmarks/process_memory.py -- teachloop run --teacher vllm:<.gguf> --iterations 1 --budget 40

Runs the command, samples the resident set (RSS: what the kernel counts for an OOM kill,
mapped file pages included) of it and of each of its descendants every `--every` seconds,
and prints per process its peak, when it was reached and what the process is, then the
largest peak and the command's wall time. A peak that lasts less than one sampling interval
can be missed; `/usr/bin/time -v` gives the exact maximum of the command's own process.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time

import psutil


def describe(proc: psutil.Process) -> str:
    try:
        cmd = proc.cmdline()
        name = proc.name()
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return "?"
    text = " ".join(cmd) or name
    # vLLM renames its engine core and workers (setproctitle): the name tells them apart
    return f"{name}: {text[:90]}" if name and name not in text[:40] else text[:110]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--every", type=float, default=0.25, help="seconds between samples")
    parser.add_argument("command", nargs=argparse.REMAINDER, help="the command, after --")
    args = parser.parse_args()
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        parser.error("give the command to measure after --")
    start = time.perf_counter()
    child = subprocess.Popen(command)
    root = psutil.Process(child.pid)
    peaks: dict[int, tuple[int, float, str]] = {}
    while child.poll() is None:
        try:
            procs = [root, *root.children(recursive=True)]
        except psutil.NoSuchProcess:
            break
        now = time.perf_counter() - start
        for proc in procs:
            try:
                rss = proc.memory_info().rss
            except (psutil.NoSuchProcess, psutil.AccessDenied):
                continue
            if rss > peaks.get(proc.pid, (0, 0.0, ""))[0]:
                peaks[proc.pid] = (rss, now, describe(proc))
        time.sleep(args.every)
    wall = time.perf_counter() - start
    print(f"\n{'pid':>8} {'peak GB':>8} {'at s':>7}  process")
    for pid, (rss, at, what) in sorted(peaks.items(), key=lambda kv: -kv[1][0]):
        if rss >= 50e6:
            print(f"{pid:>8} {rss / 1e9:8.2f} {at:7.1f}  {what}")
    largest = max((rss for rss, _, _ in peaks.values()), default=0)
    print(f"largest peak {largest / 1e9:.2f} GB in one process; wall {wall:.0f} s; exit {child.returncode}")
    return child.returncode or 0


if __name__ == "__main__":
    sys.exit(main())

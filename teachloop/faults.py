"""Fault injection for the tests (ground floor): `TEACHLOOP_KILL_AT=<point>` makes the
process SIGKILL itself when it reaches that point, so a test can kill a run at an exact
place in any phase on a machine of any speed. Points: `<phase>@<iteration>` just before a
finished phase is published (`train@1`, `data@0`, `discovery@None`), `metrics` just before
the end of a run rewrites metrics.jsonl, `report` just before report.md is written."""

from __future__ import annotations

import os
import signal

KILL_AT = "TEACHLOOP_KILL_AT"


def kill_point(point: str) -> None:
    if os.environ.get(KILL_AT) == point:
        os.kill(os.getpid(), signal.SIGKILL)

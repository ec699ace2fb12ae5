"""Closed-loop runs: the loop, its run folder and artifacts, the checks before a run, tracking."""

"""Benchmarks: a bench file's cells as resumable runs, executed locally or on Ray, and the leaderboard."""

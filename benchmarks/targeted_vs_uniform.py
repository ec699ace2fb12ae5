"""Targeted (stat-syn) vs uniform data under the same budget, on the embedded default.

    python benchmarks/targeted_vs_uniform.py [--seeds 0 1 2] [--iterations 4] [--budget 200]

Runs both policies for every seed (each a normal, resumable run folder under --out;
rerunning the script reuses finished runs) and prints, per seed and on average, the
mean accuracy gain on the initially weak skills and the ratio targeted / uniform, then the
paired difference targeted - uniform with its 95 % bootstrap interval (seeds and eval items
resampled, the same items for both policies) and the verdict, as the bench leaderboard does.
The default budget is a third of `teachloop run`'s: with 600 examples per iteration both
policies saturate the weak skills by iteration 4 and the comparison says little.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from pathlib import Path

from teachloop.runs.config import RunConfig
from teachloop.runs.loop.runner import Loop

POLICIES = ("uniform", "stat-syn")


def run_one(out: Path, policy: str, seed: int, args: argparse.Namespace) -> tuple[list, float, Path]:
    name = f"{policy}-s{seed}"
    start = time.perf_counter()
    if (out / name / "run.json").exists():
        loop = Loop.resume(out / name, progress=False)
    else:
        config = RunConfig(name=name, out=out, policy=policy, seed=seed, iterations=args.iterations, budget=args.budget)
        loop = Loop.create(config, progress=False)
    records = loop.run()
    return records, time.perf_counter() - start, out / name


def compare(seeds: list[int], run: Callable[[str, int], tuple[list, float, Path]], label_width: int = 16) -> None:
    """Run both policies per seed (`run(policy, seed) -> (records, wall seconds, run folder)`)
    and print the gain on the skills weak at iteration 0, per seed and on average, with the
    ratio and the paired difference's interval."""
    from teachloop.runs.bench.stats import RunItems, paired_difference
    from teachloop.runs.reporting.report import mean_accuracy, weak_skills

    print(
        f"{'seed':>4}  {'weak skills':<{label_width}} {'uniform gain':>12} {'targeted gain':>13} {'ratio':>6}  "
        f"{'wall u/t (s)':>12}"
    )
    gains: dict[str, list[float]] = {p: [] for p in POLICIES}
    items: dict[str, dict[int, RunItems]] = {p: {} for p in POLICIES}
    for seed in seeds:
        results = {p: run(p, seed) for p in POLICIES}
        weak = weak_skills(results["uniform"][0])  # same start, same eval set: same weak skills for both
        row = {}
        for policy, (records, _, folder) in results.items():
            row[policy] = mean_accuracy(records[-1], weak) - mean_accuracy(records[0], weak)
            gains[policy].append(row[policy])
            items[policy][seed] = RunItems.load(folder, weak)
        ratio = row["stat-syn"] / row["uniform"] if row["uniform"] else float("inf")
        walls = f"{results['uniform'][1]:.0f}/{results['stat-syn'][1]:.0f}"
        print(
            f"{seed:>4}  {','.join(weak):<{label_width}} {row['uniform'] * 100:>+11.1f}p "
            f"{row['stat-syn'] * 100:>+12.1f}p {ratio:>6.2f}  {walls:>12}",
            flush=True,
        )
    mean_u, mean_t = statistics.mean(gains["uniform"]), statistics.mean(gains["stat-syn"])
    ratio = mean_t / mean_u if mean_u else float("inf")
    print(f"{'mean':>4}  {'':<{label_width}} {mean_u * 100:>+11.1f}p {mean_t * 100:>+12.1f}p {ratio:>6.2f}")
    diff = paired_difference(items["stat-syn"], items["uniform"], "weak_gain", "uniform", "targeted_vs_uniform")
    assert diff is not None  # the same seeds and eval items for both
    print(
        f"targeted - uniform on the weak skills: {diff.show(scale=100)} (95 % interval over {diff.seeds} seed(s) and "
        f"the eval items, paired{'; one seed: items only' if diff.seeds == 1 else ''})"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--iterations", type=int, default=4)
    parser.add_argument("--budget", type=int, default=200)
    parser.add_argument("--out", type=Path, default=Path("bench-runs/targeted_vs_uniform"))
    args = parser.parse_args()

    print(f"iterations={args.iterations} budget={args.budget}/iteration seeds={args.seeds}")
    compare(args.seeds, lambda policy, seed: run_one(args.out, policy, seed, args))


if __name__ == "__main__":
    main()

"""Targeted gain against forgetting: how much seed-pool replay buys back, at what cost.

    python benchmarks/replay.py [--replays 0 150 600] [--seeds 0 1 2] [--policies stat-syn uniform]

Every (policy, replay, seed) is an ordinary run on the embedded default (`replay`: seed-pool
examples mixed into every training set; the budget of new examples stays the same), each a
resumable run folder under --out. Prints per (policy, replay), with the bench's 95 %
intervals (seeds and eval items resampled, stats.py): the gain on the skills weak at
iteration 0, the mean change on the other skills, the worst change of any skill, the skills
forgotten (change interval below 0), the final accuracy, and training seconds per run.
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

from teachloop.runs.config import RunConfig
from teachloop.runs.loop.runner import Loop


def run_one(config: RunConfig) -> Path:
    root = config.out / str(config.name)
    loop = Loop.resume(root, progress=False) if (root / "run.json").exists() else Loop.create(config, progress=False)
    loop.run()
    return root


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--replays", type=int, nargs="+", default=[0, 150, 600])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--policies", nargs="+", default=["stat-syn", "uniform"])
    parser.add_argument("--iterations", type=int, default=4)
    parser.add_argument("--budget", type=int, default=200)
    parser.add_argument("--out", type=Path, default=Path("bench-runs/replay"))
    args = parser.parse_args()

    from teachloop.runs.bench.stats import RunItems, forgetting, interval
    from teachloop.runs.reporting.report import load_metrics, weak_skills

    begin = time.perf_counter()
    print("| policy | replay | weak-skill gain (points) | other skills (points) | worst skill | forgotten | "
          "final accuracy | train s / run |")  # fmt: skip
    print("|" + "---|" * 8)
    for policy in args.policies:
        for replay in args.replays:
            runs, train = [], []
            for seed in args.seeds:
                config = RunConfig(
                    name=f"{policy}-r{replay}-s{seed}", out=args.out, policy=policy, seed=seed,
                    iterations=args.iterations, budget=args.budget, replay=replay,
                )  # fmt: skip
                root = run_one(config)
                records = load_metrics(root)
                runs.append(RunItems.load(root, weak_skills(records)))
                train.append(sum(r.phase_seconds.get("train", 0.0) for r in records))
            key = (policy, f"r{replay}")
            gain, final = interval(runs, "weak_gain", *key), interval(runs, "final_accuracy", *key)
            lost = forgetting(runs, *key)
            other = lost.untargeted
            others = "–" if other is None else f"{other.estimate * 100:+.1f} [{other.lo * 100:+.1f}, {other.hi * 100:+.1f}]"
            worst = "–" if lost.worst_change is None else f"{lost.worst_skill} {lost.worst_change * 100:+.1f}"
            print(
                f"| {policy} | {replay} | {gain.estimate * 100:+.1f} [{gain.lo * 100:+.1f}, {gain.hi * 100:+.1f}] | "
                f"{others} | {worst} | {', '.join(lost.forgotten) or 'none'} | "
                f"{final.estimate:.3f} [{final.lo:.3f}, {final.hi:.3f}] | {statistics.mean(train):.0f} |",
                flush=True,
            )
    print(f"\n{len(args.policies) * len(args.replays) * len(args.seeds)} runs; {args.iterations} iterations x "
          f"{args.budget} new examples; seeds {args.seeds}; total {time.perf_counter() - begin:.0f}s")  # fmt: skip


if __name__ == "__main__":
    main()

"""Targeted (stat-syn) vs uniform data under the same budget, on the embedded default:
which one hands back the better student, and what each forgot.

    python benchmarks/targeted_vs_uniform.py [--seeds 0 1 2] [--iterations 4] [--budget 200]

Runs both policies for every seed (each a normal, resumable run folder under --out;
rerunning the script reuses finished runs) and prints per policy the final overall accuracy,
final - start, final - uniform (paired: the same seeds and eval items), the gain on the
initially weak skills and the skills forgotten, each with its 95 % bootstrap interval.
The default budget is a third of `teachloop run`'s: with 600 examples per iteration both
policies saturate the weak skills by iteration 4 and the comparison says little.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from pathlib import Path

from teachloop.runs.config import RunConfig
from teachloop.runs.loop.runner import Loop

POLICIES = ("uniform", "stat-syn")


def model_spec(name: str) -> str:
    """A packaged model's name as `packaged:<name>`; a folder, .gguf or spec as given."""
    local = "/" in name or name.endswith(".gguf") or ":" in name
    return name if local else f"packaged:{name}"


def run_or_resume(out: Path, policy: str, seed: int, config: Callable[[str], RunConfig]) -> tuple[list, float, Path]:
    """The run `<policy>-s<seed>` under `out`: resumed (finished runs are reused) or created from
    `config(name)`; returns its records, the wall seconds this call took and its folder."""
    name = f"{policy}-s{seed}"
    start = time.perf_counter()
    if (out / name / "run.json").exists():
        loop = Loop.resume(out / name, progress=False)
    else:
        loop = Loop.create(config(name), progress=False)
    records = loop.run()
    return records, time.perf_counter() - start, out / name


def run_one(out: Path, policy: str, seed: int, args: argparse.Namespace) -> tuple[list, float, Path]:
    return run_or_resume(
        out,
        policy,
        seed,
        lambda name: RunConfig(
            name=name, out=out, policy=policy, seed=seed, iterations=args.iterations, budget=args.budget
        ),
    )


def compare(
    seeds: list[int],
    run: Callable[[str, int], tuple[list, float, Path]],
    label_width: int = 16,
    policies: tuple[str, ...] = POLICIES,
    baseline: str = "uniform",
) -> None:
    """Run every policy per seed (`run(policy, seed) -> (records, wall seconds, run folder)`)
    and print, per policy, what a user gets first: the final overall accuracy, final - start
    and final - `baseline` (paired over seeds and eval items), then the gain on the skills weak
    at iteration 0 and the skills forgotten (change interval wholly below 0), all with 95 %
    bootstrap intervals; per seed below."""
    from teachloop.runs.bench.stats import RunItems, forgetting, interval, paired_difference
    from teachloop.runs.reporting.report import mean_accuracy, weak_skills

    print(
        f"{'seed':>4}  {'policy':<10} {'weak skills':<{label_width}} {'start':>6} {'final':>6} {'weak gain':>9} {'wall s':>7}"
    )
    items: dict[str, dict[int, RunItems]] = {p: {} for p in policies}
    for seed in seeds:
        results = {p: run(p, seed) for p in policies}
        weak = weak_skills(results[policies[0]][0])  # same start, same eval set: same weak skills for all
        for policy, (records, wall, folder) in results.items():
            items[policy][seed] = RunItems.load(folder, weak)
            gain = mean_accuracy(records[-1], weak) - mean_accuracy(records[0], weak)
            print(
                f"{seed:>4}  {policy:<10} {','.join(weak):<{label_width}} {records[0].accuracy:>6.3f} "
                f"{records[-1].accuracy:>6.3f} {gain * 100:>+8.1f}p {wall:>7.0f}",
                flush=True,
            )

    def show(value) -> str:
        return f"{value.estimate * 100:+.1f} [{value.lo * 100:+.1f}, {value.hi * 100:+.1f}]"

    print()
    print(
        f"{'policy':<10} {'final accuracy':>22} {'final - start (points)':>24} {f'final - {baseline}':>26} "
        f"{'weak-skill gain':>22}  forgotten"
    )
    for policy in policies:
        runs = [items[policy][s] for s in seeds]
        final = interval(runs, "final_accuracy", policy)
        gain = interval(runs, "final_gain", policy)
        weak = interval(runs, "weak_gain", policy)
        versus = "–"
        if policy != baseline and baseline in items:
            diff = paired_difference(items[policy], items[baseline], "final_accuracy", baseline, policy)
            versus = diff.show(scale=100) if diff else "–"
        lost = forgetting(runs, policy)
        print(
            f"{policy:<10} {final.estimate:.3f} [{final.lo:.3f}, {final.hi:.3f}] {show(gain):>24} {versus:>26} "
            f"{show(weak):>22}  {', '.join(lost.forgotten) or 'nothing'}",
            flush=True,
        )
    print(f"(95 % bootstrap intervals over {len(seeds)} seed(s) and the eval items; paired where a difference)")


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

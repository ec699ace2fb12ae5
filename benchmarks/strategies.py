"""Which data-generation strategy wins, by teacher budget and seed-set size.

    python benchmarks/strategies.py [--quick] [--seeds 0 1] [--pools 4 40] [--budgets 16 64]

The three strategies of "Balancing Cost and Effectiveness of Synthetic Data Generation
Strategies" as the llm engine's `strategy` option, one real teacher for all
(Qwen2.5-Coder-0.5B-Instruct, in-process vLLM, started once): `new_question` writes new items,
`rephrase` rewords seed-pool questions and keeps their answers, `answer_augmentation` answers
seed-pool questions anew. Every item is verified by skillworld's checker (one re-answer),
de-duplicated and decontaminated. The grid: seed-set size (skillworld's `pool_per_skill`,
8 skills) x budget (new examples asked per iteration) x strategy, stat-syn on the embedded
student, one iteration. Prints per cell the yield, teacher calls and tokens, the weak-skill
gain (points, mean over seeds, with the bench's 95 % interval over seeds and eval items), the
paired difference against new_question with its verdict, and the gain per 1000 teacher
tokens, then the winner of each (seed set, budget) by gain. Every run is a run folder under --out; a rerun reuses them.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

STRATEGIES = ("new_question", "rephrase", "answer_augmentation")
QWEN = "qwen2.5-coder-0.5b-instruct"


def calls(run: Path) -> int:
    ledger = run / "teacher_ledger.json"
    return json.loads(ledger.read_text()).get("calls", 0) if ledger.is_file() else 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--pools", type=int, nargs="+", default=[4, 40], help="seed-pool items per skill")
    parser.add_argument("--budgets", type=int, nargs="+", default=[16, 64], help="new examples per iteration")
    parser.add_argument("--quick", action="store_true", help="one pool size and budget: a smoke run")
    parser.add_argument("--out", type=Path, default=Path("bench-runs/strategies"))
    args = parser.parse_args()
    if args.quick:
        args.pools, args.budgets, args.seeds = args.pools[:1], args.budgets[:1], args.seeds[:1]

    from real_teacher import MIN_YIELD, run_one

    from teachloop.runs.bench.stats import RunItems, interval, paired_difference
    from teachloop.runs.reporting.report import load_metrics, weak_skills

    from teachloop.agents.teacher import TeacherConfig
    from teachloop.agents.teacher.backends.vllm_local import VLLMBackend
    from teachloop.runs.config import RunConfig
    from teachloop.students.checkpoints import resolve_checkpoint
    from teachloop.students.hf.student import quiet_hf_libraries
    from teachloop.students.packaged import locate

    quiet_hf_libraries()
    begin = time.perf_counter()
    qwen = str(locate(QWEN))
    cfg = TeacherConfig(backend="vllm", model=qwen)
    backends = {f"vllm:{qwen}": VLLMBackend(cfg.options, teacher=cfg, model=resolve_checkpoint(qwen))}
    print(f"teacher engine {QWEN} started in {time.perf_counter() - begin:.0f}s", flush=True)

    cells: dict[tuple[int, int, str], list[dict]] = {}
    for pool in args.pools:
        for budget in args.budgets:
            for strategy in STRATEGIES:
                for seed in args.seeds:
                    name = f"pool{pool}-b{budget}-{strategy}-s{seed}"
                    config = RunConfig(
                        name=name, out=args.out, policy="stat-syn", seed=seed, iterations=1, budget=budget,
                        engine="llm", engine_options={"strategy": strategy}, min_yield=MIN_YIELD,
                        teacher=TeacherConfig(backend="vllm", model=qwen, seed=seed),
                        environment_options={"pool_per_skill": pool},
                    )  # fmt: skip
                    result = run_one(config, backends)
                    result["calls"] = calls(args.out / name)
                    if "stopped" not in result:
                        records = load_metrics(args.out / name)
                        result["items"] = (seed, RunItems.load(args.out / name, weak_skills(records)))
                    cells.setdefault((pool, budget, strategy), []).append(result)
                    shown = result.get("stopped") or (
                        f"gain {result['gain']:+.1f}, yield {result['yield']:.0%}, {result['calls']} calls, "
                        f"{result['tokens']} tokens"
                    )
                    print(f"  {name}: {shown}, {result['wall']:.0f}s", flush=True)

    print()
    print(f"stat-syn, embedded student, 1 iteration, seeds {args.seeds}; teacher {QWEN} (in-process vLLM)")
    print("| seed items (per skill) | budget | budget / seed items | strategy | yield | teacher calls | "
          "teacher tokens | weak-skill gain | vs new_question | gain / 1k tokens |")  # fmt: skip
    print("|" + "---|" * 10)
    winners = []
    for pool in args.pools:
        for budget in args.budgets:
            best = None
            for strategy in STRATEGIES:
                done = [r for r in cells[(pool, budget, strategy)] if "stopped" not in r]
                if not done:
                    print(f"| {8 * pool} ({pool}) | {budget} | {budget / (8 * pool):.2f} | {strategy} | stopped | | | | | |")
                    continue
                gain = statistics.mean(r["gain"] for r in done)
                tokens = statistics.mean(r["tokens"] for r in done)
                yields = statistics.mean(r["yield"] or 0 for r in done)
                per_k = gain / (tokens / 1000) if tokens else float("nan")
                key = (f"pool{pool}", f"b{budget}", strategy)
                runs = dict(r["items"] for r in done)
                found = interval(list(runs.values()), "weak_gain", *key)
                shown = f"{found.estimate * 100:+.1f} [{found.lo * 100:+.1f}, {found.hi * 100:+.1f}]"
                base = dict(r["items"] for r in cells[(pool, budget, "new_question")] if "items" in r)
                diff = paired_difference(runs, base, "weak_gain", "new_question", *key) if strategy != STRATEGIES[0] else None
                versus = "(baseline)" if strategy == STRATEGIES[0] else "–" if diff is None else diff.show(scale=100)
                print(
                    f"| {8 * pool} ({pool}) | {budget} | {budget / (8 * pool):.2f} | {strategy} | {yields:.0%} | "
                    f"{statistics.mean(r['calls'] for r in done):.0f} | {tokens:.0f} | {shown} | {versus} | {per_k:+.2f} |"
                )
                if best is None or gain > best[1]:
                    best = (strategy, gain)
            if best is not None:
                winners.append(f"seed items {8 * pool}, budget {budget}: {best[0]} ({best[1]:+.1f})")
    print()
    print("winner by weak-skill gain: " + "; ".join(winners))
    print(f"total {time.perf_counter() - begin:.0f}s")


if __name__ == "__main__":
    main()

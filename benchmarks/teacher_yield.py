"""How much of what a real teacher writes is usable, and what the engine's parts add.

    python benchmarks/teacher_yield.py [--teachers qwen2.5-coder-0.5b-instruct smollm2-135m-instruct] [--per-skill 10]

For each packaged teacher (in-process vLLM, one engine each, started once) it runs
`teachloop teacher check` on skillworld four ways and prints the kept share per setting:

- forms off, no re-answer: the item is free text (skillworld seen without `item_form`), as
  the engine wrote before the environment declared its forms;
- forms on, no re-answer: the reply schema carries skillworld's regexes (`pattern`);
- forms on, one re-answer (the default): an item the checker rejects is asked again as a
  few-shot chat of the references, and kept if that answer is right;
- forms on, three sampled re-answers.

Every setting writes the same requests (8 skills x --per-skill, stat-syn's instructions, 3
references each, verified by skillworld's checker, de-duplicated, decontaminated).

Open tasks, with the first teacher only (their checkers only check the form, so the items are
verified by consistency: the written answer and the re-answers vote, two must agree):
- jsonl: examples/hierarchy (arithmetic word problems, numeric scorer), with and without its
  number form for answers;
- math: GSM8K-style word problems built here (gsm8k style, `#### <answer>`), one and three
  re-answers.
"""

from __future__ import annotations

import argparse
import json
import random
import tempfile
import time
from pathlib import Path
from typing import Any

from teachloop.environments.skillworld import SkillWorld

SETTINGS = (
    ("forms off", False, 0),
    ("forms on", True, 0),
    ("forms + 1 re-answer", True, 1),
    ("forms + 3 re-answers", True, 3),
)


class WithoutForms:
    """skillworld as an environment that declares no item forms: everything else forwarded."""

    def __init__(self, inner: SkillWorld) -> None:
        self.inner = inner
        self.name = inner.name
        self.skills = inner.skills

    def __getattr__(self, name: str) -> Any:
        if name == "item_form":
            raise AttributeError(name)
        return getattr(self.inner, name)


def lost_by_reason(report: Any) -> dict[str, int]:
    """Items lost over every skill, by the reason's kind (verification, duplicate, ...)."""
    lost: dict[str, int] = {}
    for skill in report.skills:
        for reason, n in skill.lost.items():
            kind = reason.split(":")[0]
            lost[kind] = lost.get(kind, 0) + n
    return lost


def word_problems(path: Path, n: int = 60) -> Path:
    """GSM8K-style rows: two-step arithmetic with a worked answer ending in `#### <answer>`."""
    rng = random.Random(0)
    rows = []
    for _ in range(n):
        a, b, c = rng.randint(2, 40), rng.randint(2, 40), rng.randint(2, 9)
        rows.append({
            "question": f"Mia has {a} stickers. She buys {b} more and then gives {c} to a friend. How many stickers does she have now?",
            "answer": f"She has {a} + {b} = {a + b}, then {a + b} - {c} = {a + b - c}.\n#### {a + b - c}",
        })  # fmt: skip
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def open_tasks(folder: Path) -> list[tuple[str, dict[str, Any], str, int]]:
    """(label, environment options, verify, answer_samples) for the open tasks."""
    hierarchy = Path(__file__).parents[1] / "examples" / "hierarchy"
    jsonl = {
        "environment": "jsonl",
        "environment_options": {
            "path": str(hierarchy / "data.jsonl"), "skills_field": "concept",
            "skill_tree": str(hierarchy / "skills.yaml"), "scorer": "numeric",
        },
    }  # fmt: skip
    math = {"environment": "math", "environment_options": {"train_file": str(word_problems(folder / "gsm.jsonl"))}}
    no_form = {**jsonl, "environment_options": {**jsonl["environment_options"], "answer_form": ".+"}}
    return [
        ("jsonl, number form", jsonl, "consistency", 1),
        ("jsonl, any answer", no_form, "consistency", 1),
        ("math, 1 re-answer", math, "consistency", 1),
        ("math, 3 re-answers", math, "consistency", 3),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--teachers", nargs="+", default=["qwen2.5-coder-0.5b-instruct", "smollm2-135m-instruct"])
    parser.add_argument("--per-skill", type=int, default=10)
    parser.add_argument("--no-open-tasks", action="store_true", help="skillworld only")
    args = parser.parse_args()

    from teachloop.agents.teacher import TeacherConfig
    from teachloop.agents.teacher.backends.vllm_local import VLLMBackend
    from teachloop.runs.config import RunConfig
    from teachloop.runs.loop.teacher_check import check_teacher
    from teachloop.students.checkpoints import resolve_checkpoint
    from teachloop.students.packaged import locate

    env = SkillWorld()
    rows = []
    for name in args.teachers:
        model = str(locate(name))
        start = time.perf_counter()
        teacher_cfg = TeacherConfig(backend="vllm", model=model)
        backend = VLLMBackend(teacher_cfg.options, teacher=teacher_cfg, model=resolve_checkpoint(model))
        print(f"{name}: engine started in {time.perf_counter() - start:.0f}s", flush=True)
        for label, forms, samples in SETTINGS:
            config = RunConfig(teacher=TeacherConfig(backend="vllm", model=model), answer_samples=samples)
            report = check_teacher(config, env if forms else WithoutForms(env), args.per_skill, backend=backend)
            per_skill = " ".join(f"{s.skill}:{s.kept}" for s in report.skills)
            lost = lost_by_reason(report)
            rows.append(
                (name, label, report.kept, report.asked, report.calls, report.generate_seconds, per_skill, lost)
            )
            print(f"  {label:<22} kept {report.kept:>3}/{report.asked} ({report.kept / report.asked:.0%}), "
                  f"{report.calls} calls, {report.generate_seconds:.0f}s; {per_skill}; lost {lost}", flush=True)  # fmt: skip
        if name == args.teachers[0] and not args.no_open_tasks:
            from teachloop.runs.loop.assemble import assemble_run

            for label, task, verify, samples in open_tasks(Path(tempfile.mkdtemp())):
                config = RunConfig(
                    teacher=TeacherConfig(backend="vllm", model=model), verify=verify, answer_samples=samples, **task
                )
                task_env = assemble_run(config, models=False).env
                report = check_teacher(config, task_env, args.per_skill, backend=backend)
                lost = lost_by_reason(report)
                rows.append((name, label, report.kept, report.asked, report.calls, report.generate_seconds, "", lost))
                print(f"  {label:<22} kept {report.kept:>3}/{report.asked} ({report.kept / report.asked:.0%}), "
                      f"{report.calls} calls, {report.generate_seconds:.0f}s; lost {lost}", flush=True)  # fmt: skip
                for skill in report.skills:
                    for sample in skill.samples[:1]:
                        print(f"    lost ({skill.skill}): {sample}", flush=True)
        backend.llm.llm_engine.engine_core.shutdown()
    print("\n| teacher | setting | kept | yield | calls | seconds | lost by reason |")
    print("|---|---|---|---|---|---|---|")
    for name, label, kept, asked, calls, seconds, _, lost in rows:
        reasons = ", ".join(f"{k} {v}" for k, v in sorted(lost.items(), key=lambda kv: -kv[1]))
        print(f"| {name} | {label} | {kept}/{asked} | {kept / asked:.0%} | {calls} | {seconds:.0f} | {reasons} |")


if __name__ == "__main__":
    main()

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
"""

from __future__ import annotations

import argparse
import time
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--teachers", nargs="+", default=["qwen2.5-coder-0.5b-instruct", "smollm2-135m-instruct"])
    parser.add_argument("--per-skill", type=int, default=10)
    args = parser.parse_args()

    from teachloop.agents.backends.vllm_local import VLLMBackend
    from teachloop.agents.llm import TeacherConfig
    from teachloop.runs.config import RunConfig
    from teachloop.runs.teacher_check import check_teacher
    from teachloop.students.checkpoints import resolve_checkpoint
    from teachloop.students.packaged import locate

    env = SkillWorld()
    rows = []
    for name in args.teachers:
        model = str(locate(name))
        start = time.perf_counter()
        backend = VLLMBackend(TeacherConfig(backend="vllm", model=model), resolve_checkpoint(model))
        print(f"{name}: engine started in {time.perf_counter() - start:.0f}s", flush=True)
        for label, forms, samples in SETTINGS:
            config = RunConfig(teacher=TeacherConfig(backend="vllm", model=model), answer_samples=samples)
            report = check_teacher(config, env if forms else WithoutForms(env), args.per_skill, backend=backend)
            per_skill = " ".join(f"{s.skill}:{s.kept}" for s in report.skills)
            lost: dict[str, int] = {}
            for skill in report.skills:
                for reason, n in skill.lost.items():
                    key = reason.split(":")[0]
                    lost[key] = lost.get(key, 0) + n
            rows.append(
                (name, label, report.kept, report.asked, report.calls, report.generate_seconds, per_skill, lost)
            )
            print(f"  {label:<22} kept {report.kept:>3}/{report.asked} ({report.kept / report.asked:.0%}), "
                  f"{report.calls} calls, {report.generate_seconds:.0f}s; {per_skill}; lost {lost}", flush=True)  # fmt: skip
        backend.llm.llm_engine.engine_core.shutdown()
    print("\n| teacher | setting | kept | yield | calls | seconds | lost by reason |")
    print("|---|---|---|---|---|---|---|")
    for name, label, kept, asked, calls, seconds, _, lost in rows:
        reasons = ", ".join(f"{k} {v}" for k, v in sorted(lost.items(), key=lambda kv: -kv[1]))
        print(f"| {name} | {label} | {kept}/{asked} | {kept / asked:.0%} | {calls} | {seconds:.0f} | {reasons} |")


if __name__ == "__main__":
    main()

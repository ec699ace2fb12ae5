"""`teachloop teacher check` and `teachloop skills discover`: what the teacher writes."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console

from teachloop.cli.output import console
from teachloop.errors import ConfigError
from teachloop.runs.flags import key_values

skills_app = typer.Typer(help="Skill trees: discover them with the teacher.", no_args_is_help=True)
teacher_app = typer.Typer(help="The LLM teacher: check what it writes before a run pays for it.", no_args_is_help=True)


@teacher_app.command("check")
def teacher_check(
    teacher: Annotated[str, typer.Option(help="'vllm:<folder or .gguf>', 'openai:<model>' or '<backend>:<model>'.")],
    config: Annotated[
        Path | None, typer.Option("--config", "-c", help="YAML run config (teacher settings, verify, environment).")
    ] = None,
    environment: Annotated[str | None, typer.Option("--environment", "--env", help="Environment name.")] = None,
    env_option: Annotated[list[str] | None, typer.Option(help="Environment option KEY=VALUE (repeatable).")] = None,
    per_skill: Annotated[int, typer.Option(min=1, help="Items the teacher writes per leaf skill.")] = 5,
    teacher_base_url: Annotated[str | None, typer.Option(help="OpenAI-compatible base URL.")] = None,
    verify: Annotated[str | None, typer.Option(help="auto | checker | consistency | none.")] = None,
    answer_samples: Annotated[int | None, typer.Option(help="The teacher's re-answers per item [default: 1].")] = None,
    seed: Annotated[int | None, typer.Option(help="Seed of the requests and the teacher's samples.")] = None,
    cache: Annotated[
        Path | None, typer.Option(help="Teacher reply cache folder (a rerun pays nothing) [default: none].")
    ] = None,
    json_out: Annotated[Path | None, typer.Option("--json", help="Also write the counts as JSON here.")] = None,
) -> None:
    """Have a teacher write PER_SKILL items of every skill of an environment, as the default
    policy asks for them, verified as a run verifies them, and print the yield per skill with
    the reason for every item lost (and a few of them): a weak teacher shows wrong answers,
    a bad prompt shows wrong forms."""
    from teachloop.agents.teacher import parse_teacher_spec
    from teachloop.runs.config import load_config
    from teachloop.runs.loop.assemble import assemble_run
    from teachloop.runs.loop.teacher_check import check_teacher, report_lines, rich_table

    backend, model = parse_teacher_spec(teacher)
    overrides: dict[str, Any] = {
        "environment": environment,
        "teacher.backend": backend,
        "teacher.model": model,
        "teacher.options.base_url": teacher_base_url,
        "verify": verify,
        "answer_samples": answer_samples,
        "seed": seed,
    }
    for key, value in key_values(env_option or []).items():
        overrides[f"environment_options.{key}"] = value
    cfg = load_config(config, overrides)
    report = check_teacher(cfg, assemble_run(cfg, models=False).env, per_skill, cache=cache)
    Console(width=max(console.width, 120)).print(rich_table(report))
    for line in report_lines(report):
        console.print(line, highlight=False, soft_wrap=True)
    if json_out is not None:
        from teachloop.io import atomic_write_text

        atomic_write_text(json_out, report.model_dump_json(indent=2))


@skills_app.command("discover")
def skills_discover(
    teacher: Annotated[str, typer.Option(help="'vllm:<path-or-id>' or 'openai:<model>'.")],
    out: Annotated[
        Path, typer.Option(help="Where to write the skill tree (.yaml, .yml or .json); labels go beside it.")
    ],
    environment: Annotated[str, typer.Option("--environment", "--env", help="Environment name.")] = "skillworld",
    env_option: Annotated[list[str] | None, typer.Option(help="Environment option KEY=VALUE (repeatable).")] = None,
    teacher_base_url: Annotated[str | None, typer.Option(help="OpenAI-compatible base URL.")] = None,
    sample: Annotated[int, typer.Option(help="Training examples the teacher reads to propose skills.")] = 20,
    max_skills: Annotated[int, typer.Option(help="At most this many skills.")] = 12,
    cache: Annotated[Path, typer.Option(help="Teacher reply cache (reruns pay nothing).")] = Path(".teachloop-cache"),
    seed: Annotated[int, typer.Option(help="Seed for the sample.")] = 0,
) -> None:
    """Have the teacher propose a skill tree for an environment and label every example with it.

    Writes OUT, a skill-tree file (name, parent, description per skill; edit it freely), and
    OUT's stem + '.labels.jsonl', one {"prompt": <question>, "skills": [...]} line per example.
    The jsonl and math environments read them with --env-option skill_tree=OUT
    --env-option labels_file=<labels>.
    """
    from teachloop.agents.teacher import TeacherConfig, TeacherLLM
    from teachloop.environments import get_environment
    from teachloop.environments.rows import Template
    from teachloop.skills.discovery import discover, save_discovered
    from teachloop.skills.tree_file import SUFFIXES
    from teachloop.students.checkpoints import resolve_checkpoint

    if out.suffix.lower() not in SUFFIXES:
        raise ConfigError(f"--out {out}: the skill tree is written as .yaml, .yml or .json")
    env = get_environment(environment, **key_values(env_option or []))
    cfg = TeacherConfig.from_spec(teacher, base_url=teacher_base_url)
    client = TeacherLLM(cfg, cache_dir=cache, resolve_model=resolve_checkpoint)
    examples = [*env.train_pool(), *env.eval_set()]
    found = discover(client, env.train_pool(), env.eval_set(), sample_size=sample, max_skills=max_skills, seed=seed)
    template = getattr(env, "template", None)  # file-backed environments: label the question, not the prompt
    question = template.unfill if isinstance(template, Template) else str.strip
    labels = save_discovered(found, examples, out, question)
    console.print(found.tree.render())
    console.print(f"{len(found.labels)} examples labelled; teacher: {client.ledger.model_dump(exclude_none=True)}")
    console.print(f"wrote {out} and {labels}", soft_wrap=True)
    console.print(f"use them with: --env-option skill_tree={out} --env-option labels_file={labels}", soft_wrap=True)

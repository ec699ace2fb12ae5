"""`teachloop run`'s options: one per flag of the run config (`teachloop.runs.flags`), dotted
for nested settings."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer

from teachloop.cli.output import VERBOSE, VERBOSE_HELP


def _run_flags() -> list[Any]:
    from teachloop.runs.config import RunConfig
    from teachloop.runs.flags import flags_of

    # --teacher <backend>:<model> sets these two
    return flags_of(RunConfig, skip=frozenset({"teacher.backend", "teacher.model"}))


RUN_FLAGS = _run_flags()


def run_command(body: Callable[..., None]) -> Callable[..., None]:
    """`body` (the run command's) with one typer option per flag of the run config, and --config,
    --teacher, --quiet, --verbose."""

    def option(annotation: Any, *names: str, help: str, metavar: str | None = None) -> Any:
        return Annotated[annotation, typer.Option(*names, help=help, metavar=metavar, show_default=False)]

    keyword = inspect.Parameter.KEYWORD_ONLY
    params = [
        inspect.Parameter(
            "config", keyword, default=None,
            annotation=option(Path | None, "--config", "-c", help="YAML run config; flags override it."),
        ),
        inspect.Parameter(
            "teacher", keyword, default=None,
            annotation=option(
                str | None, "--teacher",
                help="LLM teacher <backend>:<model>: 'vllm:<folder, .gguf or hub id>' (in-process vLLM), "
                "'openai:<model>' (any OpenAI-compatible endpoint), 'raydata:<model>' (that endpoint through Ray "
                "Data LLM), 'raydata-vllm:<folder, .gguf or hub id>' (vLLM engines run by Ray Data) or "
                "'<plug-in backend>:<model>' (`teachloop backends list`).",
            ),
        ),
    ]  # fmt: skip
    for flag in RUN_FLAGS:
        if flag.kind == "switch":
            names = tuple(f"{name}/--no-{name[2:]}" for name in flag.names)
            annotation = option(bool | None, *names, help=flag.help)
        elif flag.kind == "mapping":
            annotation = option(list[str] | None, *flag.names, help=flag.help, metavar=flag.metavar)
        else:
            annotation = option(flag.type | None, *flag.names, help=flag.help, metavar=flag.metavar)
        params.append(inspect.Parameter(flag.param, keyword, default=None, annotation=annotation))
    params.append(
        inspect.Parameter(
            "quiet", keyword, default=False, annotation=option(bool, "--quiet", "-q", help="No progress output.")
        )
    )
    params.append(
        inspect.Parameter("verbose", keyword, default=False, annotation=option(bool, *VERBOSE, help=VERBOSE_HELP))
    )

    def run(**values: Any) -> None:
        body(**values)

    run.__doc__ = body.__doc__
    run.__signature__ = inspect.Signature(params, return_annotation=None)  # type: ignore[attr-defined]
    run.__annotations__ = {p.name: p.annotation for p in params} | {"return": None}
    return run

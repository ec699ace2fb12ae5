"""The Engine protocol: turns a DataPlan into verified, de-duplicated, decontaminated data."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar, Protocol, runtime_checkable

from pydantic import BaseModel

from teachloop.environments.base import Environment
from teachloop.errors import ConfigError
from teachloop.registry import Component, Contract, Hook
from teachloop.types import DataPlan, GenerationContext, GenerationResult

if TYPE_CHECKING:
    from teachloop.agents.teacher import TeacherLLM


@runtime_checkable
class Engine(Protocol):
    """Serves a DataPlan's generation requests for an environment. What an engine needs of
    the environment is the environment's declared capabilities (`generate`, `check`,
    `make_example`), never found by trial at run time."""

    name: str

    def generate(self, plan: DataPlan, env: Environment, ctx: GenerationContext) -> GenerationResult: ...


ENGINE_CONTRACT = Contract(
    kind="engine",
    required=(
        Hook("name", "the engine's name", value_type=str),
        Hook("generate", "serves a DataPlan -> GenerationResult", params=("plan", "env", "ctx")),
    ),
)


def missing_teacher(engine: str) -> ConfigError:
    return ConfigError(f"the {engine} engine needs a teacher: pass --teacher vllm:<model> or openai:<model>")


class BaseEngine(Component):
    """What a registered engine subclasses: `name`, a docstring, `Options` (validated once,
    `self.options`) and `generate`. The run hands every engine its teacher (`self.teacher`,
    None in a run without one) and the progress switch (`self.progress`); an engine that
    cannot work without a teacher sets `needs_teacher`, and a run without one stops before
    its first evaluation."""

    kind = "engine"
    name: ClassVar[str]
    needs_teacher: ClassVar[bool] = False

    def __init__(
        self,
        options: BaseModel | None = None,
        /,
        *,
        teacher: TeacherLLM | None = None,
        progress: bool = False,
        **values: Any,
    ) -> None:
        if self.needs_teacher and teacher is None:
            raise missing_teacher(self.name)
        self.teacher = teacher
        self.progress = progress
        super().__init__(options, **values)

    def generate(self, plan: DataPlan, env: Environment, ctx: GenerationContext) -> GenerationResult:
        raise NotImplementedError

    def progress_bar(self, desc: str, total: int, unit: str = "ex") -> Any:
        """A bar that moves per finished item, with its rate and time left (a tqdm bar, closed
        with the block it opens). Shown only with the progress switch on and stderr a terminal
        (tqdm's `disable=None`): in a log the phase keeps its one line."""
        from tqdm.auto import tqdm

        return tqdm(
            total=total, desc=desc, unit=unit, leave=False, dynamic_ncols=True, disable=None if self.progress else True
        )

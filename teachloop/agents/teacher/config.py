"""TeacherConfig: which teacher to call and how; the backend's own settings in `options`."""

from __future__ import annotations

import logging
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, SerializeAsAny, ValidationError, model_validator

from teachloop.agents.teacher.backends import BackendOptions, backend_class
from teachloop.errors import ConfigError, TeachloopError, format_validation_error
from teachloop.registry import validate_options

log = logging.getLogger(__name__)

# The settings TeacherConfig held itself before each backend owned its own. Written beside
# `model`, they applied to the backends that had them and were ignored by the others; a file
# may set `concurrency` for an openai run and be reused with `--teacher vllm:...`, so such a
# key is still dropped (with a warning) for a backend without it. Inside `options` it errors.
# Each with the default it had then: a run folder's config.yaml from before holds all six,
# and a default the backend lacks carries no setting, so it is dropped without a word.
LEGACY_SHARED_SETTINGS: dict[str, Any] = {
    "base_url": None, "api_key": None, "concurrency": 8, "timeout": 60.0, "qps": None, "vllm_options": {},
}  # fmt: skip


class TeacherConfig(BaseModel):
    """Which teacher to call and how. `teachloop run --teacher <backend>:<model>`.

    `options` are the backend's own settings (`teachloop backends show NAME`), validated by
    its `Options`. A config written before backends owned their settings put them beside
    `model` (`base_url: ...`): such keys move into `options` when it is read."""

    model_config = ConfigDict(extra="forbid")

    backend: str = Field(
        pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$",
        description="openai | vllm | raydata | raydata-vllm | a plug-in backend (`teachloop backends list`)",
    )
    model: str = Field(min_length=1, description="what the backend serves or loads (`--teacher <backend>:<model>`)")
    options: SerializeAsAny[BackendOptions] = Field(
        default_factory=BackendOptions,
        description="the backend's own settings, e.g. base_url, concurrency (openai), vllm_options (vllm): "
        "`teachloop backends show NAME`",
    )
    max_retries: int = Field(default=6, ge=0, description="retries of rate limits, timeouts, 5xx, connection errors")
    validation_retries: int = Field(default=2, ge=0, description="extra asks when a reply fails validation")
    max_consecutive_failures: int = Field(
        default=8, ge=1, description="circuit breaker: this many failed calls in a row stop the run"
    )
    temperature: float = Field(
        default=0.7, ge=0, description="sampling temperature of the teacher's judgements and plans"
    )
    generation_temperature: float = Field(
        default=1.0,
        ge=0,
        description="sampling temperature when the teacher writes new examples (the llm engine): Qwen2.5-Coder-0.5B "
        "wrote 12 duplicates of 80 skillworld items at 0.7, 3 at 1.0",
    )
    max_tokens: int = Field(default=512, ge=1, description="reply length limit per call")
    seed: int = Field(default=0, description="the teacher's sampling seed (each request also gets its own)")
    send_seed: bool = Field(default=True, description="send a per-request sampling seed")
    max_tokens_per_iteration: int | None = Field(
        default=None, ge=1, description="teacher token budget per loop iteration (equal budgets in benchmarks)"
    )
    max_calls_per_iteration: int | None = Field(
        default=None, ge=1, description="paid teacher calls per loop iteration (cached replies are free)"
    )
    max_cost_per_iteration: float | None = Field(
        default=None, gt=0, description="teacher cost per loop iteration, in the prices' currency (needs a price)"
    )
    price_prompt_per_mtok: float | None = Field(default=None, ge=0, description="cost per million prompt tokens")
    price_completion_per_mtok: float | None = Field(
        default=None, ge=0, description="cost per million completion tokens"
    )

    @model_validator(mode="after")
    def _a_cost_budget_needs_a_price(self) -> TeacherConfig:
        if (
            self.max_cost_per_iteration is not None
            and self.price_prompt_per_mtok is None
            and (self.price_completion_per_mtok is None)
        ):
            raise ValueError("max_cost_per_iteration needs price_prompt_per_mtok and/or price_completion_per_mtok")
        return self

    @model_validator(mode="before")
    @classmethod
    def _backend_options(cls, data: Any) -> Any:
        """`options` validated by the backend's `Options`; settings written beside `model`
        (the layout before backends owned them) moved into `options` first."""
        if not isinstance(data, dict) or not isinstance(data.get("backend"), str) or not data.get("backend"):
            return data
        given = data.get("options")
        if isinstance(given, BaseModel):
            return data
        if given is not None and not isinstance(given, dict):
            raise ValueError(f"options must be a mapping of the backend's settings, not {given!r}")
        loose = {key: value for key, value in data.items() if key not in cls.model_fields}
        try:
            model = backend_class(data["backend"]).Options
            ignored = sorted(key for key in loose if key in LEGACY_SHARED_SETTINGS and key not in model.model_fields)
            said = [key for key in ignored if loose[key] != LEGACY_SHARED_SETTINGS[key]]
            if said:
                log.warning(
                    "teacher backend %r has no setting %s: ignored (`teachloop backends show %s`)",
                    data["backend"],
                    ", ".join(said),
                    data["backend"],
                )
            moved = {key: value for key, value in loose.items() if key not in ignored}
            options = {**moved, **(given or {})}  # an explicit options: entry wins over a loose key
            validated = validate_options("teacher backend", data["backend"], model, options)
        except TeachloopError as exc:
            raise ValueError(str(exc)) from None
        return {key: value for key, value in data.items() if key not in loose} | {"options": validated}

    @property
    def spec(self) -> str:
        """`<backend>:<model>`, as `--teacher` takes it (and the teacher's name in lineage)."""
        return f"{self.backend}:{self.model}"

    @classmethod
    def from_spec(cls, spec: str, **fields: Any) -> TeacherConfig:
        """A teacher from `--teacher <backend>:<model>`; keyword settings that are not
        TeacherConfig's own are the backend's options (an error where it lacks one)."""
        backend, model = parse_teacher_spec(spec)
        given = {key: value for key, value in fields.items() if value is not None}
        own = {key: value for key, value in given.items() if key in cls.model_fields}
        options = {key: value for key, value in given.items() if key not in cls.model_fields}
        try:
            return cls(backend=backend, model=model, **own, **({"options": options} if options else {}))
        except ValidationError as exc:
            raise ConfigError(format_validation_error(exc, "teacher", spec)) from None


def parse_teacher_spec(spec: str) -> tuple[str, str]:
    """'<backend>:<model>' (e.g. 'vllm:<path-or-id>', 'openai:<model>') -> (backend, model)."""
    backend, sep, model = spec.partition(":")
    if not sep or not backend or not model:
        raise ConfigError(
            f"--teacher must look like '<backend>:<model>', e.g. 'vllm:<path-or-id>' or 'openai:<model>'; got {spec!r}"
        )
    return backend, model

"""RunConfig: everything that defines a run, validated; from YAML and/or CLI flags."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from teachloop.agents.teacher import TeacherConfig
from teachloop.errors import ConfigError, format_validation_error
from teachloop.io import read_yaml_mapping
from teachloop.types import TrainConfig

EMBEDDED_STUDENT = "embedded"


class RunConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(default=None, description="run folder name (default: <policy>-<env>-s<seed>-<time>)")
    out: Path = Field(default=Path("runs"), description="folder the run folder is created in")
    environment: str = Field(default="skillworld", description="registered environment name")
    environment_options: dict[str, Any] = Field(
        default_factory=dict, description="the environment's options (`teachloop environments show NAME`)"
    )
    student_model: str = Field(
        default=EMBEDDED_STUDENT,
        description="'embedded' (the shipped skillworld base checkpoint), a model folder, a .gguf file or a hub id",
    )
    student_backend: str = Field(
        default="transformers",
        description="the registered student class that loads, answers and trains student_model "
        "(`teachloop students list`)",
    )
    policy: str = Field(default="stat-syn", description="registered policy name")
    policy_options: dict[str, Any] = Field(
        default_factory=dict, description="the policy's options (`teachloop policies show NAME`)"
    )
    engine: str = Field(
        default="auto",
        description="data-generation engine: auto (llm with a teacher, else programmatic) or a registered engine "
        "(`teachloop engines list`)",
    )
    engine_options: dict[str, Any] = Field(
        default_factory=dict, description="the engine's options (`teachloop engines show NAME`)"
    )
    teacher: TeacherConfig | None = Field(default=None, description="the LLM teacher (none: programmatic only)")
    diagnosis: Literal["exact", "llm"] = Field(
        default="exact", description="Missing-Skill-Profile from the examples' skill labels, or judged by the teacher"
    )
    verify: Literal["auto", "checker", "consistency", "none"] = Field(
        default="auto", description="how the llm engine verifies answers; auto: checker if the env has one"
    )
    answer_samples: int = Field(
        default=1,
        ge=0,
        le=8,
        description="the llm engine's re-answers per written item, asked as a few-shot chat of the references: "
        "with a checker they are tried when the written answer fails it; with consistency they vote with the "
        "written answer and two must agree",
    )
    skills: Literal["environment", "discover"] = Field(
        default="environment", description="the environment's skill tree, or one the teacher discovers"
    )
    iterations: int = Field(
        default=4,
        ge=0,
        le=1000,
        description="rounds of diagnose-plan-generate-train (0: only evaluate the starting student, a baseline)",
    )
    budget: int = Field(default=600, ge=1, description="new training examples per iteration")
    data: Literal["accumulate", "replace"] = Field(
        default="accumulate", description="train on all data so far, or on this iteration's only"
    )
    student: Literal["continue", "restart"] = Field(
        default="continue", description="continue from the last checkpoint, or retrain from the base each iteration"
    )
    replay: int | Literal["auto"] = Field(
        default="auto",
        description="seed-pool examples mixed into every training set, so what the student knew is kept: auto "
        "(as many as the set's new examples, at most the pool), a number, or 0 (none)",
    )
    train: TrainConfig = Field(default_factory=TrainConfig)
    seed: int = Field(default=0, ge=0, description="seed of data, sampling and training")
    max_errors: int = Field(
        default=50, ge=0, description="failed attempts handed to the policy (and judged, with an llm diagnosis)"
    )
    max_new_tokens: int | None = Field(
        default=None,
        ge=1,
        description="the student's answer length limit; default: the environment's (skillworld 16, "
        "math 256 or 512, code 384, jsonl by scorer)",
    )
    min_yield: float = Field(
        default=0.25,
        ge=0,
        le=1,
        description="stop the run when a generate phase keeps less than this share of the new examples it "
        "asked for (0: never)",
    )
    tracking: str = Field(
        default="none",
        description="experiment tracker every evaluated iteration is logged to: none or a registered tracker "
        "(`teachloop trackers list`: trackio (local, no account), wandb, mlflow, tensorboard)",
    )
    tracking_options: dict[str, Any] = Field(
        default_factory=dict, description="the tracker's options (`teachloop trackers show NAME`)"
    )
    tracking_project: str | None = Field(
        default=None, description="tracker project (default: the run's name; a bench's runs share the bench's)"
    )
    eval_backend: str = Field(
        default="auto",
        pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$",
        description="student evaluation: transformers (teachloop's decoder where verified for the architecture, "
        "else transformers' generate), transformers-generate (generate always), vllm (serves LoRA adapters with "
        "LoRARequest), raydata "
        "(the same in vLLM engines run by Ray Data LLM, one per GPU of the Ray cluster) or a registered "
        "backend (`teachloop eval-backends list`); auto: vllm on a GPU with LoRA training when vLLM is "
        "installed, else transformers",
    )

    @field_validator("replay", mode="before")
    @classmethod
    def _replay(cls, value: Any) -> Any:
        if value == "auto" or (isinstance(value, int) and not isinstance(value, bool) and value >= 0):
            return value
        if isinstance(value, str) and value.strip().isdigit():
            return int(value)
        raise ValueError(f"must be auto, 0 (no replay) or a number of seed-pool examples, got {value!r}")

    @field_validator("name")
    @classmethod
    def _plain_name(cls, value: str | None) -> str | None:
        if value is None:
            return value
        if not value.strip() or value != value.strip() or not value.isprintable():
            raise ValueError(
                f"must be a plain folder name: no leading or trailing space, no newline or other control "
                f"character, not blank (got {value!r})"
            )
        if "/" in value or value.startswith("."):
            raise ValueError(f"must be a plain folder name (no '/', not starting with '.'), got {value!r}")
        return value

    def default_name(self, stamp: str) -> str:
        return f"{self.policy}-{self.environment}-s{self.seed}-{stamp}"

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.model_dump(mode="json"), sort_keys=False)


def load_config(path: str | Path | None = None, overrides: dict[str, Any] | None = None) -> RunConfig:
    """Defaults < YAML file < overrides (dotted keys like 'train.epochs' reach nested fields)."""
    data: dict[str, Any] = read_yaml_mapping(path, "config file") if path is not None else {}
    source = str(path) if path is not None else "defaults"
    for key, value in (overrides or {}).items():
        if value is None:
            continue
        target = data
        *parents, leaf = key.split(".")
        for depth, parent in enumerate(parents):
            if target.get(parent) is None:
                target[parent] = {}
            if not isinstance(target[parent], dict):
                section = ".".join(parents[: depth + 1])
                raise ConfigError(
                    f"invalid config ({source}): {section} must be a mapping of options, not {target[parent]!r}, "
                    f"so {key} cannot be set in it; write `{section}: {{...}}` or remove the line"
                )
            target = target[parent]
        target[leaf] = value
    teacher = data.get("teacher")
    if isinstance(teacher, dict) and teacher and "backend" not in teacher and "model" not in teacher:
        given = ", ".join(sorted(_dotted(teacher, "teacher")))
        flags = [key for key, value in (overrides or {}).items() if value is not None and key.startswith("teacher.")]
        where = "on the command line" if flags else f"in {source}"
        raise ConfigError(
            f"--teacher is missing: teacher settings are given {where} ({given}) but no teacher to apply them to; "
            "add --teacher <backend>:<model> (e.g. openai:<model>), or backend: and model: under teacher:"
        )
    try:
        return RunConfig.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(format_validation_error(exc, "config", _blamed(exc, source, overrides))) from None


def _dotted(mapping: dict[str, Any], prefix: str) -> list[str]:
    """The dotted keys of a nested mapping's leaves ('teacher.options.concurrency')."""
    keys: list[str] = []
    for key, value in mapping.items():
        name = f"{prefix}.{key}"
        keys.extend(_dotted(value, name) if isinstance(value, dict) and value else [name])
    return keys


def _blamed(exc: ValidationError, source: str, overrides: dict[str, Any] | None) -> str:
    """Where the invalid values came from: the command line when flags set every field that
    failed, the file (or the defaults) when none did, both when some did."""
    given = {key for key, value in (overrides or {}).items() if value is not None}
    failed = [".".join(str(p) for p in err["loc"]) for err in exc.errors()]
    flagged = [
        any(field == key or field.startswith(key + ".") or key.startswith(field + ".") for key in given)
        for field in failed
    ]
    if failed and all(flagged):
        return "command line"
    return f"{source} and the command line" if any(flagged) else source

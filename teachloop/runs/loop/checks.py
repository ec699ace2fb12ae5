"""Checks a run passes before anything heavy loads or anything is written (`assemble_run`
calls them as it builds the run's parts): every named
plug-in exists, accepts its options and keeps its contract, the components fit together
(a policy that writes new examples has a generator or a teacher to write them), the
models exist, the embedded student can read the task. Whatever can be known before
iteration 0 fails here, in a second, not after an evaluation has been paid for; what only
may waste a run (a pool drawn many times over, a few items the student cannot read) is a
warning."""

from __future__ import annotations

import importlib.util
import logging
import socket
import urllib.request
from collections.abc import Sequence
from pathlib import Path
from urllib.parse import urlsplit

from teachloop.agents.policies import Policy, pool_only
from teachloop.agents.teacher import TeacherConfig, backend_class
from teachloop.environments import Environment, ProgrammaticEnvironment, get_environment
from teachloop.environments.base import checker_of
from teachloop.errors import ConfigError, TeachloopError
from teachloop.runs.config import RunConfig
from teachloop.students.checkpoints import EMBEDDED, EMBEDDED_BASE
from teachloop.students.tiny import CharacterLimits, character_limits
from teachloop.types import Example, TrainConfig

log = logging.getLogger(__name__)

POOL_ONLY_HINT = "none, stat-sel"  # the built-in policies that only draw from the seed pool
# more of a split than this with characters the embedded student lacks stops the run; less is a
# warning, and so are items longer than its positions (they still run, badly: it never trained there)
UNREADABLE_SHARE = 0.05
# a pool-only policy drawing at least this many copies of every pool row per iteration is warned about
POOL_COPIES_WARN = 5
REAL_STUDENT_HINT = (
    "use a real student: --student-model <a model folder, .gguf file or hub id> (e.g. SmolLM2-135M-Instruct, "
    "see docs/real-models.md)"
)


def check_models(config: RunConfig, env: Environment | None = None) -> None:
    """The student (and a local teacher) checkpoint resolves, and the student can read the
    task (`check_student_can_read`; `env`: the run's environment, built here when needed and
    not given); a .gguf file is converted here, once, into the model cache. A run calls it
    before its folder is made; commands that never load the student (`teacher check`) do not."""
    from teachloop.students.checkpoints import resolve_checkpoint

    resolve_checkpoint(config.student_model)
    if student_limits(config.student_model) is not None:
        check_student_can_read(config, env or get_environment(config.environment, **config.environment_options))
    if config.teacher is not None and backend_class(config.teacher.backend).local_weights:
        resolve_checkpoint(config.teacher.model)


def check_data_source(config: RunConfig, env: Environment, policy: Policy, engine: str) -> None:
    """The run has what its policy's plans need: a generator (a programmatic environment)
    or a teacher for new examples, and a checker when `verify: checker` asks for one
    (`engine`: the resolved one)."""
    if engine == "programmatic" and not pool_only(policy) and not isinstance(env, ProgrammaticEnvironment):
        raise ConfigError(
            f"policy {config.policy!r} writes new examples, but environment {config.environment!r} has no "
            "generator for the programmatic engine: configure an LLM teacher (--teacher vllm:<model> or "
            f"openai:<model>), use an environment with a generator, or a policy that only draws from the seed "
            f"pool ({POOL_ONLY_HINT})"
        )
    if engine == "llm" and config.verify == "checker" and checker_of(env) is None:
        raise ConfigError(
            f"verify: checker, but environment {config.environment!r} has no checker (check(example)); "
            "use --verify consistency or auto"
        )


def student_limits(spec: str) -> CharacterLimits | None:
    """The character limits of the run's student: the embedded one, or a local folder holding a
    student trained from it; None for any other student (a real tokenizer reads any text)."""
    if spec == EMBEDDED:
        return character_limits(EMBEDDED_BASE)
    folder = Path(spec).expanduser()
    return character_limits(folder) if folder.is_dir() else None


def _unreadable(example: Example, limits: CharacterLimits) -> tuple[list[str], bool]:
    """The characters of an item the student reads as <unk>, and whether prompt + answer (+ the
    end-of-answer token) overrun its positions."""
    text = example.prompt + example.answer
    return limits.unreadable(text), len(text) + 1 > limits.positions


def check_student_can_read(config: RunConfig, env: Environment) -> None:
    """The embedded (character) student reads only its 96 characters and 64 positions: a task
    outside them trains nothing (every answer `<unk>` or empty) yet runs to the end. Stop,
    with a sample, when more than `UNREADABLE_SHARE` of the eval items or of the seed pool
    has a character outside its vocabulary; warn when fewer do, and when items are longer
    than its positions (it reads them, but was never trained that far: a smoke test on a
    real task still runs)."""
    limits = student_limits(config.student_model)
    if limits is None:
        return
    problems = []
    for split, items in (("eval items", env.eval_set()), ("seed pool items", env.train_pool())):
        if not items:
            continue
        bad = [(ex, *_unreadable(ex, limits)) for ex in items]
        bad = [(ex, chars, long) for ex, chars, long in bad if chars or long]
        if bad:
            problems.append((split, len(items), bad))
    if not problems:
        return
    parts = [_unreadable_summary(split, total, bad, limits) for split, total, bad in problems]
    student = "the embedded student" if config.student_model == EMBEDDED else f"student {config.student_model}"
    what = (
        f"{student} has a {len(limits.characters)}-character vocabulary (ASCII letters, digits, punctuation, "
        f"space, newline; anything else becomes <unk>) and {limits.positions} positions for a prompt and its answer"
    )
    message = f"environment {config.environment!r}: {'; '.join(parts)}: {what}"
    if any(sum(1 for _, chars, _ in bad if chars) > UNREADABLE_SHARE * total for _, total, bad in problems):
        raise ConfigError(
            f"{message}. It cannot learn this task (its answers would be empty or <unk>): {REAL_STUDENT_HINT}, "
            "or rewrite the task within those limits"
        )
    log.warning("%s; it may not learn those items (to learn the task: %s)", message, REAL_STUDENT_HINT)


def _unreadable_summary(
    split: str, total: int, bad: Sequence[tuple[Example, list[str], bool]], limits: CharacterLimits
) -> str:
    """'24 of 24 eval items are outside its limits (24 with characters it lacks: '×' (U+00D7) ..., e.g. ...)'."""
    with_chars = [(ex, chars) for ex, chars, _ in bad if chars]
    too_long = [ex for ex, _, long in bad if long]
    details = []
    if with_chars:
        found = list(dict.fromkeys(c for _, chars in with_chars for c in chars))
        shown = ", ".join(f"{c!r} (U+{ord(c):04X})" for c in found[:5]) + (
            f" and {len(found) - 5} more" if len(found) > 5 else ""
        )
        example, chars = with_chars[0]
        details.append(
            f"{len(with_chars)} with characters it lacks: {shown}; e.g. {_sample(example.prompt)} has {chars[0]!r}"
        )
    if too_long:
        example = too_long[0]
        details.append(
            f"{len(too_long)} longer than its {limits.positions} positions, e.g. {_sample(example.prompt)} "
            f"({len(example.prompt) + len(example.answer)} characters with its answer)"
        )
    return f"{len(bad)} of {total} {split} are outside its limits ({'; '.join(details)})"


def _sample(text: str, width: int = 60) -> str:
    return repr(text if len(text) <= width else text[: width - 3] + "...")


def check_pool_draws(config: RunConfig, env: Environment, policy: Policy) -> None:
    """A policy that trains only on seed-pool draws (`none`, `stat-sel`) draws `budget` items
    per iteration: from a pool much smaller than that, each row is trained on many times
    over. Worth a warning (it is what was asked, and `none` is the baseline), not a stop."""
    if not pool_only(policy):
        return
    pool = len(env.train_pool())
    if not pool:
        return
    copies = config.budget / pool
    if copies < POOL_COPIES_WARN:
        return
    log.warning(
        "policy %r draws --budget %d examples per iteration from the %d-row seed pool of environment %r: about "
        "%.0f copies of each row per iteration (and more of the rows it weights up); lower --budget to about the "
        "pool's size (%d), give the environment a bigger pool, or use a policy that writes new examples",
        config.policy, config.budget, pool, config.environment, copies, pool,
    )  # fmt: skip


def check_processes(cfg: TrainConfig) -> None:
    """What `processes > 1` needs (teachloop.students.hf.distributed runs it)."""
    if cfg.processes == 1:
        return
    if cfg.batch_size % cfg.processes:
        raise ConfigError(
            f"train.batch_size {cfg.batch_size} does not split over {cfg.processes} processes: "
            "make it a multiple of train.processes"
        )
    if cfg.accelerate_config is not None and not Path(cfg.accelerate_config).is_file():
        raise ConfigError(f"train.accelerate_config {cfg.accelerate_config} does not exist")
    if importlib.util.find_spec("accelerate") is None:
        raise ConfigError(f"train.processes {cfg.processes} needs accelerate: pip install accelerate")


CONNECT_TIMEOUT_S = 3.0  # a probe that has no answer by then leaves the verdict to the start-up check


def check_teacher_reachable(teacher: TeacherConfig) -> None:
    """A teacher reached over the network (its backend has a base URL) has something listening
    there: a refused connection is one line at once, before torch loads or a run folder is
    made, not after the start-up check has loaded everything. Only a refusal stops here; an
    unknown host, a slow network, a proxy in the environment or the default OpenAI URL are
    left to the start-up check, which asks the endpoint itself."""
    url = backend_class(teacher.backend).endpoint(teacher.options)
    if not url:
        return
    parts = urlsplit(url)
    try:
        host, port = parts.hostname, parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        return
    if not host or (urllib.request.getproxies_environment() and not urllib.request.proxy_bypass_environment(host)):
        return
    try:
        with socket.create_connection((host, port), timeout=CONNECT_TIMEOUT_S):
            return
    except ConnectionRefusedError:
        raise TeachloopError(
            f"teacher {teacher.spec} at {url} failed its start-up check: connection refused by {host}:{port} "
            "(nothing listens there); is the server up, and teacher.options.base_url / $OPENAI_BASE_URL right?"
        ) from None
    except OSError:
        return


def check_distill(config: RunConfig, teach: str | None = None) -> None:
    """A run that distils (`train.objective` distill, or a policy whose `teach` option is
    distill or both: `teach`) has a teacher whose weights the train phase can load (its
    backend's `local_weights`: vllm:, raydata-vllm:), and trains in one process: on-policy
    distillation scores the student's tokens with the teacher model itself, which an
    endpoint (openai:) does not give. Refused in one line before the first evaluation is
    paid for."""
    if teach in ("distill", "both"):
        who, undo = f"policy {config.policy} with teach {teach}", "--policy-option teach=write"
    elif teach is None and config.train.objective == "distill":
        who, undo = "train.objective distill", "--train.objective auto"
    else:
        return
    if config.teacher is None:
        raise ConfigError(
            f"{who} needs a teacher with local weights to score the student's tokens: "
            "--teacher vllm:<model folder, .gguf file or hub id>"
        )
    if not backend_class(config.teacher.backend).local_weights:
        raise ConfigError(
            f"{who} needs the teacher's weights on this machine, and teacher {config.teacher.spec} "
            "is reached through an endpoint (its next-token distributions are not available): use "
            f"--teacher vllm:<model folder, .gguf file or hub id>, or {undo} (SFT on its examples)"
        )
    if config.train.processes > 1:
        raise ConfigError(
            f"{who} trains in one process; train.processes {config.train.processes} with "
            "distillation is not built: use --train.processes 1"
        )
    from teachloop.students.registry import student_class

    if not callable(getattr(student_class(config.student_backend), "train_distill", None)):
        raise ConfigError(
            f"{who} needs a student that distils (train_distill); student backend "
            f"{config.student_backend!r} does not: use {undo}"
        )

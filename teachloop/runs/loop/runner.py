"""Loop: the closed loop as a small state machine over phases stored in a RunStore.

    iteration i:  eval -> feedback (diagnose) -> plan -> data (generate) -> train
    final:        eval

Each phase reads earlier phases' artifacts from the store and writes its own
atomically; `run()` skips every phase that is already done, so a run killed at any
point continues from the first unfinished phase, with the same results.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Mapping
from contextlib import nullcontext
from datetime import datetime
from pathlib import Path
from typing import Any

from rich.console import Console

from teachloop.agents.diagnosis import diagnose
from teachloop.agents.engines import Engine, get_engine
from teachloop.agents.policies import ModelsPolicy, SelectingPolicy, needs_pool_attempts
from teachloop.agents.state import TeacherState
from teachloop.agents.teacher import TeacherBackend, TeacherConfig, TeacherLLM
from teachloop.environments.base import (
    RelabelledEnvironment,
    answer_tokens,
    item_form,
    stop_strings,
    validation_of,
)
from teachloop.errors import RunStopped
from teachloop.faults import kill_point
from teachloop.inference import engine_logs
from teachloop.io import full_disk, write_jsonl
from teachloop.runs.config import RunConfig
from teachloop.runs.loop.artifacts import (
    SKILLS,
    VALIDATION_ATTEMPTS,
    DataFiles,
    DiscoveryFiles,
    EvalFiles,
    FeedbackFiles,
    PlanFiles,
)
from teachloop.runs.loop.assemble import RunParts, assemble_run
from teachloop.runs.loop.data_phase import DataPhase
from teachloop.runs.loop.metrics import PHASE_LABELS, MetricsRecord, compute_metrics, handed_back
from teachloop.runs.loop.store import PHASES, PhaseWriter, RunStore
from teachloop.runs.loop.tracking import RunTracking
from teachloop.skills.profile import eval_report
from teachloop.stopping import Stopped
from teachloop.students.checkpoints import resolve_checkpoint
from teachloop.students.hf.student import quiet_hf_libraries
from teachloop.students.lifecycle import StudentLifecycle
from teachloop.students.probe import scored_reply
from teachloop.types import (
    UNLABELLED,
    DataPlan,
    DataYield,
    EvalReport,
    Example,
    GenerationContext,
    HistoryEntry,
)

log = logging.getLogger(__name__)

# An evaluation in which more answers than this ran to the token limit is warned about:
# a student that stopped ending its answers makes evaluation many times slower.
HIT_LIMIT_WARN_SHARE = 0.2

__all__ = ["Loop", "MetricsRecord", "compute_metrics"]


class Loop:
    def __init__(
        self,
        store: RunStore,
        parts: RunParts | None = None,
        progress: bool = True,
        console: Console | None = None,
        teacher: TeacherLLM | None = None,
        engine: Engine | None = None,
        backends: Mapping[str, TeacherBackend] | None = None,
    ) -> None:
        """`parts`: the run's parts as `assemble_run` built them (default: assembled here from
        the run folder's config, which holds no secret: a resumed run takes its api_key from
        the environment). `teacher`: the run's teacher, already started (default: built here,
        started by `run` when a phase is left to do), and `engine`, built with it (default:
        built here). `backends`: started teacher backends by teacher name (`backend:model`) to
        reuse, for the run's teacher and the models its policy names."""
        quiet_hf_libraries()
        if engine_logs.current() != store.root / engine_logs.ENGINE_LOG:
            engine_logs.route(store.root / engine_logs.ENGINE_LOG)  # vLLM's, Ray's, Triton's output: off the terminal
        self.store = store
        parts = parts or assemble_run(store.config(), models=False)
        self.config: RunConfig = parts.config
        self.progress = progress
        # soft_wrap: a phase line is one line in a pipe or log too, not cut at 80 columns
        self.console = console or Console(stderr=True, quiet=not progress, soft_wrap=True)
        cfg = self.config
        self.env = parts.env
        self.policy = parts.policy
        self.resolved = parts.resolved
        self.backends: dict[str, TeacherBackend] = dict(backends or {})
        self.teacher = teacher or (
            teacher_client(cfg.teacher, store.root, "teacher", self.backends) if cfg.teacher else None
        )
        self.engine = engine or build_engine(parts, self.teacher, progress)
        self.students = StudentLifecycle(
            cfg.student_model,
            checkpoint=lambda i: store.phase_dir(i - 1, "train") / "model",
            eval_backend=self.resolved.eval_backend,
            max_lora_rank=cfg.train.lora.r,
            student_backend=cfg.student_backend,
        )
        self._state: TeacherState | None = None
        self._models: dict[str, TeacherLLM] = {}
        self.tracking = RunTracking(store, cfg) if cfg.tracking != "none" else None

    # -- construction ----------------------------------------------------------------------
    @classmethod
    def create(
        cls,
        run: RunConfig | RunParts,
        progress: bool = True,
        console: Console | None = None,
        backends: Mapping[str, TeacherBackend] | None = None,
    ) -> Loop:
        """A new run from its config, or from the parts `assemble_run` built from it when the
        caller already assembled them (the CLI does, before torch loads). `backends`: teacher
        backends already started, by teacher name (`backend:model`), for the run's teacher and
        the models its policy names: runs in one process share their engines (benchmarks)."""
        config = run.config if isinstance(run, RunParts) else run
        name = config.name or config.default_name(datetime.now().strftime("%Y%m%d-%H%M%S"))
        # every check, before anything is written to disk
        parts = run.named(name) if isinstance(run, RunParts) else assemble_run(config.model_copy(update={"name": name}))
        parts = parts.with_models_checked()
        config = parts.config
        root = config.out / name
        RunStore.check_new(root)
        teacher = None
        console = console or Console(stderr=True, quiet=not progress, soft_wrap=True)
        if config.teacher is not None:  # a teacher that cannot start stops the run before it is created
            engine_logs.route(config.out / f"{name}.engines.log")  # beside it until the run folder exists
            teacher = teacher_client(config.teacher, root, "teacher", backends or {})
            _start_teacher(teacher, console)
        engine = build_engine(parts, teacher, progress)
        store = RunStore.create(root, config)
        engine_logs.move(root / engine_logs.ENGINE_LOG)
        return cls(
            store, parts, progress=progress, console=console, teacher=teacher, engine=engine, backends=backends
        )

    @classmethod
    def resume(
        cls,
        run_dir: Path,
        progress: bool = True,
        console: Console | None = None,
        allow_config_change: bool = False,
        config: RunConfig | None = None,
        parts: RunParts | None = None,
        backends: Mapping[str, TeacherBackend] | None = None,
    ) -> Loop:
        """`config`: the same settings as the folder's, with any secret they hold (a bench).
        `parts`: what `assemble_run` built from them, if the caller assembled them.
        `backends`: as for `create`."""
        store = RunStore.open(run_dir)
        store.check_config(parts.config if parts else config or store.config(), allow_change=allow_config_change)
        parts = parts or assemble_run(config or store.config(), models=False)
        return cls(store, parts, progress=progress, console=console, backends=backends)

    # -- the state machine -----------------------------------------------------------------
    def run(self) -> list[MetricsRecord]:
        with self.store.lock():  # one process per run: a second one is refused, not raced
            try:
                return self._run_locked()
            except Stopped as stop:  # a stop signal: said in one line by the CLI, with how to go on
                stop.run = self.store.root
                raise
            except Exception as exc:  # a full disk outside a phase (metrics.jsonl, the cache, run.json)
                full = full_disk(exc)
                if full is None:
                    raise
                full.path = full.path or self.store.root
                full.then = full.then or f"`teachloop resume {self.store.root}` goes on from where it stopped"
                raise full from None

    def _run_locked(self) -> list[MetricsRecord]:
        self.store.check_integrity()
        removed = self.store.clean_partial()
        if removed:
            self.console.print(f"[yellow]discarded {len(removed)} unfinished phase(s); redoing them[/]")
        ran = False
        work_left = self._work_left()
        if work_left:  # the teacher and the policy's own models, before anything is spent
            if self.teacher:
                _start_teacher(self.teacher, self.console)
            if isinstance(self.policy, ModelsPolicy):
                for role, cfg in self.policy.teacher_models().items():
                    self._model(cfg, role)
        if self.config.skills == "discover":
            ran |= self._run_phase(None, "discovery", self._discover)
            self.env = self._discovered_environment()
        skills_path = self.store.root / SKILLS
        if not skills_path.exists():
            self.env.skills.save(skills_path)
        rounds = f"{self.config.iterations} iterations x {self.config.budget} examples"
        if not self.config.iterations:  # a baseline: iteration 0's evaluation, nothing generated or trained
            rounds = "evaluate only (--iterations 0): the starting student, nothing generated or trained"
        self.console.print(
            f"[bold]teachloop[/] run [cyan]{self.store.root}[/]: {self.config.policy} on {self.config.environment}, "
            + rounds
        )
        if self.tracking:
            self.console.print(f"  tracking: {self.config.tracking}, {self.tracking.describe()}", highlight=False)
        if engine_logs.written() is not None:
            self.console.print(f"  engine logs: {engine_logs.written()} (-v: on the terminal)", highlight=False)
        if not work_left:
            n = self.config.iterations
            self.console.print(
                f"  finished already: every phase of its {n} iteration{'s' if n != 1 else ''} is done, nothing is "
                f"left to redo (`teachloop resume {self.store.root} --iterations N` extends it)",
                highlight=False,
            )
        steps = {
            "eval": self._evaluate,
            "feedback": self._diagnose,
            "plan": self._plan,
            "data": self._generate,
            "train": self._train,
        }
        for i in range(self.config.iterations + 1):
            phases = self._phases_of(i)
            if self.teacher:
                self.teacher.open_budget_window()
            for phase in phases:
                if self._run_phase(i, phase, steps[phase]):
                    ran = True
                    if phase == "eval":
                        self._publish_metrics(self.metrics())
        records = self.metrics()  # also when every phase was done before: a kill may have hit just here
        kill_point("metrics")
        self._publish_metrics(records)
        self.store.mark_finished(work_done=ran)
        return records

    def _work_left(self) -> bool:
        """Some phase of the run is not done yet."""
        if self.config.skills == "discover" and not self.store.is_done(None, "discovery"):
            return True
        return any(
            not self.store.is_done(i, phase) for i in range(self.config.iterations + 1) for phase in self._phases_of(i)
        )

    def _phases_of(self, i: int) -> tuple[str, ...]:
        """Iteration i's phases, in order: the last evaluated iteration only evaluates."""
        return ("eval",) if i == self.config.iterations else PHASES

    def _publish_metrics(self, records: list[MetricsRecord]) -> None:
        """metrics.jsonl, and the tracker's copy of every iteration it does not have yet."""
        self.store.write_metrics(records)
        if self.tracking:
            self.tracking.log(records)

    def _run_phase(self, i: int | None, phase: str, step: Any) -> bool:
        """Run one phase unless it is done; True when it ran."""
        if self.store.is_done(i, phase):
            return False
        self.store.mark_unfinished()  # e.g. a finished run resumed with more iterations
        before = self.teacher.ledger.model_copy() if self.teacher else None
        try:
            with self.store.write_phase(i, phase) as writer:
                summary = step(i, writer)
                if self.teacher and before is not None:
                    writer.info["teacher"] = self.teacher.ledger.minus(before)
                    self.teacher.raise_for_unreached(since=before)  # unpaid work is never published as done
        except Stopped as stop:
            stop.where = stop.where or ("the run's" if i is None else f"iter {i}") + f" {PHASE_LABELS[phase]} phase"
            raise
        record = self.store.phase_record(i, phase)
        where = "run   " if i is None else f"iter {i}"
        self.console.print(f"  {where} {PHASE_LABELS[phase]:<9} {record.seconds:6.1f}s  {summary}", highlight=False)
        return True

    @property
    def max_new_tokens(self) -> int:
        """The run's answer length limit, else the one the environment's answers need."""
        return self.config.max_new_tokens or answer_tokens(self.env)

    # -- phases ----------------------------------------------------------------------------
    def _evaluate(self, i: int, writer: PhaseWriter) -> str:
        # the validation split is answered in the same batch (one engine pass), scored apart: it
        # chooses the checkpoint the run hands back, and the eval set stays for reporting only
        examples = self.env.eval_set()
        items = [*examples, *validation_of(self.env)]
        start = time.perf_counter()
        with writer.work():
            replies = self.students.reply(
                i, [ex.prompt for ex in items], self.max_new_tokens, progress=self.progress, stop=stop_strings(self.env)
            )
            scored = [scored_reply(self.env, ex, r) for ex, r in zip(items, replies, strict=True)]
        attempts, validation = scored[: len(examples)], scored[len(examples) :]
        per_answer = (time.perf_counter() - start) / max(1, len(scored))
        report = eval_report(i, attempts, tree=self.env.skills)
        EvalFiles.write(writer.path, report)
        writer.info = {
            "accuracy": report.accuracy,
            "max_new_tokens": self.max_new_tokens,
            "hit_limit": report.hit_limit,
        }
        if validation:
            write_jsonl(writer.path / VALIDATION_ATTEMPTS, validation)
            writer.info["validation"] = {
                "accuracy": sum(a.correct for a in validation) / len(validation),
                "items": len(validation),
            }
        weakest = sorted(report.skill_accuracy.items(), key=lambda kv: kv[1])[:3]
        summary = f"accuracy {report.accuracy:.3f}; weakest " + ", ".join(f"{s} {a:.2f}" for s, a in weakest)
        summary += f"; {per_answer * 1000:.0f} ms per answer; " + self._limit_note(i, report)
        if report.unlabelled:
            summary += (
                f"; warning: {report.unlabelled} of {len(attempts)} items have no skill label "
                f"(counted in 'all' and under '{UNLABELLED}' only)"
            )
        return summary

    def _limit_note(self, i: int, report: EvalReport) -> str:
        """How many answers hit the token limit; in yellow, and logged, when too many did."""
        n = len(report.attempts)
        note = f"{report.hit_limit}/{n} hit the {self.max_new_tokens}-token limit"
        if not n or report.hit_limit / n <= HIT_LIMIT_WARN_SHARE:
            return note
        log.warning(
            "iteration %d: %d of %d answers ran to the %d-token limit without ending: the student does not stop "
            "(its training answers must end with the token generation stops on) or the task needs a higher "
            "max_new_tokens; see %s",
            i, report.hit_limit, n, self.max_new_tokens, self.store.phase_dir(i, "eval") / EvalFiles.ATTEMPTS,
        )  # fmt: skip
        return f"[yellow]warning: {note}[/]"

    def _discover(self, i: None, writer: PhaseWriter) -> str:
        from teachloop.skills.discovery import discover

        assert self.teacher is not None
        with writer.work():
            found = discover(self.teacher, self.env.train_pool(), self.env.eval_set(), seed=self.config.seed)
        DiscoveryFiles.write(writer.path, found.tree, found.labels)
        return f"{len(found.tree.leaves())} skills, {len(found.labels)} examples labelled"

    def _discovered_environment(self) -> RelabelledEnvironment:
        tree, labels = DiscoveryFiles.read(self.store.phase_dir(None, "discovery"))
        return RelabelledEnvironment(self.env, tree, labels)

    def _diagnose(self, i: int, writer: PhaseWriter) -> str:
        judge = self.teacher if self.config.diagnosis == "llm" else None
        with writer.work() if judge else nullcontext():  # teacher calls are work; the rest overhead
            feedback = diagnose(
                self._report(i),
                seed=self.config.seed,
                max_errors=self.config.max_errors,
                teacher=judge,
                tree=self.env.skills,
            )
        FeedbackFiles.write(writer.path, feedback)
        top = sorted(feedback.profile.counts.items(), key=lambda kv: -kv[1])[:4]
        return f"{feedback.profile.n_hard} hard items; missing " + ", ".join(f"{s}:{c}" for s, c in top)

    def _teacher_state(self, i: int) -> TeacherState:
        """The policy's view of iteration i, built once (plan and select share it)."""
        if self._state is not None and self._state.iteration == i:
            return self._state
        pool = self.env.train_pool()
        probe = self.students.probe(i, self.env, max_new_tokens=self.max_new_tokens)
        self._state = TeacherState(
            iteration=i,
            seed=self.config.seed,
            budget=self.config.budget,
            feedback=FeedbackFiles.read(self.store.phase_dir(i, "feedback")),
            skill_tree=self.env.skills,
            pool=pool,
            pool_attempts=probe.score(pool) if needs_pool_attempts(self.policy) else [],
            history=self._history(i),
            policy_state=self._plan_of(i - 1).policy_state if i > 0 else {},
            probe=probe,
            teacher=self.teacher,
            models=self._model,
            forms=lambda skill: item_form(self.env, skill),
        )
        return self._state

    def _model(self, cfg: TeacherConfig, role: str) -> TeacherLLM:
        """A model a policy names (delta's chosen and rejected): built and started once per
        run, its ledger `<role>_ledger.json`, its replies in the run's cache."""
        key = f"{role}:{cfg.model_dump_json()}"
        if key not in self._models:
            self._models[key] = teacher_client(cfg, self.store.root, role, self.backends)
            _start_teacher(self._models[key], self.console)
        return self._models[key]

    def _plan(self, i: int, writer: PhaseWriter) -> str:
        plan = self.policy.plan(self._teacher_state(i))
        plan = plan.model_copy(update={"policy": self.config.policy, "iteration": i})
        note = ""
        asked = plan.total_requested + plan.pool_samples
        # a selecting policy asks for more candidates than it keeps: the data phase cuts its choice
        if asked > self.config.budget and not isinstance(self.policy, SelectingPolicy):
            plan = plan.scaled_to(self.config.budget)
            note = (
                f"the policy asked for {asked} examples, over the budget of {self.config.budget}: every request "
                "was scaled in proportion"
            )
            plan = plan.model_copy(update={"rationale": f"{plan.rationale}\n({note})".strip()})
            log.warning("iteration %d: %s", i, note)
        PlanFiles.write(writer.path, plan)
        writer.info = {"allocation": plan.allocation(), "pool_samples": plan.pool_samples}
        if note:
            writer.info["scaled_from"] = asked
        return plan_summary(plan) + (f" [yellow](scaled from {asked} to the budget)[/]" if note else "")

    def _generate(self, i: int, writer: PhaseWriter) -> str:
        seen = frozenset(ex.prompt for j in range(i) for ex in self._data(j))
        ctx = GenerationContext(
            iteration=i,
            seed=self.config.seed,
            policy=self.config.policy,
            eval_prompts=frozenset(ex.prompt for ex in [*self.env.eval_set(), *validation_of(self.env)]),
            seen_prompts=seen,
        )
        plan = self._plan_of(i)
        phase = DataPhase(self.engine, self.policy, self.env, budget=self.config.budget, seed=self.config.seed)
        data = phase.run(plan, ctx, lambda: self._teacher_state(i), writer.work)
        DataFiles.write(writer.path, data.examples, data.rejected, data.candidates, data.teacher_pairs)
        examples, data_yield = data.examples, data.data_yield
        writer.info = {
            "examples": len(examples),
            "rejected": len(data.rejected),
            "shortfall": data.shortfall,
            "yield": data_yield.model_dump() | {"ratio": data_yield.ratio},
        }
        if data_yield.asked and data_yield.ratio < self.config.min_yield:
            raise RunStopped(self._low_yield_message(i, data_yield))
        return f"{len(examples)} examples; {data_yield.summary()}"

    def _low_yield_message(self, i: int, data_yield: DataYield) -> str:
        read = f"{self.store.phase_dir(i, 'data') / DataFiles.REJECTED} (why each example was rejected)"
        short = {skill: asked - kept for skill, (kept, asked) in data_yield.skills.items() if kept < asked}
        shortfall = ", ".join(f"{skill} {n}" for skill, n in sorted(short.items(), key=lambda kv: -kv[1]))
        short_of = f"; short of: {shortfall}" if shortfall else ""
        if self.teacher is not None:
            if data_yield.unfilled and self.teacher.failures_path:
                read += f" and {self.teacher.failures_path} (teacher replies that never validated)"
            source, fix = f"teacher {self.teacher.name}", "a stronger teacher, another --verify"
        else:
            source = f"the {self.engine.name} engine"
            fix = (
                "a smaller --budget, or a task whose generator has more distinct items per skill (everything "
                "made before, and the eval items, are never made again)"
            )
        paid = "; teacher calls already paid for come from the cache" if self.teacher is not None else ""
        return (
            f"iteration {i}: {source} gave too little usable data ({data_yield.summary()}{short_of}), below "
            f"min_yield {self.config.min_yield:.0%}, so the run stopped rather than train on it. Read {read}; fix "
            f"the cause ({fix}) or accept it with `teachloop resume {self.store.root} --min-yield 0`{paid}"
        )

    def _train(self, i: int, writer: PhaseWriter) -> str:
        cfg = self.config
        self._state = None  # the plan's view (and any model its probe loaded) is not needed any more
        data = self._training_set(i)
        if not data:
            raise RunStopped(
                f"iteration {i} has nothing to train on: its generate phase kept no examples "
                f"(see {self.store.phase_dir(i, 'data') / 'rejected.jsonl'}) and no earlier data or replay is "
                "configured; fix the data source, then resume"
            )
        sft = [ex for ex in data if ex.rejected is None]
        pairs = [ex for ex in data if ex.rejected is not None]
        seed = cfg.seed * 1000 + i
        start = self._training_start(i)
        train_cfg = self.resolved.train
        # how the plan teaches: its own choice (a policy's `teach` option), else the run's objective
        teach = self._plan_of(i).teach or ("distill" if train_cfg.objective == "distill" else "write")
        distill = teach != "write"
        stats = {}
        distilled = None
        if distill and (train_cfg.processes > 1 or cfg.teacher is None):
            why = "a teacher (--teacher vllm:<model>)" if cfg.teacher is None else "train.processes 1 (not built)"
            raise RunStopped(f"iteration {i}: teaching by {teach} needs {why}; fix the config, then resume")
        if train_cfg.processes > 1:
            losses = self._train_across_processes(i, start, sft, pairs, seed, writer)
        else:
            student = self.students.trainee(start, restart=cfg.student == "restart")
            with writer.work():  # the trainers' scratch stays inside the phase's temporary folder
                if teach != "distill":
                    student.train(sft, train_cfg, seed=seed, progress=self.progress, workdir=writer.path)
                    student.train_preferences(pairs, train_cfg, seed=seed, progress=self.progress, workdir=writer.path)
                # distill: the training set's prompts; both: the iteration's new prompts, after SFT.
                # The student samples, the teacher scores its tokens.
                taught = data if teach == "distill" else self._data(i)
                if distill and taught:
                    student.train_distill(
                        [ex.prompt for ex in taught],
                        train_cfg,
                        resolve_checkpoint(cfg.teacher.model),
                        seed=seed,
                        progress=self.progress,
                        workdir=writer.path,
                        answers=[ex.answer for ex in taught] if train_cfg.distill.on_policy < 1 else None,
                        max_new_tokens=self.max_new_tokens,
                    )
                    distilled = student.distill_info
                    self.teacher.record_scored(distilled.teacher_tokens)
            student.save(writer.path / "model")
            losses = student.train_losses
            stats = student.train_stats
            del student
            self.students.release()
        writer.info = {
            "examples": len(data),
            "start": "base" if cfg.student == "restart" else f"iter_{start}",
            "method": train_cfg.method,
        }
        if distill:
            writer.info["objective"] = teach
        if distilled is not None:  # prompts, the teacher's scored tokens, which trainer
            writer.info["distill"] = distilled.model_dump()
        if train_cfg.processes > 1:
            writer.info["processes"] = train_cfg.processes
        if losses:  # metrics.jsonl's train_loss, and the tracker's train/loss
            writer.info["loss"] = {trainer: round(loss, 6) for trainer, loss in losses.items()}
        if pairs and teach != "distill":
            writer.info["preference_pairs"] = len(pairs)
        if stats:  # metrics.jsonl's train_tokens_per_second and train_peak_gb
            writer.info["throughput"] = {trainer: s.model_dump(exclude={"loss"}) for trainer, s in stats.items()}
        summary = "; ".join(
            f"{s.tokens_per_second:.0f} tokens/s, peak {s.peak_gb:.1f} GB" + (f" ({trainer})" if len(stats) > 1 else "")
            for trainer, s in stats.items()
        )
        # the next evaluation reloads the published checkpoint, exactly as a resumed run would
        kept = f" from iter {start}, the best validated" if start != i and cfg.student == "continue" else ""
        if distilled is not None:
            scored = f"distilled on {distilled.prompts} prompts, teacher scored {distilled.teacher_tokens} tokens"
            summary = scored + (f"; {summary}" if summary else "")
        return f"{len(data)} examples ({cfg.data}, student {cfg.student}{kept})" + (f"; {summary}" if summary else "")

    def _training_start(self, i: int) -> int:
        """The checkpoint round i continues from: the best validated so far (the latest of
        equals), so a round that validated worse is not built upon; without a validation
        split, the last one."""
        best = handed_back(self.metrics()[: i + 1])
        return i if best is None else best

    def _train_across_processes(
        self, i: int, start: int, sft: list[Example], pairs: list[Example], seed: int, writer: PhaseWriter
    ) -> dict[str, float]:
        """The train phase under `accelerate launch`; its processes write the model into the
        phase folder, their output into train-worker.log there."""
        from teachloop.students.hf.distributed import LOG_FILE, TrainWorkerFailed, train_across_processes

        train_cfg = self.resolved.train
        self.students.release()  # the processes load their own copies
        self.console.print(f"  iter {i} training over {train_cfg.processes} processes (accelerate launch)")
        try:
            with writer.work():
                result = train_across_processes(
                    self.students.start_path(start, restart=self.config.student == "restart"),
                    self.students.base_path,
                    sft,
                    pairs,
                    train_cfg,
                    seed,
                    writer.path,
                )
        except TrainWorkerFailed as failed:
            log_file = self.store.phase_dir(i, "train") / LOG_FILE  # where the failed phase folder is kept
            raise RunStopped(
                f"iteration {i}: training over {train_cfg.processes} processes failed (exit code "
                f"{failed.returncode}); read {log_file}, fix the cause, then resume"
            ) from failed
        return result.losses

    # -- artifacts -------------------------------------------------------------------------
    def _report(self, i: int) -> EvalReport:
        return EvalFiles.read(self.store.phase_dir(i, "eval"))

    def _plan_of(self, i: int) -> DataPlan:
        return PlanFiles.read(self.store.phase_dir(i, "plan"))

    def _data(self, i: int) -> list[Example]:
        return DataFiles.read_examples(self.store.phase_dir(i, "data"))

    def _training_set(self, i: int) -> list[Example]:
        iterations = range(i + 1) if self.config.data == "accumulate" else [i]
        data = [ex for j in iterations for ex in self._data(j)]
        replay = replay_size(self.config.replay, len(data))
        if replay:
            pool = self.env.train_pool()
            rng = random.Random(f"{self.config.seed}:{i}:replay")
            data += rng.sample(pool, min(replay, len(pool)))
        return data

    def _history(self, i: int) -> list[HistoryEntry]:
        history = []
        for j in range(i):
            report, after = self._report(j), self._report(j + 1) if self.store.is_done(j + 1, "eval") else None
            history.append(
                HistoryEntry(
                    iteration=j,
                    accuracy=report.accuracy,
                    skill_accuracy=report.skill_accuracy,
                    allocation=self._plan_of(j).allocation(),
                    next_skill_accuracy=after.skill_accuracy if after else None,
                )
            )
        return history

    # -- metrics ---------------------------------------------------------------------------
    def metrics(self) -> list[MetricsRecord]:
        return compute_metrics(self.store, self.config.policy)


def replay_size(replay: int | str, new_examples: int) -> int:
    """Seed-pool examples to mix into a training set of `new_examples`: `auto` matches them
    one for one (measured in docs/benchmarks.md: it keeps the skills the plan does not target)."""
    return new_examples if replay == "auto" else int(replay)


def plan_summary(plan: DataPlan) -> str:
    """The plan's line: new examples per skill, then the pool draws; never a dangling separator."""
    parts = [", ".join(f"{s}:{c}" for s, c in plan.allocation().items())]
    if plan.pool_samples:
        parts.append(f"{plan.pool_samples} {'example' if plan.pool_samples == 1 else 'examples'} from the pool")
    return "; ".join(part for part in parts if part) or "no new data"


def build_engine(parts: RunParts, teacher: TeacherLLM | None, progress: bool) -> Engine:
    """The run's engine, built once (with its teacher, when it has one)."""
    return get_engine(parts.resolved.engine, teacher=teacher, progress=progress, **parts.resolved.engine_options)


def teacher_client(cfg: TeacherConfig, run_dir: Path, role: str, backends: Mapping[str, TeacherBackend]) -> TeacherLLM:
    """A run's client for one model: its files in the run folder, a started backend reused."""
    return TeacherLLM(cfg, run_dir=run_dir, resolve_model=resolve_checkpoint, role=role, backend=backends.get(cfg.spec))


def _start_teacher(teacher: TeacherLLM, console: Console) -> None:
    """Start the teacher and check it answers, saying so: an in-process engine takes a while."""
    if teacher.started:
        return
    start = time.perf_counter()
    console.print(f"  starting teacher {teacher.name} ...", highlight=False)
    teacher.start()
    console.print(f"  teacher ready in {time.perf_counter() - start:.1f}s", highlight=False)

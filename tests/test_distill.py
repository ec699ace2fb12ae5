"""On-policy distillation (`train.objective: distill`): the student samples answers to
prompts, the teacher scores the student's tokens, and the student moves towards the
teacher's distribution; a run without a teacher whose weights it can load is refused."""

from __future__ import annotations

import json
import math

import pytest
import torch

from teachloop.agents.teacher import TEACHER_BACKENDS, Backend, Completion
from teachloop.errors import ConfigError, TeachloopError
from teachloop.runs.config import RunConfig
from teachloop.runs.loop.checks import check_distill
from teachloop.students.hf import distill as distill_module
from teachloop.students.hf.student import TransformersStudent, quiet_hf_libraries
from teachloop.students.tiny import save_random_model
from teachloop.types import DistillSettings, TrainConfig

PROMPTS = ["copy ab", "copy cd", "reverse xy", "double 3", "len abc", "max 1 4", "succ b", "first qr"]


@pytest.fixture(scope="module")
def other_teacher(tmp_path_factory) -> str:
    """A tiny random Llama with the student's tokenizer and other weights (seed 1)."""
    return save_random_model(str(tmp_path_factory.mktemp("tiny-other")), seed=1)


def tiny_student(tmp_path) -> TransformersStudent:
    quiet_hf_libraries()
    return TransformersStudent.load(save_random_model(str(tmp_path / "student"), seed=0))


@torch.no_grad()
def kl_to_teacher(student: TransformersStudent, teacher, prompts: list[str], new_tokens: int = 6) -> float:
    """Mean KL(student || teacher) of the next-token distributions along the student's own
    greedy answers (the positions on-policy distillation trains on)."""
    total, positions = 0.0, 0
    for prompt in prompts:
        enc = student.tokenizer(student.render(prompt), return_tensors="pt", add_special_tokens=False)
        ids = student.model.generate(**enc, max_new_tokens=new_tokens, do_sample=False, pad_token_id=0)
        start = enc["input_ids"].shape[1] - 1
        s = torch.log_softmax(student.model(ids).logits[0, start:-1], -1)
        t = torch.log_softmax(teacher(ids).logits[0, start:-1], -1)
        total += float((s.exp() * (s - t)).sum())
        positions += s.shape[0]
    return total / positions


@pytest.mark.slow  # trains through TRL's distillation trainer (about half a minute)
def test_a_teacher_with_the_students_vocabulary_distils_through_trl_and_pulls_the_student_to_it(
    tmp_path, other_teacher
):
    from transformers import AutoModelForCausalLM

    student = tiny_student(tmp_path)
    teacher = AutoModelForCausalLM.from_pretrained(other_teacher, dtype=torch.float32).eval()
    before = kl_to_teacher(student, teacher, PROMPTS)
    epochs, limit = 4, 6
    cfg = TrainConfig(
        method="full", objective="distill", epochs=epochs, batch_size=8, distill={"max_new_tokens": limit}
    )
    student.train_distill(PROMPTS, cfg, other_teacher, seed=0)
    info, stats = student.distill_info, student.train_stats["distill"]
    after = kl_to_teacher(student, teacher, PROMPTS)

    assert info is not None and info.trainer == "distillation" and info.same_tokenizer
    assert info.prompts == len(PROMPTS) and info.off_policy_answers == 0
    # every step scores what the student sampled: at least one token per prompt, at most the limit
    assert len(PROMPTS) * epochs <= info.teacher_tokens <= len(PROMPTS) * limit * epochs
    assert math.isfinite(stats.loss) and stats.examples == len(PROMPTS) and stats.tokens == info.student_tokens
    assert after < 0.8 * before, (before, after)  # the student's distribution moved towards the teacher's


def test_an_on_policy_share_below_one_mixes_in_the_answers_through_gold(tmp_path, other_teacher):
    student = tiny_student(tmp_path)
    cfg = TrainConfig(
        method="lora", objective="distill", epochs=1, batch_size=4, distill={"max_new_tokens": 4, "on_policy": 0.5}
    )
    with pytest.raises(TeachloopError, match="needs the iteration's answers"):
        student.train_distill(PROMPTS[:4], cfg, other_teacher)
    student.train_distill(PROMPTS[:4], cfg, other_teacher, answers=["ab", "cd", "yx", "6"])
    assert student.distill_info.trainer == "gold" and student.distill_info.off_policy_answers == 4
    assert math.isfinite(student.train_stats["distill"].loss) and student.is_adapter
    # a later round trains the adapter it has (as an iteration continuing from a LoRA checkpoint)
    adapter = {k: v.clone() for k, v in student.model.named_parameters() if "lora_" in k}
    student.train_distill(
        PROMPTS[:4], cfg.model_copy(update={"distill": DistillSettings(max_new_tokens=4)}), other_teacher
    )
    assert student.distill_info.trainer == "distillation" and student.is_adapter
    moved = {k for k, v in student.model.named_parameters() if "lora_" in k and not torch.equal(v, adapter[k])}
    assert moved and moved <= set(adapter)


def test_a_repeated_prompt_is_distilled_once_with_its_own_answer(tmp_path, other_teacher, monkeypatch):
    student = tiny_student(tmp_path)
    seen = {}

    def fit(trainer_cls, args, rows, lengths, cfg, progress, **kwargs):
        seen["rows"] = rows
        raise StopIteration  # the rows are what this test reads

    monkeypatch.setattr(student, "_fit", fit)
    cfg = TrainConfig(method="full", objective="distill", distill={"max_new_tokens": 4, "on_policy": 0.5})
    prompts, answers = ["copy ab", "copy ab", "copy cd", "double 3"], ["ab", "ab", "cd", "6"]
    with pytest.raises(StopIteration):
        student.train_distill(prompts, cfg, other_teacher, answers=answers)
    pairs = [(row["prompt"][0]["content"], row["completion"][0]["content"]) for row in seen["rows"]]
    assert pairs == [("copy ab", "ab"), ("copy cd", "cd"), ("double 3", "6")]


def test_across_tokenizers_that_are_not_byte_level_is_one_line(tmp_path, other_teacher, monkeypatch):
    student = tiny_student(tmp_path)
    monkeypatch.setattr(distill_module, "same_vocabulary", lambda *_: False)  # as if the vocabularies differed
    cfg = TrainConfig(method="full", objective="distill", distill={"max_new_tokens": 4})
    with pytest.raises(TeachloopError, match="byte-level BPE tokenizers on both sides, and the student's"):
        student.train_distill(PROMPTS, cfg, other_teacher)


@pytest.mark.parametrize(
    ("teacher", "message"),
    [
        (None, "needs a teacher with local weights"),
        ({"backend": "openai", "model": "gpt-4o-mini"}, "teacher openai:gpt-4o-mini is reached through an endpoint"),
    ],
)
def test_distill_without_a_teacher_it_can_load_is_refused_before_spending(teacher, message):
    config = RunConfig.model_validate({"train": {"method": "distill"}, "teacher": teacher})
    with pytest.raises(ConfigError, match=message):
        check_distill(config)


def test_distill_checks_pass_for_a_local_teacher_and_refuse_processes():
    local = {"backend": "vllm", "model": "some/model"}
    check_distill(RunConfig.model_validate({"train": {"objective": "distill"}, "teacher": local}))
    check_distill(RunConfig.model_validate({"teacher": {"backend": "openai", "model": "m"}}))  # objective auto
    with pytest.raises(ConfigError, match="train.processes 2 with distillation is not built"):
        check_distill(RunConfig.model_validate({"train": {"objective": "distill", "processes": 2}, "teacher": local}))


@pytest.mark.parametrize("policy", ["stat-syn", "skill-list"])
def test_a_policy_that_teaches_by_distillation_is_checked_before_spending(policy):
    from teachloop.agents.policies import get_policy
    from teachloop.agents.policies.base import policy_teach

    assert policy_teach(get_policy(policy)) is None  # auto: the run's train.objective
    distilling = get_policy(policy, teach="both")
    assert policy_teach(distilling) == "both"
    endpoint = RunConfig.model_validate(
        {"policy": policy, "policy_options": {"teach": "both"}, "teacher": {"backend": "openai", "model": "m"}}
    )
    with pytest.raises(ConfigError, match=f"policy {policy} with teach both needs the teacher's weights.*teach=write"):
        check_distill(endpoint, policy_teach(distilling))
    # the policy's choice wins over the run's objective, both ways
    check_distill(endpoint.model_copy(update={"train": TrainConfig(objective="distill")}), "write")
    with pytest.raises(ConfigError, match="with teach distill needs a teacher with local weights"):
        check_distill(RunConfig.model_validate({"policy": policy}), "distill")


def test_a_run_refuses_a_distilling_policy_without_a_teacher_before_anything_is_written(tmp_path):
    from teachloop.runs.loop.assemble import assemble_run

    config = RunConfig.model_validate({"policy": "stat-syn", "policy_options": {"teach": "distill"}})
    with pytest.raises(ConfigError, match="policy stat-syn with teach distill needs a teacher"):
        assemble_run(config, models=False)


class NoDistillStudent(TransformersStudent):
    """A plug-in student that does not distil."""

    train_distill = None


def test_distill_with_a_student_that_does_not_distil_is_refused_before_spending():
    from teachloop.students.registry import STUDENTS

    STUDENTS.register("nodistill", NoDistillStudent)
    try:
        config = RunConfig.model_validate(
            {
                "train": {"objective": "distill"},
                "student_backend": "nodistill",
                "teacher": {"backend": "vllm", "model": "m"},
            }
        )
        with pytest.raises(ConfigError, match="student backend 'nodistill' does not"):
            check_distill(config)
    finally:
        STUDENTS.unregister("nodistill")


class WeightsBackend(Backend):
    """A teacher backend with local weights that only answers the start-up check: the run
    below draws its data from the environment's generator and uses the teacher's weights to
    distil."""

    local_weights = True

    def complete(self, jobs, events) -> None:
        for index, _ in enumerate(jobs):
            events.done(index, Completion(text=json.dumps({"ok": True}), prompt_tokens=1, completion_tokens=1))


@pytest.fixture
def weights_teacher(other_teacher):
    TEACHER_BACKENDS.register("weights", WeightsBackend)
    yield f"weights:{other_teacher}"
    TEACHER_BACKENDS.unregister("weights")


@pytest.mark.slow  # two loops (a run and its resume)
def test_a_distill_run_records_the_teachers_scored_tokens_and_resumes_without_redoing(tmp_path, weights_teacher):
    from typer.testing import CliRunner

    from teachloop.cli import app
    from teachloop.runs.loop.store import RunStore

    args = [
        "run", "--teacher", weights_teacher, "--engine", "programmatic", "--train.method", "distill",
        "--iterations", "2", "--budget", "16", "--max-new-tokens", "6", "--train.epochs", "1",
        "--env-option", "eval_per_skill=2", "--env-option", "pool_per_skill=2", "--replay", "0",
        "--out", str(tmp_path), "--name", "d",
    ]  # fmt: skip
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    store = RunStore(tmp_path / "d")
    for i in (0, 1):  # iteration 1 distils on from iteration 0's checkpoint
        train = store.phase_record(i, "train")
        assert train.info["objective"] == "distill" and train.info["method"] == "full"
        scored = train.info["distill"]["teacher_tokens"]
        assert 16 <= train.info["distill"]["prompts"] <= train.info["examples"] and scored >= 16
        assert f"teacher scored {scored} tokens" in result.output
        assert "distill" in train.info["loss"] and (tmp_path / "d" / f"iter_{i}" / "train" / "model").is_dir()

    again = CliRunner().invoke(app, ["resume", str(tmp_path / "d")])
    assert again.exit_code == 0, again.output
    assert "finished already" in again.output and "teacher scored" not in again.output


@pytest.mark.slow
def test_smollm2_distils_from_qwen_across_tokenizers_towards_the_teachers_answers(smollm2, qwen_teacher):
    """SmolLM2 (49k vocabulary) learns from Qwen2.5-Coder-0.5B (151k) through GOLD's ULD
    loss, LoRA, one optimizer step on two prompts: the student's log-probability of the
    teacher's own greedy answers rises (measured: -4.99 -> -4.45 per token; two steps: -3.50).
    10 s on 2 idle cores (45 s on busy ones)."""
    quiet_hf_libraries()
    prompts = ["What is 2 + 3? Reply with the number only.", "What is 7 * 6? Reply with the number only."]
    teacher = TransformersStudent.load(qwen_teacher)
    answers = teacher.answer(prompts, max_new_tokens=8)
    del teacher
    student = TransformersStudent.load(smollm2)

    @torch.no_grad()
    def logprob_of_answers() -> float:
        total = 0.0
        for prompt, answer in zip(prompts, answers, strict=True):
            head = student.tokenizer(student.render(prompt), add_special_tokens=False)["input_ids"]
            ids = torch.tensor(
                [student.tokenizer(student.render(prompt) + answer, add_special_tokens=False)["input_ids"]]
            )
            logp = torch.log_softmax(student.model(ids).logits[0, :-1].float(), -1)
            targets = ids[0, len(head) :]
            total += float(logp[len(head) - 1 :].gather(-1, targets[:, None]).mean())
        return total / len(prompts)

    before = logprob_of_answers()
    cfg = TrainConfig(method="lora", objective="distill", epochs=1, batch_size=2, distill={"max_new_tokens": 6})
    student.train_distill(prompts, cfg, qwen_teacher, seed=0)
    info, stats = student.distill_info, student.train_stats["distill"]
    assert info.trainer == "gold-uld" and not info.same_tokenizer and info.teacher_tokens > 0
    assert math.isfinite(stats.loss) and student.is_adapter
    after = logprob_of_answers()
    assert after > before + 0.1, (before, after)


@pytest.mark.slow  # one loop iteration on the embedded student, SFT then distillation
def test_a_policy_that_teaches_both_ways_writes_then_distils_on_its_new_prompts(tmp_path, weights_teacher):
    from typer.testing import CliRunner

    from teachloop.cli import app
    from teachloop.runs.loop.artifacts import PlanFiles
    from teachloop.runs.loop.store import RunStore

    args = [
        "run", "--teacher", weights_teacher, "--engine", "programmatic", "--policy", "stat-syn",
        "--policy-option", "teach=both", "--iterations", "1", "--budget", "12", "--max-new-tokens", "6",
        "--train.epochs", "1", "--env-option", "eval_per_skill=2", "--env-option", "pool_per_skill=2",
        "--replay", "8", "--out", str(tmp_path), "--name", "b",
    ]  # fmt: skip
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    store = RunStore(tmp_path / "b")
    assert PlanFiles.read(store.phase_dir(0, "plan")).teach == "both"
    train = store.phase_record(0, "train")
    assert train.info["objective"] == "both"
    new = store.phase_record(0, "data").info["examples"]
    assert train.info["examples"] == new + 8  # SFT on the new examples and the replayed ones ...
    assert train.info["distill"]["prompts"] == new  # ... distillation on the new prompts only
    assert set(train.info["loss"]) == {"sft", "distill"}
    ledger = json.loads((tmp_path / "b" / "teacher_ledger.json").read_text())
    assert ledger["scored_tokens"] == train.info["distill"]["teacher_tokens"] > 0
    assert train.info["teacher"]["scored_tokens"] == ledger["scored_tokens"]  # the phase's share, in metrics

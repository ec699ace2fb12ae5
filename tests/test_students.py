"""Any transformers causal LM as the student: chat template, LoRA adapters through peft."""

import json

import pytest
from conftest import teachloop

from teachloop.runs.reporting.report import load_metrics
from teachloop.students.base import Reply
from teachloop.students.hf.student import TransformersStudent as Student
from teachloop.types import Example, TrainConfig

pytestmark = pytest.mark.slow


def test_lora_student_trains_an_adapter_per_iteration_and_reloads_it(tiny_teacher, tmp_path):
    out = teachloop(
        "run", "--out", str(tmp_path), "--name", "lora", "--student-model", tiny_teacher, "--iterations", "2",
        "--budget", "40", "--epochs", "1", "--lr", "0.01", "--quiet",
        "--config", str(small_env(tmp_path)),
    )  # fmt: skip
    assert out.returncode == 0, out.stderr[-3000:]
    run = tmp_path / "lora"
    for i in (0, 1):
        model_dir = run / f"iter_{i}" / "train" / "model"
        adapter = json.loads((model_dir / "adapter_config.json").read_text())
        assert adapter["base_model_name_or_path"] == tiny_teacher and adapter["r"] == 16
        assert not (model_dir / "model.safetensors").exists()  # the adapter alone, not a merged copy
        assert json.loads((run / f"iter_{i}/train/done.json").read_text())["info"]["method"] == "lora"
    assert len(load_metrics(run)) == 3


def test_a_saved_adapter_reloads_and_answers_exactly_like_the_trained_model(tiny_teacher, tmp_path):
    student = Student.load(tiny_teacher)
    prompts = ["copy ab", "copy abc", "max 123"]
    before = student.answer(prompts, max_new_tokens=4)
    data = [Example(prompt="copy ab", answer="ab", skills=["copy"])] * 32
    student.train(data, TrainConfig(method="lora", epochs=10, learning_rate=0.05, batch_size=8))
    trained = student.answer(prompts, max_new_tokens=4)
    assert trained != before  # the adapter changed what the model says
    student.save(tmp_path / "adapter")
    reloaded = Student.load(tmp_path / "adapter")
    assert reloaded.is_adapter and reloaded.chat
    assert not (tmp_path / "adapter" / "model.safetensors").exists()  # the adapter alone
    assert reloaded.answer(prompts, max_new_tokens=4) == trained


def test_chat_template_is_used_for_training_and_generation(tiny_teacher):
    student = Student.load(tiny_teacher)
    assert student.render("hi") == "user: hi\nassistant: "
    before = student.answer(["copy ab"], max_new_tokens=4)
    data = [Example(prompt="copy ab", answer="ab", skills=["copy"])] * 32
    student.train(data, TrainConfig(method="full", epochs=10, learning_rate=0.005, batch_size=8))
    after = student.answer(["copy ab"], max_new_tokens=4)
    assert after == ["ab"] != before  # learned through the template it is prompted with


def small_env(tmp_path):
    path = tmp_path / "small.yaml"
    path.write_text("environment_options: {eval_per_skill: 5, pool_per_skill: 5}\n")
    return path


def test_vllm_evaluation_with_lora_adapters_scores_like_transformers(tiny_teacher, tmp_path):
    from conftest import require_vllm

    require_vllm()
    common = [
        "--student-model", tiny_teacher, "--iterations", "2", "--budget", "40", "--epochs", "1",
        "--lr", "0.01", "--seed", "3", "--quiet", "--config", str(small_env(tmp_path)),
    ]  # fmt: skip
    for backend in ("transformers", "vllm"):
        out = teachloop("run", "--out", str(tmp_path), "--name", backend, "--eval-backend", backend, *common)
        assert out.returncode == 0, out.stderr[-3000:]
    hf, vl = (load_metrics(tmp_path / name) for name in ("transformers", "vllm"))
    assert [r.skill_accuracy for r in vl] == [r.skill_accuracy for r in hf]
    for i in range(3):  # the very same greedy answers, item by item
        answers = [
            [json.loads(line)["response"] for line in (tmp_path / name / f"iter_{i}/eval/attempts.jsonl").open()]
            for name in ("transformers", "vllm")
        ]
        assert answers[0] == answers[1]
    refused = teachloop("run", "--eval-backend", "vllm", "--quiet", cwd=tmp_path)  # embedded: full fine-tuning
    assert refused.returncode == 2 and "needs train.method lora" in refused.stderr


def test_the_lifecycle_loads_a_model_only_when_a_probe_is_used_and_probes_like_evaluation(tiny_teacher, tmp_path):
    from teachloop.environments.skillworld import SkillWorld
    from teachloop.students.lifecycle import StudentLifecycle

    env = SkillWorld(eval_per_skill=1, pool_per_skill=1)
    students = StudentLifecycle(tiny_teacher, checkpoint=lambda i: tmp_path / f"missing-{i}")
    probe = students.probe(0, env, max_new_tokens=4)
    assert not probe.loaded and students._loaded is None  # a policy that never probes costs no model
    prompts = ["copy ab", "max 123"]
    assert probe.answer(prompts) == students.answer(0, prompts, max_new_tokens=4)  # the same rendering
    assert probe.loaded
    rendered = probe.student.tokenizer.decode(probe._batch([Example(prompt="copy ab", answer="ab")])["input_ids"][0])
    assert rendered.startswith("user: copy ab\nassistant: ab")  # influence sees the chat template too


# Chat templates whose assistant turn does not end with the tokenizer's eos: with an
# end-of-turn token of its own (Gemma's <end_of_turn>, Llama 3's <|eot_id|>), and with
# plain text only. SFT through the template once taught such a student to end its answers
# with a token generation did not stop on: it wrote to the limit.
END_OF_TURN_TEMPLATE = (
    "{% for m in messages %}{{ m['role'] }}: {{ m['content'] }}"
    "{% if m['role'] == 'assistant' %}<|end|>{% endif %}\n{% endfor %}"
    "{% if add_generation_prompt %}assistant: {% endif %}"
)
PLAIN_TEXT_TEMPLATE = (
    "{% for m in messages %}{{ m['role'] }}: {{ m['content'] }}\n{% endfor %}"
    "{% if add_generation_prompt %}assistant: {% endif %}"
)


def chat_student(template: str, special_tokens: list[str]) -> Student:
    from teachloop.students.tiny import build_char_tokenizer, build_tiny_llama

    tokenizer = build_char_tokenizer()
    tokenizer.add_special_tokens({"additional_special_tokens": special_tokens})
    tokenizer.chat_template = template
    return Student(build_tiny_llama(tokenizer, max_positions=128), tokenizer)


@pytest.mark.parametrize(
    ("template", "special_tokens"),
    [(END_OF_TURN_TEMPLATE, ["<|end|>"]), (PLAIN_TEXT_TEMPLATE, [])],
    ids=["end-of-turn-token", "plain-text-turn"],
)
def test_a_trained_chat_student_ends_its_answers_and_an_answer_cut_by_the_limit_is_flagged(template, special_tokens):
    student = chat_student(template, special_tokens)
    words = ["ab", "efg"]
    data = [Example(prompt=f"copy {w}", answer=w, skills=["copy"]) for w in words] * 16
    student.train(data, TrainConfig(method="full", epochs=10, learning_rate=0.005, batch_size=8))
    replies = student.reply([f"copy {w}" for w in words], max_new_tokens=24)
    assert replies == [Reply(w, hit_limit=False) for w in words]  # ended, long before the limit
    assert student.reply(["copy efg"], max_new_tokens=2) == [Reply("ef", hit_limit=True)]
    assert student.reply(["copy efg"], max_new_tokens=24, stop=["f"]) == [Reply("e", hit_limit=False)]


def test_the_evaluation_summary_counts_the_answers_that_hit_the_token_limit(tmp_path):
    out = teachloop(
        "run", "--out", str(tmp_path), "--name", "short", "--iterations", "1", "--budget", "8", "--epochs", "1",
        "--max-new-tokens", "2", "--config", str(small_env(tmp_path)),
    )  # fmt: skip
    assert out.returncode == 0, out.stderr[-3000:]
    run = tmp_path / "short"
    for record in load_metrics(run):
        attempts = [json.loads(line) for line in (run / f"iter_{record.iteration}/eval/attempts.jsonl").open()]
        hit = [a for a in attempts if a["hit_limit"]]
        assert all(len(a["response"]) == 2 for a in hit)  # one character per token: cut at 2
        assert all(len(a["response"]) < 2 for a in attempts if not a["hit_limit"])  # ended on its own
        assert record.hit_limit == len(hit) > 0.2 * len(attempts)  # copy, reverse, double, ... are longer
        assert f"warning: {len(hit)}/{len(attempts)} hit the 2-token limit" in out.stderr
    assert "ran to the 2-token limit without ending" in out.stderr  # also logged, with what to do


def test_an_eval_backend_registered_like_any_component_answers_every_evaluation(tmp_path):
    """An evaluation backend is a class registered under a name (here in-process, as a
    notebook would; a package uses the `teachloop.eval_backends` entry points): the run's
    evaluations go through it, and an unknown name is refused before the run starts."""
    from typer.testing import CliRunner

    from teachloop.cli import app
    from teachloop.students.eval_backends import EVAL_BACKENDS, TransformersEval

    asked: list[tuple[int, int]] = []

    class Counting(TransformersEval):
        """Transformers decoding that counts what it is asked."""

        name = "counting"

        def reply(self, i, prompts, max_new_tokens, progress, stop):
            asked.append((i, len(prompts)))
            return super().reply(i, prompts, max_new_tokens, progress, stop)

    common = ["--iterations", "1", "--budget", "40", "--epochs", "1", "--seed", "3", "--quiet",
              "--config", str(small_env(tmp_path)), "--out", str(tmp_path)]  # fmt: skip
    EVAL_BACKENDS.register("counting", Counting)
    try:
        for backend in ("counting", "transformers"):
            result = CliRunner().invoke(app, ["run", "--name", backend, "--eval-backend", backend, *common])
            assert result.exit_code == 0, result.output
        refused = CliRunner().invoke(app, ["run", "--name", "x", "--eval-backend", "nosuch", *common])
    finally:
        EVAL_BACKENDS.unregister("counting")
    assert "unknown eval backend 'nosuch'; available: auto, counting, raydata" in str(refused.exception)
    assert not (tmp_path / "x" / "iter_0").exists()
    eval_items = len((tmp_path / "counting/iter_0/eval/attempts.jsonl").read_text().splitlines())
    validation_items = len((tmp_path / "counting/iter_0/eval/validation.jsonl").read_text().splitlines())
    # one call per evaluation: the eval set and the validation split in one batch
    assert [i for i, _ in asked] == [0, 1] and all(n == eval_items + validation_items for _, n in asked)
    counted, plain = (load_metrics(tmp_path / name) for name in ("counting", "transformers"))
    assert [r.skill_accuracy for r in counted] == [r.skill_accuracy for r in plain]

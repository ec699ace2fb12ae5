"""Training memory is known before a step runs: micro batches are sized by tokens, a phase
that cannot fit is refused in one line, and each train phase reports its speed and peak."""

import json

import pytest

from teachloop.errors import TeachloopError
from teachloop.runs.reporting.report import load_metrics
from teachloop.students.hf import memory
from teachloop.students.hf.student import TransformersStudent as Student
from teachloop.types import Example, LoraSettings, TrainConfig


@pytest.fixture(scope="module")
def student(tiny_teacher) -> Student:
    return Student.load(tiny_teacher)


def rows_of(student: Student, words: int, n: int = 4) -> list[dict]:
    return student._rows(
        [Example(prompt="copy " + "ab " * words, answer="ab " * words, skills=["copy"])] * n, "completion"
    )


def test_micro_batches_shrink_with_the_length_of_the_longest_example(student):
    cfg = TrainConfig(method="lora", batch_size=64, micro_batch_tokens=400)
    short, long = (max(student.token_lengths(rows_of(student, w), "completion")) for w in (5, 100))
    assert long > 5 * short
    assert student.micro_batch(cfg, short) == max(d for d in (1, 2, 4, 8, 16, 32, 64) if d * short <= 400)
    assert student.micro_batch(cfg, long) * long <= 400 or student.micro_batch(cfg, long) == 1
    assert student.micro_batch(cfg, 10_000) == 1  # never below one example
    # an explicit micro batch size wins, still a divisor of the batch
    assert student.micro_batch(cfg.model_copy(update={"micro_batch_size": 12}), long) == 8


def test_the_default_token_budget_follows_the_model_shape(student):
    per_token = memory.activation_bytes_per_token(student.model.config)
    assert memory.micro_batch_tokens(student.model.config) == memory.ACTIVATION_BUDGET // per_token
    # the embedded default run keeps its whole batch in one pass (its data stays byte-identical)
    assert student.micro_batch(TrainConfig(method="full"), 60) == 64


def test_a_preference_row_counts_both_answers(student):
    example = Example(prompt="copy ab", answer="ab " * 20, rejected="ba " * 20, skills=["copy"])
    pair = student.token_lengths(student._rows([example], "chosen"), "chosen")[0]
    single = student.token_lengths(student._rows([example.model_copy(update={"rejected": None})], "chosen"), "chosen")[
        0
    ]
    assert pair > 1.5 * single


def test_a_step_that_cannot_fit_is_refused_before_training(student, monkeypatch):
    monkeypatch.setattr(memory, "available_bytes", lambda: 10_000_000)  # 10 MB free
    data = [Example(prompt="copy " + "ab " * 200, answer="ab " * 200, skills=["copy"])] * 2
    before = [p.detach().clone() for p in student.model.parameters()]
    with pytest.raises(TeachloopError, match=r"needs about .* GB and 0.0 GB is free now; train on shorter examples"):
        student.train(data, TrainConfig(method="full", epochs=1, batch_size=2))
    assert all((a == b).all() for a, b in zip(before, student.model.parameters(), strict=True))


def test_training_reports_tokens_per_second_and_its_peak_memory(student):
    data = [Example(prompt="copy ab", answer="ab", skills=["copy"])] * 8
    student.train(data, TrainConfig(method="full", epochs=2, batch_size=4, learning_rate=1e-4))
    stats = student.train_stats["sft"]
    assert stats.examples == 8 and stats.micro_batch == 4
    assert stats.tokens == 2 * sum(student.token_lengths(student._rows(data, "completion"), "completion"))
    assert stats.seconds > 0 and stats.tokens_per_second > 0
    assert 0.05 < stats.peak_gb < 50
    assert student.train_losses == {"sft": stats.loss}


def test_lora_keeps_no_dropped_copy_of_its_inputs_by_default():
    assert LoraSettings().dropout == 0.0


def test_a_run_records_each_train_phase_speed_and_memory(small_run):
    metrics = load_metrics(small_run)
    for record in metrics[1:]:
        assert record.train_tokens_per_second and record.train_tokens_per_second > 0
        assert record.train_peak_gb and record.train_peak_gb > 0
    info = json.loads((small_run / "iter_0" / "train" / "done.json").read_text())["info"]
    assert info["throughput"]["sft"]["tokens"] > 0
    report = (small_run / "report.md").read_text()
    assert "tokens/s" in report and "peak" in report


def test_a_micro_batch_that_would_not_fit_is_shrunk_to_one_that_does(student, monkeypatch):
    cfg = TrainConfig(method="lora", batch_size=8)
    longest = 300
    one = student.step_bytes(cfg, longest, 1)
    assert student.micro_batch(cfg, longest) > 2
    monkeypatch.setattr(memory, "available_bytes", lambda: int(2.5 * one / memory.HEADROOM))
    assert student.fitted_micro_batch(cfg, longest) == 2


def test_bf16_autocast_is_chosen_for_lora_where_the_hardware_computes_it(monkeypatch):
    monkeypatch.setattr(memory, "native_bf16", lambda: True)
    assert Student.bf16(TrainConfig(method="lora"))
    assert not Student.bf16(TrainConfig(method="full"))  # the embedded default run stays float32
    assert not Student.bf16(TrainConfig(method="lora", precision="fp32"))
    monkeypatch.setattr(memory, "native_bf16", lambda: False)
    assert not Student.bf16(TrainConfig(method="lora"))  # emulated bf16 is slower than float32
    assert Student.bf16(TrainConfig(method="full", precision="bf16"))


def test_evaluation_batches_shrink_to_what_fits_and_answer_the_same(student, monkeypatch):
    from teachloop.students.hf import decode

    prompts = [f"copy {'ab ' * k}" for k in range(1, 9)]
    alone = student.reply(prompts, max_new_tokens=4, decoder="fast")
    longest = max(
        map(len, student.tokenizer([student.render(p) for p in prompts], add_special_tokens=False)["input_ids"])
    )
    one = memory.decode_bytes(student.model.config, 1, longest, 4, student.model.dtype.itemsize)
    batches: list[int] = []
    greedy = decode.greedy_decode

    def counted(model, input_ids, *args, **kwargs):
        batches.append(len(input_ids))
        return greedy(model, input_ids, *args, **kwargs)

    monkeypatch.setattr(decode, "greedy_decode", counted)
    monkeypatch.setattr(memory, "available_bytes", lambda: int(2.5 * one / memory.HEADROOM))
    assert student.reply(prompts, max_new_tokens=4, decoder="fast") == alone
    assert max(batches) == 2 and sum(batches) == len(prompts)


def test_a_prompt_that_cannot_be_answered_in_the_free_memory_is_refused_in_one_line(student, monkeypatch):
    monkeypatch.setattr(memory, "available_bytes", lambda: 10_000)
    with pytest.raises(TeachloopError, match=r"^answering a prompt of \d+ tokens with up to 4 new tokens needs about"):
        student.reply(["copy ab"], max_new_tokens=4)

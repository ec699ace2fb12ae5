"""A CPU vLLM engine's generation speed with and without teachloop's CPU setting (issue 32:
"teachers at the hardware's pace").

    python benchmarks/engine_cpus.py [MODEL] [--prompts 16] [--tokens 128]

vLLM keeps one CPU from its worker for the engine's scheduler process by default; on a
2-CPU machine that is half of it. teachloop starts its CPU engines with
VLLM_CPU_NUM_OF_RESERVED_CPU=0 on hosts of at most SMALL_HOST_CPUS CPUs
(`teachloop/inference/vllm_options.py: cpu_engine_env`). This starts the same engine twice,
each in a process of its own, once as vLLM would by default and once as teachloop does,
generates `--prompts` answers of exactly `--tokens` tokens in one batch and one answer
alone, and prints tokens per second and the ratio. MODEL: a local model folder or a
packaged model's name (default: the real teacher, Qwen2.5-Coder-0.5B-Instruct).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

RESULT = "engine_cpus result: "


def measure(model: str, prompts: int, tokens: int) -> dict[str, float]:
    """Run in a child process: the engine reads the environment when it starts."""
    from vllm import LLM, SamplingParams

    from teachloop.inference.vllm_options import cpu_engine_options

    start = time.perf_counter()
    llm = LLM(model=model, **cpu_engine_options(model))
    started = time.perf_counter()
    sampling = SamplingParams(max_tokens=tokens, ignore_eos=True, temperature=0.0)
    asks = [f"Write a Python function number {i} that adds two numbers, with a docstring." for i in range(prompts)]
    outputs = llm.generate(asks, sampling, use_tqdm=False)
    batch = time.perf_counter()
    llm.generate(asks[:1], sampling, use_tqdm=False)
    alone = time.perf_counter()
    written = sum(len(o.outputs[0].token_ids) for o in outputs)
    return {
        "start_s": started - start,
        "batch_tokens_per_s": written / (batch - started),
        "alone_tokens_per_s": tokens / (alone - batch),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("model", nargs="?", default="qwen2.5-coder-0.5b-instruct")
    parser.add_argument("--prompts", type=int, default=16)
    parser.add_argument("--tokens", type=int, default=128)
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(RESULT + json.dumps(measure(args.model, args.prompts, args.tokens)), flush=True)
        return 0

    from teachloop.inference.vllm_options import RESERVED_CPU_ENV, cpu_engine_env, usable_cpus
    from teachloop.students.checkpoints import resolve_checkpoint
    from teachloop.students.packaged import locate

    model = args.model if os.path.isdir(args.model) else resolve_checkpoint(str(locate(args.model)))
    ours = cpu_engine_env()
    print(f"{model}: {usable_cpus()} CPUs; teachloop's engine environment: {ours or 'as vLLM (nothing set)'}")
    base = {k: v for k, v in os.environ.items() if k != RESERVED_CPU_ENV}
    rows = {}
    for name, env in (("vLLM's default", base), ("teachloop", base | ours)):
        done = subprocess.run(
            [sys.executable, __file__, model, "--prompts", str(args.prompts), "--tokens", str(args.tokens), "--child"],
            env=env | {"VLLM_LOGGING_LEVEL": "WARNING"},
            capture_output=True,
            text=True,
            check=False,
        )
        if done.returncode:
            print(done.stderr[-3000:], file=sys.stderr)
            return done.returncode
        # vLLM writes to stdout too (at shutdown): the result is the line marked as such
        result = [line for line in done.stdout.splitlines() if line.startswith(RESULT)]
        rows[name] = json.loads(result[-1][len(RESULT) :])
    print(f"{'':16} {'start s':>8} {f'{args.prompts} prompts tok/s':>18} {'1 prompt tok/s':>15}")
    for name, row in rows.items():
        print(f"{name:16} {row['start_s']:8.1f} {row['batch_tokens_per_s']:18.1f} {row['alone_tokens_per_s']:15.1f}")
    default, ours_row = rows["vLLM's default"], rows["teachloop"]
    print(
        f"ratio teachloop / default: batch {ours_row['batch_tokens_per_s'] / default['batch_tokens_per_s']:.2f}x, "
        f"one prompt {ours_row['alone_tokens_per_s'] / default['alone_tokens_per_s']:.2f}x"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())

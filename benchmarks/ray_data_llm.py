"""Teacher throughput: vLLM engines run by Ray Data LLM (`raydata-vllm`) vs the in-process
vLLM engine (`vllm`), on the same structured-output requests.

    python benchmarks/ray_data_llm.py [--requests 64] [--batches 2] [--max-tokens 96]
                                      [--model smollm2|DIR|.gguf] [--concurrency 1]

Each backend answers `--batches` batches of `--requests` JSON-schema requests (seeded
sampling, temperature 0.8) through `TeacherLLM`, the path a run takes, each into an empty
cache. Printed per batch: wall seconds, requests/s, completion tokens/s, and the ratio of
Ray Data's time to the in-process engine's. The in-process engine starts once (in batch 1)
and stays up; Ray Data starts its engines for every dataset, so every Ray batch pays that
start-up. On a GPU machine, run with a real teacher and `--concurrency N` (N engines over N
GPUs) to see data parallelism; on this CPU machine both share the same 2 cores.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=64)
    parser.add_argument("--batches", type=int, default=2)
    parser.add_argument("--max-tokens", type=int, default=96)
    parser.add_argument("--model", default="smollm2", help="smollm2 | a model folder or .gguf file")
    parser.add_argument("--concurrency", type=int, default=1, help="Ray Data engine replicas")
    args = parser.parse_args()

    from pydantic import BaseModel, Field

    from teachloop.agents.teacher import TeacherConfig, TeacherLLM
    from teachloop.students.checkpoints import resolve_checkpoint
    from teachloop.students.hf.student import quiet_hf_libraries

    class Pair(BaseModel):
        question: str = Field(max_length=60)
        answer: str = Field(max_length=20)

    quiet_hf_libraries()
    if args.model == "smollm2":
        from real_student import default_model

        model = resolve_checkpoint(default_model())
    else:
        model = resolve_checkpoint(args.model)
    work = Path(tempfile.mkdtemp(prefix="teachloop-raydata-bench-"))
    results: dict[str, list[tuple[float, int, int]]] = {}
    for backend in ("vllm", "raydata-vllm"):
        cfg = TeacherConfig(
            backend=backend,
            model=model,
            max_tokens=args.max_tokens,
            temperature=0.8,
            seed=0,
            concurrency=args.concurrency,
            validation_retries=0,
        )
        teacher = TeacherLLM(cfg, run_dir=work / backend)
        results[backend] = []
        for b in range(args.batches):
            prompts = [
                [{"role": "user", "content": f"Write arithmetic question {b * args.requests + i} and its answer."}]
                for i in range(args.requests)
            ]
            before = teacher.ledger.model_copy()
            start = time.perf_counter()
            replies = teacher.structured(prompts, Pair)
            seconds = time.perf_counter() - start
            tokens = teacher.ledger.completion_tokens - before.completion_tokens
            valid = sum(r is not None for r in replies)
            results[backend].append((seconds, tokens, valid))
            print(
                f"{backend:13s} batch {b + 1}: {seconds:7.1f} s  {args.requests / seconds:6.2f} req/s  "
                f"{tokens / seconds:7.1f} tok/s  {valid}/{args.requests} valid",
                flush=True,
            )
        if backend == "raydata-vllm":
            import ray

            ray.shutdown()
        del teacher
    print("\nratio raydata-vllm / vllm wall time, per batch:")
    for b in range(args.batches):
        ray_s, local_s = results["raydata-vllm"][b][0], results["vllm"][b][0]
        print(f"  batch {b + 1}: {ray_s:.1f} s / {local_s:.1f} s = {ray_s / local_s:.2f}x")


if __name__ == "__main__":
    main()

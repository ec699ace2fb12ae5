"""Teacher-call throughput: concurrent vs sequential requests, and a cached rerun.

    python benchmarks/teacher_concurrency.py [--requests 48] [--concurrency 16]
    python benchmarks/teacher_concurrency.py --base-url http://127.0.0.1:8000/v1 --model NAME

Without --base-url it starts `vllm serve` on loopback with a tiny random-weight Llama
(the same kind the tests use). All figures come from this one run: the same number of
structured requests, sent one at a time and then `--concurrency` at a time (distinct
prompts, separate caches, so both pay), then the concurrent batch again from the cache.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path

from pydantic import BaseModel, Field

from teachloop.agents.teacher import TeacherConfig, TeacherLLM


class Item(BaseModel):
    question: str = Field(max_length=60)
    answer: str = Field(max_length=20)


def conversations(n: int, tag: str) -> list[list[dict[str, str]]]:
    return [[{"role": "user", "content": f"Write practice item {tag}-{i} as JSON."}] for i in range(n)]


def timed(teacher: TeacherLLM, convs) -> float:
    start = time.perf_counter()
    replies = teacher.structured(convs, Item)
    elapsed = time.perf_counter() - start
    assert sum(r is not None for r in replies) >= len(convs) // 2, "most replies should be valid"
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--base-url")
    parser.add_argument("--model", help="served model name (default: the tiny model this script starts)")
    parser.add_argument("--requests", type=int, default=48)
    parser.add_argument("--concurrency", type=int, default=16)
    args = parser.parse_args()

    with ExitStack() as stack:
        work = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="teachloop-bench-")))
        base_url, model = args.base_url, args.model
        if base_url is None:
            from teachloop.inference.vllm_server import VLLMServer
            from teachloop.students.tiny import save_random_model

            model = save_random_model(str(work / "tiny-teacher"))
            print("starting vllm serve with a tiny random-weight model ...", flush=True)
            base_url = stack.enter_context(VLLMServer(model, work / "serve.log")).base_url

        def teacher(concurrency: int, cache: str) -> TeacherLLM:
            cfg = TeacherConfig(
                backend="openai", model=model, base_url=base_url, api_key="EMPTY",
                concurrency=concurrency, max_tokens=256, temperature=0.8, timeout=300,
            )  # fmt: skip
            return TeacherLLM(cfg, cache_dir=work / cache)

        timed(teacher(args.concurrency, "warmup"), conversations(4, "warmup"))
        sequential = timed(teacher(1, "seq"), conversations(args.requests, "seq"))
        concurrent_teacher = teacher(args.concurrency, "conc")
        concurrent = timed(concurrent_teacher, conversations(args.requests, "conc"))
        cached = timed(teacher(args.concurrency, "conc"), conversations(args.requests, "conc"))

    n = args.requests
    print(f"requests: {n} structured calls against {base_url}")
    print(f"sequential (1 in flight):        {sequential:7.2f}s  {n / sequential:6.1f} req/s")
    print(f"concurrent ({args.concurrency} in flight):      {concurrent:7.2f}s  {n / concurrent:6.1f} req/s")
    print(f"speed-up concurrent/sequential:  {sequential / concurrent:7.1f}x")
    print(f"cached rerun:                    {cached:7.3f}s  ({concurrent / cached:.0f}x faster than paying)")
    print(f"ledger of the paid concurrent run: {concurrent_teacher.ledger.model_dump(exclude_none=True)}")


if __name__ == "__main__":
    main()

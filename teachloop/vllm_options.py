"""What every in-process vLLM engine here needs to know about the machine (ground floor:
the teacher backend, `vllm serve` and student evaluation all start engines)."""

from __future__ import annotations

from typing import Any


def vllm_available() -> bool:
    try:
        import vllm  # noqa: F401
    except ImportError:
        return False
    return True


def on_gpu() -> bool:
    try:
        import torch

        return torch.cuda.is_available()
    except ImportError:
        return False


def cpu_engine_options() -> dict[str, Any]:
    """vLLM arguments for a CPU host, where `gpu_memory_utilization` is a share of host RAM.

    Chunked prefill stays off: when a step prefills part of a prompt, vLLM discards that
    request's sample by rewinding its generator's offset, which CPU generators do not have,
    so a seeded request in a batch whose prompts outgrow one step killed the engine
    ("CPU Generator does not use offset")."""
    return {"dtype": "float32", "gpu_memory_utilization": 0.2, "enforce_eager": True, "enable_chunked_prefill": False}


def cpu_server_args() -> list[str]:
    """The same settings as `vllm serve` flags."""
    return ["--dtype", "float32", "--gpu-memory-utilization", "0.2", "--enforce-eager", "--no-enable-chunked-prefill"]

"""What every in-process vLLM engine here needs to know about the machine (shared: the
teacher backends, `vllm serve` and student evaluation all start engines).

On a CPU host vLLM takes its KV cache from host RAM. Its own default sizes that cache as a
share of *all* RAM minus what the model holds, which fails as soon as a larger model or
other processes leave less free than that share. Here the cache is sized from the model
itself (layers x KV heads x head size per token) and from the RAM that is free now, and an
engine that cannot fit is refused before it starts, with the number it needs.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from teachloop.errors import TeachloopError
from teachloop.inference.engine_logs import EngineOutput

GiB = 1 << 30
MiB = 1 << 20
DEFAULT_MAX_MODEL_LEN = 2048
# room besides weights and KV cache: torch and vLLM themselves, the tokenizer, one batch's activations
RUNTIME_BYTES = int(1.5 * GiB)
KV_SEQUENCES = 16  # full-length sequences the KV cache holds when memory allows (more only idle)
KV_SHARE_OF_SPARE = 0.5  # never take more than this share of what is free after weights and runtime
FALLBACK_KV_BYTES = GiB  # a model whose config cannot be read here (a hub id)
KV_ENV = "VLLM_CPU_KVCACHE_SPACE"  # vLLM's own setting (GiB); when a user sets it, it decides
RESERVED_CPU_ENV = "VLLM_CPU_NUM_OF_RESERVED_CPU"  # vLLM's own too: CPUs its worker does not compute on
SMALL_HOST_CPUS = 4  # hosts this small give their engine's worker every CPU


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


def cpu_dtype() -> str:
    """bfloat16 where the CPU computes it natively (AVX-512 BF16 or AMX): half the memory of
    float32 and faster; float32 elsewhere, where bfloat16 is emulated."""
    try:
        import torch

        native = torch.cpu._is_avx512_bf16_supported() or torch.cpu._is_amx_tile_supported()
    except (ImportError, AttributeError):
        native = False
    return "bfloat16" if native else "float32"


def available_memory() -> int:
    """Bytes of RAM free for a new process now (MemAvailable), 0 when it cannot be read."""
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        import psutil

        return int(psutil.virtual_memory().available)
    except ImportError:
        return 0


class EngineMemory(BaseModel):
    """How an engine's host memory was sized (bytes)."""

    weights: int
    kv_per_token: int
    kv_cache: int
    runtime: int = RUNTIME_BYTES
    available: int

    @property
    def needed(self) -> int:
        return self.weights + self.kv_cache + self.runtime


def _model_config(folder: Path) -> dict[str, Any] | None:
    try:
        config = json.loads((folder / "config.json").read_text())
    except (OSError, ValueError):
        return None
    return config.get("text_config", config) if isinstance(config, dict) else None


def kv_bytes_per_token(config: dict[str, Any], dtype: str) -> int:
    """Keys and values of one token over every layer."""
    heads = int(config.get("num_attention_heads") or 1)
    kv_heads = int(config.get("num_key_value_heads") or heads)
    head_dim = int(config.get("head_dim") or int(config.get("hidden_size", 64)) // heads)
    layers = int(config.get("num_hidden_layers") or 1)
    return 2 * layers * kv_heads * head_dim * (4 if dtype == "float32" else 2)


def weight_bytes(folder: Path, config: dict[str, Any], dtype: str) -> int:
    """The weights' size in the engine's dtype, from the checkpoint files on disk."""
    on_disk = sum(p.stat().st_size for pattern in ("*.safetensors", "*.bin") for p in folder.glob(pattern))
    stored = str(config.get("torch_dtype") or config.get("dtype") or "float32")
    width = {"float32": 4, "bfloat16": 2, "float16": 2}
    return int(on_disk * width.get(dtype, 4) / width.get(stored, 4))


def plan_cpu_memory(model: str, dtype: str, max_model_len: int, available: int | None = None) -> EngineMemory:
    """Size the KV cache of an engine for `model` (a local folder) on this host, or refuse.

    The cache holds KV_SEQUENCES full-length sequences when that fits in half of what is free
    after the weights and the runtime, and never less than one; below one the engine could
    not serve a single long request, so it is refused with the number it needs."""
    free = available_memory() if available is None else available
    folder = Path(model)
    config = _model_config(folder) if folder.is_dir() else None
    if config is None:
        return EngineMemory(weights=0, kv_per_token=0, kv_cache=FALLBACK_KV_BYTES, available=free)
    per_token = kv_bytes_per_token(config, dtype)
    weights = weight_bytes(folder, config, dtype)
    least = per_token * max_model_len
    spare = free - weights - RUNTIME_BYTES
    if free and spare < least:
        need = weights + least + RUNTIME_BYTES
        raise TeachloopError(
            f"a vLLM engine for {model} needs about {need / GiB:.1f} GiB of free memory on this CPU host "
            f"({weights / GiB:.1f} GiB of {dtype} weights, {least / GiB:.2f} GiB of KV cache for one "
            f"{max_model_len}-token sequence, {RUNTIME_BYTES / GiB:.1f} GiB for the runtime) but only "
            f"{free / GiB:.1f} GiB is free: stop other processes, lower max_model_len (vllm_options), or use a "
            "smaller model"
        )
    wanted = per_token * max_model_len * KV_SEQUENCES
    kv = max(least, min(wanted, int(spare * KV_SHARE_OF_SPARE))) if free else wanted
    kv = -(-kv // MiB) * MiB  # whole MiB
    return EngineMemory(weights=weights, kv_per_token=per_token, kv_cache=kv, available=free)


def cpu_engine_options(
    model: str | None = None, max_model_len: int = DEFAULT_MAX_MODEL_LEN, dtype: str | None = None
) -> dict[str, Any]:
    """vLLM arguments for a CPU host: `dtype` (default: the one the CPU computes natively; the
    student's evaluation asks float32, to answer exactly as transformers does), an explicit KV
    cache sized for `model` (unless the user set VLLM_CPU_KVCACHE_SPACE), eager mode.

    Chunked prefill stays off: when a step prefills part of a prompt, vLLM discards that
    request's sample by rewinding its generator's offset, which CPU generators do not have,
    so a seeded request in a batch whose prompts outgrow one step killed the engine
    ("CPU Generator does not use offset")."""
    dtype = dtype or cpu_dtype()
    options: dict[str, Any] = {
        "dtype": dtype,
        "enforce_eager": True,
        "enable_chunked_prefill": False,
        "max_model_len": max_model_len,
    }
    if not os.environ.get(KV_ENV):
        kv = plan_cpu_memory(model, dtype, max_model_len).kv_cache if model else FALLBACK_KV_BYTES
        options["kv_cache_memory_bytes"] = kv
    return options


def usable_cpus() -> int:
    """CPUs this process may run on (its affinity), which a container or taskset may limit."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def cpu_engine_env() -> dict[str, str]:
    """Environment for a CPU engine's processes. vLLM keeps one CPU from its worker for the
    engine's scheduler process by default: half of a 2-CPU machine. On a host of at most
    SMALL_HOST_CPUS CPUs the worker computes on all of them (measured on 2 AVX2 cores,
    Qwen2.5-Coder-0.5B in float32, 16 prompts x 128 tokens: 29.4 -> 46.7 tokens/s, one prompt
    4.3 -> 6.5; `benchmarks/engine_cpus.py`). A value the user set wins; nothing on a GPU."""
    if RESERVED_CPU_ENV in os.environ or on_gpu() or usable_cpus() > SMALL_HOST_CPUS:
        return {}
    return {RESERVED_CPU_ENV: "0"}


@contextmanager
def cpu_engine_environment() -> Iterator[None]:
    """`cpu_engine_env()` in this process's environment while an in-process engine starts
    (its processes are spawned then and read it), as it was afterwards."""
    env = cpu_engine_env()
    before = {key: os.environ.get(key) for key in env}
    os.environ.update(env)
    try:
        yield
    finally:
        for key, value in before.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def cpu_server_args(model: str | None = None, max_model_len: int = DEFAULT_MAX_MODEL_LEN) -> list[str]:
    """The same settings as `vllm serve` flags."""
    options = cpu_engine_options(model, max_model_len)
    args = ["--dtype", options["dtype"], "--enforce-eager", "--no-enable-chunked-prefill"]
    if "kv_cache_memory_bytes" in options:
        args += ["--kv-cache-memory-bytes", str(options["kv_cache_memory_bytes"])]
    return args


def oom_kills() -> int | None:
    """How many processes the kernel's out-of-memory killer has ended in this cgroup so far
    (cgroup v2 memory.events or v1 memory.oom_control), None where neither can be read."""
    for path in ("/sys/fs/cgroup/memory.events", "/sys/fs/cgroup/memory/memory.oom_control"):
        try:
            for line in Path(path).read_text().splitlines():
                key, _, value = line.partition(" ")
                if key == "oom_kill":
                    return int(value)
        except (OSError, ValueError):
            continue
    return None


def engine_exit_codes(llm: Any) -> dict[str, int]:
    """Exit codes of an offline `vllm.LLM`'s engine processes that have ended ({} if none did
    or vLLM's internals moved)."""
    core = getattr(getattr(llm, "llm_engine", None), "engine_core", None)
    manager = getattr(getattr(core, "resources", None), "engine_manager", None)
    try:
        return dict(manager.finished_procs()) if manager is not None else {}
    except Exception:  # noqa: BLE001  (a diagnosis must never raise)
        return {}


def engine_failure(
    what: str,
    exc: BaseException,
    oom_before: int | None,
    exit_codes: dict[str, int] | None = None,
    options: str = "vllm_options",
    log: EngineOutput | None = None,
) -> str:
    """One line on why a vLLM engine failed, naming what to change. `what` names the engine;
    `oom_before` is the out-of-memory kill count (`oom_kills`) when it started; `options`
    is where the user sets its engine arguments; `log` what the engine wrote to the run's
    engine log (its last error line is the cause vLLM's own exception only points to)."""
    first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:300]
    cause = log.last_error() if log is not None else None
    if cause and cause not in first and first not in cause:
        first = f"{first}; the engine logged: {cause}"
    where = log.where() if log is not None else ""
    now = oom_kills()
    remedy = f"lower {options} max_model_len or kv_cache_memory_bytes, use a smaller model, or stop other processes"
    if oom_before is not None and now is not None and now > oom_before:
        return f"{what} was killed by the kernel's out-of-memory killer ({first}): {remedy}{where}"
    if -9 in (exit_codes or {}).values():
        return f"{what} was killed (SIGKILL, on Linux usually the out-of-memory killer) ({first}): {remedy}{where}"
    if "memory" in first.lower():
        return f"{what} ran out of memory: {first}; {remedy} (on a GPU: {options} gpu_memory_utilization){where}"
    if log is not None and log.path is not None:
        return f"{what} failed: {first} (the whole story: {log.path}; engine arguments go in {options})"
    return f"{what} failed: {first} (vLLM's log above has the cause; engine arguments go in {options})"


def has_chat_template(model: str) -> bool | None:
    """Whether a local checkpoint folder carries a chat template (None: not a local folder)."""
    folder = Path(model)
    if not folder.is_dir():
        return None
    if any((folder / name).exists() for name in ("chat_template.jinja", "chat_template.json")):
        return True
    try:
        return bool(json.loads((folder / "tokenizer_config.json").read_text()).get("chat_template"))
    except (OSError, ValueError, AttributeError):
        return False

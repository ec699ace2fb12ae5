"""What a training step needs in memory, known before the step: the micro batch is sized by
tokens, not examples, and a phase that cannot fit is refused in one line instead of being
killed by the kernel halfway.

Training memory on CPU is dominated by the activations autograd keeps for the backward pass,
which grow with the tokens of a micro batch and the model's depth and width, not with its
parameter count (the LM head is fused by TRL and never builds the [tokens, vocabulary]
logits). Measured on a forward and backward pass of the backbone (LoRA, fp32, no LoRA
dropout): SmolLM2-135M (30 layers, hidden 576, MLP 1536) keeps 1.26 MB per token,
Qwen2.5-0.5B (24 layers, hidden 896, MLP 4864) 4.5 MB; `ACTIVATION_FLOATS` estimates 2.2
and 4.6 MB (a whole train phase, with the trainer's own buffers, sits between the two for
SmolLM2: `benchmarks/train_throughput.py`).
"""

from __future__ import annotations

import threading
from contextlib import AbstractContextManager

from teachloop.errors import TeachloopError

# floats kept per token and layer: ~10 of the hidden width (norms, q/k/v/o, residuals) and
# ~8 of the MLP width (gate, up, their product and activation, with backward's temporaries)
ACTIVATION_FLOATS = (10, 8)
# what the activations of one micro batch may take by default: with the process's ~1.1 GB
# (SmolLM2) or ~2.6 GB (Qwen 0.5B) at rest, a LoRA phase stays within 3 GB and 6 GB
ACTIVATION_BUDGET = 2**30
# keep this share of the memory free now for everything that is not a step's activations
# (the allocator's slack, the tokenizer, the data)
HEADROOM = 0.8


def activation_bytes_per_token(config) -> int:
    """Bytes autograd keeps per token of a micro batch, from the model's shape."""
    text = config.get_text_config() if hasattr(config, "get_text_config") else config
    layers = getattr(text, "num_hidden_layers", None) or getattr(text, "n_layer", 12)
    hidden = getattr(text, "hidden_size", None) or getattr(text, "n_embd", 768)
    mlp = getattr(text, "intermediate_size", None) or 4 * hidden
    per_hidden, per_mlp = ACTIVATION_FLOATS
    return 4 * layers * (per_hidden * hidden + per_mlp * mlp)


def micro_batch_tokens(config, budget: int = ACTIVATION_BUDGET) -> int:
    """Tokens one micro batch may hold so its activations stay within `budget` bytes."""
    return max(1, budget // activation_bytes_per_token(config))


def optimizer_bytes(model) -> int:
    """Gradients and AdamW's two moments of every trained parameter (float32)."""
    return 12 * sum(p.numel() for p in model.parameters() if p.requires_grad)


def native_bf16() -> bool:
    """Whether this machine computes bfloat16 matrix products natively: a CUDA GPU with
    bf16, or a CPU with AMX tiles or AVX512-BF16 (there bf16 products ran 6x fp32's
    GFLOP/s); elsewhere bf16 is emulated and slower than float32."""
    import torch

    if torch.cuda.is_available():
        return torch.cuda.is_bf16_supported()
    try:
        return bool(torch.cpu._is_amx_tile_supported() or torch.cpu._is_avx512_bf16_supported())
    except AttributeError:  # a torch without the probes: do not guess
        return False


def available_bytes() -> int | None:
    """Memory the kernel can hand out now (MemAvailable); None where /proc is not there."""
    try:
        with open("/proc/meminfo") as meminfo:
            for line in meminfo:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None


def resident_bytes() -> int:
    """This process's resident memory now."""
    try:
        with open("/proc/self/statm") as statm:
            import os

            return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        import resource

        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def gb(n: float) -> str:
    return f"{n / 1e9:.1f} GB"


def fits(step_bytes: int) -> bool:
    """Whether a step that needs `step_bytes` more fits in the memory free now (with headroom)."""
    free = available_bytes()
    return free is None or step_bytes <= HEADROOM * free


def check_step_fits(step_bytes: int, what: str, fix: str) -> None:
    """Refuse a phase whose smallest step needs more than the memory free now."""
    free = available_bytes()
    if not fits(step_bytes):
        raise TeachloopError(f"{what} needs about {gb(step_bytes)} and {gb(free)} is free now; {fix}")


class PeakResident(AbstractContextManager):
    """The highest resident memory of this process while the block ran (sampled every 50 ms,
    so a peak shorter than that can be missed; ru_maxrss cannot be reset per phase)."""

    def __init__(self, interval: float = 0.05) -> None:
        self.interval = interval
        self.peak = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _sample(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, resident_bytes())
            self._stop.wait(self.interval)

    def __enter__(self) -> PeakResident:
        self.peak = resident_bytes()
        self._thread = threading.Thread(target=self._sample, name="teachloop-peak-rss", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        self.peak = max(self.peak, resident_bytes())


# -- evaluation ---------------------------------------------------------------------------------
def decode_bytes(config, batch: int, prompt_tokens: int, new_tokens: int, dtype_bytes: int = 4) -> int:
    """What greedy decoding of `batch` prompts of up to `prompt_tokens` tokens needs beyond the
    weights: the KV cache of every layer for prompt and answer, the prefill's transient
    activations (each layer's hidden and MLP widths for every prompt token, and the attention
    scores of the widest layer) and the last position's logits."""
    text = config.get_text_config() if hasattr(config, "get_text_config") else config
    layers = getattr(text, "num_hidden_layers", None) or getattr(text, "n_layer", 12)
    hidden = getattr(text, "hidden_size", None) or getattr(text, "n_embd", 768)
    heads = getattr(text, "num_attention_heads", None) or getattr(text, "n_head", 12)
    kv_heads = getattr(text, "num_key_value_heads", None) or heads
    head_dim = getattr(text, "head_dim", None) or hidden // heads
    mlp = getattr(text, "intermediate_size", None) or 4 * hidden
    vocab = getattr(text, "vocab_size", 0)
    length = prompt_tokens + new_tokens
    cache = 2 * layers * kv_heads * head_dim * length * dtype_bytes
    prefill = prompt_tokens * (4 * hidden + 2 * mlp) * dtype_bytes + heads * prompt_tokens**2 * dtype_bytes
    logits = 2 * vocab * 4
    return batch * (cache + prefill + logits)


def fitted_decode_batch(config, batch: int, prompt_tokens: int, new_tokens: int, dtype_bytes: int = 4) -> int:
    """The largest batch up to `batch` whose decoding fits in the memory free now (halved
    until it does); a prompt that does not fit alone is refused in one line."""
    while batch > 1 and not fits(decode_bytes(config, batch, prompt_tokens, new_tokens, dtype_bytes)):
        batch = max(1, batch // 2)
    check_step_fits(
        decode_bytes(config, 1, prompt_tokens, new_tokens, dtype_bytes),
        f"answering a prompt of {prompt_tokens} tokens with up to {new_tokens} new tokens",
        "lower the environment's answer limit (max_new_tokens) or its prompt lengths, or free memory",
    )
    return batch

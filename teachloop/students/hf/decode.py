"""Batched greedy decoding for evaluation, without the copies that dominated it.

transformers' `generate` spent most of a long-answer evaluation moving memory, not
multiplying: with a padding mask its SDPA path expands the grouped key/value heads of the
whole cache at every step (`repeat_kv`: 39 % of a 256-token SmolLM2 evaluation) and its
dynamic cache concatenates every layer's cache once per token (12 %). Here

- attention is torch's SDPA with `enable_gqa=True`, which reads the grouped heads in place
  (`GQA_ATTENTION`, registered with transformers' attention and mask interfaces);
- the cache is allocated once per batch for its longest possible sequence and written in
  place (`PreallocatedLayer`);
- a row leaves the batch when it ends (its eos, an end-of-turn token or a stop string), so
  the rows still writing do not carry the finished ones;
- on a CPU, the linear layers multiply through oneDNN with their float32 weights packed
  once per batch (`packed_linears`): MKL's small-row products are slower there (16
  SmolLM2 answers of 256 tokens on 2 AVX2 cores: 42.3 s with MKL, 31.0 s packed, the same
  tokens).

The tokens are the ones `generate` picks (greedy, same positions and masks; a test
compares the two on real models).
"""

from __future__ import annotations

import types
from collections.abc import Callable, Sequence

import torch
from transformers import AttentionInterface, AttentionMaskInterface
from transformers.cache_utils import Cache, DynamicLayer
from transformers.masking_utils import sdpa_mask

GQA_ATTENTION = "teachloop_sdpa_gqa"


def _sdpa_gqa(
    module: torch.nn.Module,
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    attention_mask: torch.Tensor | None,
    dropout: float = 0.0,
    scaling: float | None = None,
    is_causal: bool | None = None,
    **kwargs,
) -> tuple[torch.Tensor, None]:
    causal = is_causal if is_causal is not None else getattr(module, "is_causal", True)
    out = torch.nn.functional.scaled_dot_product_attention(
        query,
        key,
        value,
        attn_mask=attention_mask,
        dropout_p=dropout,
        scale=scaling,
        is_causal=bool(query.shape[2] > 1 and attention_mask is None and causal),
        enable_gqa=key.shape[1] != query.shape[1],
    )
    return out.transpose(1, 2).contiguous(), None


AttentionInterface.register(GQA_ATTENTION, _sdpa_gqa)
AttentionMaskInterface.register(GQA_ATTENTION, sdpa_mask)


class PreallocatedLayer(DynamicLayer):
    """A layer's cache in one buffer sized for the longest sequence the batch can reach;
    `keys`/`values` are views of its filled part (no reallocation per token)."""

    def __init__(self, capacity: int) -> None:
        super().__init__()
        self.capacity = capacity
        self.length = 0

    def lazy_initialization(self, key_states: torch.Tensor, value_states: torch.Tensor) -> None:
        batch, heads, _, dim = key_states.shape
        self.dtype, self.device = key_states.dtype, key_states.device
        self.key_buffer = key_states.new_empty(batch, heads, self.capacity, dim)
        self.value_buffer = value_states.new_empty(batch, value_states.shape[1], self.capacity, value_states.shape[-1])
        self.length = 0
        self.is_initialized = True

    def update(self, key_states: torch.Tensor, value_states: torch.Tensor, *args, **kwargs):
        if not self.is_initialized:
            self.lazy_initialization(key_states, value_states)
        end = self.length + key_states.shape[-2]
        if end > self.capacity:
            raise RuntimeError(f"decoding past the preallocated cache ({end} > {self.capacity} positions)")
        self.key_buffer[:, :, self.length : end] = key_states
        self.value_buffer[:, :, self.length : end] = value_states
        self.length = end
        self.keys = self.key_buffer[:, :, :end]
        self.values = self.value_buffer[:, :, :end]
        return self.keys, self.values

    def get_seq_length(self) -> int:
        return self.length if self.is_initialized else 0

    def batch_select_indices(self, indices: torch.Tensor) -> None:
        if not self.is_initialized:
            return
        self.key_buffer = self.key_buffer[indices]
        self.value_buffer = self.value_buffer[indices]
        self.keys = self.key_buffer[:, :, : self.length]
        self.values = self.value_buffer[:, :, : self.length]


class grouped_query_attention:
    """Within the block, the model attends through `GQA_ATTENTION` (restored after)."""

    def __init__(self, model: torch.nn.Module) -> None:
        self.config = model.config

    def __enter__(self) -> None:
        self.before = self.config._attn_implementation
        if self.before in ("sdpa", "eager"):
            self.config._attn_implementation = GQA_ATTENTION

    def __exit__(self, *exc) -> None:
        self.config._attn_implementation = self.before


def _packed_forward(self: torch.nn.Linear, x: torch.Tensor) -> torch.Tensor:
    return torch.ops.mkldnn._linear_pointwise(x, self._teachloop_packed, self.bias, "none", [], "")


def _packable(module: torch.nn.Module) -> bool:
    weight = getattr(module, "weight", None)
    return (
        type(module) is torch.nn.Linear  # not a subclass with its own forward (quantized, LoRA's wrappers)
        and weight is not None
        and weight.device.type == "cpu"
        and weight.dtype == torch.float32
    )


class packed_linears:
    """Within the block, the model's float32 CPU `nn.Linear` layers multiply through oneDNN
    with weights packed for `rows` rows (restored after; where oneDNN is missing, nothing
    changes)."""

    def __init__(self, model: torch.nn.Module, rows: int) -> None:
        self.model, self.rows = model, rows
        self.patched: list[torch.nn.Linear] = []

    def __enter__(self) -> None:
        if not (torch.backends.mkldnn.is_available() and hasattr(torch.ops.mkldnn, "_reorder_linear_weight")):
            return
        for module in self.model.modules():
            if _packable(module):
                module._teachloop_packed = torch.ops.mkldnn._reorder_linear_weight(module.weight.detach(), self.rows)
                module.forward = types.MethodType(_packed_forward, module)
                self.patched.append(module)

    def __exit__(self, *exc) -> None:
        for module in self.patched:
            del module.forward, module._teachloop_packed
        self.patched.clear()


@torch.inference_mode()
def greedy_decode(
    model: torch.nn.Module,
    input_ids: torch.Tensor,
    attention_mask: torch.Tensor,
    max_new_tokens: int,
    stop_ids: Sequence[int],
    stopping: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] | None = None,
    on_step: Callable[[int], None] | None = None,
) -> list[list[int]]:
    """The greedy continuation of each left-padded row: its new tokens up to and including
    the first stop id, until `stopping` says the row ended, or `max_new_tokens` of them.
    `on_step(rows_finished)` is called after every step."""
    rows = input_ids.shape[0]
    with packed_linears(model, rows):
        return _decode(model, input_ids, attention_mask, max_new_tokens, stop_ids, stopping, on_step)


def _decode(
    model: torch.nn.Module,
    input_ids: torch.Tensor,
    attention_mask: torch.Tensor,
    max_new_tokens: int,
    stop_ids: Sequence[int],
    stopping: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] | None,
    on_step: Callable[[int], None] | None,
) -> list[list[int]]:
    rows = input_ids.shape[0]
    layers = model.config.get_text_config().num_hidden_layers
    cache = Cache(layers=[PreallocatedLayer(input_ids.shape[1] + max_new_tokens) for _ in range(layers)])
    stops = torch.tensor(list(stop_ids), dtype=torch.long)
    positions = attention_mask.long().cumsum(-1) - 1
    positions.masked_fill_(attention_mask == 0, 1)
    tokens: list[list[int]] = [[] for _ in range(rows)]
    alive = torch.arange(rows)  # the original row of each row still in the batch
    sequences = input_ids  # prompt + new tokens of the live rows: what `stopping` reads
    step_ids, mask, last_position = input_ids, attention_mask, positions[:, -1:]
    for step in range(max_new_tokens):
        with grouped_query_attention(model):
            logits = model(
                input_ids=step_ids,
                attention_mask=mask,
                position_ids=positions,
                past_key_values=cache,
                use_cache=True,
                logits_to_keep=1,
            ).logits[:, -1, :]
        chosen = logits.argmax(dim=-1)
        for row, token in zip(alive.tolist(), chosen.tolist(), strict=True):
            tokens[row].append(token)
        if step == max_new_tokens - 1:
            break
        ended = torch.isin(chosen, stops)
        if stopping is not None:
            sequences = torch.cat([sequences, chosen[:, None]], dim=1)
            ended |= stopping(sequences, logits).to(ended.device)
        if ended.any():
            keep = (~ended).nonzero().flatten()
            if keep.numel() == 0:
                break
            alive, chosen, mask, last_position = alive[keep], chosen[keep], mask[keep], last_position[keep]
            if stopping is not None:
                sequences = sequences[keep]
            for layer in cache.layers:
                layer.batch_select_indices(keep)
        if on_step:
            on_step(rows - alive.numel())
        step_ids = chosen[:, None]
        last_position = last_position + 1
        positions = last_position
        mask = torch.cat([mask, mask.new_ones(mask.shape[0], 1)], dim=1)
    if on_step:
        on_step(rows)
    return tokens

"""Batched greedy decoding for evaluation, without the copies that dominated it.

transformers' `generate` spent most of a long-answer evaluation moving memory, not
multiplying: with a padding mask its SDPA path expands the grouped key/value heads of the
whole cache at every step (`repeat_kv`: 39 % of a 256-token SmolLM2 evaluation) and its
dynamic cache concatenates every layer's cache once per token (12 %). Here

- on a CPU the prompts are read one row at a time when a row is work enough (`prefill_rows`):
  no padding is computed, and the prefix every prompt shares (a chat template's system turn)
  is read once;
- a decoding step's attention reads the cache once per key/value head on a CPU
  (`_one_query_attention`); longer queries use torch's SDPA with `enable_gqa=True`, which
  reads the grouped heads in place (`GQA_ATTENTION`, registered with transformers'
  attention and mask interfaces);
- the cache is allocated once per batch for its longest possible sequence and written in
  place (`PreallocatedLayer`);
- a row leaves the batch when it ends (its eos, an end-of-turn token or a stop string), so
  the rows still writing do not carry the finished ones;
- on a CPU, the linear layers multiply through oneDNN with their float32 weights packed
  once per batch (`packed_linears`): MKL's small-row products are slower there.

The tokens are the ones `generate` picks (greedy, same positions and masks; a test
compares the two on real models). `benchmarks/eval_throughput.py --long` measures both:
54 HumanEval prompts x 256 new tokens on SmolLM2, 2 AVX2 cores, 525 s with `generate`,
71 s here, the same answers.
"""

from __future__ import annotations

import types
from collections.abc import Callable, Sequence

import torch
from transformers import AttentionInterface, AttentionMaskInterface
from transformers.cache_utils import Cache, DynamicLayer
from transformers.masking_utils import sdpa_mask

GQA_ATTENTION = "teachloop_sdpa_gqa"
# decoder-only architectures this decoder was verified on (same tokens as `generate`, tested
# on real models); anything else is answered by `generate` (`supports`)
VERIFIED_ARCHITECTURES = frozenset({"llama", "qwen2"})


def supports(model: torch.nn.Module) -> bool:
    """Whether `greedy_decode` answers for this model exactly as `generate` would: a verified
    decoder-only architecture, full attention (no sliding window), a plain per-layer cache."""
    config = model.config.get_text_config()
    if getattr(config, "model_type", None) not in VERIFIED_ARCHITECTURES or config.is_encoder_decoder:
        return False
    if getattr(config, "use_sliding_window", False) or getattr(config, "sliding_window", None) and any(
        kind != "full_attention" for kind in (getattr(config, "layer_types", None) or ["full_attention"])
    ):
        return False
    return not getattr(config, "num_local_experts", 0) and not getattr(config, "num_experts", 0)


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
    if query.shape[2] == 1 and query.device.type == "cpu" and query.dtype == torch.float32 and not dropout:
        return _one_query_attention(query, key, value, attention_mask, scaling), None
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


def _one_query_attention(
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    attention_mask: torch.Tensor | None,
    scaling: float | None,
) -> torch.Tensor:
    """A decoding step's attention as two batched products, the query heads of a group
    stacked against their shared key/value head. The CPU's fused SDPA kernel reads the
    whole cache once per query head (three times per step on SmolLM2) and ran at a fifth of
    the memory's speed for a single query; this reads it once."""
    batch, heads, _, dim = query.shape
    kv_heads = key.shape[1]
    scale = scaling if scaling is not None else dim**-0.5
    grouped = query.reshape(batch, kv_heads, heads // kv_heads, dim)
    scores = torch.matmul(grouped, key.transpose(-1, -2)).mul_(scale)  # batch, kv heads, group, positions
    if attention_mask is not None:
        mask = attention_mask[:, :, -1:, :]  # batch or 1, 1, 1, positions
        if mask.dtype == torch.bool:
            scores.masked_fill_(~mask, float("-inf"))
        else:
            scores.add_(mask)
    out = torch.matmul(scores.softmax(dim=-1), value)  # batch, kv heads, group, dim
    return out.reshape(batch, 1, heads, dim)


AttentionInterface.register(GQA_ATTENTION, _sdpa_gqa)
AttentionMaskInterface.register(GQA_ATTENTION, sdpa_mask)


class PreallocatedLayer(DynamicLayer):
    """A layer's cache in one buffer sized for the longest sequence the batch can reach;
    `keys`/`values` are views of its filled part (no reallocation per token). `rows` sizes
    the buffer for a batch filled one row at a time (`RowWindow`); its unwritten positions
    are zeros (padding: masked, and finite)."""

    def __init__(self, capacity: int, rows: int | None = None) -> None:
        super().__init__()
        self.capacity, self.rows = capacity, rows
        self.length = 0

    def lazy_initialization(self, key_states: torch.Tensor, value_states: torch.Tensor) -> None:
        batch = self.rows or key_states.shape[0]
        allocate = key_states.new_empty if self.rows is None else key_states.new_zeros
        self.dtype, self.device = key_states.dtype, key_states.device
        self.key_buffer = allocate(batch, key_states.shape[1], self.capacity, key_states.shape[-1])
        self.value_buffer = allocate(batch, value_states.shape[1], self.capacity, value_states.shape[-1])
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
        self.filled_to(end)
        return self.keys, self.values

    def filled_to(self, length: int) -> None:
        """The first `length` positions hold the cache (written in place, e.g. by rows)."""
        self.length = length
        self.keys = self.key_buffer[:, :, :length]
        self.values = self.value_buffer[:, :, :length]

    def get_seq_length(self) -> int:
        return self.length if self.is_initialized else 0

    def batch_select_indices(self, indices: torch.Tensor) -> None:
        if not self.is_initialized:
            return
        self.key_buffer = self.key_buffer[indices]
        self.value_buffer = self.value_buffer[indices]
        self.filled_to(self.length)


class RowWindow(DynamicLayer):
    """One row of a batch's `PreallocatedLayer` seen as a one-row cache that starts at
    position `start` (after the row's left padding) and is filled up to `filled`: a row's
    own forward writes its keys and values straight into the batch's buffer."""

    def __init__(self, target: PreallocatedLayer, row: int, start: int, filled: int) -> None:
        super().__init__()
        self.target, self.row, self.start, self.filled = target, row, start, filled
        self.is_initialized = True

    def update(self, key_states: torch.Tensor, value_states: torch.Tensor, *args, **kwargs):
        target = self.target
        if not target.is_initialized:
            target.lazy_initialization(key_states, value_states)
        end = self.filled + key_states.shape[-2]
        target.key_buffer[self.row, :, self.filled : end] = key_states[0]
        target.value_buffer[self.row, :, self.filled : end] = value_states[0]
        self.filled = end
        window = slice(self.row, self.row + 1), slice(None), slice(self.start, end)
        return target.key_buffer[window], target.value_buffer[window]

    def get_seq_length(self) -> int:
        return self.filled - self.start


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
    rows, width = input_ids.shape
    layers = model.config.get_text_config().num_hidden_layers
    by_row = prefill_by_row(model, attention_mask)
    cache = Cache(layers=[PreallocatedLayer(width + max_new_tokens, rows if by_row else None) for _ in range(layers)])
    stops = torch.tensor(list(stop_ids), dtype=torch.long)
    positions = attention_mask.long().cumsum(-1) - 1
    positions.masked_fill_(attention_mask == 0, 1)
    tokens: list[list[int]] = [[] for _ in range(rows)]
    alive = torch.arange(rows)  # the original row of each row still in the batch
    sequences = input_ids  # prompt + new tokens of the live rows: what `stopping` reads
    mask, last_position = attention_mask, positions[:, -1:]

    def forward(ids: torch.Tensor, mask: torch.Tensor, positions: torch.Tensor) -> torch.Tensor:
        out = model(
            input_ids=ids,
            attention_mask=mask,
            position_ids=positions,
            past_key_values=cache,
            use_cache=True,
            logits_to_keep=1,
        )
        return out.logits[:, -1, :]

    with grouped_query_attention(model):
        if by_row:
            logits = prefill_rows(model, input_ids, attention_mask, cache)
        else:
            logits = forward(input_ids, mask, positions)
        for step in range(max_new_tokens):
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
            last_position = last_position + 1
            mask = torch.cat([mask, mask.new_ones(mask.shape[0], 1)], dim=1)
            logits = forward(chosen[:, None], mask, last_position)
    if on_step:
        on_step(rows)
    return tokens


ROW_PREFILL_FLOPS = 2e9  # a row's prompt costs ~20 ms on 2 cores: a forward's fixed cost (~3 ms) is small beside it


def prefill_by_row(model: torch.nn.Module, attention_mask: torch.Tensor) -> bool:
    """Whether to read the prompts one row at a time (`prefill_rows`) rather than as one
    padded batch: on a CPU, where padding costs its full share of the arithmetic, and when
    a row's prompt is work enough that a forward per row costs nothing extra (SmolLM2 on
    HumanEval: yes; the embedded student's short prompts: no)."""
    rows = attention_mask.shape[0]
    if attention_mask.device.type != "cpu" or rows < 2:
        return False
    parameters = sum(p.numel() for p in model.parameters())
    return 2 * parameters * int(attention_mask.sum()) / rows >= ROW_PREFILL_FLOPS


def prefill_rows(
    model: torch.nn.Module, input_ids: torch.Tensor, attention_mask: torch.Tensor, cache: Cache
) -> torch.Tensor:
    """Reads left-padded prompts without computing their padding: the prefix every prompt
    shares (a chat template's system turn) once, then each row's own tokens in a forward of
    its own, writing keys and values into `cache` where the padded batch would have put
    them. Returns each row's logits for its first new token. (16 HumanEval prompts of 79-200
    tokens padded to 200 hold 3200 positions, 2156 of them real and 23 shared: 1811 to compute.)"""
    lengths = attention_mask.sum(dim=1).tolist()
    width = input_ids.shape[1]
    prompts = [input_ids[row, width - length :] for row, length in enumerate(lengths)]
    shared = shared_prefix_length(prompts)
    device = input_ids.device
    if shared:
        prefix = Cache(layers=[PreallocatedLayer(shared) for _ in cache.layers])
        model(
            input_ids=prompts[0][None, :shared],
            position_ids=torch.arange(shared, device=device)[None],
            past_key_values=prefix,
            use_cache=True,
            logits_to_keep=1,
        )
        for layer, part in zip(cache.layers, prefix.layers, strict=True):
            layer.lazy_initialization(part.keys, part.values)
    logits = []
    for row, (prompt, length) in enumerate(zip(prompts, lengths, strict=True)):
        start = width - length
        if shared:
            for layer, part in zip(cache.layers, prefix.layers, strict=True):
                layer.key_buffer[row, :, start : start + shared] = part.keys[0]
                layer.value_buffer[row, :, start : start + shared] = part.values[0]
        windows = Cache(layers=[RowWindow(layer, row, start, start + shared) for layer in cache.layers])
        out = model(
            input_ids=prompt[None, shared:],
            position_ids=torch.arange(shared, length, device=device)[None],
            past_key_values=windows,
            use_cache=True,
            logits_to_keep=1,
        )
        logits.append(out.logits[0, -1])
    for layer in cache.layers:
        layer.filled_to(width)
    return torch.stack(logits)


def shared_prefix_length(prompts: Sequence[torch.Tensor]) -> int:
    """How many leading tokens every prompt shares, leaving each at least one of its own."""
    limit = min(len(p) for p in prompts) - 1
    if limit <= 0:
        return 0
    heads = torch.stack([p[:limit] for p in prompts])
    same = (heads == heads[0]).all(dim=0)
    return int(same.long().cumprod(dim=0).sum())

"""Attention over a prompt prefix that every row of a batch shares, read once for the whole batch.

The episodes of ``agent.batch`` start from the same system prompt and tool descriptions, often half or more of each
prompt. Stacked as ordinary rows, each row holds its own copy of that prefix's keys and values, and every decoding
step reads all of them: on a CPU, where reading the keys and values bounds batched attention, that is most of its
cost. Here the batch cache holds the shared prefix once and each row's own tokens after it, and attention is computed
in two parts that are merged exactly by their log-sum-exp ("cascade" attention, as in FlashInfer): the queries of
all rows against the one prefix, as one sequence, and each row's queries against its own tokens, under the usual
causal and padding mask.

The prefix needs no mask: it comes before every row's tokens and holds no padding (a row's padding sits after it).
The cache layers report the prefix as an offset (`get_mask_sizes`), as transformers' sliding-window layers do, so
transformers builds the mask of the rows' own part and the position ids from the attention mask as usual.

It runs on the CPU, with the fused attention kernel that returns the log-sum-exp, for models that use transformers'
``sdpa`` attention; `generate.run_batch` falls back to ordinary rows elsewhere.
"""

from __future__ import annotations

import contextlib
import functools
import threading
from collections.abc import Iterator
from typing import Any

__all__ = ["ATTENTION", "applies", "shared_prefix"]

ATTENTION = "agentkit_shared_prefix"
"""The attention implementation a model runs under while a batch with a shared prefix is on it."""

_active = threading.local()


def applies(model: Any, device: str) -> bool:
    """Whether batches on `model` can hold a shared prefix once: on the CPU, with transformers' sdpa attention."""
    config = getattr(model, "config", None)
    return device == "cpu" and getattr(config, "_attn_implementation", None) == "sdpa"


@contextlib.contextmanager
def shared_prefix(model: Any, kv: list[tuple[Any, Any]]) -> Iterator[None]:
    """Run `model`'s attention with `kv` as the prefix every row shares, in front of what each row's cache layer holds.

    `kv` holds per layer the prefix's keys and values, each of shape (1, kv heads, tokens, head size). Only the
    calling thread sees the prefix, and only the engine's worker thread runs its model, so the model's attention
    implementation is switched for the duration of the block and restored after it.
    """
    _register()
    config = model.config
    before = config._attn_implementation
    _active.kv = kv
    config._attn_implementation = ATTENTION
    try:
        yield
    finally:
        config._attn_implementation = before
        _active.kv = _active.mask = None


@functools.cache
def _register() -> None:
    from transformers import AttentionInterface
    from transformers.masking_utils import AttentionMaskInterface, sdpa_mask

    AttentionInterface.register(ATTENTION, _attention)
    # The rows' own part is masked exactly as sdpa masks a whole row.
    AttentionMaskInterface.register(ATTENTION, sdpa_mask)


def _attention(
    module: Any,
    query: Any,
    key: Any,
    value: Any,
    attention_mask: Any,
    *,
    scaling: float | None = None,
    **kwargs: Any,
) -> tuple[Any, None]:
    """Attention of `query` over the shared prefix of `module`'s layer and each row's own `key` and `value`.

    The signature of transformers' attention functions: `query` is (batch, heads, q, d), `key` and `value` are
    (batch, kv heads, kv, d), and the output is (batch, q, heads, d). Dropout is ignored: this is for inference.
    """
    import torch

    extra = [name for name in ("position_bias", "s_aux", "softcap") if kwargs.get(name) is not None]
    if extra:  # terms this attention does not apply; no model with a plain full-attention cache passes them today
        raise NotImplementedError(
            f"{type(module).__name__} passes {', '.join(extra)} to its attention, which agentkit's shared-prefix "
            "batching does not apply: run this model with LocalChatModel(max_batch_size=1)"
        )
    prefix_keys, prefix_values = _active.kv[module.layer_idx]
    rows, heads, length, size = query.shape
    kv_heads = key.shape[1]
    group = heads // kv_heads
    attend = torch.ops.aten._scaled_dot_product_flash_attention_for_cpu
    # The prefix: every query of every row, as one sequence per key/value head (grouped query heads folded in).
    folded = query.reshape(rows, kv_heads, group * length, size).transpose(0, 1).reshape(1, kv_heads, -1, size)
    shared, shared_lse = attend(folded, prefix_keys, prefix_values, scale=scaling)
    shared = shared.reshape(kv_heads, rows, group * length, size).transpose(0, 1)
    shared_lse = shared_lse.reshape(kv_heads, rows, group * length).transpose(0, 1)
    # Each row's own tokens, under the causal and padding mask (transformers' boolean mask, or None for causal).
    mask, unseen = _own_mask(attention_mask, query, key.shape[2], group)
    own, own_lse = attend(query.reshape(rows, kv_heads, -1, size), key, value, attn_mask=mask, scale=scaling)
    if unseen is not None:
        # A query that sees none of its row's tokens (padding) gets a zero output and a log-sum-exp of 0 from the
        # kernel: its weight must be none.
        own_lse = own_lse.masked_fill(unseen, float("-inf"))
    # Softmax over both parts: each part's output weighted by its share of the total exp-sum, own / (shared + own).
    # In float32, the kernel's log-sum-exp type, whatever the model's dtype.
    own_share = torch.sigmoid(own_lse - shared_lse).unsqueeze(-1)
    merged = torch.lerp(shared.to(own_share.dtype), own.to(own_share.dtype), own_share).to(query.dtype)
    return merged.reshape(rows, heads, length, size).transpose(1, 2).contiguous(), None


def _own_mask(mask: Any, query: Any, keys: int, group: int) -> tuple[Any, Any]:
    """The additive mask of the rows' own part, and which queries it hides every key from (None: none).

    Every layer of a forward pass gets the same mask, so it is converted once per pass: decoding a token runs these
    few small operations per layer, where they cost about what the attention itself does.
    """
    made = getattr(_active, "mask", None)
    shape = (query.shape[2], keys, group, query.dtype)
    if made is None or made[0] is not mask or made[1] != shape:
        additive = _additive_mask(mask, query, keys, group)
        unseen = additive.isneginf().all(-1)
        made = _active.mask = (mask, shape, additive, unseen if bool(unseen.any()) else None)
    return made[2], made[3]


def _additive_mask(mask: Any, query: Any, keys: int, group: int) -> Any:
    """The boolean mask of the rows' own part as the additive mask the kernel takes.

    Repeated for the grouped query heads folded into the query axis: (batch, 1, group * queries, keys).
    """
    import torch

    queries = query.shape[2]
    if mask is None:  # transformers leaves out a mask that is only causal (no padding in the rows' own part)
        allowed = torch.ones(queries, keys, dtype=torch.bool, device=query.device).tril(keys - queries)[None, None]
    else:
        allowed = mask
    additive = torch.zeros(allowed.shape, dtype=query.dtype, device=query.device).masked_fill(~allowed, float("-inf"))
    if group > 1:
        additive = additive.repeat(1, 1, group, 1)
    return additive

"""One batched `generate` call: prefix KV reuse, stop strings that stop, stop reasons and log-probabilities.

A batch is a list of `Row`s that share generation settings. Each row may bring a `Prefix`: the keys and values the
model already computed for the first tokens of its prompt (an earlier step of the same episode). The row's prompt
is then prefilled only from there on, so a growing agent transcript costs its new tokens, not its whole history.

How rows are combined: the rows' prefixes are left-padded into one batch cache and the tokens after them, up to each
row's last prompt token, run through the model in one forward pass, so that a batch of episodes prefills its new
turns together (a row whose prefix reaches further recomputes a few of its tokens so that all rows end together).
When the rows' new parts differ so much in length that this would waste compute on padding, each row is prefilled
alone instead and the row caches are left-padded. Either way transformers' `generate` then runs the batch from the
last prompt tokens, masking the padding. That is the layout of ordinary left-padded batched generation, so each
row's greedy output is the one it gets alone, and with or without a prefix.

When the rows' cached prefixes all start with the same tokens (the system prompt and tools of a batch of episodes),
the batch cache may hold that part once, with each row's own positions after it, its padding first; attention then
reads the shared part once for the whole batch (`shared_prefix`). On a CPU, where reading the keys and values bounds
batched decoding, that is done when it spares enough reading to pay for the second attention pass.

With static caches (`static_cache`, `LocalChatModel(compile_decoding=True)`), the prefilled batch cache is copied
into a fixed-size cache that transformers compiles decoding over (CUDA graphs on a GPU); each row's keys and values
are copied back out afterwards, so the prefix cache works the same.

A row alone may draft tokens from its context (prompt lookup decoding, `GenerationSettings.draft_tokens`):
transformers' assisted decoding checks the drafts, from the prefilled cache, and a stop string inside an accepted
draft still ends the row, whose tokens are then cut back to the one that completes it.
"""

from __future__ import annotations

import contextlib
import functools
import threading
from array import array
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from agentkit.llm import shared_prefix
from agentkit.llm.compat import cache_keyword

if TYPE_CHECKING:
    from agentkit.llm.constrained import ToolCallConstraint
    from agentkit.llm.static_cache import StaticCaches

__all__ = [
    "Generated",
    "GenerationSettings",
    "Prefix",
    "Row",
    "common_ids",
    "common_prefix",
    "end_ids",
    "id_bytes",
    "pad_id",
    "prefill",
    "run_batch",
]

KV = list[tuple[Any, Any]]
"""Per layer, the cached (keys, values) tensors of one sequence, each of shape (1, heads, tokens, head size)."""


@dataclass(frozen=True, slots=True)
class GenerationSettings:
    """What must be equal for rows to share one `generate` call.

    Attributes:
        stop: Strings that end generation, matched on text (multi-token safe).
        max_new_tokens: The generation budget.
        temperature: 0 for greedy decoding.
        top_p: Nucleus mass when sampling.
        draft_tokens: Tokens drafted from the context and checked in one forward pass (prompt lookup decoding);
            0 turns it off. Applies to a greedy batch of one row without a constraint (see `run_batch`).
    """

    stop: tuple[str, ...]
    max_new_tokens: int
    temperature: float
    top_p: float
    draft_tokens: int = 0


@dataclass(frozen=True, slots=True)
class Prefix:
    """Cached keys and values for the first tokens of a prompt.

    Attributes:
        ids: The token ids the cache holds keys and values for.
        kv: Per layer, the cached (keys, values) tensors.
    """

    ids: list[int]
    kv: KV

    def cut(self, length: int) -> Prefix:
        """The first `length` tokens of this prefix (views, no copy)."""
        return Prefix(self.ids[:length], [(k[..., :length, :], v[..., :length, :]) for k, v in self.kv])


@dataclass(slots=True)
class Row:
    """One prompt to continue.

    Attributes:
        ids: The prompt's token ids.
        prefix: Cached keys and values for a prefix of `ids` shorter than `ids`, or None.
        logprobs: Compute each generated token's log-probability.
        cancelled: Set from another thread to stop this row at its next token.
        on_token: Called on the generating thread with each new token id, for streaming.
        constraint: Limits what the row may write inside its tool calls to valid calls, or None.
    """

    ids: list[int]
    prefix: Prefix | None = None
    logprobs: bool = False
    cancelled: threading.Event | None = None
    on_token: Callable[[int], None] | None = None
    constraint: ToolCallConstraint | None = None


@dataclass(frozen=True, slots=True)
class Generated:
    """What one row produced.

    Attributes:
        text: The new text, the stop string and everything after it removed, end-of-sequence tokens dropped.
        stop_reason: ``"stop"`` (a stop string), ``"eos"``, ``"length"`` (max_new_tokens) or ``"cancelled"``.
        stop_string: The stop string that ended generation, when one did.
        token_ids: The generated token ids, as the model produced them (padding after the row ended removed).
        logprobs: The log-probability of each generated token under the model (empty unless asked for).
        prompt_tokens: Tokens in the prompt.
        prefilled_tokens: Prompt tokens the model had to process (the rest came from the prefix cache).
        shared_tokens: First prompt tokens the batch held once for all its rows (`shared_prefix`); 0 when none.
        cache: The row's keys and values after generation, for reuse by the next step; None when not kept.
    """

    text: str
    stop_reason: str
    stop_string: str | None
    token_ids: list[int]
    logprobs: list[float] = field(default_factory=list)
    prompt_tokens: int = 0
    prefilled_tokens: int = 0
    shared_tokens: int = 0
    cache: Prefix | None = None


def run_batch(
    model: Any,
    tokenizer: Any,
    rows: Sequence[Row],
    settings: GenerationSettings,
    *,
    device: str,
    keep_cache: bool,
    croppable: bool = False,
    static: StaticCaches | None = None,
) -> list[Generated]:
    """Continue every row's prompt in one `generate` call.

    Args:
        model: A transformers causal LM whose cache is made of plain dynamic layers when `keep_cache` is set or a row
            has a prefix.
        tokenizer: Its tokenizer.
        rows: The prompts; each needs at least one token.
        settings: The generation settings they share.
        device: Where the model is.
        keep_cache: Return each row's keys and values, for the next step to reuse.
        croppable: The model's cache can be cut back (plain dynamic layers), which drafting needs.
        static: Decode from these static caches, which transformers compiles (`static_cache`); a batch that drafts
            decodes from its dynamic cache instead.

    Returns:
        One result per row, in order.
    """
    import torch

    ends = end_ids(model, tokenizer)
    with torch.inference_mode():
        width = max(len(row.ids) for row in rows)
        pads = [width - len(row.ids) for row in rows]
        pad = pad_id(tokenizer)
        drafted = _drafts(rows, settings, croppable)
        static = None if drafted else static
        held_once = keep_cache and static is None and shared_prefix.applies(model, device)
        shared = _shared(rows) if held_once else None
        cut = len(shared.ids) if shared is not None else 0
        # Room for the whole reply (and drafts checked past it), up to twice the prompt: the cache grows beyond that.
        # Decoding from a static cache writes none of it here.
        capacity = (
            width
            if static is not None
            else min(width + settings.max_new_tokens + settings.draft_tokens, 2 * width) - cut
        )
        cache, reused = (
            _prefill_batch(model, rows, pads, pad, device, capacity=capacity, shared=shared)
            if keep_cache
            else (None, [0] * len(rows))
        )
        if static is not None:
            cache = static.load(cache, len(rows), width + settings.max_new_tokens)
        # Each row's padding goes after the shared prefix, which the rows hold once (or before the whole row).
        input_ids = torch.tensor(
            [row.ids[:cut] + [pad] * p + row.ids[cut:] for p, row in zip(pads, rows, strict=True)], device=device
        )
        mask = torch.tensor(
            [[1] * cut + [0] * p + [1] * (len(row.ids) - cut) for p, row in zip(pads, rows, strict=True)],
            device=device,
        )
        options = _options(tokenizer, rows, settings, pad, ends, drafted=drafted, prompt_width=width)
        if cache is not None:
            options[cache_keyword()] = cache
        if static is not None:
            options["compile_config"] = static.compile_config
        with contextlib.ExitStack() as stack:
            if drafted and cache is not None:
                stack.enter_context(_first_pass_from_cache(model))
            if shared is not None:
                stack.enter_context(shared_prefix.shared_prefix(model, shared.kv))
            if static is not None:
                stack.enter_context(static.compiling())
            output = model.generate(input_ids=input_ids, attention_mask=mask, **options)
    results = []
    for index, row in enumerate(rows):
        new = [int(t) for t in output.sequences[index, width:]]
        padded = False
        while new and new[-1] == pad:  # padding after the row ended, while other rows went on
            new.pop()
            padded = True
        if padded and pad in ends:  # the pad is also the end token: keep the one that ended the row
            new.append(pad)
        text, reason, matched = _finish(tokenizer, new, ends, settings, row.cancelled)
        if matched is not None and drafted:
            new = _through_stop(tokenizer, new, matched)
        scores = _logprobs(output.logits, index, new, torch) if row.logprobs else []
        kept = None
        if keep_cache:
            kept = _row_cache(getattr(output, cache_keyword()), index, pads[index], row.ids + new, shared)
        prefilled = len(row.ids) - reused[index]
        results.append(Generated(text, reason, matched, new, scores, len(row.ids), prefilled, cut, kept))
    return results


def _options(
    tokenizer: Any,
    rows: Sequence[Row],
    settings: GenerationSettings,
    pad: int,
    ends: set[int],
    *,
    drafted: bool,
    prompt_width: int,
) -> dict[str, Any]:
    """The keyword arguments of `generate` for the batch, but its inputs and cache."""
    from transformers import LogitsProcessorList, StoppingCriteriaList

    options: dict[str, Any] = {
        "max_new_tokens": settings.max_new_tokens,
        "do_sample": settings.temperature > 0,
        "pad_token_id": pad,
        "return_dict_in_generate": True,
        "output_logits": any(row.logprobs for row in rows),
        "stopping_criteria": StoppingCriteriaList([_Cancelled(rows)]),
    }
    if settings.temperature > 0:
        options.update(temperature=settings.temperature, top_p=settings.top_p)
    else:  # greedy: unset sampling knobs a model's generation_config may carry, so transformers does not warn
        options.update(temperature=None, top_p=None, top_k=None)
    if settings.stop:
        options["stopping_criteria"].append(_stop_strings(tokenizer, settings.stop))
    if drafted:
        # Prompt lookup decoding (transformers): the tokens that followed an earlier occurrence of the last few
        # tokens in the context are drafted, and the model checks them all in one forward pass, keeping the longest
        # run that greedy decoding would have written, plus its own next token. Agent replies repeat much of their
        # context (the reply format, tool names, argument values, observations), and where decoding is bound by
        # reading the weights, a pass over a few tokens costs about what one does. transformers drafts for one row
        # only, and its stop-string criterion reads only the end of the text, which an accepted draft can pass.
        options["prompt_lookup_num_tokens"] = settings.draft_tokens
        if settings.stop:
            options["stopping_criteria"].append(_StopInDraft(tokenizer, settings.stop, prompt_width))
    if any(row.on_token for row in rows):
        options["streamer"] = _Streamer(rows)
    if any(row.constraint for row in rows):
        from agentkit.llm.constrained import ToolCallGuard

        guard = ToolCallGuard(tokenizer, [row.constraint for row in rows], ends)
        options["logits_processor"] = LogitsProcessorList([guard])
    return options


def _cache(buffers: Sequence[tuple[Any, Any]] = (), length: int = 0, offset: int = 0) -> Any:
    """A dynamic cache of `_GrowingLayer`s that holds its first `length` positions in `buffers` (none: empty).

    With an `offset`, the buffers hold the positions after the first `offset` ones, which the rows share and
    `shared_prefix` supplies.
    """
    from transformers import DynamicCache

    growing = _growing_layer_class()
    cache = DynamicCache()
    cache.layer_class_to_replicate = growing
    for keys, values in buffers:
        layer = growing()
        layer.adopt(keys, values, length, offset)
        cache.layers.append(layer)
    return cache


def _batch_cache(caches: list[KV], pads: list[int], capacity: int, offset: int = 0) -> Any:
    """Row caches stacked into one batch cache, each row left-padded with zeros (the attention mask hides them).

    Each row is copied once, straight into buffers with room for `capacity` positions, which decoding then fills.
    With an `offset`, the row caches hold the positions after the shared prefix (see `_cache`).
    """
    if all(not kv for kv in caches):
        return _cache()
    # A row whose prompt is a single token has an empty cache: only padding.
    template = next(kv for kv in caches if kv)
    length = next(pad + kv[0][0].shape[-2] for kv, pad in zip(caches, pads, strict=True) if kv)
    buffers = []
    for layer, pair in enumerate(template):
        stacked = []
        for which, like in enumerate(pair):
            buffer = like.new_empty((len(caches), like.shape[1], max(capacity, length), like.shape[-1]))
            for row, (kv, pad) in enumerate(zip(caches, pads, strict=True)):
                buffer[row, :, :pad] = 0  # padding must hold numbers: masked or not, NaN times 0 is NaN
                if kv:
                    buffer[row, :, pad:length] = kv[layer][which][0]
            stacked.append(buffer)
        buffers.append((stacked[0], stacked[1]))
    return _cache(buffers, length, offset)


def _layers(cache: Any) -> KV:
    return [(layer.keys, layer.values) for layer in cache.layers] if cache.get_seq_length() else []


# Prefill rows together only while that processes at most this much more than prefilling each alone (the padding
# of rows with fewer new tokens). Together, one forward pass serves the batch: on a CPU its matrix products run
# more efficiently and the per-call overhead is paid once, which is worth some padding, not a row's whole history.
_JOINT_PREFILL_SLACK = 1.5


def _prefill_batch(
    model: Any,
    rows: Sequence[Row],
    pads: list[int],
    pad: int,
    device: str,
    *,
    capacity: int,
    shared: Prefix | None = None,
) -> tuple[Any, list[int]]:
    """A padded batch cache of each row's prompt but its last token, and how many tokens each took from its prefix.

    Row ``i`` ends up with ``pads[i]`` positions of padding on the left, as `generate` expects of a left-padded batch;
    with a `shared` prefix (one the rows' prefixes all hold), the cache holds it once and each row's positions after
    it, the padding first. The cache has room for `capacity` positions (after the shared prefix) before it has to grow.
    """
    import torch

    cut = len(shared.ids) if shared is not None else 0
    taken = [len(row.prefix.ids) if row.prefix is not None else 0 for row in rows]
    todo = [len(row.ids) - 1 - t for row, t in zip(rows, taken, strict=True)]
    span = max(todo)
    if len(rows) == 1:
        return _prefill(model, rows[0].ids[:-1], rows[0].prefix, device, capacity), taken
    if span == 0 or len(rows) * span > _JOINT_PREFILL_SLACK * sum(todo):
        alone = [_layers(_prefill(model, row.ids[:-1], row.prefix, device, len(row.ids) - 1)) for row in rows]
        after = [[(k[..., cut:, :], v[..., cut:, :]) for k, v in kv] for kv in alone]
        return _batch_cache(after, pads, capacity, cut), taken
    # Every row runs its last `span` tokens before the final one (fewer when its prompt is shorter): a row with fewer
    # new tokens than that recomputes the end of its prefix (never the shared part), so the new parts of all rows
    # line up on the right.
    taken = [max(cut, len(row.ids) - 1 - span) for row in rows]
    start = max(taken)
    prefixes = [
        [(k[..., cut:, :], v[..., cut:, :]) for k, v in row.prefix.cut(t).kv] if row.prefix is not None and t else []
        for row, t in zip(rows, taken, strict=True)
    ]
    cache = _batch_cache(prefixes, [start - t for t in taken], capacity, cut)
    inputs, masks, positions = [], [], []
    for row, t in zip(rows, taken, strict=True):
        new = row.ids[t:-1]
        gap = span - len(new)  # only a row with nothing of its own prefix left (t == cut) is shorter than the span
        inputs.append([pad] * gap + new)
        masks.append([1] * cut + [0] * (start - t) + [1] * (t - cut) + [0] * gap + [1] * len(new))
        positions.append([0] * gap + list(range(t, t + len(new))))
    with shared_prefix.shared_prefix(model, shared.kv) if shared is not None else contextlib.nullcontext():
        model(
            input_ids=torch.tensor(inputs, device=device),
            attention_mask=torch.tensor(masks, device=device),
            position_ids=torch.tensor(positions, device=device),
            use_cache=True,
            logits_to_keep=1,
            **{cache_keyword(): cache},
        )
    return cache, taken


# Hold a prefix the rows of a batch share once only when that spares reading this many bytes of keys and values per
# layer: the second attention pass and the merge cost each layer some 30-50 us of small operations, about what
# reading 4 MB costs (measured on the benchmarks' 2-vCPU VM: 8 rows sharing 256 tokens of 8 heads of 64 break even).
_MIN_SHARED_BYTES = 4 << 20


def _shared(rows: Sequence[Row]) -> Prefix | None:
    """The longest prefix that all rows' prompts and cached prefixes hold, when a batch gains from holding it once."""
    first = rows[0].prefix
    if len(rows) < 2 or first is None:
        return None
    length = min(len(row.prefix.ids) if row.prefix is not None else 0 for row in rows)
    first_ids = id_bytes(rows[0].ids)
    for row in rows[1:]:
        length = min(length, common_ids(first_ids, id_bytes(row.ids)))
    keys = first.kv[0][0] if first.kv else None
    per_token = 0 if keys is None else 2 * keys.shape[1] * keys.shape[-1] * keys.element_size()  # keys and values
    return first.cut(length) if length and (len(rows) - 1) * length * per_token >= _MIN_SHARED_BYTES else None


def id_bytes(ids: Sequence[int]) -> bytes:
    """Token ids as bytes, 8 to an id, for `common_ids`."""
    return array("q", ids).tobytes()


def common_ids(a: bytes, b: bytes) -> int:
    """How many first token ids two `id_bytes` share.

    Comparing bytes is one ``memcmp``; lists of ids compare int objects one by one, about eight times slower, and the
    engine compares each prompt with every cached one (16 prompts of 2,600 tokens: 1.3 ms as lists).
    """
    return common_prefix(a, b) // 8


def common_prefix(a: Sequence[Any], b: Sequence[Any]) -> int:
    """How many first items (characters, bytes) `a` and `b` share."""
    limit = min(len(a), len(b))
    if a[:limit] == b[:limit]:  # the common case, compared in C
        return limit
    low, high = 0, limit  # invariant: a[:low] == b[:low] and a[:high] != b[:high]
    while high - low > 1:
        middle = (low + high) // 2
        if a[:middle] == b[:middle]:
            low = middle
        else:
            high = middle
    return low


def prefill(model: Any, ids: list[int], prefix: Prefix | None, *, device: str) -> Prefix:
    """The keys and values of all of `ids`, computed on from `prefix` (a prefix of `ids`, or None).

    Args:
        model: A transformers causal LM whose cache is made of plain dynamic layers.
        ids: The tokens to cache.
        prefix: Cached keys and values for their first tokens, or None.
        device: Where the model is.

    Returns:
        A compact prefix of `ids` (its buffers hold exactly those tokens).
    """
    import torch

    with torch.inference_mode():
        cache = _prefill(model, ids, prefix, device, len(ids))
    return Prefix(list(ids), _layers(cache))


def _prefill(model: Any, ids: list[int], prefix: Prefix | None, device: str, capacity: int) -> Any:
    """A cache of the keys and values of `ids`, computed on from `prefix`, with room for `capacity` positions."""
    import torch

    cache = _batch_cache([prefix.kv if prefix is not None else []], [0], capacity)
    todo = ids[len(prefix.ids) if prefix is not None else 0 :]
    if todo:
        # logits_to_keep=1: the logits of a prefill are not needed, and the vocabulary projection is costly.
        inputs = torch.tensor([todo], device=device)
        model(input_ids=inputs, use_cache=True, logits_to_keep=1, **{cache_keyword(): cache})
    return cache


def _row_cache(cache: Any, index: int, pad: int, ids: list[int], shared: Prefix | None = None) -> Prefix:
    """One row's keys and values after generation, without the batch padding (a compact copy, no spare capacity).

    With a `shared` prefix, the cache holds the row's positions after it, and the copy starts with the prefix.
    """
    import torch

    cut = len(shared.ids) if shared is not None else 0
    length = min(len(ids) - cut, int(cache.get_seq_length()) - cut - pad)  # a static cache's length is a tensor
    kv = []
    for number, layer in enumerate(cache.layers):
        k = layer.keys[index : index + 1, :, pad : pad + length, :]
        v = layer.values[index : index + 1, :, pad : pad + length, :]
        if shared is not None:
            first_k, first_v = shared.kv[number]
            kv.append((torch.cat([first_k, k], dim=-2), torch.cat([first_v, v], dim=-2)))
        else:  # a view would keep the whole batch buffer, spare capacity and all, alive
            kv.append((k.clone(), v.clone()))
    return Prefix(ids[: cut + length], kv)


def pad_id(tokenizer: Any) -> int:
    """The id that pads a batch: the tokenizer's pad token, else its end of sequence, else 0."""
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    return int(pad if pad is not None else 0)


def end_ids(model: Any, tokenizer: Any) -> set[int]:
    """The token ids that end a reply: the tokenizer's end of sequence and the model's configured ones."""
    ends = {i for i in (tokenizer.eos_token_id,) if i is not None}
    configured = getattr(getattr(model, "generation_config", None), "eos_token_id", None)
    ends.update(configured if isinstance(configured, list) else [] if configured is None else [configured])
    return ends


def _logprobs(logits: Sequence[Any], index: int, new: list[int], torch: Any) -> list[float]:
    steps = min(len(new), len(logits))
    if not steps:
        return []
    stacked = torch.stack([logits[t][index] for t in range(steps)]).float()  # (tokens, vocab)
    chosen = torch.tensor(new[:steps], device=stacked.device).unsqueeze(-1)
    picked = torch.log_softmax(stacked, dim=-1).gather(-1, chosen)
    return [float(x) for x in picked.squeeze(-1)]


def _finish(
    tokenizer: Any,
    token_ids: list[int],
    ends: set[int],
    settings: GenerationSettings,
    cancelled: threading.Event | None,
) -> tuple[str, str, str | None]:
    hit_end = bool(token_ids) and token_ids[-1] in ends
    kept = token_ids[:-1] if hit_end else token_ids
    # Special tokens stay: some mark tool calls ([TOOL_CALLS]); the reply parser removes the ones that are markup.
    text = tokenizer.decode(kept, skip_special_tokens=False)
    cuts = [(i, s) for s in settings.stop if (i := text.find(s)) >= 0]
    if cuts:
        index, matched = min(cuts)
        return text[:index], "stop", matched
    if hit_end:
        return text, "eos", None
    if cancelled is not None and cancelled.is_set():
        return text, "cancelled", None
    if len(token_ids) >= settings.max_new_tokens:
        return text, "length", None
    # Ended early with no end token and no stop string in the decoded text: a stop string that decoding spelled
    # differently (spaces around special tokens), or a criterion of the model's own.
    return text, "stop" if settings.stop else "eos", None


@functools.cache
def _growing_layer_class() -> type:
    """The `DynamicLayer` of transformers, with buffers that grow by doubling instead of a full copy per token.

    `DynamicLayer.update` concatenates the whole cache with each new token, which makes decoding quadratic in the
    context and, on the CPU, costs as much as the matrix products at a thousand tokens of context. Writing into
    spare capacity copies each token once (amortised); attention reads views of the filled part.
    """
    from transformers.cache_utils import DynamicLayer

    class GrowingLayer(DynamicLayer):  # type: ignore[no-untyped-call]  # untyped in transformers
        # Positions before the buffers' first, held elsewhere (`shared_prefix`): reported like a sliding window's
        # start, so that transformers masks and positions the tokens held here as what they are.
        offset = 0

        def lazy_initialization(self, key_states: Any, value_states: Any) -> None:
            super().lazy_initialization(key_states, value_states)
            self.buffers: tuple[Any, Any] | None = None
            self.length = 0

        def adopt(self, keys: Any, values: Any, length: int, offset: int = 0) -> None:
            """Hold the first `length` positions of these buffers, writing the next tokens into the rest."""
            self.lazy_initialization(keys, values)
            self.buffers, self.length, self.offset = (keys, values), length, offset
            self.keys, self.values = keys[..., :length, :], values[..., :length, :]

        def get_seq_length(self) -> int:
            return self.offset + int(super().get_seq_length())

        def get_mask_sizes(self, query_length: int) -> tuple[int, int]:
            return self.get_seq_length() - self.offset + query_length, self.offset

        def update(self, key_states: Any, value_states: Any, *args: Any, **kwargs: Any) -> tuple[Any, Any]:
            if not self.is_initialized:
                self.lazy_initialization(key_states, value_states)
            start, end = self.length, self.length + key_states.shape[-2]
            if self.buffers is None or end > self.buffers[0].shape[-2]:
                shape = (*key_states.shape[:-2], max(2 * end, 64), key_states.shape[-1])
                grown = (key_states.new_empty(shape), value_states.new_empty(shape))
                if self.buffers is not None:
                    grown[0][..., :start, :] = self.buffers[0][..., :start, :]
                    grown[1][..., :start, :] = self.buffers[1][..., :start, :]
                self.buffers = grown
            self.buffers[0][..., start:end, :] = key_states
            self.buffers[1][..., start:end, :] = value_states
            self.length = end
            self.keys, self.values = self.buffers[0][..., :end, :], self.buffers[1][..., :end, :]
            return self.keys, self.values

        def crop(self, tokens_to_remove: int) -> None:
            # Drafted tokens the model rejected (see `run_batch`): the buffers keep them until overwritten.
            if tokens_to_remove < 0 and self.is_initialized and self.buffers is not None:
                self.length = max(0, self.length + tokens_to_remove)
                self.keys, self.values = self.buffers[0][..., : self.length, :], self.buffers[1][..., : self.length, :]

    return GrowingLayer


@functools.lru_cache(maxsize=16)
def _stop_strings(tokenizer: Any, stop: tuple[str, ...]) -> Any:
    """The `StopStringCriteria` that ``generate(stop_strings=...)`` builds, built once per tokenizer and stop strings.

    Built by `generate` on every call, its tables are looked up in a cache keyed by the vocabulary in the order of
    ``tokenizer.get_vocab()``, which a fast tokenizer does not keep from one call to the next: every call rebuilt
    them, 4 ms for a 782-token vocabulary and 230 ms for a 30,522-token one, at each step of an episode. The
    criterion keeps no state between calls.
    """
    from transformers import StopStringCriteria

    return StopStringCriteria(tokenizer, list(stop))


class _Cancelled:
    """A stopping criterion: a row ends at its next token once its `cancelled` event is set."""

    def __init__(self, rows: Sequence[Row]) -> None:
        self._events = [row.cancelled for row in rows]

    def __call__(self, input_ids: Any, scores: Any, **kwargs: Any) -> Any:
        import torch

        flags = [event is not None and event.is_set() for event in self._events]
        return torch.tensor(flags, dtype=torch.bool, device=input_ids.device)


def _drafts(rows: Sequence[Row], settings: GenerationSettings, croppable: bool) -> bool:
    """Whether `run_batch` drafts tokens: one greedy row without a constraint (it checks tokens one at a time)."""
    single = len(rows) == 1 and rows[0].constraint is None
    return settings.draft_tokens > 0 and settings.temperature == 0 and single and croppable


@contextlib.contextmanager
def _first_pass_from_cache(model: Any) -> Iterator[None]:
    """Make transformers' assisted decoding start from the prefilled cache, as plain decoding does.

    Its first forward pass feeds the whole prompt (it assumes an empty cache) where ordinary `generate` feeds the
    tokens after the cache; with the prompt already cached, keys would be added twice at the wrong positions.
    Only the engine's worker thread calls `generate` on its model, so the instance attribute is seen by no one else.
    """
    prepare = model.prepare_inputs_for_generation

    def from_cache(input_ids: Any, *args: Any, **kwargs: Any) -> Any:
        cache = kwargs.get(cache_keyword())
        if kwargs.get("is_first_iteration") and kwargs.get("next_sequence_length") is None and cache is not None:
            kwargs["next_sequence_length"] = input_ids.shape[1] - cache.get_seq_length()
        return prepare(input_ids, *args, **kwargs)

    model.prepare_inputs_for_generation = from_cache
    try:
        yield
    finally:
        del model.prepare_inputs_for_generation  # back to the class's method


def _through_stop(tokenizer: Any, new: list[int], stop: str) -> list[int]:
    """The tokens up to the one that completes `stop`: an accepted draft may have run a few tokens past it."""
    while len(new) > 1 and stop in tokenizer.decode(new[:-1], skip_special_tokens=False):
        new = new[:-1]
    return new


class _StopInDraft:
    """A stopping criterion: a stop string anywhere in the tokens added since the last check ends the row."""

    def __init__(self, tokenizer: Any, stop: Sequence[str], start: int) -> None:
        self._tokenizer = tokenizer
        self._stop = stop
        self._start = start
        self._checked = start
        # A stop string spans at most as many tokens as it has characters: look back that far into checked text.
        self._overlap = max(len(s) for s in stop)

    def __call__(self, input_ids: Any, scores: Any, **kwargs: Any) -> Any:
        import torch

        length = input_ids.shape[-1]
        tail = input_ids[0, max(self._start, self._checked - self._overlap) : length].tolist()
        self._checked = length
        text = self._tokenizer.decode(tail, skip_special_tokens=False)
        return torch.tensor([any(s in text for s in self._stop)], dtype=torch.bool, device=input_ids.device)


class _Streamer:
    """A transformers streamer for a batch: hands each row its new token ids as they are generated."""

    def __init__(self, rows: Sequence[Row]) -> None:
        self._sinks = [row.on_token for row in rows]
        self._prompt_seen = False

    def put(self, value: Any) -> None:
        if not self._prompt_seen:  # generate first puts the prompt
            self._prompt_seen = True
            return
        # One token per row per step; several at once when drafted tokens were accepted.
        for index, tokens in enumerate(value.reshape(len(self._sinks), -1).tolist()):
            sink = self._sinks[index]
            if sink is not None:  # after its end a row gets padding, which its sink ignores
                for token in tokens:
                    sink(int(token))

    def end(self) -> None:
        """Called by generate when the batch is done; each row's end is signalled by its result instead."""

"""Decoding from static caches that transformers compiles (`LocalChatModel(compile_decoding=True)`).

In eager PyTorch each decoding step launches a few hundred kernels from Python, and on a GPU launching them, not
the arithmetic, bounds small-batch decoding (`benchmarks/README.md`: 6 us per launch on the H200 VM; eager decoding
of a 1B model reached 3 % of the memory bandwidth). transformers' `generate` compiles the decoding step
(`torch.compile`, in its default ``"reduce-overhead"`` mode: CUDA graphs) when the cache is static, fixed-size
buffers written in place, so that a step replays as one graph: 5.3x faster steps for that model.

The engine keeps growing dynamic caches, which it cuts and stacks to reuse an episode's prefix. For a compiled
batch it prefills the rows as usual, copies the batch cache into a static cache, and `generate` decodes from there;
each row's keys and values are then copied out for the prefix cache as before. The static caches are kept from call
to call, one per batch size and length bucket (a power of two), because a CUDA graph replays on the buffers it was
recorded with and each new shape compiles again: a growing conversation moves through a few buckets, not a new
shape per call.
"""

from __future__ import annotations

import contextlib
from collections import OrderedDict
from collections.abc import Iterator
from typing import Any

from agentkit.errors import ConfigError

__all__ = ["StaticCaches"]

# The smallest length bucket: below it, each few tokens more of prompt would compile another shape.
_MIN_BUCKET = 256


class StaticCaches:
    """The static caches a model decodes from, kept for reuse; the least recently used goes first when full.

    Only the engine's worker thread uses an instance.

    Args:
        model: The transformers causal LM.
        device: Where the model is.
        keep: Static caches kept; each holds a batch's keys and values at the bucket's length, in the device's memory.
    """

    def __init__(self, model: Any, device: str, keep: int = 4) -> None:
        from transformers import CompileConfig

        self._model = model
        self._keep = max(1, keep)
        self._caches: OrderedDict[tuple[int, int], Any] = OrderedDict()
        self.compile_config = CompileConfig()
        if not device.startswith("cuda"):
            # transformers compiles on its own only on accelerators; the caller asked for it here too.
            self.compile_config._compile_all_devices = True  # type: ignore[assignment]  # typed None, read as a flag

    def load(self, cache: Any | None, rows: int, length: int) -> Any:
        """A static cache for `rows` rows, room for `length` positions, holding what `cache` holds.

        Args:
            cache: A batch cache of dynamic layers (keys and values of shape (rows, heads, tokens, head size)), or
                None to start empty.
            rows: The batch size.
            length: The positions the batch will fill: its prompt and the generation budget.

        Returns:
            A transformers `StaticCache` whose first positions are `cache`'s.
        """
        from transformers import StaticCache

        key = (rows, max(_MIN_BUCKET, 1 << (length - 1).bit_length()))
        static = self._caches.pop(key, None)
        if static is None:
            static = StaticCache(config=self._model.config, max_cache_len=key[1])
        self._caches[key] = static
        while len(self._caches) > self._keep:
            self._caches.popitem(last=False)
        filled = cache.get_seq_length() if cache is not None else 0
        if cache is None or not filled:
            static.reset()  # a fresh one initialises itself at its first write
            return static
        first = cache.layers[0].keys
        static.early_initialization(rows, first.shape[1], first.shape[-1], first.dtype, first.device)
        for layer, source in zip(static.layers, cache.layers, strict=True):
            # In place: the buffers keep the addresses the compiled step was recorded with. Positions after
            # `filled` keep what an earlier batch left there, finite numbers that causal masking hides.
            layer.keys[:, :, :filled].copy_(source.keys)
            layer.values[:, :, :filled].copy_(source.values)
            layer.cumulative_length.fill_(filled)
        return static

    @contextlib.contextmanager
    def compiling(self) -> Iterator[None]:
        """Around `generate`: a decoding step that torch cannot compile raises a `ConfigError` saying what to do.

        Raises:
            ConfigError: When torch's compiler fails (on the CPU, for want of a C++ compiler, say).
        """
        from torch._dynamo.exc import BackendCompilerFailed

        try:
            yield
        except BackendCompilerFailed as exc:
            cause = getattr(exc, "inner_exception", None) or exc  # what the compiler raised, not dynamo's wrapping
            reason = f"{type(cause).__name__}: {str(cause).strip().splitlines()[0] if str(cause).strip() else ''}"
            raise ConfigError(
                f"compile_decoding=True, but torch.compile could not compile the model's decoding step: {reason}. "
                "Install what the error asks for, or pass compile_decoding=False to decode without compiling."
            ) from exc

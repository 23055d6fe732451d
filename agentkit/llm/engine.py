"""The engine behind `LocalChatModel`: one worker per model, dynamic batching, and a prefix KV cache.

Every call, sync or async, from any thread, becomes a `Request` on the engine's queue. One worker thread owns the
device: it takes the oldest request, joins to it the queued requests that share its generation settings (up to
`max_batch_size`), and runs them as one left-padded `generate` call. N concurrent episodes (``agent.batch``,
concurrent ``ainvoke``) therefore share one model and batch their steps instead of fighting over the device.

After each call the worker keeps the row's keys and values in a small LRU `PrefixStore`. The next step of the same
episode renders a prompt that starts with the previous prompt and reply, so its longest common token prefix with a
stored entry is prefilled from the cache and only the new tokens run through the model. The match is on token ids,
so a template that re-renders earlier turns differently just matches less (down to a full prefill), never wrongly.
Rows of one batch that share more of their prompts than the cache holds (the system prompt, at the first step of a
batch of episodes) have that shared part prefilled once and cached before the batch runs, as it would be when the
episodes ran one after another.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any

from agentkit.llm.generate import (
    Generated,
    GenerationSettings,
    Prefix,
    Row,
    common_ids,
    id_bytes,
    prefill,
    run_batch,
)
from agentkit.llm.loading import context_window
from agentkit.llm.prompt_ids import PromptIds
from agentkit.llm.static_cache import StaticCaches

__all__ = ["Engine", "EngineStats", "PrefixStore", "Request"]

# Rows of a batch that share this many prompt tokens beyond their cached prefixes have them prefilled once for all
# (`Engine._share_prefixes`); below it, the extra forward pass costs about what it saves.
_MIN_SHARED_TOKENS = 16
# How long a growing batch waits for one more caller once those rendering are in (`Engine._wait_for_arrivals`).
_SETTLE_S = 0.005


@dataclass(slots=True)
class Request:
    """One generation request.

    Attributes:
        row: The prompt and its per-row options.
        settings: Generation settings; requests with equal settings can share a batch.
        future: Resolved with the `Generated` result, or the exception the worker met.
    """

    row: Row
    settings: GenerationSettings
    future: Future[Generated] = field(default_factory=Future)


@dataclass(slots=True)
class EngineStats:
    """Counters since the engine started (or since `reset`), for benchmarks and tuning.

    Attributes:
        calls: Rows generated.
        batches: `generate` calls made (several rows share one when batched).
        shared_prefix_batches: Batches that held a prompt prefix all their rows share once (`shared_prefix`).
        prompt_tokens: Prompt tokens over all rows.
        prefilled_tokens: Prompt tokens that went through the model; the rest came from the prefix cache.
        generated_tokens: Tokens generated.
        generate_seconds: Wall time spent in the model (prefill and generate).
    """

    calls: int = 0
    batches: int = 0
    shared_prefix_batches: int = 0
    prompt_tokens: int = 0
    prefilled_tokens: int = 0
    generated_tokens: int = 0
    generate_seconds: float = 0.0

    def reset(self) -> None:
        """Zero every counter."""
        self.calls = self.batches = self.shared_prefix_batches = 0
        self.prompt_tokens = self.prefilled_tokens = self.generated_tokens = 0
        self.generate_seconds = 0.0


class PrefixStore:
    """A small LRU of cached token prefixes, looked up by longest common token prefix.

    Entries are never modified: a prefix handed out is a view that generation extends into new tensors, so one entry
    can serve several episodes (a shared system prompt) and still serve its own episode's next step. Stale entries
    (earlier steps of an episode) age out of the LRU; an entry wholly contained in a newer one is dropped at once.
    """

    def __init__(self, capacity: int) -> None:
        self._capacity = capacity
        self._entries: OrderedDict[int, tuple[Prefix, bytes]] = OrderedDict()  # with its ids' `id_bytes`
        self._next_key = 0

    def take(self, ids: list[int]) -> Prefix | None:
        """The entry sharing the longest prefix with `ids`, cut to that prefix.

        At least one token of `ids` is left out of the returned prefix: generation needs one to process.

        Args:
            ids: The new prompt's token ids.

        Returns:
            The cut entry, or None when no entry shares a first token.
        """
        best_key, best_length = -1, 0
        wanted = id_bytes(ids)
        for key, (_, held) in self._entries.items():
            length = common_ids(held, wanted)
            if length > best_length:
                best_key, best_length = key, length
        length = min(best_length, len(ids) - 1)
        if length <= 0:
            return None
        self._entries.move_to_end(best_key)
        return self._entries[best_key][0].cut(length)

    def put(self, prefix: Prefix) -> None:
        """Store a prefix, evicting the least recently used entry when full."""
        if self._capacity <= 0 or not prefix.ids:
            return
        new = id_bytes(prefix.ids)
        for key in [k for k, (_, held) in self._entries.items() if new.startswith(held)]:
            del self._entries[key]
        self._entries[self._next_key] = (prefix, new)
        self._next_key += 1
        while len(self._entries) > self._capacity:
            self._entries.popitem(last=False)

    def clear(self) -> None:
        """Drop every entry."""
        self._entries.clear()

    def __len__(self) -> int:
        return len(self._entries)


class Engine:
    """Runs generation requests for one model on one worker thread, batching compatible ones.

    Args:
        model: A transformers causal LM.
        tokenizer: Its tokenizer.
        device: Where the model is.
        max_batch_size: The most rows in one `generate` call.
        prefix_cache_size: Cached prefixes kept, and prompts whose token ids `prompt_ids` keeps; two per concurrent
            episode is plenty. 0 turns both off.
        batch_wait_s: After a batch of several rows, the worker waits at least this long for as many requests to
            arrive before running a smaller batch, up to a tenth of the last batch's time when that is longer (the
            episodes of a batch come back after their tools and prompt rendering, which grow with the batch); then
            at most this long for callers still rendering their prompts (see `arriving`). A single caller never
            waits.
        compile_decoding: Decode from static caches that transformers compiles (`static_cache`).
    """

    def __init__(
        self,
        model: Any,
        tokenizer: Any,
        device: str,
        *,
        max_batch_size: int = 8,
        prefix_cache_size: int = 16,
        batch_wait_s: float = 0.02,
        compile_decoding: bool = False,
    ) -> None:
        self.model = model
        self.tokenizer = tokenizer
        self.device = device
        self.max_batch_size = max(1, max_batch_size)
        self.batch_wait_s = batch_wait_s
        self.stats = EngineStats()
        self.context_window = context_window(getattr(model, "config", None))  # the caller checks it before queueing
        self._plain = _plain_dynamic_cache(model)
        self._reuse = prefix_cache_size > 0 and self._plain
        self.prefixes = PrefixStore(prefix_cache_size if self._reuse else 0)
        # Token ids do not depend on the model's cache: kept even where keys and values cannot be.
        self.prompt_ids = PromptIds(tokenizer, prefix_cache_size)
        self._static = StaticCaches(model, device) if compile_decoding else None
        self._pending: deque[Request] = deque()
        self._arriving = 0
        self._ready = threading.Condition()
        self._closed = False
        self._last_batch = 1
        self._last_seconds = 0.0
        self._worker: threading.Thread | None = None

    @classmethod
    def on_own_thread(cls, load: Callable[[], tuple[Any, Any, str]], **options: Any) -> Engine:
        """Load a model on a new worker thread and run its requests on that same thread.

        torch's CPU kernels run their parallel parts on an OpenMP team of threads, one team per thread that calls
        them. libgomp keeps a team's threads spinning between parallel regions (ready at once) only while it
        manages no more threads than there are CPUs: a model loaded on the caller's thread and run on the worker
        makes two teams, and every parallel product then waits for its threads to wake up. On the benchmarks'
        2-vCPU VM that made decoding 1.3-1.5x slower. Loading and running on one thread keeps one team, as long
        as the caller runs no parallel torch work of its own.

        Args:
            load: Returns the model, its tokenizer and the device it is on.
            **options: `Engine` options.

        Returns:
            The engine, once the model is loaded.

        Raises:
            Exception: Whatever `load` raises.
        """
        ready: Future[Engine] = Future()

        def serve() -> None:
            try:
                engine = cls(*load(), **options)
            except BaseException as exc:  # handed to the caller waiting below
                ready.set_exception(exc)
                return
            engine._worker = threading.current_thread()
            ready.set_result(engine)
            engine._loop()

        threading.Thread(target=serve, name="agentkit-llm", daemon=True).start()
        return ready.result()

    def submit(self, request: Request) -> Future[Generated]:
        """Queue a request; its future resolves when the worker has run it.

        Raises:
            RuntimeError: When the engine is closed.
        """
        with self._ready:
            if self._closed:
                raise RuntimeError("This engine is closed: load the model again.")
            if self._worker is None:
                self._worker = threading.Thread(target=self._loop, name="agentkit-llm", daemon=True)
                self._worker.start()
            self._pending.append(request)
            self._ready.notify()
        return request.future

    @contextlib.contextmanager
    def arriving(self) -> Iterator[None]:
        """Mark a caller that is preparing a request (rendering and tokenizing its prompt) until it leaves the block.

        Concurrent episodes reach the model within milliseconds of each other, but each renders its prompt first:
        without this, the first one ready would run alone and the others in a second batch. The worker waits (up to
        `batch_wait_s`) for marked callers before it forms a batch. Submit after leaving the block, so that a lone
        caller is never waited for.
        """
        with self._ready:
            self._arriving += 1
        try:
            yield
        finally:
            with self._ready:
                self._arriving -= 1
                self._ready.notify()

    def close(self) -> None:
        """Let the worker thread end once the requests already queued have run, and the model be freed with the engine.

        The worker holds the engine, and so the model, for as long as it runs. `LocalChatModel` closes its engine
        when the last chat model that shares it is collected.
        """
        with self._ready:
            self._closed = True
            self._ready.notify_all()

    def _loop(self) -> None:
        while (batch := self._next_batch()) is not None:
            try:
                self._run(batch)
            except BaseException as exc:  # the requests' callers get the fault; the worker stays up
                for request in batch:
                    if not request.future.done():
                        request.future.set_exception(exc)

    def _next_batch(self) -> list[Request] | None:
        """The next batch to run; None once the engine is closed and nothing is left to run."""
        with self._ready:
            self._ready.wait_for(lambda: bool(self._pending) or self._closed)
            if not self._pending:
                return None
            want = min(self._last_batch, self.max_batch_size)
            if want > 1:
                # The episodes of the last batch are running their tools; wait briefly for them to come back.
                window = max(self.batch_wait_s, 0.1 * self._last_seconds)
                self._ready.wait_for(lambda: len(self._pending) >= want, timeout=window)
            # Then for callers still rendering their prompts: after that wait, not before it, or a caller one step
            # behind the others (it missed a batch) is still rendering when they are back, misses this batch too, and
            # the episodes stay split in two batches per step.
            self._wait_for_arrivals()
            first = self._pending.popleft()
            batch, rest = [first], deque[Request]()
            while self._pending:
                request = self._pending.popleft()
                if len(batch) < self.max_batch_size and request.settings == first.settings:
                    batch.append(request)
                else:
                    rest.append(request)
            self._pending = rest
        live = [r for r in batch if r.future.set_running_or_notify_cancel()]
        self._last_batch = max(1, len(live))
        return live

    def _share_prefixes(self, rows: list[Row]) -> bool:
        """Prefill once, and store, each prompt prefix that rows of the batch share beyond their cached prefixes.

        Episodes batched together (``agent.batch``) start from the same system prompt and tool descriptions. At their
        first step the cache holds none of it, and prefilling the rows together would compute it once per row; one
        after another, the second episode on would already take it from the cache. Identical prompts (sampled
        rollouts of one task) share all but their last token.

        Returns:
            Whether anything was prefilled (the rows' prefixes are then taken again).
        """
        shared: set[tuple[int, ...]] = set()
        keys = [id_bytes(row.ids) for row in rows]
        for index, row in enumerate(rows):
            others = (common_ids(keys[index], key) for j, key in enumerate(keys) if j != index)
            longest = min(max(others), len(row.ids) - 1)
            if longest - (len(row.prefix.ids) if row.prefix is not None else 0) >= _MIN_SHARED_TOKENS:
                shared.add(tuple(row.ids[:longest]))
        for ids in sorted(shared, key=len):  # shortest first: a longer one extends it from the cache
            known = self.prefixes.take(list(ids))
            self.prefixes.put(prefill(self.model, list(ids), known, device=self.device))
            self.stats.prefilled_tokens += len(ids) - (len(known.ids) if known is not None else 0)
        return bool(shared)

    def _wait_for_arrivals(self) -> None:
        """Wait (up to `batch_wait_s`) for the callers still rendering; called holding `_ready`.

        While the batch grows past the last one (a thread pool starting its episodes), callers reach `arriving` a
        millisecond or so apart, and the one after a gap would run a whole step behind the others: so each time
        the arriving callers are all in, the worker gives the next one `_SETTLE_S` to show up. A lone caller, and a
        batch no larger than the last, are not held back by that.
        """
        deadline = time.monotonic() + self.batch_wait_s

        def full() -> bool:
            return len(self._pending) >= self.max_batch_size

        while True:
            self._ready.wait_for(lambda: not self._arriving or full(), timeout=max(0.0, deadline - time.monotonic()))
            count = len(self._pending)
            if full() or count <= self._last_batch:
                return
            if not self._another_arrives(count, min(_SETTLE_S, deadline - time.monotonic())):
                return

    def _another_arrives(self, queued: int, timeout: float) -> bool:
        """Wait up to `timeout` for a caller to start arriving or for more than `queued` requests; holding `_ready`."""
        return timeout > 0 and self._ready.wait_for(lambda: self._arriving > 0 or len(self._pending) > queued, timeout)

    def _run(self, batch: list[Request]) -> None:
        live = []
        for request in batch:
            if request.row.cancelled is not None and request.row.cancelled.is_set():  # cancelled while queued
                request.future.set_result(Generated("", "cancelled", None, [], prompt_tokens=len(request.row.ids)))
            else:
                live.append(request)
        if not live:
            return
        rows = [request.row for request in live]
        started = time.perf_counter()
        if self._reuse:
            for row in rows:
                row.prefix = self.prefixes.take(row.ids)
            if len(rows) > 1 and self._share_prefixes(rows):
                for row in rows:
                    row.prefix = self.prefixes.take(row.ids)
        settings = live[0].settings
        results = run_batch(
            self.model,
            self.tokenizer,
            rows,
            settings,
            device=self.device,
            keep_cache=self._reuse,
            croppable=self._plain,
            static=self._static,
        )
        elapsed = time.perf_counter() - started
        self._last_seconds = elapsed
        self.stats.batches += 1
        self.stats.shared_prefix_batches += any(result.shared_tokens for result in results)
        self.stats.generate_seconds += elapsed
        for request, result in zip(live, results, strict=True):
            self.stats.calls += 1
            self.stats.prompt_tokens += result.prompt_tokens
            self.stats.prefilled_tokens += result.prefilled_tokens
            self.stats.generated_tokens += len(result.token_ids)
            if result.cache is not None:
                self.prefixes.put(result.cache)
            request.future.set_result(result)


def _plain_dynamic_cache(model: Any) -> bool:
    """Whether the model's cache is made of plain full-attention dynamic layers, which can be cut and stacked.

    Sliding-window, linear-attention and other hybrid caches cannot be cut back to a prefix; those models run
    without prefix reuse (a full prefill per step, as every other framework does).
    """
    from transformers import DynamicCache
    from transformers.cache_utils import DynamicLayer

    config = getattr(model, "config", None)
    if config is None or getattr(config, "is_encoder_decoder", False):
        return False
    try:
        cache = DynamicCache(config=config)
    except Exception:  # an exotic config the cache cannot read: do not guess
        return False
    return all(type(layer) is DynamicLayer for layer in cache.layers)

"""Prompt token ids that re-encode only the new end of an agent's prompt.

Each step of an episode renders the previous step's prompt plus a reply and an observation, and tokenizing all of it
again was most of agentkit's own time per step (1.9 of 4.1 ms at 2,700 prompt tokens, on the benchmarks' CPU). A
`tokenizers` tokenizer first cuts its input at the added tokens it holds (``<|im_start|>``, ``<|eot_id|>``...) and
then encodes the pieces between them one by one, so a prompt's ids are the ids of its text before such a token
followed by the ids of the text from that token on. `PromptIds` keeps recent prompts with the places of those tokens
and encodes a new prompt only from the last one it shares with a kept prompt.

That split is exact for an added token (a *boundary*) that

- is matched in the raw text (``normalized=False``), not in text a normalizer rewrote, which may begin elsewhere
  (``Prepend``) when its piece begins elsewhere;
- needs no word boundary (``single_word=False``): what is around it differs, nothing being before it in the end;
- is not inside another added token past that token's first character: such a token could match from before the
  split onto the text that differs, in the whole prompt only. (A longer token that starts with it is found by
  re-encoding from it. Whitespace it takes in on its left, ``lstrip``, lies in the text both prompts share; on its
  right, ``rstrip``, in the re-encoded end.)

The tokenizer must also be transformers' `tokenizers` backend with its own encoding path (a subclass that overrides
it may rewrite the text first), and must not be splitting special tokens. Position matters in one place only: a
Metaspace pre-tokenizer with ``prepend_scheme="first"`` marks the piece at offset 0, and a piece after an added token
is never at offset 0, whether in the whole prompt or in the re-encoded end. Tokenizers that do not qualify are
encoded whole, as before.
"""

from __future__ import annotations

import bisect
import threading
from collections import deque
from dataclasses import dataclass
from typing import Any

from agentkit.llm.generate import common_prefix

__all__ = ["PromptIds", "boundary_tokens"]


@dataclass(frozen=True, slots=True)
class _Encoded:
    """A prompt, its ids, and where its boundary tokens are (ascending)."""

    text: str
    ids: list[int]
    starts: list[int]  # character offset of each boundary token
    ends: list[int]  # character offset just past it
    indices: list[int]  # its place in `ids`


class PromptIds:
    """Token ids of chat prompts, re-encoding only what follows the last boundary token shared with a recent prompt.

    Thread-safe: callers tokenize concurrently, each outside the lock.

    Args:
        tokenizer: A transformers tokenizer.
        capacity: How many recent prompts to keep; 0 encodes every prompt whole.
    """

    def __init__(self, tokenizer: Any, capacity: int = 16) -> None:
        self._tokenizer = tokenizer
        self._boundaries = boundary_tokens(tokenizer) if capacity > 0 else {}
        self._kept: deque[_Encoded] = deque(maxlen=capacity if self._boundaries else 0)
        self._lock = threading.Lock()

    def __call__(self, text: str, *, keep: bool = True) -> list[int]:
        """The ids of `text` encoded without added special tokens, as ``tokenizer(text, add_special_tokens=False)``.

        Args:
            text: The prompt.
            keep: Keep it for later prompts to extend; False for a prompt that is only counted, which would otherwise
                push out the prompts of the episodes running.

        Returns:
            Its token ids.
        """
        if self._kept.maxlen == 0:
            return list(self._tokenizer(text, add_special_tokens=False)["input_ids"])
        with self._lock:
            base, mark = self._closest(text)
        encoded = self._encode(text) if base is None else self._extend(base, mark, text)
        if keep:
            with self._lock:
                for kept in [k for k in self._kept if encoded.text.startswith(k.text)]:  # superseded by the new one
                    self._kept.remove(kept)
                self._kept.append(encoded)
        return list(encoded.ids)

    def clear(self) -> None:
        """Forget every kept prompt."""
        with self._lock:
            self._kept.clear()

    def _closest(self, text: str) -> tuple[_Encoded | None, int]:
        """The kept prompt with the latest boundary token that `text` shares, and that token's number in it."""
        best: _Encoded | None = None
        best_mark, best_start = -1, 0
        for kept in self._kept:
            mark = bisect.bisect_right(kept.ends, common_prefix(kept.text, text)) - 1
            if mark >= 0 and kept.starts[mark] > best_start:
                best, best_mark, best_start = kept, mark, kept.starts[mark]
        return best, best_mark

    def _extend(self, base: _Encoded, mark: int, text: str) -> _Encoded:
        start, index = base.starts[mark], base.indices[mark]
        tail = self._encode(text[start:])
        return _Encoded(
            text,
            base.ids[:index] + tail.ids,
            base.starts[:mark] + [start + s for s in tail.starts],
            base.ends[:mark] + [start + e for e in tail.ends],
            base.indices[:mark] + [index + i for i in tail.indices],
        )

    def _encode(self, text: str) -> _Encoded:
        encoding = self._tokenizer(text, add_special_tokens=False)
        ids: list[int] = encoding["input_ids"]
        starts, ends, indices = [], [], []
        # Spans of the few boundary tokens only: all of a long prompt's offsets cost a fifth of its encoding.
        for index in [index for index, token in enumerate(ids) if token in self._boundaries]:
            content, span = self._boundaries[ids[index]], encoding.token_to_chars(index)
            # Only a token whose span begins with its own text marks a place to split.
            if span is not None and text.startswith(content, span.start):
                starts.append(span.start)
                ends.append(span.start + len(content))
                indices.append(index)
        return _Encoded(text, ids, starts, ends, indices)


def boundary_tokens(tokenizer: Any) -> dict[int, str]:
    """The added tokens at which `tokenizer`'s encoding splits exactly, by id (see the module's docstring).

    Args:
        tokenizer: A transformers tokenizer.

    Returns:
        Their text by id; empty when the tokenizer does not qualify.
    """
    from transformers.tokenization_utils_base import PreTrainedTokenizerBase
    from transformers.tokenization_utils_tokenizers import TokenizersBackend

    kind = type(tokenizer)
    if (
        not isinstance(tokenizer, TokenizersBackend)
        or kind._encode_plus is not TokenizersBackend._encode_plus
        or kind.__call__ is not PreTrainedTokenizerBase.__call__
        or getattr(tokenizer, "split_special_tokens", False)
    ):
        return {}
    added = {index: token for index, token in tokenizer.added_tokens_decoder.items() if token.content}
    contents = {token.content for token in added.values()}
    lengths = {len(content) for content in contents}
    # Every added token found inside another one past its first character. Looking up that token's substrings of
    # the lengths there are keeps this linear in the vocabulary: some hold thousands of reserved tokens.
    inside = {
        part
        for other in contents
        for start in range(1, len(other))
        for length in lengths
        if start + length <= len(other) and (part := other[start : start + length]) in contents
    }
    return {
        index: token.content
        for index, token in added.items()
        if not (token.normalized or token.single_word or token.content in inside)
    }

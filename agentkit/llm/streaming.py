"""Which part of a reply being generated can be shown while it streams.

A streamed reply must add up to the message the same call returns without streaming. So text is held back while it
could still turn out to be something the final message leaves out: a stop string (trimmed), tool-call markup (parsed
into ``tool_calls``), a ``<think>`` block (kept as reasoning), an end-of-turn token, or trailing whitespace (the
final content is stripped). What is held back is released, or dropped, when more tokens decide it.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

__all__ = ["VisibleText"]

# Where tool-call markup begins, in the formats the reply parser reads (see agentkit.llm.toolcalls).
_CALL_MARKERS = ("<tool_call>", "[TOOL_CALLS]", "<|python_tag|>")
_THINK_OPEN, _THINK_CLOSE = "<think>", "</think>"


class VisibleText:
    """Decode a reply token by token and tell what new text is safe to show.

    Args:
        tokenizer: The model's tokenizer.
        stop: The call's stop strings.
        end_ids: Token ids that end the reply (end of turn, padding after it).
        thinking: The prompt opened a ``<think>`` block, so the reply starts inside one.
        json_calls: A reply that starts with ``{`` or ``[`` may be a bare JSON tool call (Llama 3 format).
        opening: Text the prompt already wrote at the start of the reply (a forced tool call's opening tag).
    """

    def __init__(
        self,
        tokenizer: Any,
        stop: Iterable[str],
        end_ids: Iterable[int],
        *,
        thinking: bool = False,
        json_calls: bool = False,
        opening: str = "",
    ) -> None:
        self._tokenizer = tokenizer
        self._opening = opening
        self._stop = [s for s in stop if s]
        self._ends = set(end_ids)
        self._thinking = thinking
        self._json_calls = json_calls
        self._hold = max((len(s) for s in [*self._stop, *_CALL_MARKERS, _THINK_OPEN]), default=1) - 1
        self._ids: list[int] = []
        # Incremental decoding, as vLLM and TGI do it: `_text` holds the text of ids[:_read], and new tokens are
        # decoded from `_prefix` (the token before them, as context), which keeps the spacing a whole decode would
        # give while each token costs a decode of a few tokens instead of the whole reply.
        self._prefix = self._read = 0
        self._text = ""
        self._closed = False
        self.shown = ""
        """Everything shown so far."""

    def push(self, token: int) -> str:
        """Add one generated token; return the newly showable text ('' when none)."""
        if self._closed:
            return ""
        if token in self._ends:
            self._closed = True
            return ""
        self._ids.append(token)
        self._text += self._decode_new()
        visible = self._visible()
        if len(visible) <= len(self.shown) or not visible.startswith(self.shown):
            return ""
        delta = visible[len(self.shown) :]
        self.shown = visible
        return delta

    def _decode_new(self) -> str:
        """The text the tokens since the last complete decode add ('' while a character is still incomplete)."""
        before = self._tokenizer.decode(self._ids[self._prefix : self._read], skip_special_tokens=False)
        after: str = self._tokenizer.decode(self._ids[self._prefix :], skip_special_tokens=False)
        # A multi-byte character split across tokens decodes as U+FFFD until its last byte arrives.
        if len(after) <= len(before) or after.endswith("\ufffd"):
            return ""
        self._prefix, self._read = self._read, len(self._ids)
        return after[len(before) :]

    def _visible(self) -> str:
        text = self._opening + self._text
        final = False
        cuts = [i for s in self._stop if (i := text.find(s)) >= 0]
        if cuts:
            text, final = text[: min(cuts)], True
            self._closed = True
        body = text.lstrip()
        if self._thinking or body.startswith(_THINK_OPEN) or (not final and _THINK_OPEN.startswith(body)):
            end = body.find(_THINK_CLOSE)
            if end < 0:
                return ""
            body = body[end + len(_THINK_CLOSE) :].lstrip()
        if self._json_calls and body[:1] in ("{", "["):
            return ""  # a bare JSON reply is read as a whole, as a tool call or as content
        marks = [i for m in _CALL_MARKERS if (i := body.find(m)) >= 0]
        if marks:
            return body[: min(marks)].rstrip()
        if not final:
            body = body[: max(0, len(body) - self._hold)]
        return body.rstrip()

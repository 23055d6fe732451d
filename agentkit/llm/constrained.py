"""Constrained tool calls: inside ``<tool_call> … </tool_call>`` a model can only write a valid call to a bound tool.

Outside a tool call the model writes freely (thoughts, answers, several calls per turn). As soon as its text reaches
the opening tag, every next token is limited to those that keep the text a prefix of a newline,
``{"name": <a bound tool>, "arguments": <an object matching that tool's JSON schema>}``, a newline and
``</tool_call>``; once the closing tag is written the model is free again. So the tool name is always one of the
bound tools and the arguments always parse and match the schema: no malformed call reaches the agent.

The enforcement is lm-format-enforcer's `TokenEnforcer` (character-level JSON-schema parser walked over a prefix
tree of the vocabulary). Why it and not xgrammar or outlines: it is pure Python (a 100 kB wheel, nothing compiled,
no CUDA stack: xgrammar's wheel pulls triton, a gigabyte, into a CPU install), it is one of vLLM's guided-decoding
backends, and its framework-neutral `TokenEnforcer` plugs into transformers' `LogitsProcessor`. Its own transformers
helper does not import with transformers 5, so the vocabulary table is built here (`_tokenizer_data`).

Only the Hermes/Qwen ``<tool_call>`` format is constrained; it is the format of agentkit's default model and of
Qwen-style templates.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any

# The tags the reply parser reads, so the constraint and the parser agree on where a call begins and ends.
from agentkit.llm.toolcalls import HERMES_CLOSE, HERMES_OPEN

__all__ = ["ToolCallConstraint", "ToolCallGuard"]

# What a string without a pattern or enum is given for a character lm-format-enforcer's alphabet lacks (`_AnyText`).
_PLACEHOLDER = "x"
# Enough tokens to hold the opening tag even spelled one character per token, with room for tokens that decode to
# nothing.
_TAIL = 4 * len(HERMES_OPEN)


class ToolCallConstraint:
    """What a valid Hermes tool call may contain, for one set of bound tools.

    Args:
        tokenizer: The model's tokenizer (its vocabulary table is built once per tokenizer and cached).
        tools: The bound tools in OpenAI function format (``{"type": "function", "function": {...}}``).
        end_ids: Token ids that end a reply; they are refused inside a call.
        opened: The prompt ends with the opening tag (a forced call): the reply starts inside the call.

    Raises:
        ValueError: If `tools` is empty.
    """

    def __init__(
        self, tokenizer: Any, tools: Sequence[dict[str, Any]], end_ids: set[int], *, opened: bool = False
    ) -> None:
        if not tools:
            raise ValueError("A tool-call constraint needs at least one bound tool.")
        self.opened = opened
        self.schema = _call_schema(tools)
        self.end_ids = frozenset(end_ids)
        self.data = _tokenizer_data(tokenizer, tuple(sorted(end_ids)))
        # Where the closing tag is one token, it is kept out of the call (in a JSON string the reply parser would
        # take it for the end of the call) and written once the call's JSON is complete.
        self.close_id: int | None = tokenizer.get_vocab().get(HERMES_CLOSE)
        # After a forced call the reply may only end or open another call: that needs the opening tag as one token
        # (else it may only end), and the newline a template writes between calls.
        self.open_id: int | None = tokenizer.get_vocab().get(HERMES_OPEN)
        newline = tokenizer.encode("\n", add_special_tokens=False)
        self.newline_ids = frozenset(newline if len(newline) == 1 else ())

    def enforcer(self, written: str) -> Any:
        """A fresh `TokenEnforcer` for one call, advanced past `written` (text after the tag in the tag's token)."""
        from lmformatenforcer import JsonSchemaParser, SequenceParser, StringParser, TokenEnforcer

        call = JsonSchemaParser(self.schema)
        close = "\n" if self.close_id is not None else "\n" + HERMES_CLOSE
        parser: Any = SequenceParser([StringParser("\n"), call, StringParser(close)])
        parser = _AnyText(parser)
        for char in written:
            parser = parser.add_character(char)
        return TokenEnforcer(self.data, parser)


class _AnyText:
    """Wraps a call's parser so that a JSON string without a pattern or enum takes any character, and quickly.

    lm-format-enforcer's JSON parser accepts only its alphabet inside strings, ASCII without "|" and "~", so "Zürich",
    "你好" or "~/notes" could not be written (its issue #30); here a printable character the string refuses is passed
    on as a placeholder letter,
    which such a string treats the same (its length limits still count it). And its `SequenceParser` reports no
    shortcut while a parser follows the JSON (the closing newline), so each token of a string walked the
    vocabulary's prefix tree instead of taking the list of tokens valid in any string: the shortcut is passed on
    from the parser that must take the next character. `TokenEnforcer` calls the five methods below and sets
    `config`; the class does not subclass lm-format-enforcer's so that importing agentkit does not import it.
    """

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.config: Any = None

    def add_character(self, new_character: str) -> _AnyText:
        # Letters, digits and spaces are in every alphabet; "|", "~" and all beyond ASCII are not in the default one.
        if not (new_character.isascii() and (new_character.isalnum() or new_character == " ")):
            allowed = self.inner.get_allowed_characters()
            key = self.shortcut_key()
            if (
                new_character.isprintable()
                and new_character not in allowed
                and _PLACEHOLDER in allowed
                and key
                and key[0] == "json_freetext"
            ):
                new_character = _PLACEHOLDER
        return _AnyText(self.inner.add_character(new_character))

    def get_allowed_characters(self) -> str:
        return str(self.inner.get_allowed_characters())

    def can_end(self) -> bool:
        return bool(self.inner.can_end())

    def shortcut_key(self) -> Any:
        from lmformatenforcer import SequenceParser

        parser = self.inner
        while isinstance(parser, SequenceParser) and len(parser.parsers) > 1 and not parser.parsers[0].can_end():
            parser = parser.parsers[0]  # it takes the next character: its shortcut holds
        return parser.shortcut_key()

    def cache_key(self) -> Any:
        return self.inner.cache_key()


class ToolCallGuard:
    """A transformers logits processor applying each row's `ToolCallConstraint` inside its tool calls.

    Each step costs the same however long the reply has grown: outside a call only the last `_TAIL` tokens are
    decoded to spot an opening tag (checked every step, so a tag is always seen on the step that completes it), and
    inside one the enforcer advances token by token.

    Args:
        tokenizer: The model's tokenizer.
        constraints: Per row of the batch, its constraint or None (that row is never constrained).
        ends: Token ids that end a row; a row that produced one is left alone (generate pads it while others go on).
    """

    def __init__(self, tokenizer: Any, constraints: Sequence[ToolCallConstraint | None], ends: set[int]) -> None:
        self._tokenizer = tokenizer
        self._constraints = list(constraints)
        self._ends = ends
        self._start: int | None = None
        self._ended = [False] * len(constraints)
        # Per row: the enforcer of the call being written and the index of the call's first token after the tag.
        self._open: list[tuple[Any, int] | None] = [None] * len(constraints)

    def __call__(self, input_ids: Any, scores: Any) -> Any:
        """Mask the scores of tokens that would break a tool call being written; other rows are untouched."""
        import torch

        if self._start is None:  # the first call sees the prompt only
            self._start = int(input_ids.shape[1])
            for row, constraint in enumerate(self._constraints):
                if constraint is not None and constraint.opened:  # its first token is already inside the call
                    self._open[row] = (constraint.enforcer(""), self._start)
        length = int(input_ids.shape[1]) - self._start
        for row, constraint in enumerate(self._constraints):
            if constraint is None or self._ended[row] or not (length or self._open[row]):
                continue
            if length and int(input_ids[row, -1]) in self._ends:
                self._ended[row] = True
                continue
            allowed = self._allowed(row, constraint, input_ids[row], length)
            if allowed is None:
                continue
            mask = torch.full_like(scores[row], float("-inf"))
            mask[allowed] = 0
            scores[row] = scores[row] + mask
        return scores

    def _allowed(self, row: int, constraint: ToolCallConstraint, ids: Any, length: int) -> list[int] | None:
        """The tokens the row may write next, or None when it is outside a tool call."""
        current = self._open[row]
        if current is not None and int(ids[-1]) == constraint.close_id:  # the tag written below: call complete
            self._open[row] = current = None
        if current is None:
            current = self._opened(constraint, ids, length)
            if current is None:
                return _after_forced_call(constraint, ids) if constraint.opened else None
            self._open[row] = current
        enforcer, first = current
        try:
            allowed = list(enforcer.get_allowed_tokens(ids[first:].tolist()).allowed_tokens)
        except Exception:  # a row stopped by a stop string is padded: it no longer matters what it may write
            return None
        if constraint.end_ids.intersection(allowed):  # the call's text may end here (whitespace aside)
            if constraint.close_id is not None:
                return [constraint.close_id]
            self._open[row] = None
            return _after_forced_call(constraint, ids) if constraint.opened else None
        return allowed or None

    def _opened(self, constraint: ToolCallConstraint, ids: Any, length: int) -> tuple[Any, int] | None:
        """The enforcer and first token of a call whose opening tag the last token completed, if it did."""
        tail = ids[len(ids) - min(length, _TAIL) :].tolist()
        text = self._tokenizer.decode(tail, skip_special_tokens=False)
        tag = text.rfind(HERMES_OPEN)
        if tag < 0 or HERMES_CLOSE in text[tag:]:
            return None
        first = _tokens_covering(self._tokenizer, tail, tag + len(HERMES_OPEN))
        written = self._tokenizer.decode(tail[:first], skip_special_tokens=False)[tag + len(HERMES_OPEN) :]
        try:
            enforcer = constraint.enforcer(written)
        except Exception:  # the text after the tag already broke the format: nothing to enforce any more
            return None
        return enforcer, len(ids) - len(tail) + first


def _after_forced_call(constraint: ToolCallConstraint, ids: Any) -> list[int]:
    """What a forced reply may write once a call is complete: its end, or another call."""
    allowed = set(constraint.end_ids)
    if constraint.open_id is not None:
        allowed.add(constraint.open_id)
        if int(ids[-1]) not in constraint.newline_ids:
            allowed |= constraint.newline_ids
    return sorted(allowed)


def _tokens_covering(tokenizer: Any, ids: list[int], chars: int) -> int:
    """The fewest leading tokens of `ids` whose text is at least `chars` characters long."""
    for count in range(1, len(ids) + 1):
        if len(tokenizer.decode(ids[:count], skip_special_tokens=False)) >= chars:
            return count
    return len(ids)


def _call_schema(tools: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """The JSON schema of one call to any of `tools`: a name from the tools and that tool's arguments."""
    branches = []
    for tool in tools:
        function = tool.get("function", tool)
        parameters = function.get("parameters") or {"type": "object", "properties": {}}
        branches.append(
            {
                "type": "object",
                "properties": {"name": {"type": "string", "enum": [function["name"]]}, "arguments": parameters},
                "required": ["name", "arguments"],
            }
        )
    return branches[0] if len(branches) == 1 else {"anyOf": branches}


@functools.lru_cache(maxsize=8)
def _tokenizer_data(tokenizer: Any, end_ids: tuple[int, ...]) -> Any:
    """lm-format-enforcer's vocabulary table (decodes every token once: seconds for a 150k vocabulary, so cached)."""
    from lmformatenforcer import TokenEnforcerTokenizerData

    # Markup tokens (<think>, <tool_call>, <|im_end|>, ...) are never part of a call: inside a JSON string the reply
    # parser would read them as markup and cut the call. The closing tag too: the guard writes it when a call is done.
    markup = {*tokenizer.all_special_ids, *tokenizer.added_tokens_decoder, tokenizer.get_vocab().get(HERMES_CLOSE)}
    zero = tokenizer.encode("0", add_special_tokens=False)[-1]
    regular = []
    for index in range(len(tokenizer)):
        if index in markup:
            continue
        # Decoding after a "0" keeps a leading space that decoding the token alone can drop.
        after_zero = tokenizer.decode([zero, index])[1:]
        regular.append((index, after_zero, len(after_zero) > len(tokenizer.decode([index]))))

    def decode(ids: list[int]) -> str:
        return str(tokenizer.decode(ids)).rstrip("\ufffd")

    return TokenEnforcerTokenizerData(regular, decode, list(end_ids), False, len(tokenizer))

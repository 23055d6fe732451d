"""Parse tool calls out of a local chat model's generated text, for the common open-weight formats.

A chat model rendered with tools answers in the format its chat template taught it. This module turns that text into
what a LangChain ``AIMessage`` holds: the prose left over, well-formed ``ToolCall``s, ``InvalidToolCall``s for calls
the model botched (so the agent can tell it what went wrong), and any ``<think>`` reasoning kept apart.

Formats:

* ``hermes`` (Hermes 2 Pro, Qwen2.5, Qwen3, ...): ``<tool_call>{"name": ..., "arguments": {...}}</tool_call>`` blocks,
  any number, anywhere in the reply. A block left open at the end of the text (generation stopped) still counts;
  ``arguments`` may be a JSON string or be spelled ``parameters``; a block may hold a JSON list of calls.
* ``mistral``: ``[TOOL_CALLS][{"name": ..., "arguments": {...}}, ...]`` (tokenizer v3; a list cut off before its
  closing bracket keeps the calls it completed) and ``[TOOL_CALLS]name[ARGS]{...}``, repeatable (v11+, Mistral
  Small 3.x; an optional ``[CALL_ID]id`` before ``[ARGS]`` is skipped). Text before the first marker is content.
  A marker is a special token, so it always ends the call before it: each call is read only up to the next marker.
  A marker followed by nothing, or by a list cut off before its first call, is an invalid call.
* ``llama3`` (Llama 3.1 / 3.2 / 3.3 JSON tool calling): the *whole* reply, optionally after ``<|python_tag|>``, is
  one or more call objects ``{"name": ..., "parameters": {...}}`` separated by ``;`` or newlines, or a JSON list of
  them. After the tag, JSON that breaks off (generation stopped) is an invalid call. Without the tag a bare object
  only counts as a call when it looks like one: a string ``name``, no keys but ``name`` / ``parameters`` /
  ``arguments`` / ``type`` / ``id``, and either an arguments key or, when ``tool_names`` is given, a name among them
  (with ``tool_names`` given the name must always be among them). Anything else, such as a JSON answer the user
  asked for, stays content.
* ``auto``: hermes when the reply holds ``<tool_call>``, else mistral when it holds ``[TOOL_CALLS]``, else llama3.

Every call gets a fresh id ``call_<hex>``. A reply holds at most `MAX_CALLS` calls, valid and invalid together:
reading stops at the call past the cap, which becomes one invalid call saying so, and the rest of the reply is ignored
(its text too). A leading ``<think>...</think>`` block, or text ending in ``</think>`` when the template opened the
block in the prompt, becomes ``reasoning``; an unclosed leading ``<think>`` (generation stopped while thinking) is all
reasoning. Trailing end-of-turn markers (``<|im_end|>``, ``<|eot_id|>``, ``<|eom_id|>``, ``</s>``, ...) are dropped.

Parsing costs time linear in the text: markers are found with ``str.find``, JSON is read in place with
``json.JSONDecoder.raw_decode`` (a failed decode, whose error counts the lines before it, only ever reads one block
or one call's text between markers), and the few regular expressions have no nested repetition.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Collection
from dataclasses import dataclass
from typing import Any, Literal

from langchain_core.messages import InvalidToolCall, ToolCall
from langchain_core.messages.tool import invalid_tool_call, tool_call

__all__ = [
    "HERMES_CLOSE",
    "HERMES_OPEN",
    "MAX_CALLS",
    "CallCollector",
    "ParsedReply",
    "ToolCallFormat",
    "detect_format",
    "new_call_id",
    "parse_reply",
]

ToolCallFormat = Literal["hermes", "llama3", "mistral", "auto"]

MAX_CALLS = 64
"""The most tool calls (valid and invalid together) one reply may hold.

Reading stops at the call past the cap: it is replaced by one invalid call saying that the reply holds more than
``MAX_CALLS`` tool calls and the rest were ignored, and nothing after it is read. A model that writes more calls than
this in one turn is looping, and a flood of tiny broken calls must not cost a record (and an id) each.
"""

_THINK_OPEN = "<think>"
_THINK_CLOSE = "</think>"
HERMES_OPEN = "<tool_call>"
HERMES_CLOSE = "</tool_call>"
_MISTRAL_CALLS = "[TOOL_CALLS]"
_MISTRAL_ARGS = "[ARGS]"
_MISTRAL_CALL_ID = "[CALL_ID]"
_PYTHON_TAG = "<|python_tag|>"
_LLAMA_HEADER = "<|start_header_id|>"
# End-of-turn markers a decode may keep when special tokens are not skipped.
_END_MARKERS = ("<|im_end|>", "<|eot_id|>", "<|eom_id|>", "<|end_of_text|>", "<|endoftext|>", "</s>")
# A run of whitespace and end markers, read backwards: matched at the start of the reversed text, it is the run that
# ends the text (no marker ends with another, so which one ends the text is never in doubt).
_END_TAIL = re.compile("(?:\\s|" + "|".join(re.escape(marker[::-1]) for marker in _END_MARKERS) + ")*")
_ARGS_KEYS = ("arguments", "parameters")
_CALL_KEYS = frozenset({"name", "arguments", "parameters", "type", "id"})

_DECODER = json.JSONDecoder()
_SPACE = re.compile(r"[ \t\r\n]*")
_LIST_SEP = re.compile(r"[ \t\r\n,]*")  # between the elements of a list
_CALL_SEP = re.compile(r"[ \t\r\n;]*")  # between llama3 calls
_TOOL_NAME = re.compile(r"[\w.:-]+")
_CALL_ID = re.compile(r"[\w-]*")
_NAME_KEY = re.compile(r'"name"[ \t\r\n]*:[ \t\r\n]*(?=")')
_ARGS_KEY = re.compile(r'"(?:arguments|parameters)"[ \t\r\n]*:[ \t\r\n]*')


@dataclass(frozen=True, slots=True)
class ParsedReply:
    """A model reply split into what an ``AIMessage`` holds.

    Attributes:
        content: The text left for ``AIMessage.content``: tool-call markup and the ``<think>`` block removed, stripped.
        tool_calls: The well-formed calls, in order, each with a fresh id ``call_<hex>`` and type ``tool_call``.
        invalid_tool_calls: The calls whose JSON does not parse, that lack a name, or whose arguments are not a
            JSON object; ``args`` holds the raw text and ``error`` says what is wrong, written for the model. When
            the reply holds more than `MAX_CALLS` calls, the last one says so and the rest were not read.
        reasoning: The ``<think>`` block's text ('' when none), kept out of ``content``.
    """

    content: str
    tool_calls: list[ToolCall]
    invalid_tool_calls: list[InvalidToolCall]
    reasoning: str


def new_call_id() -> str:
    """Return a fresh tool call id, ``call_`` and 24 random hex digits."""
    return "call_" + os.urandom(12).hex()


def parse_reply(
    text: str, *, format: ToolCallFormat = "auto", tool_names: Collection[str] | None = None
) -> ParsedReply:
    """Split a generated reply into content, tool calls, invalid tool calls and reasoning.

    Args:
        text: The decoded model output (decoded with the format's markers kept: ``[TOOL_CALLS]`` and
            ``<|python_tag|>`` are special tokens that ``skip_special_tokens=True`` would remove).
        format: The tool-call format the model was prompted with, or ``"auto"`` to detect it from the markers.
        tool_names: The names of the tools offered. Only used to decide whether a bare JSON object (llama3
            format) is a tool call; calls inside explicit markup are returned whatever their name.

    Returns:
        The parsed reply.

    Raises:
        ValueError: If ``format`` is not one of the known formats.
    """
    reasoning, body = _split_think(_drop_end_markers(text))
    names = None if tool_names is None else frozenset(tool_names)
    calls = CallCollector()
    if format == "auto":
        if HERMES_OPEN in body:
            format = "hermes"
        elif _MISTRAL_CALLS in body:
            format = "mistral"
        else:
            format = "llama3"
    if format == "hermes":
        content = _parse_hermes(body, calls)
    elif format == "mistral":
        content = _parse_mistral(body, calls)
    elif format == "llama3":
        content = _parse_llama3(body, names, calls)
    else:
        raise ValueError(f"unknown tool call format {format!r}; expected one of hermes, llama3, mistral, auto")
    return ParsedReply(content.strip(), calls.valid, calls.invalid, reasoning)


def detect_format(chat_template: str | None) -> ToolCallFormat:
    """Guess a model's tool-call format from its chat template source.

    Args:
        chat_template: The Jinja source of the tokenizer's ``chat_template``, or None.

    Returns:
        ``"hermes"`` when the template writes ``<tool_call>``, ``"mistral"`` when it writes ``[TOOL_CALLS]``,
        ``"llama3"`` when it writes ``<|python_tag|>``, or Llama 3 headers together with ``ipython`` or a
        ``"parameters"`` key, and ``"auto"`` otherwise.
    """
    if not chat_template:
        return "auto"
    if HERMES_OPEN in chat_template:
        return "hermes"
    if _MISTRAL_CALLS in chat_template:
        return "mistral"
    if _PYTHON_TAG in chat_template:
        return "llama3"
    if _LLAMA_HEADER in chat_template and ("ipython" in chat_template or '"parameters"' in chat_template):
        return "llama3"
    return "auto"


# ----------------------------------------------------------------------------------------------------------------------
# Calls: validating one decoded call and collecting the results
# ----------------------------------------------------------------------------------------------------------------------


class CallCollector:
    """Tool calls as a parser finds them, well-formed and invalid, in order, at most `MAX_CALLS` of them.

    The call past the cap is recorded as one invalid call saying so, and sets ``full``: the parsers then stop reading,
    and any call added after it is dropped.
    """

    __slots__ = ("full", "invalid", "valid")

    def __init__(self) -> None:
        self.valid: list[ToolCall] = []
        self.invalid: list[InvalidToolCall] = []
        self.full = False

    def _room(self) -> bool:
        """Whether one more call may be recorded; the first time it may not, record the overflow instead."""
        if self.full:
            return False
        if len(self.valid) + len(self.invalid) < MAX_CALLS:
            return True
        self.full = True
        error = (
            f"the reply holds more than {MAX_CALLS} tool calls; only the first {MAX_CALLS} were read, the rest ignored"
        )
        self.invalid.append(invalid_tool_call(name=None, args="", id=new_call_id(), error=error))
        return False

    def add_invalid(self, name: str | None, args: str, error: str) -> None:
        """Add a call the model botched: `args` is its raw text, `error` says what is wrong, for the model."""
        if self._room():
            self.invalid.append(invalid_tool_call(name=name, args=args, id=new_call_id(), error=error))

    def add_object(self, obj: Any, raw: str) -> None:
        """Add one decoded call object, ``{"name": ..., "arguments": ...}`` or OpenAI's ``{"function": {...}}``."""
        if not isinstance(obj, dict):
            self.add_invalid(None, raw, f"a tool call must be a JSON object, got {_kind(obj)}")
            return
        obj = _unwrap(obj)
        key = next((k for k in _ARGS_KEYS if k in obj), None)
        name = obj.get("name")
        if not isinstance(name, str) or not name.strip():
            self.add_invalid(None, _dump(obj[key]) if key else raw, "the tool call has no name")
            return
        self.add_args(name.strip(), obj[key] if key else None)

    def add_args(self, name: str, args: Any) -> None:
        """Add a call to ``name`` whose decoded arguments are ``args`` (a dict, a JSON string of one, or None)."""
        if isinstance(args, str):
            raw = args
            if not raw.strip():
                args = {}
            else:
                try:
                    args = json.loads(raw)
                except (ValueError, RecursionError) as exc:
                    self.add_invalid(name, raw, f"arguments are not valid JSON: {_reason(exc)}")
                    return
                if not isinstance(args, dict):
                    self.add_invalid(name, raw, f"arguments must be a JSON object, got {_kind(args)}")
                    return
        elif args is None:
            args = {}
        if not isinstance(args, dict):
            self.add_invalid(name, _dump(args), f"arguments must be a JSON object, got {_kind(args)}")
            return
        if self._room():
            self.valid.append(tool_call(name=name, args=args, id=new_call_id()))

    def add_unparsable(self, segment: str, error_pos: int, exc: Exception) -> None:
        """Add a call whose JSON text ``segment`` fails to decode at ``error_pos``, salvaging its name and args."""
        name = None
        found = _NAME_KEY.search(segment)
        if found is not None:
            try:
                value, _ = _DECODER.raw_decode(segment, found.end())
            except ValueError:
                value = None
            if isinstance(value, str) and value.strip():
                name = value.strip()
        args = segment.strip()
        what = "the tool call is"
        found = _ARGS_KEY.search(segment)
        if found is not None:
            args, args_end = _args_text(segment, found.end())
            # Blame the arguments only when the error lies in them: past their end (they decode) it is the call's.
            if found.end() <= error_pos and (args_end is None or error_pos < args_end):
                what = "arguments are"
        self.add_invalid(name, args, f"{what} not valid JSON: {_reason(exc)}")


def _unwrap(obj: dict[str, Any]) -> dict[str, Any]:
    """Return the inner call of OpenAI's ``{"type": "function", "function": {...}}`` shape, else ``obj``."""
    inner = obj.get("function")
    if "name" not in obj and isinstance(inner, dict):
        return inner
    return obj


def _args_text(segment: str, start: int) -> tuple[str, int | None]:
    """The raw arguments of a broken call object, and where they end when they decode (else None).

    The raw arguments are the arguments value when it decodes, else the rest of the text.
    """
    try:
        _, end = _DECODER.raw_decode(segment, start)
    except (ValueError, RecursionError):
        rest = segment[start:].rstrip()
        # Drop the call object's own closing brace when the arguments text has one brace too many.
        if segment.lstrip().startswith("{") and rest.endswith("}") and rest.count("}") > rest.count("{"):
            rest = rest[:-1].rstrip()
        return rest, None
    return segment[start:end], end


def _looks_like_call(obj: Any, names: frozenset[str] | None) -> bool:
    """Whether a bare JSON value (llama3 format, no marker) is a tool call rather than ordinary content."""
    if not isinstance(obj, dict):
        return False
    obj = _unwrap(obj)
    name = obj.get("name")
    if not isinstance(name, str) or not obj.keys() <= _CALL_KEYS:
        return False
    if names is not None:
        return name.strip() in names
    return any(key in obj for key in _ARGS_KEYS)


def _kind(value: Any) -> str:
    """The JSON type name of a decoded value."""
    if isinstance(value, dict):
        return "an object"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, bool):
        return "a boolean"
    if value is None:
        return "null"
    return "a number"


def _dump(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False)


def _reason(exc: BaseException) -> str:
    if isinstance(exc, RecursionError):
        return "nested too deeply"
    return str(exc)


def _skip(pattern: re.Pattern[str], text: str, pos: int) -> int:
    """Where a match of ``pattern`` (which may be empty) starting at ``pos`` ends."""
    found = pattern.match(text, pos)
    return pos if found is None else found.end()


def _decode(text: str, pos: int) -> tuple[Any, int]:
    """Decode one JSON value starting exactly at ``pos``; raises ValueError, also for too-deep nesting."""
    try:
        return _DECODER.raw_decode(text, pos)
    except RecursionError as exc:
        error = json.JSONDecodeError("JSON nested too deeply", text, pos)
        raise error from exc


# ----------------------------------------------------------------------------------------------------------------------
# Text around the calls: end markers and the <think> block
# ----------------------------------------------------------------------------------------------------------------------


def _drop_end_markers(text: str) -> str:
    """The text without its trailing end-of-turn markers and the whitespace around them."""
    text = text.rstrip()
    # One match on the reversed text: stripping a marker and then whitespace, again and again, costs quadratic time
    # when each step slices the text, and a Python loop over a megabyte of markers is slow.
    tail = _END_TAIL.match(text[::-1])
    return text if tail is None else text[: len(text) - tail.end()]


def _split_think(text: str) -> tuple[str, str]:
    """Split off a leading reasoning block: ``(reasoning, rest)``."""
    end = text.find(_THINK_CLOSE)
    if end == -1:
        stripped = text.lstrip()
        if stripped.startswith(_THINK_OPEN):  # stopped while still thinking
            return stripped[len(_THINK_OPEN) :].strip(), ""
        return "", text
    start = text.find(_THINK_OPEN, 0, end)
    if start == -1:  # the chat template opened the block in the prompt
        return text[:end].strip(), text[end + len(_THINK_CLOSE) :]
    if text[:start].strip():  # not a leading block: leave the text alone
        return "", text
    return text[start + len(_THINK_OPEN) : end].strip(), text[end + len(_THINK_CLOSE) :]


def _join(parts: list[str]) -> str:
    return "\n".join(part for part in (p.strip() for p in parts) if part)


def _strip_fence(text: str) -> str:
    """Remove a markdown code fence wrapping the whole (stripped) text, with its language tag."""
    if len(text) < 6 or not text.startswith("```") or not text.endswith("```"):
        return text
    inner = text[3:-3]
    newline = inner.find("\n")
    if newline != -1 and (not inner[:newline].strip() or inner[:newline].strip().isalnum()):
        inner = inner[newline + 1 :]
    return inner.strip()


# ----------------------------------------------------------------------------------------------------------------------
# Formats
# ----------------------------------------------------------------------------------------------------------------------


def _parse_hermes(body: str, calls: CallCollector) -> str:
    """Read ``<tool_call>...</tool_call>`` blocks; return the text around them."""
    parts: list[str] = []
    pos = 0
    close = -2  # position of the next closing tag; -2: not searched yet, -1: there is none
    while not calls.full:
        start = body.find(HERMES_OPEN, pos)
        if start == -1:
            parts.append(body[pos:])
            break
        parts.append(body[pos:start])
        inner = start + len(HERMES_OPEN)
        if close != -1 and close < inner:
            close = body.find(HERMES_CLOSE, inner)
        following = body.find(HERMES_OPEN, inner)
        if following != -1 and (close == -1 or following < close):  # this block was never closed
            _hermes_block(body[inner:following], calls)
            pos = following
        elif close == -1:  # the last block was never closed: generation stopped
            _hermes_block(body[inner:], calls)
            pos = len(body)
        else:
            _hermes_block(body[inner:close], calls)
            pos = close + len(HERMES_CLOSE)
    return _join(parts)


def _hermes_block(block: str, calls: CallCollector) -> None:
    """Read the call(s) in one ``<tool_call>`` block: JSON objects, or lists of them."""
    raw = _strip_fence(block.strip())
    if not raw:
        calls.add_invalid(None, "", "the tool call is empty")
        return
    pos = 0
    while pos < len(raw) and not calls.full:
        if raw[pos] not in "{[":
            if pos == 0:
                calls.add_invalid(None, raw, "a tool call must be a JSON object with a name and arguments")
            return  # text after complete calls (a stray brace, say) is ignored
        start = pos
        try:
            value, pos = _decode(raw, start)
        except ValueError as exc:
            calls.add_unparsable(raw[start:], getattr(exc, "pos", start) - start, exc)
            return
        _add_objects(value, raw[start:pos], calls)
        pos = _skip(_CALL_SEP, raw, pos)


def _add_objects(value: Any, raw: str, calls: CallCollector) -> None:
    """Add the call object ``value``, or each element of the list ``value``; ``raw`` is its JSON text."""
    for item in value if isinstance(value, list) else [value]:
        if calls.full:
            return
        calls.add_object(item, raw)


def _parse_mistral(body: str, calls: CallCollector) -> str:
    """Read the calls after each ``[TOOL_CALLS]`` marker, up to the next one; return the text outside them."""
    parts: list[str] = []
    pos = 0
    marker = body.find(_MISTRAL_CALLS)
    while marker != -1 and not calls.full:
        parts.append(body[pos:marker])
        start = marker + len(_MISTRAL_CALLS)
        marker = body.find(_MISTRAL_CALLS, start)
        # Slice the calls' text once: JSON read in it never runs past the next marker, and a failed decode's error
        # counts lines from the start of this text only, so reading every marker's text costs linear time in all.
        text = body[start:] if marker == -1 else body[start:marker]
        pos = start + _mistral_calls(text, calls)
    if not calls.full:
        parts.append(body[pos:])
    return _join(parts)


def _mistral_calls(text: str, calls: CallCollector) -> int:
    """Read the text between one ``[TOOL_CALLS]`` marker and the next (or the end); return where reading stopped."""
    pos = _skip(_SPACE, text, 0)
    if pos >= len(text):
        calls.add_invalid(None, "", f"nothing follows {_MISTRAL_CALLS}: expected a tool name or a JSON list of calls")
        return pos
    if text[pos] in "[{":
        return _mistral_json(text, pos, calls)
    found = _TOOL_NAME.match(text, pos)
    if found is None:
        calls.add_invalid(None, text[pos:].strip(), f"expected a tool name after {_MISTRAL_CALLS}")
        return len(text)
    name = found.group()
    pos = found.end()
    if text.startswith(_MISTRAL_CALL_ID, pos):
        pos = _skip(_CALL_ID, text, pos + len(_MISTRAL_CALL_ID))
    if text.startswith(_MISTRAL_ARGS, pos):
        pos += len(_MISTRAL_ARGS)
    pos = _skip(_SPACE, text, pos)
    if pos < len(text) and text[pos] in "{[":
        try:
            args, end = _decode(text, pos)
        except ValueError as exc:
            calls.add_invalid(name, text[pos:].strip(), f"arguments are not valid JSON: {_reason(exc)}")
            return len(text)
        calls.add_args(name, args)
        return end
    calls.add_invalid(name, text[pos:].strip(), f"no JSON arguments follow the tool name {name!r}")
    return len(text)


def _mistral_json(text: str, pos: int, calls: CallCollector) -> int:
    """Read a JSON call object or list of them at ``pos``, keeping the complete calls of a list cut off early."""
    try:
        value, end = _decode(text, pos)
    except ValueError as exc:
        if text[pos] == "[":
            return _mistral_open_list(text, pos, calls)
        calls.add_unparsable(text[pos:], getattr(exc, "pos", pos) - pos, exc)
        return len(text)
    _add_objects(value, text[pos:end], calls)
    return end


def _mistral_open_list(text: str, pos: int, calls: CallCollector) -> int:
    """Read the elements of the list of calls at ``pos`` that does not decode as a whole (cut off, or one broken).

    A list that holds no element, cut off right after its ``[`` say, is one invalid call: the model meant to call.
    """
    opening = pos
    pos += 1
    read = False
    while True:
        pos = _skip(_LIST_SEP, text, pos)
        if pos >= len(text):
            break
        if text[pos] == "]":
            pos += 1
            break
        if calls.full:
            return pos
        start = pos
        try:
            value, pos = _decode(text, start)
        except ValueError as exc:
            calls.add_unparsable(text[start:], getattr(exc, "pos", start) - start, exc)
            return len(text)
        calls.add_object(value, text[start:pos])
        read = True
    if not read:
        error = f"the JSON list of calls after {_MISTRAL_CALLS} ends before its first call"
        calls.add_invalid(None, text[opening:pos].strip(), error)
    return pos


def _parse_llama3(body: str, names: frozenset[str] | None, calls: CallCollector) -> str:
    """Read a reply that is wholly JSON calls (optionally after ``<|python_tag|>``); else return it as content."""
    text = body.strip()
    tagged = text.startswith(_PYTHON_TAG)
    if tagged:
        text = text[len(_PYTHON_TAG) :].strip()
    text = _strip_fence(text)
    # After the tag the model has committed to a call: any object is read (and validated) as one, and JSON that
    # breaks off is an invalid call rather than content.
    found = _json_calls(text, None if tagged else names, strict=not tagged)
    if found is None:
        if tagged:
            calls.add_invalid(None, text, f"expected a JSON tool call after {_PYTHON_TAG}")
            return ""
        return body
    values, broken = found
    for value, start, end in values:
        if calls.full:
            return ""
        _add_objects(value, text[start:end], calls)
    if broken is not None:
        start, exc = broken
        calls.add_unparsable(text[start:], getattr(exc, "pos", start) - start, exc)
    return ""


def _json_calls(
    text: str, names: frozenset[str] | None, *, strict: bool
) -> tuple[list[tuple[Any, int, int]], tuple[int, ValueError] | None] | None:
    """The call values when the whole text is JSON calls (without ``strict``: maybe then broken JSON), else None.

    Returns:
        The decoded values, each with where its JSON text starts and ends, and, without ``strict`` only, where the
        JSON that failed to decode after them starts and its error (else None). With ``strict``, JSON that fails to
        decode gives None, and so does a value that does not look like a tool call (see `_looks_like_call`).
    """
    out: list[tuple[Any, int, int]] = []
    pos = _skip(_CALL_SEP, text, 0)
    while pos < len(text):
        if text[pos] not in "{[":
            return None
        start = pos
        try:
            value, pos = _decode(text, start)
        except ValueError as exc:
            if strict:
                return None
            return out, (start, exc)
        items = value if isinstance(value, list) else [value]
        if not items or (strict and not all(_looks_like_call(item, names) for item in items)):
            return None
        out.append((value, start, pos))
        pos = _skip(_CALL_SEP, text, pos)
    return (out, None) if out else None

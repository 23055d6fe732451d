"""Read a local model's reply with the tokenizer's own response parser, where the model ships one.

Why: a transformers 5 tokenizer may carry a ``response_template`` (saved in ``tokenizer_config.json``), written by
the model's authors: a declarative description of how the model's output splits into content, reasoning and tool
calls, which ``tokenizer.parse_response`` applies. It knows the model better than `agentkit.llm.toolcalls`, which
guesses the format from the chat template: it reads formats agentkit does not (Qwen 3.5's XML calls, Gemma 4's, ...),
it sees the prompt (so a ``<think>`` block that the chat template opened in the prompt is read as reasoning), and it
casts arguments with the tools' JSON schemas (``"7"`` becomes ``7`` for an integer parameter). `LocalChatModel`
therefore tries `parse_with_tokenizer` first and falls back to `agentkit.llm.toolcalls.parse_reply` when it returns
None: the tokenizer has no template, or the template cannot parse the reply.

What the template yields is checked as agentkit's own parser checks calls, so the agent sees the same
``ToolCall`` / ``InvalidToolCall`` records whichever parser read the reply: a call needs a non-empty string name,
its arguments must be a JSON object (a dict, or a JSON string of one), every call gets a fresh id, and a reply holds
at most `agentkit.llm.toolcalls.MAX_CALLS` calls.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from agentkit.llm.toolcalls import CallCollector, ParsedReply

__all__ = ["parse_with_tokenizer"]

logger = logging.getLogger(__name__)

_REASONING_KEYS = ("reasoning_content", "thinking")


def parse_with_tokenizer(
    tokenizer: Any, text: str, *, prompt: str, tools: list[dict[str, Any]] | None
) -> ParsedReply | None:
    """Parse a generated reply with ``tokenizer.parse_response``, when the tokenizer has a ``response_template``.

    Args:
        tokenizer: The model's transformers tokenizer.
        text: The generated text, decoded with special tokens kept, without the prompt.
        prompt: The rendered prompt the text continues (the parser reads the assistant turn's start in it).
        tools: The OpenAI-format schemas of the tools offered, or None; the parser casts arguments with them.

    Returns:
        The parsed reply: content and reasoning (``reasoning_content``, else ``thinking``) stripped, the tool calls
        validated as `agentkit.llm.toolcalls` validates them (a call with no name, or with arguments that are not a
        JSON object, is an invalid call saying why). None when the tokenizer has no ``response_template``, or when
        its parser raises or returns something other than a message dict (logged at debug level): the caller then
        parses the text itself.
    """
    if getattr(tokenizer, "response_template", None) is None:
        return None
    try:
        message = tokenizer.parse_response(text, prefix=prompt, tools=tools or None)
    except Exception:  # a template error, JSON the template cannot read, a required field missing, ...
        logger.debug("The tokenizer's response parser failed; falling back to agentkit's parser.", exc_info=True)
        return None
    if not isinstance(message, dict):
        logger.debug("The tokenizer's response parser returned %s, not a message dict; ignored.", type(message))
        return None
    calls = CallCollector()
    found = message.get("tool_calls")
    for item in found if isinstance(found, list) else [] if found is None else [found]:
        if calls.full:
            break
        _add_call(item, calls)
    reasoning = next((message[k] for k in _REASONING_KEYS if message.get(k) is not None), None)
    return ParsedReply(_as_text(message.get("content")), calls.valid, calls.invalid, _as_text(reasoning))


def _add_call(item: Any, calls: CallCollector) -> None:
    """Validate one parsed call and record it in ``calls``.

    Args:
        item: The call as the template wrote it: OpenAI's ``{"type": "function", "function": {...}}``, a bare
            ``{"name": ..., "arguments": ...}``, or the raw text of a call whose JSON the template kept unparsed
            (a ``json`` region with ``allow_non_json``).
        calls: Where the call goes, valid or invalid.
    """
    if isinstance(item, dict) and "name" not in item and "function" in item:
        item = item["function"]
    if not isinstance(item, str):
        calls.add_object(item, _dump(item))
        return
    if not item.strip():
        calls.add_invalid(None, "", "the tool call is empty")
        return
    try:
        value = json.loads(item)
    except (ValueError, RecursionError) as exc:
        calls.add_unparsable(item, getattr(exc, "pos", 0), exc)
        return
    calls.add_object(value, item)


def _as_text(value: Any) -> str:
    """A parsed field as text: strings stripped, lists of parts joined by newlines, anything else as JSON."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value.strip()
    if isinstance(value, list):
        return "\n".join(part for part in (_as_text(v) for v in value) if part)
    if isinstance(value, dict) and isinstance(value.get("text"), str):  # a content block
        return str(value["text"]).strip()
    return _dump(value)


def _dump(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, default=str)

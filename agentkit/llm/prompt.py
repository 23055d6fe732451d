"""Render a LangChain conversation into the prompt a local model was trained on.

The tokenizer's own chat template is used whenever it can render the conversation: tools go to
``apply_chat_template(tools=...)``, tool results are ``tool`` role messages, assistant tool calls are structured.
Templates differ, so rendering falls back in documented steps, each tried only when the previous one fails:

1. **Native:** the conversation as it is.
2. **No tool role:** for templates without a ``tool`` role or tool-call support (they raise, or ignore ``tools``),
   assistant tool calls become ``<tool_call>{json}</tool_call>`` text, tool results become user turns wrapped in
   ``<tool_response>...</tool_response>`` (Hermes/Qwen style), and the tool list is described in the system prompt.
3. **Strict roles:** additionally the system prompt is folded into the first user turn and consecutive turns of one
   role are merged, for templates that demand strict user/assistant alternation or have no system role.

A tokenizer without any chat template gets a plain ``User:`` / ``Assistant:`` transcript.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from langchain_core.messages import AIMessage, BaseMessage, SystemMessage, ToolMessage

__all__ = ["render_prompt", "to_chat"]

Chat = list[dict[str, Any]]

# Content a text-only model cannot read (LangChain's standard block types, which `content_blocks` maps others to).
_MEDIA = frozenset({"image", "audio", "video", "file"})


def render_prompt(tokenizer: Any, messages: Sequence[BaseMessage], tools: Sequence[dict[str, Any]] | None) -> str:
    """The prompt text for `messages`, ready for generation (the assistant turn opened).

    Args:
        tokenizer: A transformers tokenizer.
        messages: The conversation.
        tools: OpenAI-format tool schemas, or None.

    Returns:
        The prompt.

    Raises:
        ValueError: When no rendering works (the last template error is chained), or a message holds media (`to_chat`).
    """
    if not getattr(tokenizer, "chat_template", None):
        return _plain(messages, tools)
    template = str(tokenizer.chat_template)
    supports_tools = "tools" in template
    attempts: list[tuple[Chat, Sequence[dict[str, Any]] | None]] = []
    if supports_tools or not tools:
        attempts.append((to_chat(messages, tool_role=True), tools or None))
    flat = to_chat(messages, tool_role=False, tools=tools)
    attempts.append((flat, None))
    attempts.append((_strict_roles(flat), None))
    last: Exception | None = None
    for chat, tool_schemas in attempts:
        try:
            return str(
                tokenizer.apply_chat_template(chat, tools=tool_schemas, add_generation_prompt=True, tokenize=False)
            )
        except Exception as exc:  # jinja's TemplateError, or raise_exception() in the template
            last = exc
    raise ValueError(f"The model's chat template cannot render this conversation: {last}") from last


def to_chat(messages: Sequence[BaseMessage], *, tool_role: bool, tools: Sequence[dict[str, Any]] | None = None) -> Chat:
    """LangChain messages as chat-template dicts.

    Args:
        messages: The conversation.
        tool_role: Keep ``tool`` messages and structured tool calls; otherwise write both as Hermes-style text.
        tools: With ``tool_role=False``, tools to describe in the system prompt.

    Returns:
        The conversation as ``{"role": ..., "content": ...}`` dicts.

    Raises:
        ValueError: When a message other than the model's own holds an image, audio, video or file: dropped, the
            model would answer as if it had seen it.
    """
    chat: Chat = []
    for message in messages:
        text = _text(message)
        if isinstance(message, SystemMessage):
            chat.append({"role": "system", "content": text})
        elif isinstance(message, AIMessage):
            chat.append(_assistant(message, text, tool_role))
        elif isinstance(message, ToolMessage):
            if tool_role:
                chat.append(
                    {"role": "tool", "content": text, "name": message.name, "tool_call_id": message.tool_call_id}
                )
            else:
                chat.append({"role": "user", "content": f"<tool_response>\n{text}\n</tool_response>"})
        else:
            chat.append({"role": "user", "content": text})
    if tools and not tool_role:
        described = _describe_tools(tools)
        if chat and chat[0]["role"] == "system":
            chat[0] = {"role": "system", "content": f"{chat[0]['content']}\n\n{described}"}
        else:
            chat.insert(0, {"role": "system", "content": described})
    return chat


def _text(message: BaseMessage) -> str:
    # An assistant turn's other blocks (another provider's reasoning, say) are its own output: its text is enough.
    media = (
        sorted({str(block["type"]) for block in message.content_blocks} & _MEDIA)
        if not isinstance(message.content, str) and not isinstance(message, AIMessage)
        else []
    )
    if media:
        raise ValueError(
            f"This model reads text only, and a {type(message).__name__} holds {' and '.join(media)} content. "
            "Describe it in text, or use a model that takes it."
        )
    return str(message.text)


def _assistant(message: AIMessage, text: str, tool_role: bool) -> dict[str, Any]:
    if not message.tool_calls:
        return {"role": "assistant", "content": text}
    if tool_role:
        calls = [
            {"type": "function", "id": c.get("id"), "function": {"name": c["name"], "arguments": c["args"]}}
            for c in message.tool_calls
        ]
        return {"role": "assistant", "content": text, "tool_calls": calls}
    blocks = [
        "<tool_call>\n" + json.dumps({"name": c["name"], "arguments": c["args"]}, ensure_ascii=False) + "\n</tool_call>"
        for c in message.tool_calls
    ]
    return {"role": "assistant", "content": "\n".join(filter(None, [text, *blocks]))}


def _describe_tools(tools: Sequence[dict[str, Any]]) -> str:
    listing = "\n".join(json.dumps(t, ensure_ascii=False) for t in tools)
    return (
        "You may call one or more functions to assist with the user query. The functions are:\n"
        f"<tools>\n{listing}\n</tools>\n"
        'For each call, reply with <tool_call>\n{"name": <function-name>, "arguments": <args-json-object>}\n'
        "</tool_call>"
    )


def _strict_roles(chat: Chat) -> Chat:
    """Fold the system prompt into the first user turn and merge consecutive turns of one role."""
    system = [m["content"] for m in chat if m["role"] == "system"]
    merged: Chat = []
    for message in (m for m in chat if m["role"] != "system"):
        if merged and merged[-1]["role"] == message["role"]:
            merged[-1] = {"role": message["role"], "content": f"{merged[-1]['content']}\n\n{message['content']}"}
        else:
            merged.append(dict(message))
    if system:
        if merged and merged[0]["role"] == "user":
            merged[0] = {"role": "user", "content": "\n\n".join([*system, merged[0]["content"]])}
        else:
            merged.insert(0, {"role": "user", "content": "\n\n".join(system)})
    return merged


def _plain(messages: Sequence[BaseMessage], tools: Sequence[dict[str, Any]] | None) -> str:
    lines: list[str] = []
    for entry in to_chat(messages, tool_role=False, tools=tools):
        role, content = entry["role"], entry["content"]
        lines.append(content if role == "system" else f"{'User' if role == 'user' else 'Assistant'}: {content}")
    lines.append("Assistant:")
    return "\n\n".join(lines)

"""Test helpers: a scripted chat model, transcript helpers, and an offline guard.

`ScriptedChatModel` is a real LangChain `BaseChatModel` (callbacks, `bind_tools`, async, batch all go through
LangChain's own code) whose replies come from a script, so an agent's logic can be tested without a model:

    llm = ScriptedChatModel(responses=[
        tool_reply(tool_call("calculator", expression="3*4")),
        "The answer is 12.",
    ])

Text replies honour ``stop`` like a real model: the text is cut at the first stop string, so a script that writes
its own ``Observation:`` line is cut where a ReAct model would have stopped.
"""

from __future__ import annotations

import contextlib
import inspect
import ipaddress
import socket
import threading
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from langchain_core.callbacks import AsyncCallbackManagerForLLMRun, CallbackManagerForLLMRun
from langchain_core.language_models import BaseChatModel, LanguageModelInput
from langchain_core.messages import AIMessage, BaseMessage, ToolCall
from langchain_core.outputs import ChatGeneration, ChatResult
from langchain_core.runnables import Runnable
from langchain_core.utils.function_calling import convert_to_openai_tool
from pydantic import ConfigDict, Field, PrivateAttr

from agentkit.steps import AgentResult, Final

__all__ = [
    "OFFLINE_ENV",
    "NetworkBlockedError",
    "ScriptExhaustedError",
    "ScriptedCall",
    "ScriptedChatModel",
    "block_network",
    "kinds",
    "react",
    "react_final",
    "tool_call",
    "tool_reply",
]

OFFLINE_ENV = {
    "HF_HUB_OFFLINE": "1",
    "TRANSFORMERS_OFFLINE": "1",
    "HF_DATASETS_OFFLINE": "1",
    "HF_HUB_DISABLE_TELEMETRY": "1",
    "ANONYMIZED_TELEMETRY": "False",  # chromadb's telemetry
}


class ScriptExhaustedError(AssertionError):
    """The agent called the scripted model more times than the script has replies."""


class NetworkBlockedError(RuntimeError):
    """Code under test tried to reach the network. Not an `OSError`, so no library mistakes it for a flaky link."""


@dataclass(frozen=True, slots=True)
class ScriptedCall:
    """One call the scripted model received.

    Attributes:
        messages: The conversation it was given.
        stop: The stop strings passed with the call.
        tools: Names of the tools bound for the call.
    """

    messages: list[BaseMessage]
    stop: list[str] | None
    tools: list[str]


class ScriptedChatModel(BaseChatModel):
    """A chat model that replies from a script and records every call.

    Attributes:
        responses: Replies in order; a callable computes a reply from the conversation. When `repeat` is set, the
            last reply is used again once the others are spent; otherwise an extra call raises
            `ScriptExhaustedError`.
        repeat: Keep answering with the last reply.
    """

    model_config = ConfigDict(arbitrary_types_allowed=True)

    responses: list[Any] = Field(default_factory=list)
    repeat: bool = False
    _calls: list[ScriptedCall] = PrivateAttr(default_factory=list)
    _lock: threading.Lock = PrivateAttr(default_factory=threading.Lock)

    @property
    def _llm_type(self) -> str:
        return "agentkit-scripted"

    @property
    def calls(self) -> list[ScriptedCall]:
        """Every call so far, in order."""
        return list(self._calls)

    def bind_tools(self, tools: Sequence[Any], **kwargs: Any) -> Runnable[LanguageModelInput, AIMessage]:
        """Bind tools the way provider models do (as OpenAI-format schemas), so tool-calling planners work."""
        return self.bind(tools=[convert_to_openai_tool(t) for t in tools], **kwargs)

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        scripted = self._next(messages, stop, kwargs)
        if inspect.iscoroutinefunction(scripted):
            raise TypeError("An async scripted reply needs an async call (ainvoke/astream).")
        return _result(scripted(messages) if callable(scripted) else scripted, messages, stop)

    async def _agenerate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        scripted = self._next(messages, stop, kwargs)
        if inspect.iscoroutinefunction(scripted):
            return _result(await scripted(messages), messages, stop)
        return _result(scripted(messages) if callable(scripted) else scripted, messages, stop)

    def _next(self, messages: list[BaseMessage], stop: list[str] | None, kwargs: dict[str, Any]) -> Any:
        tools = [t["function"]["name"] for t in kwargs.get("tools", [])]
        with self._lock:
            index = len(self._calls)
            self._calls.append(ScriptedCall(list(messages), stop, tools))
            if index < len(self.responses):
                return self.responses[index]
            if self.repeat and self.responses:
                return self.responses[-1]
        raise ScriptExhaustedError(
            f"The scripted model was called {index + 1} times but has {len(self.responses)} replies."
        )


def _result(reply: str | AIMessage, messages: list[BaseMessage], stop: list[str] | None) -> ChatResult:
    message = reply if isinstance(reply, AIMessage) else AIMessage(content=_cut(str(reply), stop))
    # Word counts stand in for tokens, so usage accounting can be tested.
    words_in = sum(len(str(m.content).split()) for m in messages)
    words_out = len(str(message.content).split()) + len(message.tool_calls)
    usage = {"input_tokens": words_in, "output_tokens": words_out, "total_tokens": words_in + words_out}
    return ChatResult(generations=[ChatGeneration(message=message.model_copy(update={"usage_metadata": usage}))])


def _cut(text: str, stop: list[str] | None) -> str:
    cuts = [i for i in (text.find(s) for s in stop or ()) if i >= 0]
    return text[: min(cuts)] if cuts else text


def tool_call(name: str, call_id: str | None = None, **args: Any) -> ToolCall:
    """A tool call for `tool_reply`.

    Args:
        name: The tool to call.
        call_id: The call's id (a fresh one by default).
        **args: The arguments.
    """
    return ToolCall(name=name, args=args, id=call_id or f"call_{uuid.uuid4().hex[:12]}", type="tool_call")


def tool_reply(*calls: ToolCall, content: str = "") -> AIMessage:
    """A model reply with native tool calls (several run concurrently)."""
    return AIMessage(content=content, tool_calls=list(calls))


def react(tool: str, tool_input: str, thought: str = "I should use a tool.") -> str:
    """A ReAct text reply that calls `tool` with `tool_input` (written as-is: JSON or plain text)."""
    return f"Thought: {thought}\nAction: {tool}\nAction Input: {tool_input}"


def react_final(answer: str, thought: str = "I now know the final answer.") -> str:
    """A ReAct text reply with the final answer."""
    return f"Thought: {thought}\nFinal Answer: {answer}"


def kinds(result: AgentResult) -> list[str]:
    """The transcript as step kinds, for compact assertions on an episode's shape.

    Example: ``["thought", "action", "observation", "final"]``; a forced final is ``"final(forced)"``.
    """
    names = []
    for step in result.steps:
        name = type(step).__name__.lower().replace("formaterror", "format_error")
        if isinstance(step, Final) and step.forced:
            name = "final(forced)"
        names.append(name)
    return names


@contextlib.contextmanager
def block_network() -> Iterator[None]:
    """Make any connection to a non-loopback address raise `NetworkBlockedError`.

    Loopback stays open (a local chroma server, a notebook kernel), Unix sockets too.
    """
    real_connect, real_connect_ex = socket.socket.connect, socket.socket.connect_ex
    real_getaddrinfo = socket.getaddrinfo

    def check(sock: socket.socket, address: Any) -> None:
        if sock.family in (socket.AF_INET, socket.AF_INET6) and not _is_loopback(str(address[0])):
            raise NetworkBlockedError(f"Network access is blocked here (offline): tried to connect to {address!r}.")

    def connect(sock: socket.socket, address: Any) -> None:
        check(sock, address)
        real_connect(sock, address)

    def connect_ex(sock: socket.socket, address: Any) -> int:
        check(sock, address)
        return real_connect_ex(sock, address)

    def getaddrinfo(host: Any, *args: Any, **kwargs: Any) -> Any:
        if host is not None and not _is_loopback(host.decode() if isinstance(host, bytes) else str(host)):
            raise NetworkBlockedError(f"Network access is blocked here (offline): tried to resolve {host!r}.")
        return real_getaddrinfo(host, *args, **kwargs)

    socket.socket.connect = connect  # type: ignore[method-assign,assignment]
    socket.socket.connect_ex = connect_ex  # type: ignore[method-assign,assignment]
    socket.getaddrinfo = getaddrinfo
    try:
        yield
    finally:
        socket.socket.connect = real_connect  # type: ignore[method-assign]
        socket.socket.connect_ex = real_connect_ex  # type: ignore[method-assign]
        socket.getaddrinfo = real_getaddrinfo


def _is_loopback(host: str) -> bool:
    if host in ("localhost", "", "ip6-localhost"):
        return True
    try:
        return ipaddress.ip_address(host.split("%", maxsplit=1)[0]).is_loopback
    except ValueError:
        return False

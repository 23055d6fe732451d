"""Planners: how an episode's steps are said to the model, and how its replies are read back.

Two wire formats share one interface:

* `ReActPlanner` speaks classic ReAct text and asks the model to stop at the observation marker; it works with any
  chat model, including local ones without a tool-calling template.
* `ToolCallingPlanner` uses the model's native tool calls (`AIMessage.tool_calls`), several per turn, and returns
  results as `ToolMessage`s.

Both only ever *append* messages, never rewrite earlier ones: every step's prompt is a prefix of the next, which is
what lets a local engine reuse its key/value cache across steps. The remaining step budget therefore travels with the
newest observation rather than in the system prompt.
"""

from __future__ import annotations

import uuid
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from langchain_core.language_models import BaseChatModel, LanguageModelInput
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, ToolCall, ToolMessage
from langchain_core.runnables import Runnable

from agentkit.errors import ConfigError
from agentkit.prompting import render
from agentkit.protocols import Slot
from agentkit.react_parser import ParsedAction, ParsedFinal, cut_at_observation, drop_think, parse_react
from agentkit.steps import Observation
from agentkit.toolbox import Toolbox

__all__ = ["Planner", "ReActPlanner", "ToolCallingPlanner", "ToolRequest", "Turn", "default_planner"]

ChatRunnable = Runnable[LanguageModelInput, BaseMessage]


@dataclass(frozen=True, slots=True)
class ToolRequest:
    """A tool call read from a model reply.

    Attributes:
        tool: The tool's exact name when it exists, else the name as the model wrote it.
        args: The arguments.
        call_id: The id tying the call to its observation.
    """

    tool: str
    args: dict[str, Any]
    call_id: str


@dataclass(frozen=True, slots=True)
class Turn:
    """One model reply, read.

    Exactly one of `actions`, `final` or `error` is set.

    Attributes:
        message: The reply as it goes into the conversation (a self-written observation removed).
        thought: The reasoning in the reply ('' when none).
        actions: Tool calls to run.
        final: The final answer.
        error: Why the reply cannot be acted on, written for the model.
    """

    message: BaseMessage
    thought: str = ""
    actions: list[ToolRequest] = field(default_factory=list)
    final: str | None = None
    error: str | None = None


class Planner(ABC):
    """Says the episode to the model and reads its replies, in one wire format."""

    @abstractmethod
    def bind(self, llm: BaseChatModel, toolbox: Toolbox) -> ChatRunnable:
        """The runnable that takes a step: the model, with tools or stop strings bound.

        Raises:
            ConfigError: When the model cannot be used in this format.
        """

    def bind_final(self, llm: BaseChatModel) -> ChatRunnable:
        """The runnable for the one last call when the step budget is spent: no tools, no stop strings."""
        return llm

    @abstractmethod
    def system_prompt(
        self,
        toolbox: Toolbox,
        *,
        max_steps: int,
        memories: Sequence[str],
        instructions: str,
        slots: Sequence[Slot] = (),
    ) -> str:
        """The system prompt: format rules, tools (for text formats), budget, memories and the question's slots."""

    @abstractmethod
    def read(self, reply: BaseMessage, toolbox: Toolbox) -> Turn:
        """Read one reply into actions, a final answer or a format error."""

    @abstractmethod
    def observe(self, turn: Turn, observations: Sequence[Observation], steps_left: int) -> list[BaseMessage]:
        """Messages that show the model its observations and how many steps remain."""

    @abstractmethod
    def reject(self, turn: Turn, toolbox: Toolbox) -> list[BaseMessage]:
        """Messages that tell the model why its reply could not be used."""

    @abstractmethod
    def read_final(self, reply: BaseMessage) -> str | None:
        """Read the reply to the last, forced call: its best answer, or None when it gave none."""


class ReActPlanner(Planner):
    """Classic ReAct text: Thought / Action / Action Input / Observation / Final Answer.

    Args:
        stop: Stop strings passed with every call so generation ends where the observation would begin.
    """

    def __init__(self, *, stop: Sequence[str] = ("\nObservation:",)) -> None:
        self.stop = list(stop)

    def bind(self, llm: BaseChatModel, toolbox: Toolbox) -> ChatRunnable:  # noqa: D102
        return llm.bind(stop=self.stop)

    def system_prompt(  # noqa: D102
        self,
        toolbox: Toolbox,
        *,
        max_steps: int,
        memories: Sequence[str],
        instructions: str,
        slots: Sequence[Slot] = (),
    ) -> str:
        tools = [
            {"name": t.name, "description": t.description.strip(), "args": toolbox.describe_args(t.name)}
            for t in toolbox.tools
        ]
        return render(
            "react_system.jinja",
            instructions=instructions,
            tools=tools,
            tool_names=", ".join(toolbox.names),
            max_steps=max_steps,
            memories=memories,
            slots=slots,
        )

    def read(self, reply: BaseMessage, toolbox: Toolbox) -> Turn:  # noqa: D102
        text = cut_at_observation(_text(reply))
        message = _as_text_reply(reply, text)
        parsed = parse_react(text)
        if isinstance(parsed, ParsedFinal):
            return Turn(message, parsed.thought, final=parsed.answer)
        if not isinstance(parsed, ParsedAction):
            return Turn(message, parsed.thought, error=parsed.reason)
        name = toolbox.resolve(parsed.tool)
        if name is None:
            # Unknown tools are the executor's to report, so both formats word it the same way.
            raw = parsed.value if isinstance(parsed.value, dict) else {"input": parsed.value}
            return Turn(message, parsed.thought, actions=[ToolRequest(parsed.tool, raw, _new_id())])
        args = toolbox.coerce_args(name, parsed.value)
        if args is None:
            return Turn(
                message,
                parsed.thought,
                error=f"'Action Input' for {name} must be a JSON object with its arguments: "
                f"{toolbox.describe_args(name)}",
            )
        return Turn(message, parsed.thought, actions=[ToolRequest(name, args, _new_id())])

    def observe(  # noqa: D102
        self, turn: Turn, observations: Sequence[Observation], steps_left: int
    ) -> list[BaseMessage]:
        content = "\n".join(o.content for o in observations)
        return [HumanMessage(render("react_observation.jinja", content=content, steps_left=steps_left))]

    def reject(self, turn: Turn, toolbox: Toolbox) -> list[BaseMessage]:  # noqa: D102
        return [
            HumanMessage(render("react_format_error.jinja", reason=turn.error, tool_names=", ".join(toolbox.names)))
        ]

    def read_final(self, reply: BaseMessage) -> str | None:  # noqa: D102
        text = cut_at_observation(_text(reply))
        parsed = parse_react(text)
        if isinstance(parsed, ParsedFinal):
            return parsed.answer
        if isinstance(parsed, ParsedAction):
            return None
        # Asked point-blank for an answer, a small model often drops the label: its text is the answer.
        return text.strip() or None


class ToolCallingPlanner(Planner):
    """Native tool calls: several per turn, results returned as `ToolMessage`s."""

    def bind(self, llm: BaseChatModel, toolbox: Toolbox) -> ChatRunnable:  # noqa: D102
        try:
            return llm.bind_tools(toolbox.tools)
        except NotImplementedError as exc:
            raise ConfigError(
                f"{type(llm).__name__} does not support native tool calls (bind_tools). "
                "Use planner=ReActPlanner() to drive it with ReAct text."
            ) from exc

    def system_prompt(  # noqa: D102
        self,
        toolbox: Toolbox,
        *,
        max_steps: int,
        memories: Sequence[str],
        instructions: str,
        slots: Sequence[Slot] = (),
    ) -> str:
        return render(
            "tool_calling_system.jinja", instructions=instructions, max_steps=max_steps, memories=memories, slots=slots
        )

    def read(self, reply: BaseMessage, toolbox: Toolbox) -> Turn:  # noqa: D102
        thought = drop_think(_text(reply)).strip()
        if not isinstance(reply, AIMessage):
            return Turn(reply, thought, final=thought) if thought else Turn(reply, error="The reply was empty.")
        if reply.invalid_tool_calls:
            problems = "; ".join(
                f"the call to {c.get('name')!r} has arguments that are not valid JSON "
                f"({c.get('error') or 'unparsable'})"
                for c in reply.invalid_tool_calls
            )
            return Turn(reply, thought, error=problems)
        if reply.tool_calls:
            calls = [
                ToolCall(name=c["name"], args=c["args"], id=c.get("id") or _new_id(), type="tool_call")
                for c in reply.tool_calls
            ]
            message = reply.model_copy(update={"tool_calls": calls})
            actions = [
                ToolRequest(toolbox.resolve(c["name"]) or c["name"], dict(c["args"]), c["id"] or _new_id())
                for c in calls
            ]
            return Turn(message, thought, actions=actions)
        if not thought:
            return Turn(reply, error="The reply was empty: call a tool or write the answer.")
        return Turn(reply, final=thought)

    def observe(  # noqa: D102
        self, turn: Turn, observations: Sequence[Observation], steps_left: int
    ) -> list[BaseMessage]:
        messages: list[BaseMessage] = [
            ToolMessage(o.content, tool_call_id=o.call_id, name=o.tool, status="success" if o.ok else "error")
            for o in observations
        ]
        # The budget note rides on the last tool message: a user message here would break templates that
        # require strict role alternation (langchain#15232).
        last = messages[-1]
        last.content = f"{last.content}\n{_steps_left_note(steps_left)}"
        return messages

    def reject(self, turn: Turn, toolbox: Toolbox) -> list[BaseMessage]:  # noqa: D102
        return [
            HumanMessage(
                render("tool_calling_format_error.jinja", reason=turn.error, tool_names=", ".join(toolbox.names))
            )
        ]

    def read_final(self, reply: BaseMessage) -> str | None:  # noqa: D102
        return drop_think(_text(reply)).strip() or None


def default_planner(llm: BaseChatModel) -> Planner:
    """Native tool calls when the model implements `bind_tools`, ReAct text otherwise."""
    if type(llm).bind_tools is not BaseChatModel.bind_tools:
        return ToolCallingPlanner()
    return ReActPlanner()


@lru_cache(maxsize=64)
def _steps_left_note(steps_left: int) -> str:
    return render("steps_left.jinja", steps_left=steps_left)  # rendered once per count: it is on every step


def _as_text_reply(reply: BaseMessage, text: str) -> AIMessage:
    """The reply with `text` as its content and no tool calls, keeping its metadata (usage, token log-probs)."""
    if isinstance(reply, AIMessage):
        return reply.model_copy(update={"content": text, "tool_calls": [], "invalid_tool_calls": []})
    return AIMessage(content=text)


def _text(message: BaseMessage) -> str:
    return str(message.text)


def _new_id() -> str:
    return f"call_{uuid.uuid4().hex[:16]}"

"""Understanding by the agent's own chat model, through LangChain's `with_structured_output`.

The model is asked to call one function whose arguments are a `UserTurn`; LangChain's default
`with_structured_output` binds that schema as a tool and parses the call, which works with any chat model that
implements `bind_tools`, agentkit's `LocalChatModel` included. A reply that cannot be parsed, or a model that fails,
gives a partial result (all tools offered), never an exception: the agent can still plan without understanding.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, SystemMessage
from pydantic import BaseModel, Field

from agentkit.errors import ConfigError
from agentkit.prompting import render
from agentkit.protocols import (
    UNKNOWN_INTENT,
    Intent,
    LongTermMemory,
    Slot,
    SlotKind,
    TurnContext,
    Understood,
)
from agentkit.toolbox import Toolbox
from agentkit.understanding.intents import DEFAULT_INTENTS
from agentkit.understanding.recall import gather_memories

__all__ = ["LLMUnderstanding", "UserTurn"]

_log = logging.getLogger(__name__)
_TEXT_CHARS = 4000  # a pasted document is not a request: the model reads the start of it
_HISTORY = 4  # earlier text turns shown, for follow-ups such as "and in Tokyo?"


class SlotReading(BaseModel):
    """One entity in the message."""

    kind: SlotKind
    text: str = Field(description="the words as written")
    value: str = Field(default="", description="the normalised value")


class UserTurn(BaseModel):
    """What the user's message means."""

    intent: str = Field(default="unknown", description="the intent label")
    confidence: float = Field(default=0.5, ge=0.0, le=1.0)
    language: str | None = Field(default=None, description="ISO 639-1 code")
    needs_tool: bool = True
    tools: list[str] = Field(default_factory=list, description="relevant tool names, best first")
    slots: list[SlotReading] = Field(default_factory=list)


class LLMUnderstanding:
    """Fills `Understood` with a chat model's structured output.

    Args:
        llm: Any LangChain chat model with `with_structured_output` (or `bind_tools`).
        top_k: The most tools to offer the model; a toolbox with no more than this offers all its tools.
        intents: The intent labels the model picks from.
        memory: A long-term memory to recall from, besides what the agent recalled.

    Raises:
        ConfigError: When `top_k` is not positive or the model cannot give structured output.
    """

    def __init__(
        self,
        llm: BaseChatModel,
        *,
        top_k: int = 5,
        intents: Sequence[str] = tuple(DEFAULT_INTENTS),
        memory: LongTermMemory | None = None,
    ) -> None:
        if not isinstance(top_k, int) or top_k < 1:
            raise ConfigError(f"top_k must be a positive integer (tools offered per question), got {top_k!r}.")
        try:
            self._reader = llm.with_structured_output(UserTurn, include_raw=True)
        except NotImplementedError as exc:
            raise ConfigError(
                f"{type(llm).__name__} cannot give structured output (it implements neither with_structured_output "
                "nor bind_tools). Use EmbeddingUnderstanding, which needs no model."
            ) from exc
        self.top_k = top_k
        self.intents = list(intents)
        self.memory = memory

    def messages(self, text: str, context: TurnContext) -> list[BaseMessage]:
        """The conversation the model reads: instructions, the last few text turns, the message."""
        tools = [
            {"name": t.name, "description": (t.description.strip().splitlines() or [""])[0]}
            for t in context.toolbox.tools
        ]
        system = render("understanding.jinja", schema=UserTurn.__name__, intents=", ".join(self.intents), tools=tools)
        earlier = [m for m in context.history if isinstance(m, HumanMessage | AIMessage) and isinstance(m.content, str)]
        return [SystemMessage(system), *earlier[-_HISTORY:], HumanMessage(text[:_TEXT_CHARS])]

    def understand(self, text: str, context: TurnContext) -> Understood:
        """Read one user turn; see `agentkit.Understanding`.

        Empty text is not sent to the model. A failed call or an unusable reply is logged and gives all tools.
        """
        memories = gather_memories(text, context.memories, self.memory)
        if not text.strip():
            return Understood(memories=memories, needs_tool=False)
        reading = self._read(text, context)
        if reading is None:
            return Understood(memories=memories)
        return Understood(
            tools=self._tools(reading.tools, context.toolbox),
            memories=memories,
            intent=Intent(reading.intent, reading.confidence) if reading.intent in self.intents else UNKNOWN_INTENT,
            slots=[Slot(s.kind, s.text, s.value or s.text, start=text.find(s.text)) for s in reading.slots if s.text],
            language=reading.language or None,
            needs_tool=reading.needs_tool and len(context.toolbox) > 0,
        )

    def _read(self, text: str, context: TurnContext) -> UserTurn | None:
        try:
            out: Any = self._reader.invoke(self.messages(text, context))
        except Exception as exc:  # a failing model must not stop the agent from planning
            _log.warning(
                "LLMUnderstanding: the model call failed (%s: %s); offering all tools.", type(exc).__name__, exc
            )
            return None
        raw = out if isinstance(out, dict) else {}
        parsed = raw.get("parsed")
        if not isinstance(parsed, UserTurn):
            _log.warning(
                "LLMUnderstanding: the reply was no %s call (%s).", UserTurn.__name__, raw.get("parsing_error")
            )
            return None
        return parsed

    def _tools(self, named: Sequence[str], toolbox: Toolbox) -> list[str] | None:
        if len(toolbox) <= self.top_k:
            return None
        # Names the model made up are dropped; a model that named none offers everything rather than nothing.
        known = [n for n in dict.fromkeys(toolbox.resolve(name) for name in named) if n is not None]
        return known[: self.top_k] or None

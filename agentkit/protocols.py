"""The slots of an agent that later parts fill: language understanding and long-term memory.

They are protocols, so any object with the right methods plugs in; agentkit's own implementations live in
`agentkit.understanding` and `agentkit.memory`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal, Protocol, runtime_checkable

from langchain_core.messages import BaseMessage

from agentkit.steps import AgentResult
from agentkit.toolbox import Toolbox

__all__ = [
    "UNKNOWN_INTENT",
    "Intent",
    "LongTermMemory",
    "RankedTool",
    "Recollection",
    "Slot",
    "SlotKind",
    "TurnContext",
    "Understanding",
    "Understood",
]


@dataclass(frozen=True, slots=True)
class Recollection:
    """One memory recalled for a question.

    Attributes:
        id: The memory's id in its store (recorded on the episode).
        text: What the model is shown.
        score: How relevant the store judged it (higher is better).
    """

    id: str
    text: str
    score: float = 0.0


SlotKind = Literal["date", "money", "number", "email", "url", "path", "quoted"]
"""What a slot holds: a date or time, an amount of money, a number (with its unit when it has one), an email
address, a URL, a file path, or a quoted string."""


@dataclass(frozen=True, slots=True)
class Slot:
    """One entity read from the user's words.

    Attributes:
        kind: What it is.
        text: The words as the user wrote them.
        value: The normalised value: an ISO 8601 date-time for dates, the amount for money and numbers, the
            text itself (without quotes or trailing punctuation) otherwise.
        unit: The canonical unit of a number (``"kilogram"``) or the currency of money (``"EUR"``, ``"$"``).
        start: Where `text` begins in the user's words (-1 when unknown, as from a model).
    """

    kind: SlotKind
    text: str
    value: str | float
    unit: str | None = None
    start: int = -1


@dataclass(frozen=True, slots=True)
class Intent:
    """What the user wants, as one label.

    Attributes:
        label: The intent's name (``"unknown"`` when nothing matched well enough).
        confidence: How sure the reader is, from 0 to 1.
    """

    label: str
    confidence: float = 0.0


UNKNOWN_INTENT = Intent("unknown", 0.0)
"""The intent of a turn nothing matched, or of one that has no words."""


@dataclass(frozen=True, slots=True)
class RankedTool:
    """A tool and how relevant it is to the user's words.

    Attributes:
        name: The tool's exact name.
        score: Relevance; higher is better (cosine similarity for embedding readers).
    """

    name: str
    score: float


@dataclass(frozen=True, slots=True)
class Understood:
    """What understanding made of one user turn.

    Every field has a default, so a reader fills only what it knows; the agent uses `tools`, `memories` and `slots`.

    Attributes:
        tools: Names of the tools to offer the model, best first; None offers all of them.
        memories: Memories to put into the prompt.
        intent: What the user wants.
        slots: Entities in the user's words, in reading order; prompt templates see them.
        language: The ISO 639-1 code of the user's language, or None when it could not be told.
        needs_tool: Whether answering seems to need a tool; None when the reader cannot say.
        ranked: Every tool considered, best first, with its score.
    """

    tools: Sequence[str] | None = None
    memories: Sequence[Recollection] = field(default_factory=tuple)
    intent: Intent = UNKNOWN_INTENT
    slots: Sequence[Slot] = field(default_factory=tuple)
    language: str | None = None
    needs_tool: bool | None = None
    ranked: Sequence[RankedTool] = field(default_factory=tuple)


@dataclass(frozen=True, slots=True)
class TurnContext:
    """What an understanding may use besides the user's words.

    Attributes:
        toolbox: The agent's tools.
        history: Earlier turns of the conversation.
        memories: What the agent's long-term memory recalled for this turn (empty without one).
    """

    toolbox: Toolbox
    history: Sequence[BaseMessage] = field(default_factory=tuple)
    memories: Sequence[Recollection] = field(default_factory=tuple)


@runtime_checkable
class Understanding(Protocol):
    """Reads a user turn before planning: what is wanted, which tools matter, what is remembered."""

    def understand(self, text: str, context: TurnContext) -> Understood:
        """Read one user turn.

        Args:
            text: The user's words.
            context: The agent's tools, the conversation so far and the recalled memories.

        Returns:
            What was understood. Faults in the text or in a model's reading give a partial result, never raise.
        """
        ...


@runtime_checkable
class LongTermMemory(Protocol):
    """A store the agent recalls from before planning and writes to after an episode."""

    def recall(self, query: str) -> Sequence[Recollection]:
        """The memories worth showing the model for this question, best first."""
        ...

    def commit(self, result: AgentResult) -> None:
        """Keep what should outlive the episode."""
        ...

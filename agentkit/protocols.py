"""The slots of an agent that later parts fill: language understanding and long-term memory.

They are protocols, so any object with the right methods plugs in; agentkit's own implementations live in
`agentkit.understanding` and `agentkit.memory`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

from agentkit.steps import AgentResult
from agentkit.toolbox import Toolbox

__all__ = ["LongTermMemory", "Recollection", "Understanding", "Understood"]


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


@dataclass(frozen=True, slots=True)
class Understood:
    """What understanding made of one user turn, as far as the planner needs it.

    Attributes:
        tools: Names of the tools to offer the model, best first; None offers all of them.
        memories: Memories to put into the prompt.
    """

    tools: Sequence[str] | None = None
    memories: Sequence[Recollection] = field(default_factory=tuple)


@runtime_checkable
class Understanding(Protocol):
    """Reads a user turn before planning: which tools matter, what is remembered."""

    def understand(self, text: str, toolbox: Toolbox) -> Understood:
        """Read one user turn.

        Args:
            text: The user's words.
            toolbox: The agent's tools.
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

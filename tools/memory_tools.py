"""`remember` and `recall`: tools that let the model manage its own long-term memory.

Both are bound to one `ChromaMemory` by `memory_tools(memory)`. What the model stores goes to the memory's namespace,
tagged with the episode that wrote it; what it recalls is marked as accessed, like the agent's own recall. Problems
(an empty text, a store that cannot be reached) come back to the model as a `ToolException` it can act on.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from langchain_core.runnables import ensure_config
from langchain_core.tools import BaseTool, ToolException, tool

from agentkit.errors import AgentkitError

if TYPE_CHECKING:
    from agentkit.memory.chroma import ChromaMemory

__all__ = ["make_recall", "make_remember", "memory_tools"]

MAX_RECALL = 20  # memories one recall may return: more would flood the model's context


def memory_tools(memory: ChromaMemory) -> list[BaseTool]:
    """The `remember` and `recall` tools, bound to `memory`.

    Example:
        >>> from agentkit.memory import ChromaMemory
        >>> from agentkit.tools import memory_tools
        >>> remember, recall = memory_tools(ChromaMemory.ephemeral())  # doctest: +SKIP
    """
    return [make_remember(memory), make_recall(memory)]


def _episode() -> str | None:
    # The agent runs each tool under a config whose metadata names the episode; LangChain makes it current.
    metadata: dict[str, Any] = ensure_config().get("metadata") or {}
    episode = metadata.get("agentkit_episode_id")
    return episode if isinstance(episode, str) else None


def make_remember(memory: ChromaMemory) -> BaseTool:
    """The `remember` tool, storing into `memory`."""

    @tool("remember", parse_docstring=True)
    def remember(text: str, kind: str = "fact", importance: float = 0.5) -> str:
        """Store something worth knowing in later conversations: a fact, a user preference, a decision.

        Args:
            text: The memory, as one self-contained sentence, e.g. "The user's name is Ada.".
            kind: What sort of memory: "fact", "preference", "decision", "episode", ...
            importance: How much it matters, from 0 (trivia) to 1 (essential).
        """
        try:
            memory_id = memory.add(text, kind=kind, importance=importance, episode_id=_episode())
        except AgentkitError as exc:
            raise ToolException(f"Could not remember that: {exc}") from None
        return f"Remembered (id {memory_id})."

    return remember


def make_recall(memory: ChromaMemory) -> BaseTool:
    """The `recall` tool, searching `memory`."""

    @tool("recall", parse_docstring=True)
    def recall(query: str, k: int = 5) -> str:
        """Search long-term memory for what is known about something.

        Args:
            query: What to look for, e.g. "the user's favourite city".
            k: How many memories to return at most (1 to 20).
        """
        if not 1 <= k <= MAX_RECALL:
            raise ToolException(f"k must be between 1 and {MAX_RECALL}, got {k}.")
        try:
            hits = memory.search(query, k=k)
            memory.touch([h.record for h in hits])
        except AgentkitError as exc:
            raise ToolException(f"Could not search memory: {exc}") from None
        if not hits:
            return "Nothing remembered matches that."
        return "\n".join(f"- [{h.record.kind}] {h.record.text} (score {h.score:.2f})" for h in hits)

    return recall

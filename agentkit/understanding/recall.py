"""The memories an understanding shows: what the agent recalled, then what its own memory adds."""

from __future__ import annotations

from collections.abc import Sequence

from agentkit.protocols import LongTermMemory, Recollection

__all__ = ["gather_memories"]


def gather_memories(text: str, recalled: Sequence[Recollection], memory: LongTermMemory | None) -> list[Recollection]:
    """Merge the agent's recollections with the understanding's own memory, each memory once.

    Args:
        text: The user's words (blank text recalls nothing more).
        recalled: What the agent's long-term memory recalled (`TurnContext.memories`).
        memory: The understanding's own memory, or None.

    Returns:
        The agent's recollections first, then new ones from `memory`.
    """
    memories = list(recalled)
    if memory is not None and text.strip():
        seen = {m.id for m in memories}
        memories.extend(m for m in memory.recall(text) if m.id not in seen)
    return memories

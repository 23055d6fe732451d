"""Long-term and conversation memory for agents (installed as `agentkit.memory`).

The chromadb-backed store arrives with the memory issue; until then any object implementing
`agentkit.protocols.LongTermMemory` can be given to `Agent(memory=...)`.
"""

from agentkit.protocols import LongTermMemory, Recollection

__all__ = ["LongTermMemory", "Recollection"]

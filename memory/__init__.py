"""Long-term and conversation memory for agents (installed as `agentkit.memory`).

`ChromaMemory` is long-term memory on chromadb with offline sentence-transformers embeddings: records with
namespaces, kinds, importance and times, deduplicated, recalled by relevance, recency and importance, reachable as
a LangChain `VectorStore` and retriever. `ConversationMemory` keeps multi-turn threads with summaries. chromadb is
imported only when a store is opened.
"""

from agentkit.memory.chroma import DEFAULT_COLLECTION, ChromaMemory
from agentkit.memory.conversation import ConversationMemory
from agentkit.memory.langchain import MemoryRetriever, MemoryVectorStore
from agentkit.memory.policy import WritePolicy, approx_tokens, remember_answers, remember_nothing
from agentkit.memory.records import MemoryRecord, NewMemory, ScoredMemory
from agentkit.memory.scoring import Scoring
from agentkit.memory.store import MemoryStoreError, default_memory_path
from agentkit.protocols import LongTermMemory, Recollection

__all__ = [
    "DEFAULT_COLLECTION",
    "ChromaMemory",
    "ConversationMemory",
    "LongTermMemory",
    "MemoryRecord",
    "MemoryRetriever",
    "MemoryStoreError",
    "MemoryVectorStore",
    "NewMemory",
    "Recollection",
    "ScoredMemory",
    "Scoring",
    "WritePolicy",
    "approx_tokens",
    "default_memory_path",
    "remember_answers",
    "remember_nothing",
]

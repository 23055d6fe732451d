"""`ChromaMemory` as LangChain sees it: a `VectorStore` and a retriever.

The vector store is a plain similarity index over one namespace (what LangChain code expects: nearest first, the
caller's metadata back unchanged, ids honoured); the retriever ranks by the memory's weighted score. Both pass
langchain-tests' standard integration suites. Async methods come from LangChain's defaults (a thread per call).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from typing import Any

from langchain_core.callbacks import CallbackManagerForRetrieverRun
from langchain_core.documents import Document
from langchain_core.embeddings import Embeddings
from langchain_core.retrievers import BaseRetriever
from langchain_core.vectorstores import VectorStore
from pydantic import ConfigDict, Field

from agentkit.errors import ConfigError
from agentkit.memory.chroma import ChromaMemory
from agentkit.memory.records import MemoryRecord, NewMemory, check_namespace

__all__ = ["MemoryRetriever", "MemoryVectorStore"]


def _document(record: MemoryRecord) -> Document:
    return Document(id=record.id, page_content=record.text, metadata=dict(record.metadata))


class MemoryVectorStore(VectorStore):
    """One namespace of a `ChromaMemory` as a LangChain `VectorStore`.

    Texts added without ids are deduplicated like `ChromaMemory.add_many` (a text already stored returns the
    existing id); given ids are honoured and replace what they name. Scores of `similarity_search_with_score` are
    cosine distances (lower is nearer).

    Args:
        memory: The memory to expose.
        namespace: The namespace read and written; default the memory's.
    """

    def __init__(self, memory: ChromaMemory, *, namespace: str | None = None) -> None:
        self.memory = memory
        self.namespace = check_namespace(memory.namespace if namespace is None else namespace)

    @property
    def embeddings(self) -> Embeddings:
        """The memory's embeddings."""
        return self.memory.embeddings

    def add_texts(
        self,
        texts: Iterable[str],
        metadatas: list[dict[Any, Any]] | None = None,
        *,
        ids: list[str] | None = None,
        **kwargs: Any,
    ) -> list[str]:
        """Store texts as memories of kind ``"document"``.

        Args:
            texts: The texts.
            metadatas: One metadata mapping per text.
            ids: One id per text (None entries get a fresh id), or None for deduplicated ids.
            **kwargs: Ignored.

        Returns:
            The ids, in order.
        """
        texts = list(texts)
        if metadatas is not None and len(metadatas) != len(texts):
            raise ConfigError(f"metadatas must hold one mapping per text: {len(metadatas)} for {len(texts)} texts.")
        items = [
            NewMemory(t, kind="document", metadata=(metadatas or [{}] * len(texts))[n]) for n, t in enumerate(texts)
        ]
        if ids is not None:
            ids = [i if i else uuid.uuid4().hex for i in ids]
        return self.memory.add_many(items, namespace=self.namespace, ids=ids)

    def delete(self, ids: list[str] | None = None, **kwargs: Any) -> bool | None:
        """Delete these ids from the namespace; unknown ids are ignored.

        Raises:
            ConfigError: When `ids` is None (use `ChromaMemory.forget` to delete by filter).
        """
        if ids is None:
            raise ConfigError("delete() needs the ids to delete; ChromaMemory.forget() deletes by filter.")
        self.memory.forget(ids, namespace=self.namespace)
        return True

    def get_by_ids(self, ids: Sequence[str], /) -> list[Document]:
        """The documents with these ids in this namespace, in that order; unknown ids are skipped."""
        return [_document(r) for r in self.memory.get(ids, namespaces=[self.namespace])]

    def similarity_search_with_score(
        self, query: str, k: int = 4, filter: dict[str, Any] | None = None, **kwargs: Any
    ) -> list[tuple[Document, float]]:
        """The `k` nearest documents with their cosine distances, nearest first.

        Args:
            query: The query text.
            k: How many.
            filter: A chroma filter on the documents' metadata.
            **kwargs: Ignored.
        """
        found = self.memory.nearest(query, k, namespaces=[self.namespace], where=filter)
        return [(_document(r), distance) for r, distance in found]

    def similarity_search(
        self, query: str, k: int = 4, filter: dict[str, Any] | None = None, **kwargs: Any
    ) -> list[Document]:
        """The `k` nearest documents, nearest first (see `similarity_search_with_score`)."""
        return [doc for doc, _ in self.similarity_search_with_score(query, k, filter)]

    def _select_relevance_score_fn(self) -> Any:
        return self._cosine_relevance_score_fn

    @classmethod
    def from_texts(
        cls,
        texts: list[str],
        embedding: Embeddings,
        metadatas: list[dict[Any, Any]] | None = None,
        *,
        ids: list[str] | None = None,
        **kwargs: Any,
    ) -> MemoryVectorStore:
        """A store holding `texts`: `kwargs` are `ChromaMemory` settings; without `path` or `client` it is ephemeral."""
        if "path" in kwargs or "client" in kwargs:
            memory = ChromaMemory(embeddings=embedding, **kwargs)
        else:
            memory = ChromaMemory.ephemeral(embeddings=embedding, **kwargs)
        store = cls(memory)
        store.add_texts(texts, metadatas, ids=ids)
        return store


class MemoryRetriever(BaseRetriever):
    """A retriever over a `ChromaMemory`, ranked by relevance, recency and importance (`ChromaMemory.search`).

    Each document's metadata is the caller's own plus ``ak:kind``, ``ak:namespace`` and ``ak:score``.
    ``invoke(query, k=3)`` overrides `k` for one call.
    """

    model_config = ConfigDict(arbitrary_types_allowed=True)

    memory: ChromaMemory
    """The memory searched."""
    k: int = Field(default=4, ge=1)
    """How many documents to return."""
    namespaces: list[str] | None = None
    """Where to look; default the memory's `recall_from`."""
    kinds: list[str] | None = None
    """Only these kinds."""
    where: dict[str, Any] | None = None
    """A chroma filter on the caller's metadata."""

    def _get_relevant_documents(
        self, query: str, *, run_manager: CallbackManagerForRetrieverRun, **kwargs: Any
    ) -> list[Document]:
        hits = self.memory.search(
            query, k=kwargs.get("k", self.k), namespaces=self.namespaces, kinds=self.kinds, where=self.where
        )
        return [
            Document(
                id=h.record.id,
                page_content=h.record.text,
                metadata={
                    **h.record.metadata,
                    "ak:kind": h.record.kind,
                    "ak:namespace": h.record.namespace,
                    "ak:score": h.score,
                },
            )
            for h in hits
        ]

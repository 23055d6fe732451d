"""LangChain's own standard tests, as the oracle for the VectorStore and the retriever."""

from __future__ import annotations

from collections.abc import Iterator
from functools import cache
from typing import Any

import pytest
from langchain_core.documents import Document
from langchain_core.vectorstores import VectorStore
from langchain_tests.integration_tests import RetrieversIntegrationTests, VectorStoreIntegrationTests

from agentkit.embeddings import Embedder
from agentkit.memory import ChromaMemory, MemoryRetriever, MemoryVectorStore


class TestMemoryVectorStore(VectorStoreIntegrationTests):
    @pytest.fixture
    def vectorstore(self) -> Iterator[VectorStore]:  # type: ignore[override]
        # The suite's own deterministic embeddings: its expected orderings are computed with them.
        memory = ChromaMemory.ephemeral(embeddings=self.get_embeddings())
        yield memory.as_vectorstore()
        memory.forget(namespace=memory.namespace)


@cache
def _memory() -> ChromaMemory:
    memory = ChromaMemory.ephemeral(embeddings=Embedder())
    memory.add_many(
        [
            "Ada likes green tea.",
            "Ada lives in Lisbon.",
            "Ada's cat is called Miso.",
            "Ada works as a nurse.",
            "Ada prefers metric units.",
        ]
    )
    return memory


class TestMemoryRetriever(RetrieversIntegrationTests):
    @property
    def retriever_constructor(self) -> type[MemoryRetriever]:
        return MemoryRetriever

    @property
    def retriever_constructor_params(self) -> dict[str, Any]:
        return {"memory": _memory()}

    @property
    def retriever_query_example(self) -> str:
        return "What does Ada drink?"


def test_retriever_ranks_by_the_memory_score_and_reports_it():
    docs = _memory().as_retriever(k=2).invoke("What does Ada drink?")
    assert docs[0].page_content == "Ada likes green tea."
    assert docs[0].metadata["ak:score"] >= docs[1].metadata["ak:score"]


def test_vectorstore_relevance_scores_and_filters():
    store = MemoryVectorStore.from_texts(
        ["Ada likes green tea.", "Ada lives in Lisbon."], Embedder(), metadatas=[{"topic": "food"}, {"topic": "home"}]
    )
    (doc, relevance), _ = store.similarity_search_with_relevance_scores("tea", k=2)
    assert doc.page_content == "Ada likes green tea." and 0 < relevance <= 1
    assert store.similarity_search("tea", k=2, filter={"topic": "home"}) == [
        Document(
            id=store.similarity_search("Lisbon", k=1)[0].id,
            page_content="Ada lives in Lisbon.",
            metadata={"topic": "home"},
        )
    ]

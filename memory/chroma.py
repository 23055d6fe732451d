"""`ChromaMemory`: an agent's long-term memory on chromadb, with sentence-transformers embeddings.

Three modes, one class: a folder on disk (the default, ``./.agentkit/memory``), this process only
(`ChromaMemory.ephemeral`), or a chroma server (`ChromaMemory.http`). Vectors always come from a LangChain
`Embeddings` (by default `agentkit.embeddings.Embedder`, offline); chroma's own embedding function, which downloads
a model, is never used. The collection's distance is cosine, set explicitly.

Each namespace is its own chroma collection (named from the collection name and a hash of the namespace): a search
then needs no namespace filter, which chroma evaluates by scanning every matching record (about 0.4 s per query at
100k records on 2 cores, against 5 ms without a filter). Adding is deduplicated: a text already stored in the
namespace returns the existing id. New ids derive from the namespace and the content hash, so two clients adding the
same text at once still make one record.
"""

from __future__ import annotations

import hashlib
import os
import re
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast, overload

from langchain_core.embeddings import Embeddings

from agentkit.errors import ConfigError
from agentkit.memory import records as rec
from agentkit.memory import writer
from agentkit.memory.policy import WritePolicy, approx_tokens, remember_answers
from agentkit.memory.records import MemoryRecord, NewMemory, ScoredMemory
from agentkit.memory.scoring import Scoring, content_words
from agentkit.memory.store import (
    default_memory_path,
    describe,
    ephemeral_client,
    http_client,
    open_collection,
    persistent_client,
    store_errors,
)
from agentkit.protocols import Recollection
from agentkit.steps import AgentResult

if TYPE_CHECKING:
    from chromadb.api import ClientAPI
    from chromadb.api.models.Collection import Collection

    from agentkit.memory.langchain import MemoryRetriever, MemoryVectorStore

__all__ = ["DEFAULT_COLLECTION", "ChromaMemory"]

DEFAULT_COLLECTION = "agentkit_memory"
_COLLECTION_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{1,470}[A-Za-z0-9]$")  # room for the namespace suffix


class ChromaMemory:
    """Long-term memory: records with namespaces, kinds, importance and times; recall by a weighted score.

    It is an `agentkit.LongTermMemory`: give it to `Agent(memory=...)` and the agent recalls before planning and
    commits after each episode.

    Args:
        path: The store's folder (created when missing); default `default_memory_path()`. Ignored with `client`.
        client: A chromadb client to use instead of opening `path`.
        collection: The chroma collection holding the memories.
        embeddings: Any LangChain `Embeddings`; default the offline all-MiniLM-L6-v2 `Embedder`.
        namespace: Where this memory writes (and, unless `recall_from` says otherwise, reads): a user, an agent,
            a session, ... Any non-empty string.
        recall_from: The namespaces `recall` and `search` read by default.
        k: How many memories `recall` returns at most.
        max_tokens: The prompt budget of one `recall`: memories past it are left out.
        candidates: Nearest neighbours re-ranked by the weighted score (more finds old important memories that
            are less similar, at some cost in time).
        scoring: The weights of relevance, recency and importance.
        write_policy: What `commit` keeps from an episode; default `remember_answers`.
        count_tokens: Counts tokens for `max_tokens`; default an estimate of four characters per token.
        max_chars: The longest text accepted (longer queries are cut to it).
        clock: The time in seconds since the epoch; replace it to simulate the passing of time.

    Raises:
        ConfigError: On invalid settings, a folder that cannot be written, a damaged store, no server, or a
            collection made with other embeddings or another distance.
    """

    def __init__(
        self,
        path: str | os.PathLike[str] | None = None,
        *,
        client: ClientAPI | None = None,
        collection: str = DEFAULT_COLLECTION,
        embeddings: Embeddings | None = None,
        namespace: str = "default",
        recall_from: Sequence[str] | None = None,
        k: int = 5,
        max_tokens: int = 1000,
        candidates: int = 40,
        scoring: Scoring | None = None,
        write_policy: WritePolicy = remember_answers,
        count_tokens: Callable[[str], int] = approx_tokens,
        max_chars: int = 8000,
        clock: Callable[[], float] = time.time,
    ) -> None:
        for name, value in (("k", k), ("max_tokens", max_tokens), ("candidates", candidates), ("max_chars", max_chars)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigError(f"{name} must be a positive integer, got {value!r}.")
        if not isinstance(collection, str) or not _COLLECTION_NAME.match(collection):
            raise ConfigError(
                f"collection must be 3-472 characters from [A-Za-z0-9._-], starting and ending with a letter or "
                f"digit (chroma's rule, less room for a namespace suffix), got {collection!r}."
            )
        if embeddings is not None and not isinstance(embeddings, Embeddings):
            raise ConfigError(f"embeddings must be a LangChain Embeddings, got {type(embeddings).__name__}.")
        self.namespace = rec.check_namespace(namespace)
        self.recall_from = tuple(rec.check_namespace(n) for n in (recall_from or (namespace,)))
        self.k, self.max_tokens, self.candidates, self.max_chars = k, max_tokens, candidates, max_chars
        self.scoring = scoring or Scoring()
        self.write_policy, self.count_tokens, self.clock = write_policy, count_tokens, clock
        if embeddings is None:
            from agentkit.embeddings import Embedder

            embeddings = Embedder()
        self.embeddings = embeddings
        if client is None:
            folder = Path(path) if path is not None else default_memory_path()
            client, self.location = persistent_client(folder), f"the memory store at {str(folder)!r}"
        else:
            self.location = describe(client)
        self.collection = collection
        self._client = client
        self._spaces: dict[str, Collection] = {}
        self._space(self.namespace)  # open the store now: a bad path, server or damaged store fails here

    @classmethod
    def ephemeral(cls, *, collection: str | None = None, **settings: Any) -> ChromaMemory:
        """A memory that lives only in this process (tests, notebooks): a fresh, empty collection by default.

        Args:
            collection: A collection name; chroma shares in-process data, so reusing a name shares its memories.
            **settings: Any keyword argument of `ChromaMemory`.
        """
        name = collection or f"agentkit-{uuid.uuid4().hex[:16]}"
        return cls(client=ephemeral_client(), collection=name, **settings)

    @classmethod
    def http(
        cls,
        host: str = "127.0.0.1",
        port: int = 8000,
        *,
        ssl: bool = False,
        headers: dict[str, str] | None = None,
        **settings: Any,
    ) -> ChromaMemory:
        """A memory on a chroma server, shared by every client of that server.

        Start one with ``chroma run --path DIR --host 127.0.0.1 --port 8000``.

        Args:
            host: The server's host.
            port: The server's port.
            ssl: Whether to use HTTPS.
            headers: Extra HTTP headers (authentication).
            **settings: Any keyword argument of `ChromaMemory`.
        """
        return cls(client=http_client(host, port, ssl=ssl, headers=headers), **settings)

    # -- writing --------------------------------------------------------------------------------------------

    def add(
        self,
        text: str,
        *,
        kind: str = "fact",
        importance: float = 0.5,
        metadata: Mapping[str, Any] | None = None,
        ttl: float | None = None,
        namespace: str | None = None,
        episode_id: str | None = None,
    ) -> str:
        """Store one memory (see `add_many`); returns its id, the existing one when the text is already stored."""
        item = NewMemory(text, kind=kind, importance=importance, metadata=metadata or {}, ttl=ttl)
        return self.add_many([item], namespace=namespace, episode_id=episode_id)[0]

    def add_many(
        self,
        items: Sequence[str | NewMemory],
        *,
        namespace: str | None = None,
        episode_id: str | None = None,
        ids: Sequence[str] | None = None,
        vectors: Sequence[Sequence[float]] | None = None,
    ) -> list[str]:
        """Store memories in one batch: one embedding pass, one write.

        Args:
            items: Texts (kind ``"fact"``) or `NewMemory` items.
            namespace: Where to store; default this memory's namespace.
            episode_id: The episode the memories come from.
            ids: Ids to store under, replacing records with those ids (no deduplication). Default: deduplicated
                ids derived from the content.
            vectors: Precomputed embeddings, one per item, from the same model as `embeddings`.

        Returns:
            One id per item, in order; a text already stored in the namespace gets the existing record's id.

        Raises:
            ConfigError: For an invalid item (empty, too long, not Unicode, unstorable metadata, ...) before anything
                is stored.
            MemoryStoreError: When the store fails; retrying is safe.
        """
        now = self.clock()
        target = rec.check_namespace(self.namespace if namespace is None else namespace)
        records = [rec.new_record(item, target, episode_id, now, max_chars=self.max_chars) for item in items]
        if ids is not None and (len(ids) != len(records) or not all(isinstance(i, str) and i for i in ids)):
            raise ConfigError(f"ids must be {len(records)} non-empty strings, one per item.")
        if vectors is not None and len(vectors) != len(records):
            raise ConfigError(f"vectors must hold one embedding per item: {len(vectors)} for {len(records)} items.")
        if not records:
            return []
        with store_errors(f"add {len(records)} memories", self.location):
            space = self._space(target)
            if ids is None:
                chosen, fresh = writer.assign_ids(space, records)
            else:
                chosen, fresh = list(ids), writer.under_ids(records, list(ids))
            todo = [i for i, r in enumerate(fresh) if r is not None]
            if todo:
                new = [cast("MemoryRecord", fresh[i]) for i in todo]
                embedded = writer.matrix(
                    [vectors[i] for i in todo]
                    if vectors is not None
                    else self.embeddings.embed_documents([r.text for r in new])
                )
                writer.write(space, new, embedded, replacing=ids is not None)
        return chosen

    def update(
        self,
        id: str,
        *,
        text: str | None = None,
        kind: str | None = None,
        importance: float | None = None,
        metadata: Mapping[str, Any] | None = None,
        namespace: str | None = None,
    ) -> MemoryRecord:
        """Change one memory in place; what is not given stays. New `metadata` replaces the caller's keys.

        Args:
            id: The memory's id.
            text: A new text (embedded again).
            kind: A new kind.
            importance: A new importance.
            metadata: New caller metadata, replacing the old.
            namespace: Where the memory is; default this memory's namespace, then `recall_from`.

        Raises:
            ConfigError: When no memory has that id, or a new value is invalid.
            MemoryStoreError: When the store fails.
        """
        found = self.get([id], namespaces=None if namespace is None else [namespace])
        if not found:
            raise ConfigError(f"No memory has the id {id!r}.")
        old = found[0]
        new = MemoryRecord(
            id=id,
            text=old.text if text is None else rec.check_text(text, max_chars=self.max_chars),
            namespace=old.namespace,
            kind=old.kind if kind is None else rec.check_kind(kind),
            importance=old.importance if importance is None else rec.check_importance(importance),
            created_at=old.created_at,
            accessed_at=old.accessed_at,
            episode_id=old.episode_id,
            expires_at=old.expires_at,
            metadata=old.metadata if metadata is None else rec.clean_metadata(metadata),
        )
        stored: dict[str, Any] = {**dict.fromkeys(old.metadata), **new.to_chroma()}  # None deletes dropped keys
        with store_errors("update a memory", self.location):
            space = self._space(old.namespace)
            if new.text != old.text:
                vectors = writer.matrix(self.embeddings.embed_documents([new.text]))
                space.update(ids=[id], documents=[new.text], embeddings=vectors, metadatas=[stored])
            else:
                space.update(ids=[id], metadatas=[stored])
        return new

    def forget(
        self,
        ids: Sequence[str] | None = None,
        *,
        namespace: str | None = None,
        kinds: Sequence[str] | None = None,
        where: Mapping[str, Any] | None = None,
        expired: bool = False,
    ) -> int:
        """Delete memories by id, by filter, or those past their expiry, within one namespace.

        Args:
            ids: These memories.
            namespace: The namespace to delete from; default this memory's. Given alone, it empties the namespace.
            kinds: Only memories of these kinds.
            where: Only memories whose own metadata matches this chroma filter.
            expired: Only memories whose expiry has passed.

        Returns:
            How many memories were deleted.

        Raises:
            ConfigError: When nothing selects what to forget (use ``forget(namespace=...)`` to empty one).
        """
        if ids is None and namespace is None and kinds is None and where is None and not expired:
            raise ConfigError("forget() needs ids, kinds, where, expired=True or an explicit namespace to empty.")
        clauses = rec.filters(kinds, where)
        if expired:
            clauses.append({rec.EXPIRES: {"$lte": self.clock()}})
        with store_errors("forget memories", self.location):
            space = self._space(rec.check_namespace(namespace or self.namespace), create=False)
            if space is None:
                return 0
            found = space.get(ids=list(ids) if ids is not None else None, where=_all_of(clauses), include=[])
            if found["ids"]:
                space.delete(ids=found["ids"])
        return len(found["ids"])

    def commit(self, result: AgentResult) -> None:
        """`LongTermMemory`: store what the write policy keeps from the episode, tagged with its id."""
        kept = self.write_policy(result)
        if kept:
            self.add_many(kept, episode_id=result.episode_id or None)

    # -- reading --------------------------------------------------------------------------------------------

    def get(self, ids: Sequence[str], *, namespaces: Sequence[str] | None = None) -> list[MemoryRecord]:
        """The memories with these ids, in that order; unknown ids are skipped.

        Args:
            ids: The ids.
            namespaces: Where to look; default this memory's namespace and `recall_from`.
        """
        by_id: dict[str, MemoryRecord] = {}
        with store_errors("read memories", self.location):
            for space in self._existing(namespaces or (self.namespace, *self.recall_from)):
                found = space.get(ids=list(ids), include=["documents", "metadatas"])
                for i, d, m in writer.rows(found):
                    by_id.setdefault(i, MemoryRecord.from_chroma(i, d or "", m or {}))
        return [by_id[i] for i in ids if i in by_id]

    def count(self, namespace: str | None = None) -> int:
        """How many memories the namespace (default this memory's) holds."""
        with store_errors("count memories", self.location):
            space = self._space(rec.check_namespace(namespace or self.namespace), create=False)
            return 0 if space is None else space.count()

    def search(
        self,
        query: str,
        *,
        k: int | None = None,
        namespaces: Sequence[str] | None = None,
        kinds: Sequence[str] | None = None,
        where: Mapping[str, Any] | None = None,
        scoring: Scoring | None = None,
    ) -> list[ScoredMemory]:
        """The best memories for a query by weighted score, best first, without changing them.

        Args:
            query: What to look for.
            k: How many; default this memory's `k`.
            namespaces: Where to look; default `recall_from`.
            kinds: Only these kinds.
            where: A chroma filter on the caller's metadata keys, e.g. ``{"topic": {"$in": ["diet", "sleep"]}}``.
            scoring: Weights for this search; default this memory's.

        Raises:
            ConfigError: When the query is empty or not a string, or `where` is not a valid chroma filter.
            MemoryStoreError: When the store fails.
        """
        k = self.k if k is None else k
        if isinstance(k, bool) or not isinstance(k, int) or k < 1:
            raise ConfigError(f"k must be a positive integer, got {k!r}.")
        found = self.nearest(query, max(k, self.candidates), namespaces=namespaces, kinds=kinds, where=where)
        now, scoring = self.clock(), scoring or self.scoring
        words = content_words(query)
        scored = [scoring.score(r, distance, now, words) for r, distance in found]
        return sorted(scored, key=lambda s: s.score, reverse=True)[:k]

    def nearest(
        self,
        query: str,
        n: int,
        *,
        namespaces: Sequence[str] | None = None,
        kinds: Sequence[str] | None = None,
        where: Mapping[str, Any] | None = None,
    ) -> list[tuple[MemoryRecord, float]]:
        """The `n` unexpired memories nearest to the query, with their cosine distances, nearest first."""
        text = rec.check_text(query, max_chars=2**62, what="The query")[: self.max_chars]
        filters = _all_of(rec.filters(kinds, where))
        spaces = [rec.check_namespace(n) for n in namespaces or self.recall_from]
        vector = writer.matrix([self.embeddings.embed_query(text)])
        hits: list[tuple[MemoryRecord, float]] = []
        with store_errors("search memories", self.location):
            for space in self._existing(spaces):
                try:
                    found = space.query(query_embeddings=vector, n_results=n, where=filters, include=_READ)
                except ValueError as exc:  # chroma's check of the filter
                    raise ConfigError(f"Invalid memory filter {dict(where or {})!r}: {exc}") from exc
                first: Any = {key: (found[key] or [[]])[0] for key in ("ids", "documents", "metadatas", "distances")}
                rows = zip(writer.rows(first), first["distances"], strict=True)
                hits += [(MemoryRecord.from_chroma(i, d or "", m or {}), float(dist)) for (i, d, m), dist in rows]
        now = self.clock()
        return sorted(((r, dist) for r, dist in hits if not r.expired(now)), key=lambda hit: hit[1])[:n]

    def recall(self, query: str) -> list[Recollection]:
        """`LongTermMemory`: the best memories for the question within the token budget, marked as accessed."""
        if not isinstance(query, str) or not query.strip():
            return []
        picked, used = [], 0
        for hit in self.search(query):
            cost = self.count_tokens(hit.record.text)
            if used + cost <= self.max_tokens:  # a long memory is skipped, a shorter later one may still fit
                picked.append(hit)
                used += cost
        self.touch([h.record for h in picked])
        return [Recollection(h.record.id, h.record.text, h.score) for h in picked]

    def touch(self, records: Sequence[MemoryRecord]) -> None:
        """Mark memories as accessed now, which resets their recency."""
        now = self.clock()
        with store_errors("mark memories as recalled", self.location):
            for namespace in {r.namespace for r in records}:
                ids = [r.id for r in records if r.namespace == namespace]
                self._space(namespace).update(ids=ids, metadatas=[{rec.ACCESSED: now} for _ in ids])

    # -- LangChain ------------------------------------------------------------------------------------------

    def as_vectorstore(self, namespace: str | None = None) -> MemoryVectorStore:
        """This memory as a LangChain `VectorStore` over one namespace (default this memory's)."""
        from agentkit.memory.langchain import MemoryVectorStore

        return MemoryVectorStore(self, namespace=namespace)

    def as_retriever(self, **settings: Any) -> MemoryRetriever:
        """This memory as a LangChain retriever ranking by the weighted score; `settings` are its fields (k, ...)."""
        from agentkit.memory.langchain import MemoryRetriever

        return MemoryRetriever(memory=self, **settings)

    # -- internals ------------------------------------------------------------------------------------------

    @overload
    def _space(self, namespace: str) -> Collection: ...
    @overload
    def _space(self, namespace: str, *, create: bool) -> Collection | None: ...

    def _space(self, namespace: str, *, create: bool = True) -> Collection | None:
        """The collection of a namespace; created when missing, unless `create` is false (then None)."""
        if namespace not in self._spaces:
            digest = hashlib.sha256(namespace.encode()).hexdigest()[:24]
            name = f"{self.collection}.{digest}"
            space = open_collection(self._client, name, self.embeddings, self.location, namespace, create=create)
            if space is None:
                return None
            self._spaces[namespace] = space
        return self._spaces[namespace]

    def _existing(self, namespaces: Sequence[str]) -> list[Collection]:
        spaces = (self._space(n, create=False) for n in dict.fromkeys(namespaces))
        return [s for s in spaces if s is not None]


_READ: Any = ["documents", "metadatas", "distances"]


def _all_of(clauses: list[dict[str, Any]]) -> Any:
    return None if not clauses else clauses[0] if len(clauses) == 1 else {"$and": clauses}

"""How records land in a chroma collection: deduplicated ids, batched upserts, whole-record replacement.

New ids derive from the namespace and the content hash, so two clients adding the same text at once write the
same record instead of two. chroma merges metadata on upsert; replacing a record therefore deletes the keys the new
one lacks (a None value deletes a key).
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, Any

import numpy as np

from agentkit.memory import records as rec
from agentkit.memory.records import MemoryRecord

if TYPE_CHECKING:
    from chromadb.api.models.Collection import Collection

__all__ = ["assign_ids", "matrix", "rows", "under_ids", "write"]

BATCH = 1000  # records per chroma call: well under chroma's limit, and $in lists stay small


def matrix(vectors: Sequence[Sequence[float]]) -> np.ndarray:
    """Vectors as the float32 matrix chroma stores (it would convert plain lists itself, at a cost)."""
    return np.asarray(vectors, dtype=np.float32)


def rows(found: Any) -> list[tuple[str, str | None, Mapping[str, Any] | None]]:
    """(id, document, metadata) triples of a chroma get result, whatever it included."""
    documents = found.get("documents") or [None] * len(found["ids"])
    metadatas = found.get("metadatas") or [None] * len(found["ids"])
    return list(zip(found["ids"], documents, metadatas, strict=True))


def assign_ids(collection: Collection, records: list[MemoryRecord]) -> tuple[list[str], list[MemoryRecord | None]]:
    """Deduplicated ids for records about to be added to a namespace's collection (all records in that namespace).

    Returns:
        One id per record (an existing record's id when its text is stored already), and per record either the
        record to write under its id or None when nothing needs writing (stored already, or repeated in the batch).
    """
    hashes = [rec.content_hash(r.text) for r in records]
    known: dict[str, str] = {}
    for start in range(0, len(hashes), BATCH):
        batch = sorted(set(hashes[start : start + BATCH]))
        same: Any = {rec.HASH: {"$in": batch}}
        known.update((str(m[rec.HASH]), i) for i, _, m in rows(collection.get(where=same, include=["metadatas"])) if m)
    wanted = {h: _derived_id(records[0].namespace, h) for h in hashes if h not in known}
    taken = _stored_hashes(collection, list(wanted.values()))
    # Another client may have written the same text under its derived id since the lookup above: that is this memory.
    known.update((h, i) for h, i in wanted.items() if taken.get(i) == h)
    # An updated record keeps the id derived from its old text: a new text that hashes to it gets a fresh id.
    ids = {h: (uuid.uuid4().hex if i in taken else i) for h, i in wanted.items() if h not in known}
    chosen: list[str] = []
    fresh: list[MemoryRecord | None] = []
    for record, digest in zip(records, hashes, strict=True):
        chosen.append(known.get(digest) or ids[digest])
        fresh.append(None if digest in known else replace(record, id=ids[digest]))
        known.setdefault(digest, chosen[-1])  # the same text twice in one batch is written once
    return chosen, fresh


def under_ids(records: list[MemoryRecord], ids: list[str]) -> list[MemoryRecord | None]:
    """Records to write under explicit ids; of repeated ids the last wins, as with successive upserts."""
    last = {i: n for n, i in enumerate(ids)}
    return [replace(r, id=i) if last[i] == n else None for n, (r, i) in enumerate(zip(records, ids, strict=True))]


def write(collection: Collection, records: list[MemoryRecord], vectors: np.ndarray, *, replacing: bool) -> None:
    """Upsert records with their vectors in batches.

    Args:
        collection: The chroma collection.
        records: Records with their final ids.
        vectors: One row per record.
        replacing: Whether the ids may name stored records, whose metadata keys must then be replaced, not merged.
    """
    ids = [r.id for r in records]
    old: dict[str, list[str]] = {}
    if replacing:
        for start in range(0, len(ids), BATCH):
            found = collection.get(ids=ids[start : start + BATCH], include=["metadatas"])
            old.update((i, list(m or {})) for i, _, m in rows(found))
    metadatas = [{**dict.fromkeys(old.get(r.id, ())), **r.to_chroma()} for r in records]
    for start in range(0, len(records), BATCH):
        end = start + BATCH
        collection.upsert(
            ids=ids[start:end],
            documents=[r.text for r in records[start:end]],
            embeddings=vectors[start:end],
            metadatas=metadatas[start:end],  # type: ignore[arg-type]  # None values delete keys, as intended
        )


def _stored_hashes(collection: Collection, ids: list[str]) -> dict[str, str | None]:
    """The content hash stored under each of these ids that names a record."""
    found: dict[str, str | None] = {}
    for start in range(0, len(ids), BATCH):
        for i, _, m in rows(collection.get(ids=ids[start : start + BATCH], include=["metadatas"])):
            found[i] = str(m[rec.HASH]) if m and rec.HASH in m else None
    return found


def _derived_id(namespace: str, digest: str) -> str:
    return hashlib.sha256(f"{namespace}\0{digest}".encode()).hexdigest()[:32]

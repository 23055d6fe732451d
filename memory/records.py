"""What one long-term memory holds, and the checks every text, namespace and metadata value passes before storage.

A record is stored in chroma as a document, a vector and one flat metadata mapping: the caller's own keys as given,
plus agentkit's bookkeeping under keys that start with ``ak:`` (namespace, kind, importance, times, source episode,
content hash). The prefix keeps the two apart, so callers filter their own keys with plain chroma ``where`` clauses.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import math
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeAlias

from agentkit.errors import ConfigError

__all__ = [
    "RESERVED_PREFIX",
    "MemoryRecord",
    "MetadataValue",
    "NewMemory",
    "ScoredMemory",
    "check_importance",
    "check_kind",
    "check_namespace",
    "check_text",
    "clean_metadata",
    "content_hash",
    "filters",
    "new_record",
]

Scalar: TypeAlias = str | int | float | bool
MetadataValue: TypeAlias = Scalar | list[str] | list[int] | list[float] | list[bool]
"""What chroma can store as a metadata value."""

RESERVED_PREFIX = "ak:"
"""Metadata keys with this prefix belong to agentkit."""

NAMESPACE, KIND, IMPORTANCE = "ak:namespace", "ak:kind", "ak:importance"
CREATED, ACCESSED, EPISODE, EXPIRES, HASH = "ak:created", "ak:accessed", "ak:episode", "ak:expires", "ak:hash"

_MAX_NAME_CHARS = 256
_INT64 = 2**63


@dataclass(frozen=True, slots=True)
class NewMemory:
    """A memory to store: what a write policy returns and `ChromaMemory.add_many` takes.

    Attributes:
        text: What is remembered (and embedded).
        kind: What sort of memory: ``"fact"``, ``"episode"``, ``"preference"``, ...
        importance: How much it matters, from 0 to 1 (Generative Agents' 1-10 poignancy divided by 10).
        metadata: The caller's own keys; values must be storable by chroma (see `clean_metadata`).
        ttl: Seconds until it expires, or None to keep it until forgotten.
    """

    text: str
    kind: str = "fact"
    importance: float = 0.5
    metadata: Mapping[str, Any] = field(default_factory=dict)
    ttl: float | None = None


@dataclass(frozen=True, slots=True)
class MemoryRecord:
    """One stored memory.

    Attributes:
        id: Its id in the store.
        text: What is remembered.
        namespace: Whose memory it is (a user, an agent, a session, ...).
        kind: What sort of memory it is.
        importance: From 0 to 1.
        created_at: When it was stored (seconds since the epoch).
        accessed_at: When it was last recalled, or stored if never.
        episode_id: The episode that wrote it, when one did.
        expires_at: When it expires, or None.
        metadata: The caller's own keys.
    """

    id: str
    text: str
    namespace: str
    kind: str
    importance: float
    created_at: float
    accessed_at: float
    episode_id: str | None = None
    expires_at: float | None = None
    metadata: dict[str, MetadataValue] = field(default_factory=dict)

    def expired(self, now: float) -> bool:
        """Whether it has expired at `now`."""
        return self.expires_at is not None and self.expires_at <= now

    def to_chroma(self) -> dict[str, MetadataValue]:
        """The flat metadata chroma stores: the caller's keys plus agentkit's."""
        stored: dict[str, MetadataValue] = {
            **self.metadata,
            NAMESPACE: self.namespace,
            KIND: self.kind,
            IMPORTANCE: self.importance,
            CREATED: self.created_at,
            ACCESSED: self.accessed_at,
            HASH: content_hash(self.text),
        }
        if self.episode_id is not None:
            stored[EPISODE] = self.episode_id
        if self.expires_at is not None:
            stored[EXPIRES] = self.expires_at
        return stored

    @classmethod
    def from_chroma(cls, id: str, text: str, stored: Mapping[str, Any]) -> MemoryRecord:
        """Rebuild a record from what chroma returned."""
        created = float(stored.get(CREATED, 0.0))
        episode, expires = stored.get(EPISODE), stored.get(EXPIRES)
        return cls(
            id=id,
            text=text,
            namespace=str(stored.get(NAMESPACE, "")),
            kind=str(stored.get(KIND, "fact")),
            importance=float(stored.get(IMPORTANCE, 0.5)),
            created_at=created,
            accessed_at=float(stored.get(ACCESSED, created)),
            episode_id=None if episode is None else str(episode),
            expires_at=None if expires is None else float(expires),
            metadata={k: v for k, v in stored.items() if not k.startswith(RESERVED_PREFIX)},
        )


@dataclass(frozen=True, slots=True)
class ScoredMemory:
    """A memory found for a query, with the parts of its score (each from 0 to 1).

    Attributes:
        record: The memory.
        score: The weighted mean of the parts below.
        relevance: Cosine similarity to the query, clipped at 0.
        recency: Exponential decay since it was last accessed.
        importance: Its importance.
        keywords: The share of the query's content words it contains.
    """

    record: MemoryRecord
    score: float
    relevance: float
    recency: float
    importance: float
    keywords: float = 0.0


def content_hash(text: str) -> str:
    """The dedup key of a text: equal after Unicode normalisation and trimming."""
    return hashlib.sha256(unicodedata.normalize("NFC", text).strip().encode("utf-8")).hexdigest()


def _check_unicode(text: str, what: str) -> None:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise ConfigError(
            f"{what} is not valid Unicode: it holds lone surrogates, as left by decoding non-UTF-8 bytes with "
            "errors='surrogateescape'. Decode the bytes with errors='replace' first."
        ) from None


def check_text(text: object, *, max_chars: int, what: str = "The memory text") -> str:
    """Return `text` when it can be stored as a memory.

    Args:
        text: The candidate text.
        max_chars: The longest text accepted.
        what: How error messages name it.

    Raises:
        ConfigError: When it is not a string, is empty, is longer than `max_chars`, or is not valid Unicode.
    """
    if isinstance(text, (bytes, bytearray)):
        raise ConfigError(f"{what} must be a str, got bytes: decode it first, e.g. data.decode('utf-8', 'replace').")
    if not isinstance(text, str):
        raise ConfigError(f"{what} must be a str, got {type(text).__name__}.")
    if not text.strip():
        raise ConfigError(f"{what} is empty: there is nothing to remember.")
    if len(text) > max_chars:
        # The embedding model reads only the first few hundred tokens, so a longer text would be found by its opening
        # alone: the caller must split it into passages that each mean one thing.
        raise ConfigError(
            f"{what} has {len(text):,} characters, more than max_chars={max_chars:,}: split it into passages "
            "(e.g. with langchain_text_splitters) and add each one, or raise max_chars."
        )
    _check_unicode(text, what)
    return text


def check_namespace(namespace: object) -> str:
    """Return `namespace` when it is usable: any non-empty string up to 256 characters, stored as given."""
    if not isinstance(namespace, str) or not namespace.strip():
        raise ConfigError(f"A namespace must be a non-empty string (e.g. 'user:alice'), got {namespace!r}.")
    if len(namespace) > _MAX_NAME_CHARS:
        raise ConfigError(f"A namespace has at most {_MAX_NAME_CHARS} characters, got {len(namespace)}.")
    _check_unicode(namespace, "The namespace")
    return namespace


def check_kind(kind: object) -> str:
    """Return `kind` when it is a non-empty string up to 256 characters."""
    if not isinstance(kind, str) or not kind.strip() or len(kind) > _MAX_NAME_CHARS:
        raise ConfigError(f"kind must be a non-empty string such as 'fact' or 'preference', got {kind!r}.")
    _check_unicode(kind, "kind")
    return kind


def check_importance(importance: object) -> float:
    """Return `importance` as a float when it is a number from 0 to 1."""
    if isinstance(importance, bool) or not isinstance(importance, (int, float)) or not 0 <= importance <= 1:
        raise ConfigError(f"importance must be a number from 0 to 1, got {importance!r}.")
    return float(importance)


def _clean_scalar(key: str, value: object) -> Scalar:
    if isinstance(value, str):
        _check_unicode(value, f"metadata[{key!r}]")
        return value
    if isinstance(value, bool):
        return value
    if isinstance(value, int):
        if not -_INT64 <= value < _INT64:
            raise ConfigError(f"metadata[{key!r}] = {value} does not fit in 64 bits: store it as a string.")
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            # chroma would store NaN as a missing value: a silent loss.
            raise ConfigError(f"metadata[{key!r}] = {value} is not a finite number: chroma cannot store it.")
        return value
    if isinstance(value, (dt.datetime, dt.date)):
        return value.isoformat()
    raise ConfigError(
        f"metadata[{key!r}] is a {type(value).__name__}: chroma stores str, int, float, bool, datetime (as ISO "
        "text) or a non-empty list of one of those. Convert it first, e.g. with json.dumps."
    )


def clean_metadata(metadata: Mapping[str, Any] | None) -> dict[str, MetadataValue]:
    """The caller's metadata in a form chroma stores without loss.

    None values are dropped (chroma has no null), datetimes become ISO text, tuples become lists.

    Raises:
        ConfigError: For a key that is not a non-empty string or uses a reserved prefix (``ak:``, ``#``, ``$``),
            and for a value chroma cannot store (a dict, bytes, NaN, a mixed or empty list, ...).
    """
    if metadata is None:
        return {}
    if not isinstance(metadata, Mapping):
        raise ConfigError(f"metadata must be a mapping of str keys, got {type(metadata).__name__}.")
    cleaned: dict[str, MetadataValue] = {}
    for key, value in metadata.items():
        if not isinstance(key, str) or not key:
            raise ConfigError(f"metadata keys must be non-empty strings, got {key!r}.")
        if key.startswith((RESERVED_PREFIX, "#", "$")):
            raise ConfigError(f"metadata key {key!r} is reserved (keys starting with 'ak:', '#' or '$'): rename it.")
        if value is None:
            continue
        if isinstance(value, (list, tuple)):
            cleaned[key] = _clean_list(key, value)
        else:
            cleaned[key] = _clean_scalar(key, value)
    return cleaned


def _clean_list(key: str, values: Sequence[object]) -> MetadataValue:
    items = [_clean_scalar(key, v) for v in values]
    if not items or len({type(v) for v in items}) != 1:
        raise ConfigError(f"metadata[{key!r}]: chroma stores only non-empty lists whose items all have one type.")
    return items  # type: ignore[return-value]  # one item type, checked above


def new_record(
    item: str | NewMemory, namespace: str, episode_id: str | None, now: float, *, max_chars: int
) -> MemoryRecord:
    """A checked record (without its id yet) for a text or `NewMemory` added at `now`.

    Raises:
        ConfigError: When any part of the item cannot be stored.
    """
    note = NewMemory(item) if isinstance(item, str) else item
    if not isinstance(note, NewMemory):
        raise ConfigError(f"Memories to add are str or NewMemory, got {type(item).__name__}.")
    ttl = note.ttl
    if ttl is not None and (isinstance(ttl, bool) or not isinstance(ttl, (int, float)) or not ttl > 0):
        raise ConfigError(f"ttl must be a positive number of seconds or None, got {ttl!r}.")
    return MemoryRecord(
        id="",
        text=check_text(note.text, max_chars=max_chars),
        namespace=namespace,
        kind=check_kind(note.kind),
        importance=check_importance(note.importance),
        created_at=now,
        accessed_at=now,
        episode_id=episode_id,
        expires_at=None if ttl is None else now + ttl,
        metadata=clean_metadata(note.metadata),
    )


def filters(kinds: Sequence[str] | None, where: Mapping[str, Any] | None) -> list[dict[str, Any]]:
    """The chroma filter clauses (to be combined with ``$and``) selecting kinds and caller metadata."""
    clauses: list[dict[str, Any]] = []
    if kinds is not None:
        clauses.append({KIND: {"$in": [check_kind(k) for k in kinds]}})
    if where:
        if not isinstance(where, Mapping):
            raise ConfigError(f"where must be a chroma filter mapping, got {type(where).__name__}.")
        clauses.append(dict(where))
    return clauses

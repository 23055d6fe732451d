"""Decoding from static caches that transformers compiles (`compile_decoding=True`), on tiny real models.

Compiled here by torch's own compiler for the CPU (inductor, which builds C++): the same `generate` path that, on a
GPU, replays each decoding step as CUDA graphs.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest
import torch
from tinymodels import EPISODE_QUESTIONS, STOP, compiled_calls, concurrent_episodes, episode

import agentkit.llm.generate as generate
from agentkit.errors import ConfigError
from agentkit.llm import LocalChatModel
from agentkit.llm.static_cache import StaticCaches

pytestmark = [
    pytest.mark.skipif(
        shutil.which("g++") is None and shutil.which("c++") is None, reason="torch's CPU compiler needs a C++ compiler"
    ),
    pytest.mark.usefixtures("fresh_compiler"),
]


def _model(tiny_dir: Path) -> tuple[Any, Any]:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    return AutoModelForCausalLM.from_pretrained(tiny_dir).eval(), AutoTokenizer.from_pretrained(tiny_dir)


def test_static_caches_are_kept_per_batch_size_and_length_bucket(tiny_dir: Path) -> None:
    model, tokenizer = _model(tiny_dir)
    ids = tokenizer("Question: what is the weather in Paris today?")["input_ids"]
    prefix = generate.prefill(model, ids, None, device="cpu")
    dynamic = generate._batch_cache([prefix.kv], [0], len(ids))
    caches = StaticCaches(model, "cpu", keep=2)

    first = caches.load(dynamic, 1, 100)
    assert first.layers[0].max_cache_len == 256  # the smallest bucket
    assert int(first.get_seq_length()) == len(ids)
    for layer, (keys, values) in zip(first.layers, prefix.kv, strict=True):
        assert torch.equal(layer.keys[:, :, : len(ids)], keys)
        assert torch.equal(layer.values[:, :, : len(ids)], values)
    address = first.layers[0].keys.data_ptr()

    wide = caches.load(None, 1, 257)
    assert wide.layers[0].max_cache_len == 512  # the next power of two
    again = caches.load(dynamic, 1, 200)  # the first bucket again: the same buffers, refilled in place
    assert again is first and again.layers[0].keys.data_ptr() == address
    assert int(again.get_seq_length()) == len(ids)
    assert int(caches.load(None, 1, 256).get_seq_length()) == 0  # started empty

    caches.load(None, 2, 100)  # a third shape: the least recently used one (1 row, 512) goes
    assert caches.load(None, 1, 100) is first
    assert caches.load(None, 1, 300) is not wide


def test_compiled_decoding_matches_the_dynamic_cache_row_for_row(
    tiny_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    model, tokenizer = _model(tiny_dir)
    prompts = [tokenizer(f"Question: {q} Answer briefly, {q}")["input_ids"] for q in EPISODE_QUESTIONS]

    def rows() -> list[generate.Row]:
        # Prefixes of different lengths, one row without: the batch cache is left-padded unevenly.
        cached = [generate.prefill(model, ids[:n], None, device="cpu") for ids, n in zip(prompts, [9, 4], strict=False)]
        return [generate.Row(ids, prefix=p, logprobs=True) for ids, p in zip(prompts, [*cached, None], strict=True)]

    settings = generate.GenerationSettings((), 16, 0.0, 1.0)
    expected = generate.run_batch(model, tokenizer, rows(), settings, device="cpu", keep_cache=True)
    compiled = compiled_calls(model, monkeypatch)
    static = StaticCaches(model, "cpu")
    got = generate.run_batch(model, tokenizer, rows(), settings, device="cpu", keep_cache=True, static=static)

    assert compiled == [1]
    assert [r.token_ids for r in got] == [r.token_ids for r in expected]
    for a, b in zip(expected, got, strict=True):
        assert b.logprobs == pytest.approx(a.logprobs, abs=1e-4)
        assert b.prefilled_tokens == a.prefilled_tokens
        # The rows' keys and values come back out of the static cache for the prefix cache, as from a dynamic one.
        assert a.cache is not None and b.cache is not None and b.cache.ids == a.cache.ids
        for (ak, av), (bk, bv) in zip(a.cache.kv, b.cache.kv, strict=True):
            torch.testing.assert_close(bk, ak, atol=1e-4, rtol=1e-4)
            torch.testing.assert_close(bv, av, atol=1e-4, rtol=1e-4)


def test_concurrent_compiled_episodes_match_eager_ones(tiny_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    eager = LocalChatModel.from_pretrained(tiny_dir, max_new_tokens=12)
    expected = [episode(eager, q, 3) for q in EPISODE_QUESTIONS]
    chat = LocalChatModel.from_pretrained(tiny_dir, max_new_tokens=12, compile_decoding=True)
    compiled = compiled_calls(chat.model, monkeypatch)
    got = concurrent_episodes(chat, EPISODE_QUESTIONS, 3)
    assert [[m.content for m in e] for e in got] == [[m.content for m in e] for e in expected]
    assert len(compiled) == chat.stats.batches
    assert chat.stats.batches < chat.stats.calls  # the episodes' steps were batched
    assert chat.stats.prefilled_tokens < chat.stats.prompt_tokens / 2  # the prefix cache still serves each step


def test_a_row_that_drafts_decodes_from_its_dynamic_cache(tiny_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    plain = LocalChatModel.from_pretrained(tiny_dir, max_new_tokens=24)
    chat = LocalChatModel.from_pretrained(tiny_dir, max_new_tokens=24, draft_tokens=4, compile_decoding=True)
    compiled = compiled_calls(chat.model, monkeypatch)
    assert [m.content for m in episode(chat, "x y z x y z", 2)] == [m.content for m in episode(plain, "x y z x y z", 2)]
    assert compiled == []  # assisted decoding cuts its cache back, which transformers does not compile


def test_a_decoding_step_that_cannot_compile_raises_what_to_do(tiny_dir: Path) -> None:
    chat = LocalChatModel.from_pretrained(tiny_dir, max_new_tokens=4, compile_decoding=True)
    static = chat._load()._static
    assert static is not None

    # torch's compiler, as it fails on a machine without a C++ compiler.
    def no_compiler(graph: Any, inputs: Any, **options: Any) -> Any:
        raise RuntimeError("Failed to find a working C++ compiler")

    static.compile_config.backend = no_compiler
    with pytest.raises(ConfigError, match=r"C\+\+ compiler.*pass compile_decoding=False"):
        chat.invoke("hi", stop=STOP)
    with pytest.raises(ConfigError):  # the worker is still up, and says the same at the next call
        chat.invoke("hello", stop=STOP)

"""The engine on a CUDA GPU: what only a GPU can show. Skipped without one (CI runs on the CPU).

On a GPU machine: ``pytest tests/test_llm_cuda.py`` (bitsandbytes installed for the quantisation test).
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

import pytest
import torch
from tinymodels import EPISODE_QUESTIONS, compiled_calls, concurrent_episodes, episode

from agentkit.llm import LocalChatModel

pytestmark = [
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU"),
    pytest.mark.usefixtures("fresh_compiler"),
]


def _chat(tiny_dir: Path, **settings: Any) -> LocalChatModel:
    # float32: bfloat16 rounding can flip a near-tied token between kernels, which would hide what is compared here.
    return LocalChatModel.from_pretrained(
        tiny_dir, device="cuda", dtype="float32", max_new_tokens=12, return_logprobs=True, **settings
    )


def _token_ids(chat: LocalChatModel, concurrent: bool) -> list[list[list[int]]]:
    """Three 3-step episodes' generated ids, run one after another or concurrently (batched)."""
    if concurrent:
        episodes = concurrent_episodes(chat, EPISODE_QUESTIONS, 3)
    else:
        episodes = [episode(chat, question, 3) for question in EPISODE_QUESTIONS]
    return [[reply.response_metadata["token_ids"] for reply in replies] for replies in episodes]


def test_the_model_runs_on_the_gpu(tiny_dir: Path) -> None:
    chat = _chat(tiny_dir)
    assert next(chat.model.parameters()).device.type == "cuda"
    assert chat.invoke("hello").response_metadata["token_ids"]


def test_prefix_reuse_and_batching_give_the_same_tokens_on_the_gpu(tiny_dir: Path) -> None:
    cold = _token_ids(_chat(tiny_dir, prefix_cache_size=0), concurrent=False)
    cached = _chat(tiny_dir)
    assert _token_ids(cached, concurrent=False) == cold
    assert cached.stats.prefilled_tokens < cached.stats.prompt_tokens  # the cache served later steps
    batched = _chat(tiny_dir)
    assert _token_ids(batched, concurrent=True) == cold
    assert batched.stats.batches < batched.stats.calls


def test_compiled_decoding_gives_the_eager_tokens_on_the_gpu(tiny_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    eager = _token_ids(_chat(tiny_dir), concurrent=True)
    chat = _chat(tiny_dir, compile_decoding=True)
    compiled = compiled_calls(chat.model, monkeypatch)
    assert _token_ids(chat, concurrent=True) == eager
    assert len(compiled) == chat.stats.batches  # every batch decoded through CUDA graphs


@pytest.mark.skipif(importlib.util.find_spec("bitsandbytes") is None, reason="needs bitsandbytes")
@pytest.mark.parametrize(("quantize", "layer"), [("4bit", "Linear4bit"), ("8bit", "Linear8bitLt")])
def test_quantised_weights_load_and_generate_on_the_gpu(tiny_dir: Path, quantize: str, layer: str) -> None:
    chat = LocalChatModel.from_pretrained(tiny_dir, device="cuda", quantize=quantize, max_new_tokens=8)
    kinds = {type(module).__name__ for module in chat.model.modules()}
    assert layer in kinds
    reply = chat.invoke("hello", stop=["\n"])
    assert reply.response_metadata["stop_reason"] in {"stop", "eos", "length"}
    assert reply.usage_metadata is not None and reply.usage_metadata["output_tokens"] > 0

"""The engine on a CUDA GPU: what only a GPU can show. Skipped without one (CI runs on the CPU).

On a GPU machine: ``pytest tests/test_llm_cuda.py`` (bitsandbytes installed for the quantisation test).
"""

from __future__ import annotations

import functools
import importlib.util
from pathlib import Path
from typing import Any

import pytest
import torch
from tinymodels import check_reuse_and_batching_keep_tokens, compiled_calls, episode_token_ids

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


def test_the_model_runs_on_the_gpu(tiny_dir: Path) -> None:
    chat = _chat(tiny_dir)
    assert next(chat.model.parameters()).device.type == "cuda"
    assert chat.invoke("hello").response_metadata["token_ids"]


def test_prefix_reuse_and_batching_give_the_same_tokens_on_the_gpu(tiny_dir: Path) -> None:
    check_reuse_and_batching_keep_tokens(functools.partial(_chat, tiny_dir))


def test_compiled_decoding_gives_the_eager_tokens_on_the_gpu(tiny_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    eager = episode_token_ids(_chat(tiny_dir), concurrent=True)
    chat = _chat(tiny_dir, compile_decoding=True)
    compiled = compiled_calls(chat.model, monkeypatch)
    assert episode_token_ids(chat, concurrent=True) == eager
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

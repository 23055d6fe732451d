"""Quantised weights through the real bitsandbytes, on the CPU, where it runs 4- and 8-bit weights since 0.47.

`tests/test_llm_cuda.py` loads them on a GPU as well.
"""

from __future__ import annotations

import functools
import logging
from pathlib import Path

import pytest
import torch
from packaging.version import Version
from tinymodels import STOP, check_reuse_and_batching_keep_tokens

from agentkit.llm import LocalChatModel, loading

LAYERS = {"4bit": "Linear4bit", "8bit": "Linear8bitLt"}


def _chat(model_dir: Path, quantize: str, **settings: object) -> LocalChatModel:
    return LocalChatModel.from_pretrained(model_dir, device="cpu", quantize=quantize, max_new_tokens=12, **settings)


def _kinds(chat: LocalChatModel) -> set[str]:
    return {type(module).__name__ for module in chat.model.modules()}


@pytest.mark.parametrize("quantize", ["4bit", "8bit"])
def test_quantised_weights_load_and_answer_on_the_cpu(chat_dir: Path, quantize: str) -> None:
    chat = _chat(chat_dir, quantize)
    assert LAYERS[quantize] in _kinds(chat)
    # Every projection is quantised; only the output head, which bitsandbytes leaves alone, is a plain linear layer.
    plain = [name for name, module in chat.model.named_modules() if type(module) is torch.nn.Linear]
    assert plain == ["lm_head"]
    reply = chat.invoke("hello", stop=STOP)
    assert reply.response_metadata["stop_reason"] in {"stop", "eos", "length"}
    assert reply.usage_metadata is not None and reply.usage_metadata["output_tokens"] > 0


def test_eight_bit_weights_keep_the_trained_reply(chat_dir: Path) -> None:
    # LLM.int8() keeps outliers in 16 bits; on a trained model its greedy reply is the full-precision one.
    full = LocalChatModel.from_pretrained(chat_dir, device="cpu", max_new_tokens=12)
    assert _chat(chat_dir, "8bit").invoke("hello", stop=STOP).content == full.invoke("hello", stop=STOP).content


def test_prefix_reuse_and_batching_give_the_same_tokens_with_quantised_weights(tiny_dir: Path) -> None:
    check_reuse_and_batching_keep_tokens(functools.partial(_chat, tiny_dir, "4bit", return_logprobs=True))


def test_an_adapter_over_quantised_weights_is_kept_apart(tiny_dir: Path, tmp_path: Path) -> None:
    from peft import LoraConfig, PeftModel, get_peft_model
    from transformers import AutoModelForCausalLM

    config = LoraConfig(r=4, target_modules=["q_proj", "v_proj"], init_lora_weights=False)  # random: changes outputs
    torch.manual_seed(1)
    get_peft_model(AutoModelForCausalLM.from_pretrained(tiny_dir), config).save_pretrained(tmp_path / "adapter")

    plain = _chat(tiny_dir, "4bit")
    adapted = _chat(tiny_dir, "4bit", adapter=tmp_path / "adapter")
    # Merging would need the weights in full precision again: the adapter runs beside the 4-bit layers instead.
    assert isinstance(adapted.model, PeftModel)
    assert "Linear4bit" in _kinds(adapted)
    ids = torch.tensor([[5, 6, 7]])
    with torch.inference_mode():
        assert not torch.allclose(plain.model(ids).logits, adapted.model(ids).logits)
    assert adapted.invoke("hello").usage_metadata is not None


def test_eight_bit_products_log_nothing_per_step(tiny_dir: Path, caplog: pytest.LogCaptureFixture) -> None:
    # bitsandbytes notes, for every layer at every step, that it casts float32 inputs to float16.
    chat = _chat(tiny_dir, "8bit")
    with caplog.at_level(logging.WARNING):
        chat.invoke("hello")
    assert not [record for record in caplog.records if record.name.startswith("bitsandbytes")]


@pytest.mark.parametrize(("found", "have"), [(None, "no bitsandbytes"), (Version("0.46.1"), "bitsandbytes 0.46.1")])
def test_without_a_bitsandbytes_for_the_cpu_the_weights_load_in_full_precision(
    tiny_dir: Path, monkeypatch: pytest.MonkeyPatch, found: Version | None, have: str
) -> None:
    monkeypatch.setattr(loading, "_bitsandbytes_version", lambda: found)
    with pytest.warns(UserWarning, match=rf"bitsandbytes>=0\.47 \(here: {have}; pip install 'bitsandbytes>=0\.47'\)"):
        chat = _chat(tiny_dir, "4bit")
    assert not _kinds(chat) & set(LAYERS.values())
    assert chat.invoke("hello").response_metadata["stop_reason"] in {"eos", "length"}

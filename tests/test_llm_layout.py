"""CPU weight layouts (`agentkit.llm.layout`): measured per shape, values and outputs kept, small models untouched."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch
from transformers import LlamaConfig, LlamaForCausalLM

from agentkit.llm import LocalChatModel, layout


def _model(tied: bool = True) -> Any:
    """A 512-wide Llama whose projections hold 8 MB or more per shape: big enough to be measured."""
    torch.manual_seed(0)
    config = LlamaConfig(
        vocab_size=256,
        hidden_size=512,
        intermediate_size=2048,
        num_hidden_layers=2,
        num_attention_heads=8,
        tie_word_embeddings=tied,
    )
    return LlamaForCausalLM(config).eval()


def _column_major(weight: Any) -> bool:
    return bool(weight.t().is_contiguous()) and not weight.is_contiguous()


def test_column_major_weights_keep_their_values_and_the_models_output(monkeypatch: pytest.MonkeyPatch) -> None:
    model = _model()
    before = {name: p.detach().clone() for name, p in model.named_parameters()}
    ids = torch.randint(0, 256, (1, 40), generator=torch.Generator().manual_seed(1))
    with torch.inference_mode():
        logits = model(ids).logits
    monkeypatch.setattr(layout, "_column_major_is_faster", lambda weights, torch: True)

    chosen = layout.tune_cpu_layouts(model)

    assert chosen == {(512, 512): True, (2048, 512): True, (512, 2048): True}
    for name, parameter in model.named_parameters():
        assert torch.equal(parameter, before[name]), name
        assert parameter.shape == before[name].shape
    assert _column_major(model.model.layers[0].mlp.up_proj.weight)
    assert _column_major(model.model.layers[1].self_attn.q_proj.weight)
    # The output layer shares its weight with the embedding: a lookup of rows stays on row-major storage.
    assert model.lm_head.weight.is_contiguous()
    with torch.inference_mode():
        assert torch.allclose(model(ids).logits, logits, atol=1e-4, rtol=1e-4)


def test_the_measurement_decides_each_shape_of_8_mb_or_more() -> None:
    model = _model(tied=False)

    chosen = layout.tune_cpu_layouts(model)  # real timings: which layout wins depends on this CPU

    # The output layer (256 x 512, 0.5 MB) stays in the CPU's caches while decoding: not measured.
    assert set(chosen) == {(512, 512), (2048, 512), (512, 2048)}
    for module in model.modules():
        if isinstance(module, torch.nn.Linear):
            shape = tuple(module.weight.shape)
            assert _column_major(module.weight) == chosen.get(shape, False), shape


def test_a_small_model_is_left_as_it_is(tiny_dir: Path) -> None:
    llm = LocalChatModel.from_pretrained(tiny_dir, device="cpu")

    assert layout.tune_cpu_layouts(llm.model) == {}
    assert all(p.is_contiguous() for p in llm.model.parameters())


@pytest.mark.parametrize("tune", [True, False])
def test_local_chat_model_tunes_layouts_on_the_cpu_unless_told_not_to(
    tiny_dir: Path, monkeypatch: pytest.MonkeyPatch, tune: bool
) -> None:
    tuned: list[Any] = []
    monkeypatch.setattr("agentkit.llm.loading.tune_cpu_layouts", tuned.append)

    llm = LocalChatModel.from_pretrained(tiny_dir, device="cpu", tune_cpu_layout=tune)

    assert tuned == ([llm.model] if tune else [])

"""CPU matrix products (`agentkit.llm.cpu_matmul`): measured per shape, same outputs, same parameters, small models as
they are."""

from __future__ import annotations

import copy
import pickle
from pathlib import Path
from typing import Any

import pytest
import torch
from transformers import LlamaConfig, LlamaForCausalLM

from agentkit.llm import LocalChatModel, cpu_matmul


def _model(tied: bool = True, bias: bool = False) -> Any:
    """A 512-wide Llama whose projections hold 8 MB or more per shape: big enough to be measured."""
    torch.manual_seed(0)
    config = LlamaConfig(
        vocab_size=256,
        hidden_size=512,
        intermediate_size=2048,
        num_hidden_layers=2,
        num_attention_heads=8,
        tie_word_embeddings=tied,
        attention_bias=bias,
    )
    return LlamaForCausalLM(config).eval()


def _tuned(module: Any) -> bool:
    return type(module).__name__ == "TunedLinear"


@pytest.mark.parametrize("blocks", [1, 2, 4])
@pytest.mark.parametrize("bias", [False, True])
def test_blocked_products_keep_the_parameters_and_the_models_output(
    monkeypatch: pytest.MonkeyPatch, blocks: int, bias: bool
) -> None:
    model = _model(bias=bias)
    before = {name: p.detach().clone() for name, p in model.named_parameters()}
    ids = torch.randint(0, 256, (3, 40), generator=torch.Generator().manual_seed(1))
    with torch.inference_mode():
        expected = [model(ids[:1, :1]).logits, model(ids[:, :1]).logits, model(ids).logits]  # 1, 3 and 120 rows
    monkeypatch.setattr(cpu_matmul, "_fastest", lambda weights, rows, torch: blocks)

    chosen = cpu_matmul.tune_cpu_matmuls(model)

    assert chosen == {(512, 512): (blocks, blocks), (2048, 512): (blocks, blocks), (512, 2048): (blocks, blocks)}
    assert _tuned(model.model.layers[0].mlp.up_proj) and _tuned(model.model.layers[1].self_attn.q_proj)
    assert isinstance(model.model.layers[0].mlp.up_proj, torch.nn.Linear)  # PEFT and the rest still see a Linear
    assert not _tuned(model.lm_head)  # 256 x 512 (0.5 MB) stays in the CPU's caches: not measured
    assert {name: p for name, p in model.named_parameters()}.keys() == before.keys()
    for name, parameter in model.named_parameters():
        assert torch.equal(parameter, before[name]), name
    with torch.inference_mode():
        outputs = [model(ids[:1, :1]).logits, model(ids[:, :1]).logits, model(ids).logits]
    for got, want in zip(outputs, expected, strict=True):
        assert torch.allclose(got, want, atol=1e-5, rtol=1e-4)
    with torch.inference_mode():
        assert model.model.layers[0].mlp.up_proj(torch.zeros(2, 0, 512)).shape == (2, 0, 2048)


def test_a_tuned_model_copies_pickles_and_learns_like_the_plain_one(monkeypatch: pytest.MonkeyPatch) -> None:
    model = _model(tied=False)
    monkeypatch.setattr(cpu_matmul, "_fastest", lambda weights, rows, torch: 2)
    cpu_matmul.tune_cpu_matmuls(model)
    ids = torch.randint(0, 256, (1, 1), generator=torch.Generator().manual_seed(2))
    with torch.inference_mode():
        logits = model(ids).logits

    for other in (copy.deepcopy(model), pickle.loads(pickle.dumps(model))):
        assert _tuned(other.model.layers[0].mlp.up_proj)
        with torch.inference_mode():
            assert torch.equal(other(ids).logits, logits)
    # Gradients flow through the blocked product to the weight it views (an adapter or fine-tuning on the CPU).
    model(ids).logits.sum().backward()
    gradient = model.model.layers[0].mlp.up_proj.weight.grad
    assert gradient is not None and gradient.abs().sum() > 0


def test_the_measurement_decides_each_shape_of_8_mb_or_more() -> None:
    model = _model(tied=False)

    chosen = cpu_matmul.tune_cpu_matmuls(model)  # real timings: which form wins depends on this CPU

    assert set(chosen) == {(512, 512), (2048, 512), (512, 2048)}
    for module in model.modules():
        if isinstance(module, torch.nn.Linear):
            one, few = chosen.get((module.out_features, module.in_features), (0, 0))
            assert _tuned(module) == bool(one or few)
            if _tuned(module):
                assert (module.one_row_blocks, module.few_rows_blocks) == (one, few)


def test_a_small_model_is_left_as_it_is(tiny_dir: Path) -> None:
    llm = LocalChatModel.from_pretrained(tiny_dir, device="cpu")

    assert cpu_matmul.tune_cpu_matmuls(llm.model) == {}
    assert not any(_tuned(m) for m in llm.model.modules())


@pytest.mark.parametrize("tune", [True, False])
def test_local_chat_model_tunes_products_on_the_cpu_unless_told_not_to(
    tiny_dir: Path, monkeypatch: pytest.MonkeyPatch, tune: bool
) -> None:
    tuned: list[Any] = []
    monkeypatch.setattr("agentkit.llm.loading._tune_cpu_matmuls", tuned.append)

    llm = LocalChatModel.from_pretrained(tiny_dir, device="cpu", tune_cpu_matmuls=tune)

    assert tuned == ([llm.model] if tune else [])

"""A prompt prefix the rows of a batch share, held once and attended in two merged parts, on tiny real models."""

from __future__ import annotations

import threading
import types
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
import torch
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, SystemMessage
from tinymodels import STOP, common_length
from transformers.integrations.sdpa_attention import sdpa_attention_forward

import agentkit.llm.generate as generate
from agentkit.llm import LocalChatModel, shared_prefix

SYSTEM = "You are a careful assistant. Use the tools, check every result, and answer briefly. " * 3
QUESTIONS = ["What is 3 plus 4?", "Tell me about Paris", "x y z", "The quick brown fox jumps"]


def _spy(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Hold any shared prefix once, however few bytes of keys and values that spares (the tiny models' are far below
    the threshold), and count the passes that ran with one (the real context manager still runs)."""
    monkeypatch.setattr(generate, "_MIN_SHARED_BYTES", 0)
    lengths: list[int] = []
    real = shared_prefix.shared_prefix

    def counting(model: Any, kv: list[tuple[Any, Any]]) -> Any:
        lengths.append(kv[0][0].shape[-2])
        return real(model, kv)

    monkeypatch.setattr(shared_prefix, "shared_prefix", counting)
    return lengths


# -- the attention function against transformers' sdpa over the whole keys ---------------------------------------------


@pytest.mark.parametrize(
    ("queries", "own", "kv_heads", "padding", "dtype"),
    [
        (1, 9, 4, [0, 3, 8], torch.float32),  # decoding, rows padded differently
        (5, 9, 4, [0, 2, 4], torch.float32),  # prefilling five tokens per row, the first rows' queries partly padding
        (5, 5, 4, None, torch.float32),  # prefilling with no padding: transformers passes no mask, only causality
        (3, 7, 2, [1, 0, 5], torch.float32),  # grouped-query attention: two query heads per key/value head
        (1, 9, 2, [0, 3, 8], torch.bfloat16),  # a bfloat16 model (the kernel's log-sum-exp is float32)
    ],
)
def test_two_part_attention_equals_sdpa_over_the_prefix_and_the_rows_own_keys(
    queries: int, own: int, kv_heads: int, padding: list[int] | None, dtype: torch.dtype
) -> None:
    torch.manual_seed(0)
    rows, heads, size, prefix = 3, 4, 8, 11
    module = types.SimpleNamespace(layer_idx=0, num_key_value_groups=heads // kv_heads, is_causal=True)

    def randn(*shape: int) -> torch.Tensor:
        return torch.randn(*shape).to(dtype)

    query = randn(rows, heads, queries, size)
    prefix_k, prefix_v = randn(1, kv_heads, prefix, size), randn(1, kv_heads, prefix, size)
    own_k, own_v = randn(rows, kv_heads, own, size), randn(rows, kv_heads, own, size)
    # transformers' boolean mask of the rows' own part: causal (the queries are the last ones), then padding.
    causal = torch.ones(queries, own, dtype=torch.bool).tril(own - queries)
    mask = None if padding is None else causal.repeat(rows, 1, 1, 1)
    for row, pads in enumerate(padding or []):
        assert mask is not None
        mask[row, :, :, :pads] = False
    own_mask = causal.repeat(rows, 1, 1, 1) if mask is None else mask
    whole_mask = torch.cat([torch.ones(rows, 1, queries, prefix, dtype=torch.bool), own_mask], dim=-1)
    whole_k = torch.cat([prefix_k.expand(rows, -1, -1, -1), own_k], dim=-2)
    whole_v = torch.cat([prefix_v.expand(rows, -1, -1, -1), own_v], dim=-2)
    expected, _ = sdpa_attention_forward(module, query, whole_k, whole_v, whole_mask, scaling=size**-0.5)

    shared_prefix._active.kv = [(prefix_k, prefix_v)]
    try:
        merged, _ = shared_prefix._attention(module, query, own_k, own_v, mask, scaling=size**-0.5)
    finally:
        shared_prefix._active.kv = None
    assert merged.shape == (rows, queries, heads, size)
    assert merged.dtype == dtype
    assert not merged.isnan().any()  # queries that see only padding of their own part still see the prefix
    close = 1e-5 if dtype == torch.float32 else 2e-2
    torch.testing.assert_close(merged, expected, atol=close, rtol=close)


def test_attention_terms_it_does_not_apply_are_refused_with_what_to_do() -> None:
    module = types.SimpleNamespace(layer_idx=0, num_key_value_groups=1)
    query, key = torch.randn(2, 2, 1, 4), torch.randn(2, 2, 3, 4)
    with pytest.raises(NotImplementedError, match=r"softcap.*max_batch_size=1"):
        shared_prefix._attention(module, query, key, key, None, softcap=30.0)


def test_the_attention_implementation_is_restored_even_when_the_batch_fails(tiny_dir: Path) -> None:
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(tiny_dir)
    assert shared_prefix.applies(model, "cpu")
    with pytest.raises(RuntimeError, match="boom"), shared_prefix.shared_prefix(model, []):
        assert model.config._attn_implementation == shared_prefix.ATTENTION
        raise RuntimeError("boom")
    assert model.config._attn_implementation == "sdpa"
    assert shared_prefix._active.kv is None


def test_only_sdpa_models_on_the_cpu_hold_a_shared_prefix_once(tiny_dir: Path) -> None:
    from transformers import AutoModelForCausalLM

    eager = AutoModelForCausalLM.from_pretrained(tiny_dir, attn_implementation="eager")
    sdpa = AutoModelForCausalLM.from_pretrained(tiny_dir)
    assert not shared_prefix.applies(eager, "cpu")
    assert not shared_prefix.applies(sdpa, "cuda")
    assert shared_prefix.applies(sdpa, "cpu")


# -- batches of rows that share a long prefix --------------------------------------------------------------------------


def _rows(tiny_dir: Path, cached_after_shared: list[int]) -> tuple[Any, Any, list[generate.Row], int]:
    """The tiny model, its tokenizer, rows that share a long system prompt, each with a prefix cached from a run of
    its own that reaches `cached_after_shared[i]` tokens past the shared part; and the shared part's length."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_dir)
    model = AutoModelForCausalLM.from_pretrained(tiny_dir).eval()
    prompts = [tokenizer(SYSTEM + "Question: " + q + " " + q)["input_ids"] for q in QUESTIONS[:3]]
    shared = min(common_length(prompts[0], ids) for ids in prompts[1:])
    one = generate.GenerationSettings((), 1, 0.0, 1.0)
    rows = []
    for ids, extra in zip(prompts, cached_after_shared, strict=True):
        length = shared + extra
        head = generate.run_batch(model, tokenizer, [generate.Row(ids[:length])], one, device="cpu", keep_cache=True)
        cache = head[0].cache
        assert cache is not None
        rows.append(generate.Row(ids, prefix=cache.cut(length), logprobs=True))
    return model, tokenizer, rows, shared


@pytest.mark.parametrize(
    ("cached", "together"),
    [([10, 10, 0], True), ([12, 0, 1], False)],  # similar new parts prefill together; very unequal ones each alone
)
def test_rows_sharing_a_long_prefix_hold_it_once_and_match_rows_alone(
    tiny_dir: Path, monkeypatch: pytest.MonkeyPatch, cached: list[int], together: bool
) -> None:
    model, tokenizer, rows, shared = _rows(tiny_dir, cached)
    settings = generate.GenerationSettings((), 12, 0.0, 1.0)
    alone = [generate.run_batch(model, tokenizer, [row], settings, device="cpu", keep_cache=True)[0] for row in rows]
    separate: list[int] = []
    original = generate._prefill
    monkeypatch.setattr(generate, "_prefill", lambda *a: separate.append(1) or original(*a))
    held_once = _spy(monkeypatch)
    batched = generate.run_batch(model, tokenizer, rows, settings, device="cpu", keep_cache=True)

    assert held_once == [shared] * (1 if not together else 2)  # generate, and the joint prefill when there is one
    assert bool(separate) is not together
    assert [r.token_ids for r in batched] == [r.token_ids for r in alone]
    for a, b in zip(alone, batched, strict=True):
        assert a.logprobs == pytest.approx(b.logprobs, abs=1e-4)
        # Each row keeps a whole cache of its own, shared part included, for its next step.
        assert a.cache is not None and b.cache is not None and b.cache.ids == a.cache.ids
        for (ak, av), (bk, bv) in zip(a.cache.kv, b.cache.kv, strict=True):
            torch.testing.assert_close(bk, ak, atol=1e-4, rtol=1e-4)
            torch.testing.assert_close(bv, av, atol=1e-4, rtol=1e-4)
    assert model.config._attn_implementation == "sdpa"


@pytest.mark.parametrize("more", [0, 1])
def test_a_shared_prefix_is_held_once_only_when_that_spares_enough_bytes(
    tiny_dir: Path, monkeypatch: pytest.MonkeyPatch, more: int
) -> None:
    model, tokenizer, rows, shared = _rows(tiny_dir, [10, 10, 0])
    held_once = _spy(monkeypatch)
    config = model.config
    per_token = 2 * config.num_key_value_heads * (config.hidden_size // config.num_attention_heads) * 4  # float32
    spared = (len(rows) - 1) * shared * per_token  # the other rows' copies of the prefix, per layer
    monkeypatch.setattr(generate, "_MIN_SHARED_BYTES", spared + more)
    settings = generate.GenerationSettings((), 4, 0.0, 1.0)
    assert [r.token_ids for r in generate.run_batch(model, tokenizer, rows, settings, device="cpu", keep_cache=True)]
    assert bool(held_once) is (more == 0)


def _episode(chat: LocalChatModel, question: str, steps: int) -> list[str]:
    messages: list[BaseMessage] = [SystemMessage(SYSTEM), HumanMessage(question)]
    replies = []
    for step in range(steps):
        reply = chat.invoke(messages, stop=STOP)
        replies.append(str(reply.content))
        messages += [AIMessage(reply.content), HumanMessage(f"Observation: result {step} for {question}")]
    return replies


@pytest.mark.parametrize("kv_heads", [4, 2])
def test_concurrent_episodes_with_a_long_system_prompt_match_episodes_one_by_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, kv_heads: int
) -> None:
    from agentkit.llm.tiny import build_tiny_model

    folder = build_tiny_model(tmp_path / "model", hidden_size=64, heads=4, kv_heads=kv_heads)
    cold = LocalChatModel.from_pretrained(folder, max_new_tokens=12, max_batch_size=1, prefix_cache_size=0)
    expected = [_episode(cold, q, 3) for q in QUESTIONS]
    warm = LocalChatModel.from_pretrained(folder, max_new_tokens=12)
    held_once = _spy(monkeypatch)
    gate = threading.Barrier(len(QUESTIONS))

    def run(question: str) -> list[str]:
        gate.wait()
        return _episode(warm, question, 3)

    with ThreadPoolExecutor(len(QUESTIONS)) as pool:
        assert list(pool.map(run, QUESTIONS)) == expected
    assert warm.stats.batches < warm.stats.calls
    assert held_once  # batched steps held the system prompt once
    assert 0 < warm.stats.shared_prefix_batches <= warm.stats.batches
    assert warm.stats.prefilled_tokens < warm.stats.prompt_tokens / 2


def test_identical_prompts_hold_all_but_their_last_token_once(tiny_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from agentkit.llm.engine import Request

    settings = generate.GenerationSettings((), 8, 0.0, 1.0)
    engine = LocalChatModel.from_pretrained(tiny_dir)._load()
    ids = engine.tokenizer(SYSTEM + "Question: " + QUESTIONS[0])["input_ids"]
    engine._run([alone := Request(generate.Row(ids), settings)])
    engine.prefixes.clear()
    held_once = _spy(monkeypatch)
    batch = [Request(generate.Row(list(ids)), settings) for _ in range(3)]  # sampled rollouts of one task, greedy here
    engine._run(batch)

    assert held_once == [len(ids) - 1]  # the rows have nothing of their own to prefill: only generate holds it
    assert [r.future.result().shared_tokens for r in batch] == [len(ids) - 1] * 3
    assert engine.stats.shared_prefix_batches == 1
    assert [r.future.result().token_ids for r in batch] == [alone.future.result().token_ids] * 3

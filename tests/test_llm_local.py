"""LocalChatModel on tiny real transformers models: loading, stop strings, tool calls, caching, batching, async."""

from __future__ import annotations

import asyncio
import gc
import threading
import time
import warnings
import weakref
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
import torch
from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage, HumanMessage, SystemMessage, ToolMessage
from tinymodels import (
    GREETING,
    RUNAWAY,
    STOP,
    THOUGHTFUL,
    common_length,
    concurrent_episodes,
    episode,
    weather_schema,
)

from agentkit.errors import ConfigError
from agentkit.llm import LocalChatModel

QUESTIONS = ["hi", "What is 3 plus 4?", "The quick brown fox jumps", "Tell me about Paris", "x y z", "ok"]
QUESTIONS_SHARED = ["Question: what is 3 plus 4?", "Question: tell me about Paris", "Question: x y z"]


@pytest.fixture(scope="module")
def chat(chat_dir: Path) -> LocalChatModel:
    return LocalChatModel.from_pretrained(chat_dir, max_new_tokens=64)


# -- loading -----------------------------------------------------------------------------------------------------------


def test_loads_from_a_local_directory_through_from_pretrained(tiny_dir: Path) -> None:
    from transformers import LlamaForCausalLM

    chat = LocalChatModel.from_pretrained(tiny_dir, device="cpu", max_new_tokens=4)
    assert isinstance(chat.model, LlamaForCausalLM)
    assert not chat.model.training
    assert chat.tool_format == "hermes"  # detected from the template's <tool_call>
    reply = chat.invoke("hello")
    assert reply.usage_metadata is not None
    assert reply.usage_metadata["output_tokens"] <= 4


def test_construction_is_lazy_and_loads_on_first_call(tiny_dir: Path) -> None:
    chat = LocalChatModel(model_id=str(tiny_dir), max_new_tokens=2)
    assert chat._loaded is None
    chat.invoke("hello")
    assert chat._loaded is not None


def test_the_weights_are_freed_when_the_last_chat_model_sharing_them_is_gone(tiny_dir: Path) -> None:
    # The worker thread that runs the model used to hold it for the life of the process: a notebook cell run again,
    # or each model `agentkit improve` loads, stayed in memory.
    chat = LocalChatModel.from_pretrained(tiny_dir, max_new_tokens=2)
    greedy = chat.model_copy(update={"temperature": 0.0})  # a copy shares the loaded engine
    weights = weakref.ref(chat.model)
    engine = weakref.ref(chat._load())
    worker = chat._load()._worker
    assert worker is not None
    del chat
    gc.collect()
    assert greedy.invoke("hello").usage_metadata is not None
    assert worker.is_alive() and weights() is not None
    del greedy
    gc.collect()
    worker.join(timeout=30)
    gc.collect()
    assert not worker.is_alive()
    assert engine() is None and weights() is None


def test_a_closed_engine_refuses_requests_and_its_worker_ends(tiny_dir: Path) -> None:
    own = LocalChatModel.from_pretrained(tiny_dir, max_new_tokens=2)
    engine = own._load()
    engine.close()
    with pytest.raises(RuntimeError, match="This engine is closed"):
        own.invoke("hello")
    assert engine._worker is not None
    engine._worker.join(timeout=30)
    assert not engine._worker.is_alive()


def test_the_model_is_loaded_on_the_thread_that_runs_it(tiny_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # torch's parallel CPU kernels run fastest with one OpenMP team of threads, which one calling thread keeps.
    import agentkit.llm.engine as engine_module
    import agentkit.llm.local as local_module

    threads: dict[str, threading.Thread] = {}
    load, run = local_module.load_model, engine_module.run_batch

    def loading(*args: Any, **kwargs: Any) -> Any:
        threads["load"] = threading.current_thread()
        return load(*args, **kwargs)

    def running(*args: Any, **kwargs: Any) -> Any:
        threads["run"] = threading.current_thread()
        return run(*args, **kwargs)

    monkeypatch.setattr(local_module, "load_model", loading)
    monkeypatch.setattr(engine_module, "run_batch", running)
    LocalChatModel.from_pretrained(tiny_dir, max_new_tokens=2).invoke("hello")
    assert threads["load"] is threads["run"]
    assert threads["load"] is not threading.current_thread()


def test_a_missing_directory_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not available on this machine"):
        LocalChatModel.from_pretrained(tmp_path / "nowhere")


def test_an_uncached_hub_id_fails_at_once_offline() -> None:
    started = time.perf_counter()
    with pytest.raises(ConfigError, match="not available on this machine"):
        LocalChatModel.from_pretrained("acme-labs/no-such-model-7b")
    assert time.perf_counter() - started < 10  # one lookup in the local cache, no retries against the hub


def test_a_bad_dtype_is_a_clear_error(tiny_dir: Path) -> None:
    with pytest.raises(ConfigError, match="not a torch dtype"):
        LocalChatModel.from_pretrained(tiny_dir, dtype="float33")


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks a machine without a GPU")
def test_asking_for_a_gpu_this_torch_cannot_see_is_a_clear_error(tiny_dir: Path) -> None:
    # Not torch's "Torch not compiled with CUDA enabled" from deep inside the load.
    with pytest.raises(ConfigError, match=r"device='cuda', but this torch .* sees no CUDA GPU. Pass device='auto'"):
        LocalChatModel.from_pretrained(tiny_dir, device="cuda")


def test_a_device_torch_does_not_know_is_a_clear_error(tiny_dir: Path) -> None:
    with pytest.raises(ConfigError, match="device='tpu' is not a torch device"):
        LocalChatModel.from_pretrained(tiny_dir, device="tpu")


@pytest.mark.parametrize(
    ("setting", "value"),
    [
        ("temperature", -0.5),
        ("top_p", 0.0),
        ("top_p", 1.5),
        ("max_new_tokens", 0),
        ("max_batch_size", 0),
        ("prefix_cache_size", -1),
        ("draft_tokens", -2),
    ],
)
def test_a_setting_out_of_range_is_refused_when_the_model_is_built(tiny_dir: Path, setting: str, value: float) -> None:
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match=setting):
        LocalChatModel(model_id=str(tiny_dir), **{setting: value})


def test_an_empty_stop_string_is_refused_where_it_is_given(chat: LocalChatModel, tiny_dir: Path) -> None:
    # It would end every reply at its first token.
    with pytest.raises(ValueError, match="A stop string is empty"):
        LocalChatModel(model_id=str(tiny_dir), stop=["\nObservation:", ""])
    with pytest.raises(ValueError, match="A stop string is empty"):
        chat.invoke("hi", stop=[""])
    assert chat.invoke("hi", stop=STOP).content == GREETING  # nothing was left behind


def test_a_peft_adapter_is_applied(tiny_dir: Path, tmp_path: Path) -> None:
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    base = AutoModelForCausalLM.from_pretrained(tiny_dir)
    config = LoraConfig(r=4, target_modules=["q_proj", "v_proj"], init_lora_weights=False)  # random: changes outputs
    torch.manual_seed(1)
    get_peft_model(base, config).save_pretrained(tmp_path / "adapter")

    plain = LocalChatModel.from_pretrained(tiny_dir, max_new_tokens=1)
    adapted = LocalChatModel.from_pretrained(tiny_dir, adapter=tmp_path / "adapter", max_new_tokens=1)
    ids = torch.tensor([[5, 6, 7]], device=plain.model.device)
    with torch.inference_mode():
        assert not torch.allclose(plain.model(ids).logits, adapted.model(ids).logits)
    assert type(adapted.model) is type(plain.model)  # merged into the weights: no adapter layers left to run
    assert adapted.invoke("hello").usage_metadata is not None


def test_a_missing_adapter_is_a_clear_error(tiny_dir: Path, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="Adapter directory"):
        LocalChatModel.from_pretrained(tiny_dir, adapter=tmp_path / "missing")
    # A whole model given as the adapter (what `agentkit dpo --full_finetune` writes) says to load it as the model.
    with pytest.raises(ConfigError, match=r"not a PEFT adapter.*load it as the model"):
        LocalChatModel.from_pretrained(tiny_dir, adapter=tiny_dir)
    with pytest.raises(ConfigError, match=r"not a PEFT adapter \(no adapter_config.json\)\.$"):
        LocalChatModel.from_pretrained(tiny_dir, adapter=tmp_path)


def test_a_wrong_adapter_is_reported_before_the_model_is_loaded(tmp_path: Path) -> None:
    # The model folder does not exist either: the adapter's error coming first shows no model load was attempted.
    with pytest.raises(ConfigError, match="Adapter directory"):
        LocalChatModel.from_pretrained(tmp_path / "no-model", adapter=tmp_path / "missing")


# -- stop strings, stop reasons, usage, logprobs -----------------------------------------------------------------------


def test_without_stop_the_model_runs_on(chat: LocalChatModel) -> None:
    reply = chat.invoke("hi")
    assert reply.content == (GREETING + RUNAWAY).strip()
    assert reply.response_metadata["stop_reason"] == "eos"


def test_a_multi_token_stop_string_stops_generation_and_is_trimmed(chat: LocalChatModel) -> None:
    full = chat.invoke("hi")
    stopped = chat.invoke("hi", stop=STOP)
    assert stopped.content == GREETING
    assert stopped.response_metadata["stop_reason"] == "stop"
    assert stopped.response_metadata["stop_string"] == STOP[0]
    assert len(chat.tokenizer(STOP[0], add_special_tokens=False)["input_ids"]) > 1
    assert stopped.usage_metadata is not None and full.usage_metadata is not None
    # Generation really ended at the stop string: far fewer tokens than the runaway reply.
    assert stopped.usage_metadata["output_tokens"] < full.usage_metadata["output_tokens"] - 5


def test_stop_strings_are_prepared_once_per_tokenizer_not_at_every_call(
    chat: LocalChatModel, monkeypatch: pytest.MonkeyPatch
) -> None:
    import transformers

    import agentkit.llm.generate as generate

    built: list[tuple[str, ...]] = []

    class Counted(transformers.StopStringCriteria):  # type: ignore[misc]
        def __init__(self, tokenizer: object, stop_strings: list[str]) -> None:
            built.append(tuple(stop_strings))
            super().__init__(tokenizer, stop_strings)

    monkeypatch.setattr(transformers, "StopStringCriteria", Counted)
    generate._stop_strings.cache_clear()
    replies = [chat.invoke("hi", stop=STOP) for _ in range(3)]

    # Left to `generate(stop_strings=...)`, the tables are rebuilt at every call (230 ms for a 30k vocabulary).
    assert built == [tuple(STOP)]
    assert all(r.content == GREETING and r.response_metadata["stop_reason"] == "stop" for r in replies)


def test_the_budget_ends_generation_with_reason_length(chat_dir: Path) -> None:
    short = LocalChatModel.from_pretrained(chat_dir, max_new_tokens=3)
    reply = short.invoke("hi")
    assert reply.response_metadata["stop_reason"] == "length"
    assert reply.usage_metadata is not None and reply.usage_metadata["output_tokens"] == 3


def test_a_call_may_set_its_own_budget_temperature_and_top_p(chat: LocalChatModel, tiny_dir: Path) -> None:
    short = chat.invoke("hi", max_tokens=3)
    assert short.usage_metadata is not None and short.usage_metadata["output_tokens"] == 3
    assert short.response_metadata["stop_reason"] == "length"
    assert chat.bind(max_new_tokens=3).invoke("hi").content == short.content  # as bind (and middleware) pass it
    assert chat.invoke("hi").response_metadata["stop_reason"] == "eos"  # the model's own budget is unchanged

    random = LocalChatModel.from_pretrained(tiny_dir, max_new_tokens=12, return_logprobs=True)
    greedy = random.invoke("hello").response_metadata["token_ids"]
    torch.manual_seed(0)
    sampled = [random.invoke("hello", temperature=1.5, top_p=0.9).response_metadata["token_ids"] for _ in range(3)]
    assert all(ids != greedy for ids in sampled)
    assert random.invoke("hello").response_metadata["token_ids"] == greedy


@pytest.mark.parametrize(
    ("option", "value", "message"),
    [
        ("max_tokens", 0, "max_tokens=0: Input should be greater than or equal to 1"),
        ("temperature", -1.0, "temperature=-1.0: Input should be greater than or equal to 0"),
        ("top_p", 1.5, "top_p=1.5: Input should be less than or equal to 1"),
    ],
)
def test_a_call_setting_out_of_range_is_refused(chat: LocalChatModel, option: str, value: float, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        chat.invoke("hi", **{option: value})


def test_a_call_option_the_model_does_not_take_is_ignored_with_a_warning(chat: LocalChatModel) -> None:
    with pytest.warns(UserWarning, match=r"ignores the call option\(s\) max_length; a call may set max_tokens"):
        reply = chat.invoke("hi", max_length=5, stop=STOP)
    assert reply.content == GREETING


def test_usage_counts_prompt_and_generated_tokens(chat: LocalChatModel) -> None:
    reply = chat.invoke("hi", stop=STOP)
    prompt = chat.tokenizer.apply_chat_template([{"role": "user", "content": "hi"}], add_generation_prompt=True)[
        "input_ids"
    ]
    usage = reply.usage_metadata
    assert usage is not None
    assert usage["input_tokens"] == len(prompt)
    assert usage["total_tokens"] == usage["input_tokens"] + usage["output_tokens"]


def test_token_ids_and_logprobs_are_in_the_metadata_when_asked_for(chat_dir: Path) -> None:
    chat = LocalChatModel.from_pretrained(chat_dir, return_logprobs=True, max_new_tokens=64)
    reply = chat.invoke("hi", stop=STOP)
    ids, logprobs = reply.response_metadata["token_ids"], reply.response_metadata["logprobs"]
    assert reply.usage_metadata is not None
    assert len(ids) == len(logprobs) == reply.usage_metadata["output_tokens"]
    assert chat.tokenizer.decode(ids).startswith(GREETING)
    assert all(-0.5 < p <= 0 for p in logprobs)  # the trained reply is the model's confident choice
    assert "token_ids" not in LocalChatModel.from_pretrained(chat_dir).invoke("hi").response_metadata


# -- tool calls, think blocks, templates -------------------------------------------------------------------------------


def test_bound_tools_reach_the_template_and_several_calls_come_back(chat: LocalChatModel) -> None:
    reply = chat.bind_tools([weather_schema()]).invoke("weather in Paris and Tokyo?")
    assert [(c["name"], c["args"]) for c in reply.tool_calls] == [
        ("get_weather", {"city": "Paris"}),
        ("get_weather", {"city": "Tokyo"}),
    ]
    assert len({c["id"] for c in reply.tool_calls}) == 2
    assert reply.content == ""
    assert reply.invalid_tool_calls == []


def test_without_bound_tools_the_same_prompt_differs(chat: LocalChatModel) -> None:
    # The tools section is part of the prompt the model was trained on: without it the calls do not come.
    reply = chat.invoke("weather in Paris and Tokyo?")
    assert reply.tool_calls == []


def test_think_blocks_are_kept_out_of_the_answer(chat: LocalChatModel) -> None:
    reply = chat.invoke("capital of France?")
    assert reply.content == "The capital of France is Paris."
    assert reply.response_metadata["reasoning"] == "The user asked about the capital."
    assert THOUGHTFUL.endswith(str(reply.content))


def test_the_prompt_is_never_echoed(chat: LocalChatModel) -> None:
    reply = chat.invoke([SystemMessage("You are terse."), HumanMessage("hi")], stop=STOP)
    assert "You are terse" not in str(reply.content)
    assert "<|im_start|>" not in str(reply.content)


def test_tool_messages_render_in_the_templates_tool_role(chat: LocalChatModel) -> None:
    from agentkit.llm.prompt import render_prompt

    conversation: list[BaseMessage] = [
        HumanMessage("weather?"),
        AIMessage("", tool_calls=[{"name": "get_weather", "args": {"city": "Paris"}, "id": "c1"}]),
        ToolMessage("sunny", tool_call_id="c1", name="get_weather"),
    ]
    prompt = render_prompt(chat.tokenizer, conversation, [weather_schema()])
    assert '"name": "get_weather"' in prompt and "# Tools" in prompt
    assert '<tool_call>\n{"name": "get_weather", "arguments": {"city": "Paris"}}\n</tool_call>' in prompt
    assert "<|im_start|>user\n<tool_response>\nsunny\n</tool_response><|im_end|>" in prompt
    assert prompt.endswith("<|im_start|>assistant\n")


def test_text_blocks_are_read_and_media_a_text_model_cannot_see_is_refused(chat: LocalChatModel) -> None:
    text_blocks = HumanMessage(content=[{"type": "text", "text": "h"}, {"type": "text", "text": "i"}])
    assert chat.invoke([text_blocks], stop=STOP).content == GREETING
    # Another provider's reasoning block in an assistant turn is that turn's own output: its text stands.
    from agentkit.llm.prompt import render_prompt

    earlier = AIMessage(
        content=[{"type": "reasoning", "reasoning": "a private musing"}, {"type": "text", "text": "Hi!"}]
    )
    prompt = render_prompt(chat.tokenizer, [HumanMessage("hi"), earlier, HumanMessage("hi")], None)
    assert "<|im_start|>assistant\nHi!<|im_end|>" in prompt and "musing" not in prompt
    pictures = [
        HumanMessage(content=[{"type": "text", "text": "what is this?"}, {"type": "image", "url": "https://x/a.png"}]),
        # OpenAI's format, which LangChain reads as the same standard block.
        ToolMessage(
            content=[{"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}}], tool_call_id="1"
        ),
    ]
    for message in pictures:
        with pytest.raises(ValueError, match=f"reads text only, and a {type(message).__name__} holds image content"):
            chat.invoke([HumanMessage("hi"), message])


# -- prefix cache reuse ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("question", ["hi", "What is 3 plus 4?", "The quick brown fox"])
def test_greedy_output_is_token_for_token_identical_with_and_without_prefix_reuse(
    tiny_dir: Path, question: str
) -> None:
    # The untrained model writes long, arbitrary text: a strict check that reused keys and values change nothing.
    # float32 also on a GPU (where "auto" is bfloat16): there, a cached prefix runs other kernels than a full prefill,
    # and bfloat16 rounding can flip a near-tied greedy token of a random model, which says nothing about the cache.
    exact = {"dtype": "float32", "max_new_tokens": 24, "return_logprobs": True}
    cold = LocalChatModel.from_pretrained(tiny_dir, prefix_cache_size=0, **exact)
    warm = LocalChatModel.from_pretrained(tiny_dir, **exact)
    without, with_ = episode(cold, question, 4), episode(warm, question, 4)
    assert [r.response_metadata["token_ids"] for r in without] == [r.response_metadata["token_ids"] for r in with_]
    for a, b in zip(without, with_, strict=True):
        assert a.response_metadata["logprobs"] == pytest.approx(b.response_metadata["logprobs"], abs=1e-4)
    # Without reuse every prompt token is prefilled; with it, steps after the first prefill only their new tokens.
    assert all(r.response_metadata["prefilled_tokens"] == r.response_metadata["prompt_tokens"] for r in without)
    for reply in with_[1:]:
        assert reply.response_metadata["prefilled_tokens"] < reply.response_metadata["prompt_tokens"] / 2


def _rows_with_prefixes(tiny_dir: Path, prompts: list[str], cached: list[int]) -> tuple[Any, Any, list[Any]]:
    """The tiny model, its tokenizer, and one row per prompt whose first `cached[i]` tokens come from a prefix."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from agentkit.llm.generate import GenerationSettings, Row, run_batch

    tokenizer = AutoTokenizer.from_pretrained(tiny_dir)
    model = AutoModelForCausalLM.from_pretrained(tiny_dir).eval()
    rows = []
    one = GenerationSettings((), 1, 0.0, 1.0)
    for prompt, length in zip(prompts, cached, strict=True):
        ids = tokenizer(prompt)["input_ids"]
        head = run_batch(model, tokenizer, [Row(ids[:length])], one, device="cpu", keep_cache=True)[0].cache
        assert head is not None
        rows.append(Row(ids, prefix=head.cut(length), logprobs=True))
    return model, tokenizer, rows


@pytest.mark.parametrize(
    ("cached", "together"),
    [([30, 24, 27], True), ([50, 2, 48], False)],  # similar new parts share one prefill; very unequal ones do not
)
def test_rows_with_prefixes_of_different_lengths_prefill_together_and_match_rows_alone(
    tiny_dir: Path, monkeypatch: pytest.MonkeyPatch, cached: list[int], together: bool
) -> None:
    import agentkit.llm.generate as generate

    prompts = [f"Question {i}: " + "the quick brown fox jumps over the lazy dog " * 2 for i in range(3)]
    model, tokenizer, rows = _rows_with_prefixes(tiny_dir, prompts, cached)
    settings = generate.GenerationSettings((), 12, 0.0, 1.0)
    alone = [generate.run_batch(model, tokenizer, [row], settings, device="cpu", keep_cache=True)[0] for row in rows]
    separate: list[int] = []
    original = generate._prefill
    monkeypatch.setattr(generate, "_prefill", lambda *a: separate.append(1) or original(*a))
    batched = generate.run_batch(model, tokenizer, rows, settings, device="cpu", keep_cache=True)
    assert bool(separate) is not together
    assert [r.token_ids for r in batched] == [r.token_ids for r in alone]
    for a, b in zip(alone, batched, strict=True):
        assert a.logprobs == pytest.approx(b.logprobs, abs=1e-4)
        assert b.cache is not None and a.cache is not None and b.cache.ids == a.cache.ids
    # Alone, each row prefills what its prefix does not hold; together, the rows line up on the longest new part.
    assert [r.prefilled_tokens for r in alone] == [len(r.ids) - c for r, c in zip(rows, cached, strict=True)]
    expected = max(len(r.ids) - 1 - c for r, c in zip(rows, cached, strict=True)) + 1
    lined_up = [expected] * 3 if together else [r.prefilled_tokens for r in alone]
    assert [r.prefilled_tokens for r in batched] == lined_up


@pytest.mark.parametrize("questions", [QUESTIONS_SHARED, ["What is 3 plus 4?"] * 3], ids=["distinct", "identical"])
def test_a_prompt_prefix_the_rows_of_a_batch_share_is_prefilled_once(tiny_dir: Path, questions: list[str]) -> None:
    from agentkit.llm.engine import Request
    from agentkit.llm.generate import GenerationSettings, Row

    system = "You are a careful assistant. Use the tools, check every result, and answer briefly. " * 3
    settings = GenerationSettings((), 8, 0.0, 1.0)
    cold = LocalChatModel.from_pretrained(tiny_dir, prefix_cache_size=0)._load()
    warm = LocalChatModel.from_pretrained(tiny_dir)._load()
    prompts = [warm.tokenizer(system + question)["input_ids"] for question in questions]
    alone = []
    for ids in prompts:
        cold._run([request := Request(Row(ids), settings)])
        alone.append(request.future.result())
    batch = [Request(Row(ids), settings) for ids in prompts]
    warm._run(batch)  # the first step of a batch of episodes: nothing cached yet
    together = [request.future.result() for request in batch]

    assert [r.token_ids for r in together] == [r.token_ids for r in alone]
    pairs = [min(common_length(a, b), len(a) - 1, len(b) - 1) for i, a in enumerate(prompts) for b in prompts[i + 1 :]]
    assert min(pairs) > 40
    assert warm.stats.batches == 1
    # What rows share went through the model once (shorter shared parts are the start of longer ones); each row
    # prefilled only its own part, lined up on the longest.
    assert warm.stats.prefilled_tokens == max(pairs) + sum(r.prefilled_tokens for r in together)
    assert all(r.prefilled_tokens <= max(len(ids) for ids in prompts) - min(pairs) for r in together)


def test_a_re_rendered_history_falls_back_to_a_full_prefill_and_stays_correct(tiny_dir: Path) -> None:
    warm = LocalChatModel.from_pretrained(tiny_dir, max_new_tokens=8)
    cold = LocalChatModel.from_pretrained(tiny_dir, max_new_tokens=8, prefix_cache_size=0)
    warm.invoke([SystemMessage("Rules v1."), HumanMessage("hello there")])
    # The system prompt changed at its first word: nothing of the cached prompt can be reused past that point.
    changed = [SystemMessage("Policies v2."), HumanMessage("hello there")]
    reply = warm.invoke(changed)
    assert reply.response_metadata["prefilled_tokens"] > reply.response_metadata["prompt_tokens"] - 8
    assert reply.content == cold.invoke(changed).content


# -- batching, concurrency, async, streaming ---------------------------------------------------------------------------


def test_concurrent_calls_are_batched_and_match_calls_one_by_one(tiny_dir: Path) -> None:
    alone = LocalChatModel.from_pretrained(tiny_dir, max_new_tokens=16, max_batch_size=1, prefix_cache_size=0)
    expected = [alone.invoke(q).content for q in QUESTIONS]
    shared = LocalChatModel.from_pretrained(tiny_dir, max_new_tokens=16)
    gate = threading.Barrier(len(QUESTIONS))

    def ask(question: str) -> str:
        gate.wait()
        return str(shared.invoke(question).content)

    with ThreadPoolExecutor(len(QUESTIONS)) as pool:
        answers = list(pool.map(ask, QUESTIONS))
    assert answers == expected
    assert shared.stats.calls == len(QUESTIONS)
    assert shared.stats.batches < len(QUESTIONS)  # some calls shared a generate


def test_the_worker_waits_for_callers_still_rendering_their_prompts(tiny_dir: Path) -> None:
    chat = LocalChatModel.from_pretrained(tiny_dir, max_new_tokens=8)
    expected = [chat.invoke(q).content for q in QUESTIONS[:2]]
    engine = chat._load()
    engine.batch_wait_s = 30.0
    chat.stats.reset()
    with ThreadPoolExecutor(2) as pool:
        with engine.arriving():  # a third caller is still rendering its prompt
            first = pool.submit(chat.invoke, QUESTIONS[0])
            time.sleep(0.5)
            second = pool.submit(chat.invoke, QUESTIONS[1])
            time.sleep(0.5)
            assert not first.done()  # queued, but the worker waits for the caller that is still arriving
        assert [first.result().content, second.result().content] == expected
    assert chat.stats.batches == 1


def test_a_lone_caller_is_never_kept_waiting_for_a_batch(tiny_dir: Path) -> None:
    chat = LocalChatModel.from_pretrained(tiny_dir, max_new_tokens=4)
    chat.invoke("hi")
    chat._load().batch_wait_s = 30.0
    started = time.perf_counter()
    chat.invoke("hi")
    assert time.perf_counter() - started < 10


def _engine_without_model(last_batch: int) -> Any:
    from agentkit.llm.engine import Engine

    engine = Engine(None, None, "cpu", batch_wait_s=5.0)
    engine._last_batch = last_batch
    return engine


def _put(engine: Any, ids: list[int]) -> None:
    from agentkit.llm.engine import Request
    from agentkit.llm.generate import GenerationSettings, Row

    with engine._ready:
        engine._pending.append(Request(Row(ids), GenerationSettings((), 4, 0.0, 1.0)))
        engine._ready.notify()


def test_a_caller_still_rendering_when_the_others_are_back_joins_their_batch() -> None:
    # The last batch had two rows; one of them is back, the other and a third episode (one step behind: it missed
    # that batch) are on their way. The third is still rendering its prompt when the second is back.
    engine = _engine_without_model(last_batch=2)

    def episodes() -> None:
        time.sleep(0.05)
        with engine.arriving():  # the third renders ...
            time.sleep(0.05)
            _put(engine, [2])  # ... while the second comes back: as many as last time
            time.sleep(0.2)
        _put(engine, [3])

    _put(engine, [1])
    others = threading.Thread(target=episodes)
    others.start()
    batch = engine._next_batch()
    others.join()

    assert [request.row.ids for request in batch] == [[1], [2], [3]]


def test_callers_of_a_pool_starting_up_a_moment_apart_share_the_first_batch(monkeypatch: pytest.MonkeyPatch) -> None:
    import agentkit.llm.engine as engine_module

    monkeypatch.setattr(engine_module, "_SETTLE_S", 0.5)  # the gaps below are far shorter; CI machines are slow
    engine = _engine_without_model(last_batch=1)  # the model ran one call at a time until now

    def callers() -> None:
        for ids in ([2], [3], [4]):
            with engine.arriving():  # each renders its prompt after the one before has queued its own
                time.sleep(0.01)
                _put(engine, ids)
            time.sleep(0.05)

    others = threading.Thread(target=callers)
    with engine.arriving():
        others.start()
        time.sleep(0.01)
        _put(engine, [1])
    batch = engine._next_batch()
    others.join()
    assert sorted(request.row.ids for request in batch) == [[1], [2], [3], [4]]


def test_a_batch_as_large_as_the_last_one_is_not_held_back(monkeypatch: pytest.MonkeyPatch) -> None:
    import agentkit.llm.engine as engine_module

    monkeypatch.setattr(engine_module, "_SETTLE_S", 30.0)
    engine = _engine_without_model(last_batch=2)
    _put(engine, [1])
    _put(engine, [2])
    started = time.perf_counter()
    batch = engine._next_batch()
    assert time.perf_counter() - started < 4  # neither batch_wait_s (5 s) nor the settle time (30 s) was waited
    assert [request.row.ids for request in batch] == [[1], [2]]


def test_grouped_query_attention_batches_and_reuses_prefixes_like_full_attention(tmp_path: Path) -> None:
    from agentkit.llm.tiny import build_tiny_model

    folder = build_tiny_model(tmp_path / "gqa", hidden_size=64, heads=4, kv_heads=2)
    cold = LocalChatModel.from_pretrained(folder, max_new_tokens=12, max_batch_size=1, prefix_cache_size=0)
    assert cold.model.config.num_key_value_heads == 2
    expected = [[r.content for r in episode(cold, q, 3)] for q in QUESTIONS[:4]]
    warm = LocalChatModel.from_pretrained(folder, max_new_tokens=12)
    assert [[r.content for r in e] for e in concurrent_episodes(warm, QUESTIONS[:4], 3)] == expected
    assert warm.stats.batches < warm.stats.calls  # steps of different episodes shared a generate
    assert warm.stats.prefilled_tokens < warm.stats.prompt_tokens / 2  # and later steps reused their prefixes


def test_tiny_models_refuse_key_value_heads_that_do_not_divide_the_heads(tmp_path: Path) -> None:
    from agentkit.llm.tiny import build_tiny_model

    with pytest.raises(ValueError, match="kv_heads"):
        build_tiny_model(tmp_path / "bad", heads=4, kv_heads=3)
    with pytest.raises(ValueError, match="kv_heads"):
        build_tiny_model(tmp_path / "bad", heads=4, kv_heads=2, arch="gpt2")


def test_calls_with_different_stop_strings_are_not_mixed(chat: LocalChatModel) -> None:
    with ThreadPoolExecutor(2) as pool:
        stopped = pool.submit(chat.invoke, "hi", stop=STOP)
        free = pool.submit(chat.invoke, "hi")
        assert stopped.result().content == GREETING
        assert free.result().content == (GREETING + RUNAWAY).strip()


async def test_ainvoke_runs_concurrently_through_one_queue_and_matches_invoke(tiny_dir: Path) -> None:
    chat = LocalChatModel.from_pretrained(tiny_dir, max_new_tokens=12)
    expected = [chat.invoke(q).content for q in QUESTIONS]
    chat.stats.reset()
    replies = await asyncio.gather(*(chat.ainvoke(q) for q in QUESTIONS))
    assert [r.content for r in replies] == expected
    assert chat.stats.batches < len(QUESTIONS)


async def test_a_cancelled_ainvoke_stops_generating_and_the_model_stays_usable(tiny_dir: Path) -> None:
    chat = LocalChatModel.from_pretrained(tiny_dir, max_new_tokens=100_000)
    task = asyncio.create_task(chat.ainvoke("hello"))
    await asyncio.sleep(0.3)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    started = time.perf_counter()
    reply = await _short(chat)
    assert time.perf_counter() - started < 5  # the cancelled generation did not run on to 100k tokens
    assert reply.content is not None


async def _short(chat: LocalChatModel) -> AIMessage:
    short = chat.model_copy(update={"max_new_tokens": 3})
    short._loaded = chat._loaded  # same weights and queue, shorter budget
    return await short.ainvoke("hello")


def test_streamed_chunks_add_up_to_the_invoked_message_without_the_stop_string(chat: LocalChatModel) -> None:
    chunks = list(chat.stream("hi", stop=STOP))
    assert len(chunks) > 3  # token by token, not one blob
    whole: AIMessageChunk = chunks[0]
    for chunk in chunks[1:]:
        whole += chunk
    assert whole.content == GREETING
    assert all("Observation" not in str(c.content) for c in chunks)
    assert whole.response_metadata["stop_reason"] == "stop"


def test_streaming_keeps_tool_markup_and_think_blocks_out_of_the_text(chat: LocalChatModel) -> None:
    chunks = list(chat.bind_tools([weather_schema()]).stream("weather in Paris and Tokyo?"))
    whole = chunks[0]
    for chunk in chunks[1:]:
        whole += chunk
    assert "<tool_call>" not in str(whole.content)
    assert [c["args"] for c in whole.tool_calls] == [{"city": "Paris"}, {"city": "Tokyo"}]
    thought = list(chat.stream("capital of France?"))
    assert "".join(str(c.content) for c in thought) == "The capital of France is Paris."


async def test_astream_matches_stream(chat: LocalChatModel) -> None:
    text = "".join([str(c.content) async for c in chat.astream("hi", stop=STOP)])
    assert text == GREETING


def test_no_warnings_from_transformers_on_a_greedy_call(chat: LocalChatModel) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        chat.invoke("hi", stop=STOP)


async def test_leaving_a_stream_early_cancels_it_and_spares_the_calls_batched_with_it(chat_dir: Path) -> None:
    chat = LocalChatModel.from_pretrained(chat_dir, max_new_tokens=64)
    other = asyncio.create_task(chat.ainvoke("hi"))
    async for chunk in chat.astream("hi"):
        assert GREETING.startswith(str(chunk.content))
        break  # the consumer leaves after the first chunk, mid-generation
    for _ in chat.stream("hi"):
        break
    assert (await other).content == (GREETING + RUNAWAY).strip()
    assert (await chat.ainvoke("hi", stop=STOP)).content == GREETING

"""Constrained tool calls on a real tiny transformers model: sampled calls always parse and match the schema."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import pytest
import torch
from pydantic import BaseModel
from tinymodels import weather_schema
from transformers import AutoTokenizer

from agentkit.llm import LocalChatModel
from agentkit.llm.constrained import ToolCallConstraint, ToolCallGuard
from agentkit.llm.toolcalls import HERMES_OPEN

QUESTION = "weather in Paris and Tokyo?"


def _sampled_replies(chat_dir: Path, *, constrained: bool, n: int = 12) -> list:
    torch.manual_seed(0)
    model = LocalChatModel.from_pretrained(
        chat_dir, temperature=2.0, max_new_tokens=96, constrain_tool_calls=constrained
    ).bind_tools([weather_schema()])
    return [model.invoke(QUESTION) for _ in range(n)]


def test_sampling_at_a_high_temperature_breaks_calls_without_the_constraint(chat_dir: Path) -> None:
    # The baseline the constraint must fix: the trained model opens calls, then sampling garbles them.
    replies = _sampled_replies(chat_dir, constrained=False)
    assert sum(len(r.invalid_tool_calls) for r in replies) > 0


def test_with_the_constraint_every_finished_call_is_valid(chat_dir: Path) -> None:
    replies = _sampled_replies(chat_dir, constrained=True)
    finished = [r for r in replies if r.response_metadata["stop_reason"] == "eos"]
    assert finished, "no reply ended on its own"
    calls = [c for r in finished for c in r.tool_calls]
    assert calls, "the model stopped opening tool calls"
    for reply in finished:
        assert reply.invalid_tool_calls == []
        assert "<tool_call>" not in str(reply.content)
    for call in calls:
        assert call["name"] == "get_weather"
        assert set(call["args"]) <= {"city"}
        assert all(isinstance(v, str) for v in call["args"].values())


def test_greedy_calls_that_are_already_valid_are_unchanged(chat_dir: Path) -> None:
    plain = LocalChatModel.from_pretrained(chat_dir).bind_tools([weather_schema()]).invoke(QUESTION)
    guarded_model = LocalChatModel.from_pretrained(chat_dir, constrain_tool_calls=True)
    guarded = guarded_model.bind_tools([weather_schema()]).invoke(QUESTION)
    assert len(plain.tool_calls) == 2
    assert [(c["name"], c["args"]) for c in guarded.tool_calls] == [(c["name"], c["args"]) for c in plain.tool_calls]


def test_batched_rows_are_constrained_each_on_its_own(chat_dir: Path) -> None:
    torch.manual_seed(1)
    model = LocalChatModel.from_pretrained(
        chat_dir, temperature=2.0, max_new_tokens=96, constrain_tool_calls=True
    ).bind_tools([weather_schema()])
    replies = model.batch([QUESTION] * 6)
    for reply in replies:
        if reply.response_metadata["stop_reason"] == "eos":
            assert reply.invalid_tool_calls == []


class CountingTokenizer:
    """The real tokenizer, noting how many tokens each `decode` call is given."""

    def __init__(self, tokenizer: Any) -> None:
        self.tokenizer = tokenizer
        self.decoded: list[int] = []

    def decode(self, ids: list[int], **kwargs: Any) -> str:
        self.decoded.append(len(ids))
        return self.tokenizer.decode(ids, **kwargs)  # type: ignore[no-any-return]

    def __getattr__(self, name: str) -> Any:
        return getattr(self.tokenizer, name)


def test_the_guard_reads_a_bounded_tail_however_long_the_reply_grows(chat_dir: Path) -> None:
    # Outside a call the guard looks for an opening tag on every step; reading the whole reply each time made a
    # long answer quadratic. It must read a fixed tail, and still see the tag when it comes.
    tokenizer = AutoTokenizer.from_pretrained(chat_dir)
    ends = {int(tokenizer.eos_token_id)}
    counting = CountingTokenizer(tokenizer)
    guard = ToolCallGuard(counting, [ToolCallConstraint(tokenizer, [weather_schema()], ends)], ends)
    reply = tokenizer("Let me think about the weather for a while. " * 40 + HERMES_OPEN, add_special_tokens=False)
    ids = torch.tensor([[0] * 5 + reply["input_ids"]])
    scores = torch.zeros(1, len(tokenizer))
    for length in range(5, ids.shape[1]):  # every step before the tag is complete: nothing is masked
        assert torch.equal(guard(ids[:, :length], scores.clone()), scores)
    masked = guard(ids, scores.clone())[0]
    assert torch.isinf(masked).any() and not torch.isinf(masked).all()  # the tag opened a call: constrained now
    assert ids.shape[1] > 300 and max(counting.decoded) <= 4 * len(HERMES_OPEN)


def test_other_tool_call_formats_are_refused_with_a_clear_error(chat_dir: Path) -> None:
    model = LocalChatModel.from_pretrained(chat_dir, tool_format="llama3", constrain_tool_calls=True)
    with pytest.raises(ValueError, match="Hermes"):
        model.bind_tools([weather_schema()]).invoke(QUESTION)


def test_without_bound_tools_nothing_is_constrained(chat_dir: Path) -> None:
    model = LocalChatModel.from_pretrained(chat_dir, constrain_tool_calls=True)
    assert model.invoke("hi").content  # no tools: no constraint, no error


def test_a_constraint_needs_tools(chat_dir: Path) -> None:
    from transformers import AutoTokenizer

    with pytest.raises(ValueError, match="at least one"):
        ToolCallConstraint(AutoTokenizer.from_pretrained(chat_dir), [], set())


def time_schema() -> dict[str, Any]:
    return {
        "type": "function",
        "function": {
            "name": "get_time",
            "description": "The time now in a time zone.",
            "parameters": {
                "type": "object",
                "properties": {"zone": {"type": "string", "enum": ["UTC", "Europe/Paris"]}},
                "required": ["zone"],
            },
        },
    }


def city_schema() -> dict[str, Any]:
    # A closed set of values: forced to call, the tiny model (trained on other prompts) would otherwise write one
    # free-text string until its token budget runs out.
    schema = weather_schema()
    schema["function"]["parameters"]["properties"]["city"]["enum"] = ["Paris", "Tokyo"]
    return schema


def test_tool_choice_any_forces_a_valid_call_where_the_model_would_answer(chat_dir: Path) -> None:
    model = LocalChatModel.from_pretrained(chat_dir)
    assert model.bind_tools([city_schema()]).invoke("hi").tool_calls == []  # left alone, it greets
    for choice in ("any", "required", True):
        reply = model.bind_tools([city_schema()], tool_choice=choice).invoke("hi")
        assert reply.invalid_tool_calls == [] and reply.tool_calls, choice
        assert reply.tool_calls[0]["name"] == "get_weather" and reply.tool_calls[0]["args"]["city"] in (
            "Paris",
            "Tokyo",
        )
        assert str(reply.content).strip() == ""  # once the call is complete, a forced reply may only end (or call)


def test_tool_choice_by_name_calls_that_tool(chat_dir: Path) -> None:
    model = LocalChatModel.from_pretrained(chat_dir)
    tools = [weather_schema(), time_schema()]
    named = {"type": "function", "function": {"name": "get_time"}}
    for choice in ("get_time", named):
        reply = model.bind_tools(tools, tool_choice=choice).invoke(QUESTION)  # it would call get_weather
        assert reply.invalid_tool_calls == []
        assert reply.tool_calls[0]["name"] == "get_time"
        assert reply.tool_calls[0]["args"]["zone"] in ("UTC", "Europe/Paris")
    with pytest.raises(ValueError, match="not a bound tool"):
        model.bind_tools(tools, tool_choice="get_stock_price")


def test_a_model_that_calls_anyway_writes_the_same_calls_when_forced(chat_dir: Path) -> None:
    model = LocalChatModel.from_pretrained(chat_dir)
    free = model.bind_tools([weather_schema()]).invoke(QUESTION)
    forced = model.bind_tools([weather_schema()], tool_choice="any").invoke(QUESTION)
    assert [(c["name"], c["args"]) for c in forced.tool_calls] == [(c["name"], c["args"]) for c in free.tool_calls]


def test_structured_output_works_through_a_forced_call(chat_dir: Path) -> None:
    class City(BaseModel):
        city: Literal["Paris", "Tokyo"]

    answer = LocalChatModel.from_pretrained(chat_dir).with_structured_output(City).invoke("hi")
    assert isinstance(answer, City) and answer.city in ("Paris", "Tokyo")


def test_a_forced_call_streams_no_markup_and_adds_up_to_the_call(chat_dir: Path) -> None:
    model = LocalChatModel.from_pretrained(chat_dir).bind_tools([city_schema()], tool_choice="any")
    chunks = list(model.stream("hi"))
    assert "".join(str(c.content) for c in chunks) == ""
    whole = chunks[0]
    for chunk in chunks[1:]:
        whole += chunk
    assert [c["name"] for c in whole.tool_calls] == [c["name"] for c in model.invoke("hi").tool_calls]


# -- strings beyond ASCII ----------------------------------------------------------------------------------------------

UNICODE_QUESTION = "weather in Zürich and 東京?"
UNICODE_CALLS = (
    '<tool_call>\n{"name": "get_weather", "arguments": {"city": "Zürich"}}\n</tool_call>\n'
    '<tool_call>\n{"name": "get_weather", "arguments": {"city": "東京"}}\n</tool_call>'
)


@pytest.fixture(scope="module")
def unicode_dir(tiny_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny model trained to call `get_weather` for two cities whose names are not ASCII."""
    import shutil

    from langchain_core.messages import HumanMessage

    from agentkit.llm.prompt import render_prompt
    from agentkit.llm.tiny import train_to_say

    folder = tmp_path_factory.mktemp("unicode") / "model"
    shutil.copytree(tiny_dir, folder)
    prompt = render_prompt(AutoTokenizer.from_pretrained(folder), [HumanMessage(UNICODE_QUESTION)], [weather_schema()])
    train_to_say(folder, [(prompt, UNICODE_CALLS)], steps=400)
    return folder


def test_constrained_calls_write_characters_beyond_ascii(unicode_dir: Path) -> None:
    # lm-format-enforcer's JSON strings take only its ASCII alphabet; its partial-character byte tokens and "ü" were
    # refused, and the model wrote something else in the string.
    tokenizer = AutoTokenizer.from_pretrained(unicode_dir)
    assert "\ufffd" in tokenizer.decode(tokenizer("東", add_special_tokens=False)["input_ids"][:1])  # split in bytes
    free = LocalChatModel.from_pretrained(unicode_dir).bind_tools([weather_schema()]).invoke(UNICODE_QUESTION)
    assert [c["args"] for c in free.tool_calls] == [{"city": "Zürich"}, {"city": "東京"}]
    guarded = LocalChatModel.from_pretrained(unicode_dir, constrain_tool_calls=True)
    constrained = guarded.bind_tools([weather_schema()]).invoke(UNICODE_QUESTION)
    assert [c["args"] for c in constrained.tool_calls] == [{"city": "Zürich"}, {"city": "東京"}]
    forced = guarded.bind_tools([weather_schema()], tool_choice="get_weather").invoke(UNICODE_QUESTION)
    assert forced.invalid_tool_calls == []
    assert forced.tool_calls[0]["args"] == {"city": "Zürich"}
    # And the constraint holds all the way through such a call (and "~" or "|", outside its ASCII alphabet too),
    # rather than giving up where a character completes.
    enforcer = ToolCallConstraint(tokenizer, [weather_schema()], {tokenizer.eos_token_id}, opened=True).enforcer("")
    call = tokenizer('\n{"name": "get_weather", "arguments": {"city": "東京 Zürich ~|"}}', add_special_tokens=False)
    for length, token in enumerate(call["input_ids"]):
        assert token in enforcer.get_allowed_tokens(call["input_ids"][:length]).allowed_tokens

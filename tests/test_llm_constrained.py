"""Constrained tool calls on a real tiny transformers model: sampled calls always parse and match the schema."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from tinymodels import weather_schema

from agentkit.llm import LocalChatModel
from agentkit.llm.constrained import ToolCallConstraint

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

"""The tokenizer's own response parser (transformers' `response_template`), directly and through LocalChatModel."""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path
from typing import Any

import pytest
from langchain_core.messages import HumanMessage

from agentkit.llm import LocalChatModel
from agentkit.llm.response_parser import parse_with_tokenizer
from agentkit.llm.toolcalls import MAX_CALLS, parse_reply

# The Hermes (Qwen 2.5 / 3) format of the tiny models' chat template, as a transformers `response_template`.
HERMES_RESPONSE: dict[str, Any] = {
    "defaults": {"role": "assistant"},
    "start_anchor": "<|im_start|>assistant\n",
    "fields": {
        "reasoning_content": {"open": "<think>", "close": "</think>", "content": "text"},
        "tool_calls": {
            # The whitespace around a call is the call's: an implicit content region holding only a newline would
            # otherwise open (and close, empty) between two calls.
            "open_pattern": r"\s*<tool_call>",
            "close_pattern": r"</tool_call>\s*",
            "repeats": True,
            "content": "json",
            # A call whose JSON is broken is kept as its raw text (a string), for an invalid tool call to report.
            "content_args": {"allow_non_json": True},
            "transform": {"type": "function", "function": "{content}"},
        },
        "content": {
            "close_pattern": r"\s*(?:<\|im_end\|>|<\|endoftext\|>)",
            "content": "text",
            # Text before and after the calls is all content (without `join` the last piece would replace the rest).
            "repeats": True,
            "join": "\n",
        },
    },
}


def _variant(**fields: dict[str, Any]) -> dict[str, Any]:
    """HERMES_RESPONSE with some fields replaced (a None value removes the field)."""
    out = json.loads(json.dumps(HERMES_RESPONSE))
    for name, spec in fields.items():
        if spec is None:
            del out["fields"][name]
        else:
            out["fields"][name] = spec
    return out


# Broken call JSON raises in the tokenizer's parser (the json region has no `allow_non_json`).
STRICT_RESPONSE = _variant(
    tool_calls={
        "open_pattern": r"\s*<tool_call>",
        "close_pattern": r"</tool_call>\s*",
        "repeats": True,
        "content": "json",
        "transform": {"type": "function", "function": "{content}"},
    }
)
# Reasoning under the key `thinking`, as some templates name it.
THINKING_RESPONSE = _variant(
    reasoning_content=None, thinking={"open": "<think>", "close": "</think>", "content": "text"}
)
# A field every reply must have, which no reply has: the tokenizer's parser always raises.
DEMANDING_RESPONSE = _variant(answer={"open": "<answer>", "close": "</answer>", "optional": False})


def alarm_schema() -> dict[str, Any]:
    return {
        "type": "function",
        "function": {
            "name": "set_alarm",
            "description": "Set an alarm.",
            "parameters": {
                "type": "object",
                "properties": {"hour": {"type": "integer"}, "label": {"type": "string"}},
                "required": ["hour"],
            },
        },
    }


TOOLS = [alarm_schema()]
# The model writes the hour as a string: only the tokenizer's parser casts it, by the tool's schema.
ALARM_CALL = '<tool_call>\n{"name": "set_alarm", "arguments": {"hour": "7", "label": "7"}}\n</tool_call>'
WAKE = "wake me at 7"


def call(name: str, **args: Any) -> str:
    return "<tool_call>\n" + json.dumps({"name": name, "arguments": args}) + "\n</tool_call>"


@pytest.fixture(scope="module")
def parser_dir(tiny_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny model, its tokenizer saved with HERMES_RESPONSE as its `response_template`."""
    from transformers import AutoTokenizer

    out = tmp_path_factory.mktemp("parser") / "model"
    shutil.copytree(tiny_dir, out)
    tokenizer = AutoTokenizer.from_pretrained(out)
    tokenizer.response_template = HERMES_RESPONSE
    tokenizer.save_pretrained(out)
    return out


@pytest.fixture(scope="module")
def tokenizer(parser_dir: Path) -> Any:
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(parser_dir)


@pytest.fixture(scope="module")
def prompt(tokenizer: Any) -> str:
    from agentkit.llm.prompt import render_prompt

    return render_prompt(tokenizer, [HumanMessage("hi")], TOOLS)


@pytest.fixture
def use(tokenizer: Any) -> Any:
    """Set the tokenizer's `response_template` for one test, restoring it afterwards."""
    saved = tokenizer.response_template

    def set_template(template: dict[str, Any] | None) -> None:
        tokenizer.response_template = template

    yield set_template
    tokenizer.response_template = saved


def parse(tokenizer: Any, text: str, prompt: str, tools: list[dict[str, Any]] | None = TOOLS) -> Any:
    parsed = parse_with_tokenizer(tokenizer, text, prompt=prompt, tools=tools)
    assert parsed is not None
    return parsed


# -- the template travels with the tokenizer --------------------------------------------------------------------------


def test_the_response_template_is_saved_and_loaded_with_the_tokenizer(parser_dir: Path, tokenizer: Any) -> None:
    config = json.loads((parser_dir / "tokenizer_config.json").read_text())
    assert config["response_template"] == HERMES_RESPONSE
    assert tokenizer.response_template == HERMES_RESPONSE


def test_a_tokenizer_without_a_response_template_gives_none(tiny_dir: Path, prompt: str) -> None:
    from transformers import AutoTokenizer

    plain = AutoTokenizer.from_pretrained(tiny_dir)
    assert getattr(plain, "response_template", None) is None
    assert parse_with_tokenizer(plain, "Hello.", prompt=prompt, tools=None) is None


# -- parse_with_tokenizer ---------------------------------------------------------------------------------------------


def test_plain_content(tokenizer: Any, prompt: str) -> None:
    parsed = parse(tokenizer, "  Hello! How can I help you today?\n", prompt)
    assert parsed.content == "Hello! How can I help you today?"
    assert (parsed.tool_calls, parsed.invalid_tool_calls, parsed.reasoning) == ([], [], "")


def test_think_block_and_content(tokenizer: Any, prompt: str) -> None:
    parsed = parse(tokenizer, "<think>\nThe user greets me.\n</think>\nHello!", prompt)
    assert (parsed.reasoning, parsed.content, parsed.tool_calls) == ("The user greets me.", "Hello!", [])


def test_a_think_block_opened_by_the_prompt_is_read_from_the_prefix(tokenizer: Any, prompt: str) -> None:
    parsed = parse(tokenizer, "The user greets me.\n</think>\n\nHello!", prompt + "<think>\n")
    assert (parsed.reasoning, parsed.content) == ("The user greets me.", "Hello!")
    # Cut off while thinking: all of it is reasoning.
    parsed = parse(tokenizer, "Still thinking", prompt + "<think>\n")
    assert (parsed.reasoning, parsed.content) == ("Still thinking", "")


def test_the_reasoning_may_be_called_thinking(tokenizer: Any, prompt: str, use: Any) -> None:
    use(THINKING_RESPONSE)
    parsed = parse(tokenizer, "<think>hmm</think>Answer.", prompt)
    assert (parsed.reasoning, parsed.content) == ("hmm", "Answer.")


def test_one_tool_call_with_arguments_cast_by_the_tool_schema(tokenizer: Any, prompt: str) -> None:
    parsed = parse(tokenizer, "Setting it.\n" + ALARM_CALL, prompt)
    assert parsed.content == "Setting it."
    assert parsed.invalid_tool_calls == []
    [only] = parsed.tool_calls
    assert (only["name"], only["args"], only["type"]) == ("set_alarm", {"hour": 7, "label": "7"}, "tool_call")
    assert only["id"] is not None and only["id"].startswith("call_")
    # Without the tools there is no schema to cast by.
    assert parse(tokenizer, ALARM_CALL, prompt, tools=None).tool_calls[0]["args"] == {"hour": "7", "label": "7"}


def test_two_tool_calls_and_the_text_around_them(tokenizer: Any, prompt: str) -> None:
    text = "First.\n" + call("set_alarm", hour=6) + "\n" + call("set_alarm", hour=8, label="late") + "\nDone."
    parsed = parse(tokenizer, text, prompt)
    assert [c["args"] for c in parsed.tool_calls] == [{"hour": 6}, {"hour": 8, "label": "late"}]
    assert len({c["id"] for c in parsed.tool_calls}) == 2
    assert parsed.content == "First.\nDone."


def test_broken_arguments_json_is_an_invalid_tool_call(tokenizer: Any, prompt: str) -> None:
    broken = '<tool_call>\n{"name": "set_alarm", "arguments": {"hour": 7,}}\n</tool_call>'
    parsed = parse(tokenizer, call("set_alarm", hour=6) + "\n" + broken, prompt)
    assert [c["args"] for c in parsed.tool_calls] == [{"hour": 6}]
    [bad] = parsed.invalid_tool_calls
    assert bad["name"] == "set_alarm"
    assert bad["args"] == '{"hour": 7,}'
    assert bad["error"] is not None and bad["error"].startswith("arguments are not valid JSON")
    assert bad["id"] is not None and bad["id"].startswith("call_")


@pytest.mark.parametrize(
    ("body", "error"),
    [
        ('{"arguments": {"hour": 7}}', "the tool call has no name"),
        ('{"name": "  ", "arguments": {}}', "the tool call has no name"),
        ('{"name": "set_alarm", "arguments": [7]}', "arguments must be a JSON object, got an array"),
        ('{"name": "set_alarm", "arguments": "[7]"}', "arguments must be a JSON object, got an array"),
        ('{"name": "set_alarm", "arguments": "{\\"hour\\": "}', "arguments are not valid JSON"),
        ("[1, 2]", "a tool call must be a JSON object, got an array"),
        ("", "the tool call is empty"),
    ],
)
def test_calls_are_validated_as_agentkit_validates_them(tokenizer: Any, prompt: str, body: str, error: str) -> None:
    parsed = parse(tokenizer, f"<tool_call>{body}</tool_call>", prompt)
    assert parsed.tool_calls == []
    [bad] = parsed.invalid_tool_calls
    assert bad["error"] is not None and bad["error"].startswith(error)


def test_arguments_given_as_a_json_string_are_decoded(tokenizer: Any, prompt: str) -> None:
    text = '<tool_call>{"name": "set_alarm", "arguments": "{\\"hour\\": 5}"}</tool_call>'
    assert parse(tokenizer, text, prompt, tools=None).tool_calls[0]["args"] == {"hour": 5}


def test_a_call_cut_off_before_its_closing_tag_still_counts(tokenizer: Any, prompt: str) -> None:
    parsed = parse(tokenizer, '<tool_call>\n{"name": "set_alarm", "arguments": {"hour": "9"}}', prompt)
    assert [(c["name"], c["args"]) for c in parsed.tool_calls] == [("set_alarm", {"hour": 9})]


def test_at_most_max_calls_are_read(tokenizer: Any, prompt: str) -> None:
    parsed = parse(tokenizer, "\n".join(call("set_alarm", hour=i % 24) for i in range(MAX_CALLS + 5)), prompt)
    assert len(parsed.tool_calls) == MAX_CALLS
    [overflow] = parsed.invalid_tool_calls
    assert overflow["error"] is not None and f"more than {MAX_CALLS} tool calls" in overflow["error"]


def test_a_reply_the_template_cannot_parse_gives_none_and_logs(
    tokenizer: Any, prompt: str, use: Any, caplog: pytest.LogCaptureFixture
) -> None:
    use(STRICT_RESPONSE)
    assert parse(tokenizer, ALARM_CALL, prompt).tool_calls[0]["args"] == {"hour": 7, "label": "7"}
    with caplog.at_level(logging.DEBUG, logger="agentkit.llm.response_parser"):
        assert parse_with_tokenizer(tokenizer, "<tool_call>{oops</tool_call>", prompt=prompt, tools=TOOLS) is None
    assert "falling back to agentkit's parser" in caplog.text
    use(DEMANDING_RESPONSE)
    assert parse_with_tokenizer(tokenizer, "Hello!", prompt=prompt, tools=None) is None


# -- through LocalChatModel -------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def alarm_dir(parser_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny model with HERMES_RESPONSE, trained to set an alarm for "wake me at 7", with the tool or without."""
    from transformers import AutoTokenizer

    from agentkit.llm.prompt import render_prompt
    from agentkit.llm.tiny import train_to_say

    out = tmp_path_factory.mktemp("alarm") / "model"
    shutil.copytree(parser_dir, out)
    tokenizer = AutoTokenizer.from_pretrained(out)
    texts = [(render_prompt(tokenizer, [HumanMessage(WAKE)], tools), ALARM_CALL) for tools in (TOOLS, None)]
    train_to_say(out, texts, steps=300)
    return out


@pytest.fixture(scope="module")
def alarm_chat(alarm_dir: Path) -> LocalChatModel:
    return LocalChatModel.from_pretrained(alarm_dir, device="cpu", max_new_tokens=48)


def test_local_chat_model_reads_tool_calls_with_the_tokenizers_parser(alarm_chat: LocalChatModel) -> None:
    assert alarm_chat.tokenizer.response_template == HERMES_RESPONSE
    reply = alarm_chat.bind_tools(TOOLS).invoke([HumanMessage(WAKE)])
    assert reply.invalid_tool_calls == []
    [only] = reply.tool_calls
    # {"hour": 7}: the integer hour comes from the tokenizer's parser casting by the schema; agentkit's keeps "7".
    assert (only["name"], only["args"]) == ("set_alarm", {"hour": 7, "label": "7"})
    assert parse_reply(ALARM_CALL, format="hermes").tool_calls[0]["args"] == {"hour": "7", "label": "7"}
    assert reply.content == ""
    streamed = [chunk for chunk in alarm_chat.bind_tools(TOOLS).stream([HumanMessage(WAKE)])]
    assert [(c["name"], c["args"]) for c in sum(streamed[1:], streamed[0]).tool_calls] == [
        ("set_alarm", {"hour": 7, "label": "7"})
    ]


def test_without_bound_tools_the_call_markup_stays_content(alarm_chat: LocalChatModel) -> None:
    reply = alarm_chat.invoke([HumanMessage(WAKE)])
    assert (reply.tool_calls, reply.invalid_tool_calls) == ([], [])
    assert reply.content == ALARM_CALL


def test_local_chat_model_falls_back_to_agentkits_parser(alarm_dir: Path) -> None:
    chat = LocalChatModel.from_pretrained(alarm_dir, device="cpu", max_new_tokens=48)
    for template in (DEMANDING_RESPONSE, None):  # the template cannot parse any reply; no template at all
        chat.tokenizer.response_template = template
        reply = chat.bind_tools(TOOLS).invoke([HumanMessage(WAKE)])
        assert [(c["name"], c["args"]) for c in reply.tool_calls] == [("set_alarm", {"hour": "7", "label": "7"})]

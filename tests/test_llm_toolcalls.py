"""Tool calls in a local model's reply: every format, malformed calls, <think>, format detection, linear cost."""

from __future__ import annotations

import dataclasses
import json
import math
import random
import re
import time
from typing import Any

import pytest
from langchain_core.messages import AIMessage

from agentkit.llm.toolcalls import MAX_CALLS, ParsedReply, detect_format, new_call_id, parse_reply

MB = 1_000_000
ID = re.compile(r"call_[0-9a-f]{24}")
FORMATS = ["hermes", "llama3", "mistral", "auto"]
END_MARKERS = ["<|im_end|>", "<|eot_id|>", "<|eom_id|>", "</s>", "<|eot_id|><|end_of_text|>", "<|im_end|>\n</s>\n"]

WEATHER = ("get_weather", {"city": "Paris", "unit": "celsius"})
TIME = ("get_time", {"tz": "Europe/Paris"})
PING = ("ping", {})
THREE = [WEATHER, TIME, PING]


def _calls(reply: ParsedReply) -> list[tuple[str, dict[str, Any]]]:
    return [(call["name"], call["args"]) for call in reply.tool_calls]


def _invalid(reply: ParsedReply) -> list[tuple[str | None, str]]:
    return [(call["name"], call["args"]) for call in reply.invalid_tool_calls]


def _check_ids_and_types(reply: ParsedReply) -> None:
    ids = [call["id"] for call in [*reply.tool_calls, *reply.invalid_tool_calls]]
    assert all(isinstance(i, str) and ID.fullmatch(i) for i in ids), ids
    assert len(set(ids)) == len(ids)
    assert all(call["type"] == "tool_call" for call in reply.tool_calls)
    assert all(call["type"] == "invalid_tool_call" for call in reply.invalid_tool_calls)
    assert all(isinstance(call["args"], dict) for call in reply.tool_calls)
    assert all(isinstance(call["error"], str) and call["error"] for call in reply.invalid_tool_calls)


def _hermes(name: str, args: dict[str, Any], key: str = "arguments") -> str:
    return f"<tool_call>\n{json.dumps({'name': name, key: args})}\n</tool_call>"


def _llama(name: str, args: dict[str, Any], key: str = "parameters") -> str:
    return json.dumps({"name": name, key: args})


def _mistral_v11(name: str, args: dict[str, Any], call_id: str | None = None) -> str:
    call_id_part = "" if call_id is None else f"[CALL_ID]{call_id}"
    return f"[TOOL_CALLS]{name}{call_id_part}[ARGS]{json.dumps(args)}"


# Replies that hold the three calls WEATHER, TIME, PING, in that order: (format, text).
THREE_CALLS = {
    "hermes": ("hermes", "\n".join(_hermes(*call) for call in THREE)),
    "hermes-one-line": ("hermes", "".join(_hermes(*call) for call in THREE)),
    "llama3-python-tag-semicolons": ("llama3", "<|python_tag|>" + "; ".join(_llama(*call) for call in THREE)),
    "llama3-python-tag-list": (
        "llama3",
        "<|python_tag|>" + json.dumps([{"name": n, "parameters": a} for n, a in THREE]),
    ),
    "llama3-bare-newlines": ("llama3", "\n".join(_llama(*call) for call in THREE)),
    "llama3-bare-semicolons": ("llama3", ";".join(_llama(*call) for call in THREE)),
    "llama3-bare-list": ("llama3", json.dumps([{"name": n, "parameters": a} for n, a in THREE])),
    "mistral-v3": ("mistral", "[TOOL_CALLS]" + json.dumps([{"name": n, "arguments": a} for n, a in THREE])),
    "mistral-v3-one-marker-each": (
        "mistral",
        "".join("[TOOL_CALLS]" + json.dumps([{"name": n, "arguments": a}]) for n, a in THREE),
    ),
    "mistral-v11": ("mistral", "".join(_mistral_v11(*call) for call in THREE)),
    "mistral-v11-call-id": (
        "mistral",
        "".join(
            _mistral_v11(n, a, call_id)
            for (n, a), call_id in zip(THREE, ["a1B2c3D4e", "xYz987654", "q-1_2"], strict=True)
        ),
    ),
}
THREE_CALLS_CASES = [pytest.param(fmt, text, id=case) for case, (fmt, text) in THREE_CALLS.items()]


# --------------------------------------------------------------------------------------------------------------------
# Well-formed calls: every format, several per turn, in order, and through "auto"
# --------------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("detect", [False, True], ids=["explicit", "auto"])
@pytest.mark.parametrize(("fmt", "text"), THREE_CALLS_CASES)
def test_several_calls_per_turn_in_order(fmt, text, detect):
    reply = parse_reply(text, format="auto" if detect else fmt)
    assert _calls(reply) == THREE
    assert reply.invalid_tool_calls == []
    assert reply.content == ""
    assert reply.reasoning == ""
    _check_ids_and_types(reply)


@pytest.mark.parametrize(("fmt", "text"), THREE_CALLS_CASES)
def test_every_parse_gets_fresh_ids(fmt, text):
    first, second = parse_reply(text, format=fmt), parse_reply(text, format=fmt)
    assert not {c["id"] for c in first.tool_calls} & {c["id"] for c in second.tool_calls}


@pytest.mark.parametrize(("fmt", "text"), THREE_CALLS_CASES)
def test_parsed_reply_builds_an_ai_message(fmt, text):
    reply = parse_reply("Checking.\n" + text if fmt != "llama3" else text, format=fmt)
    message = AIMessage(content=reply.content, tool_calls=reply.tool_calls, invalid_tool_calls=reply.invalid_tool_calls)
    assert [(c["name"], c["args"]) for c in message.tool_calls] == THREE
    assert [c["id"] for c in message.tool_calls] == [c["id"] for c in reply.tool_calls]


def test_default_format_is_auto():
    assert _calls(parse_reply(THREE_CALLS["hermes"][1])) == THREE
    assert _calls(parse_reply(THREE_CALLS["mistral-v11"][1])) == THREE
    assert _calls(parse_reply(THREE_CALLS["llama3-bare-newlines"][1])) == THREE


# --------------------------------------------------------------------------------------------------------------------
# Content around the calls, end markers, and <think>
# --------------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("text", ["Hello there.", "  \n Hello there. \n\n", "Line one.\n\nLine two."])
def test_plain_text_is_content_stripped(fmt, text):
    reply = parse_reply(text, format=fmt)
    assert reply == ParsedReply(text.strip(), [], [], "")


@pytest.mark.parametrize(
    ("fmt", "text", "content"),
    [
        pytest.param(
            "hermes",
            "  I'll look that up.\n" + _hermes(*WEATHER) + "\n\n" + _hermes(*TIME) + "\nOne moment.  ",
            "I'll look that up.\nOne moment.",
            id="hermes-before-and-after",
        ),
        pytest.param(
            "hermes",
            "Weather first " + _hermes(*WEATHER) + " then time " + _hermes(*TIME),
            "Weather first\nthen time",
            id="hermes-between",
        ),
        pytest.param(
            "mistral",
            "Sure, checking. [TOOL_CALLS]" + json.dumps([{"name": n, "arguments": a} for n, a in [WEATHER, TIME]]),
            "Sure, checking.",
            id="mistral-v3-before",
        ),
        pytest.param(
            "mistral",
            "Sure.\n" + _mistral_v11(*WEATHER) + _mistral_v11(*TIME) + "\nDone.",
            "Sure.\nDone.",
            id="mistral-v11-before-and-after",
        ),
    ],
)
@pytest.mark.parametrize("detect", [False, True], ids=["explicit", "auto"])
def test_content_around_calls_is_kept_and_stripped(fmt, text, content, detect):
    reply = parse_reply(text, format="auto" if detect else fmt)
    assert reply.content == content
    assert _calls(reply) == [WEATHER, TIME]
    assert reply.invalid_tool_calls == []
    _check_ids_and_types(reply)


@pytest.mark.parametrize("marker", END_MARKERS)
@pytest.mark.parametrize(("fmt", "text"), THREE_CALLS_CASES)
def test_trailing_end_markers_are_dropped_after_calls(fmt, text, marker):
    for format_ in (fmt, "auto"):
        reply = parse_reply(text + marker, format=format_)
        assert _calls(reply) == THREE
        assert reply.invalid_tool_calls == []
        assert reply.content == ""


@pytest.mark.parametrize("marker", END_MARKERS)
@pytest.mark.parametrize("fmt", FORMATS)
def test_trailing_end_markers_are_dropped_from_content(fmt, marker):
    reply = parse_reply("The answer is 42." + marker, format=fmt)
    assert reply == ParsedReply("The answer is 42.", [], [], "")


@pytest.mark.parametrize("marker", ["<|im_end|>", "<|eot_id|>", "</s>"])
def test_end_marker_after_an_unclosed_hermes_block(marker):
    reply = parse_reply('<tool_call>{"name": "get_time", "arguments": {"tz": "Europe/Paris"}}' + marker)
    assert _calls(reply) == [TIME]
    assert reply.invalid_tool_calls == []


THINK_SHAPES = {
    "leading": lambda body: "<think>\nI should call the tools.\n</think>\n\n" + body,
    "leading-after-space": lambda body: "\n  <think>I should call the tools.</think>" + body,
    "template-opened": lambda body: "I should call the tools.\n</think>\n\n" + body,
}


@pytest.mark.parametrize("shape", list(THINK_SHAPES))
@pytest.mark.parametrize(("fmt", "text"), THREE_CALLS_CASES)
def test_think_block_is_reasoning_before_calls(fmt, text, shape):
    for format_ in (fmt, "auto"):
        reply = parse_reply(THINK_SHAPES[shape](text) + "<|im_end|>", format=format_)
        assert reply.reasoning == "I should call the tools."
        assert _calls(reply) == THREE
        assert reply.content == ""
        assert "think>" not in reply.content


@pytest.mark.parametrize("shape", list(THINK_SHAPES))
@pytest.mark.parametrize("fmt", FORMATS)
def test_think_block_is_reasoning_before_content(fmt, shape):
    reply = parse_reply(THINK_SHAPES[shape]("The answer is 42.") + "<|eot_id|>", format=fmt)
    assert reply == ParsedReply("The answer is 42.", [], [], "I should call the tools.")


@pytest.mark.parametrize(("fmt", "text"), THREE_CALLS_CASES)
def test_unclosed_think_is_all_reasoning_and_its_calls_do_not_count(fmt, text):
    for format_ in (fmt, "auto"):
        reply = parse_reply("<think>Maybe:\n" + text, format=format_)
        assert reply.reasoning == ("Maybe:\n" + text).strip()
        assert reply.content == ""
        assert reply.tool_calls == []
        assert reply.invalid_tool_calls == []


@pytest.mark.parametrize("fmt", FORMATS)
def test_calls_drafted_inside_a_think_block_do_not_count(fmt):
    draft = _hermes(*WEATHER) + _mistral_v11(*TIME)
    reply = parse_reply(f"<think>Draft: {draft}</think>\nLet me answer directly: 42.", format=fmt)
    assert reply.tool_calls == []
    assert reply.invalid_tool_calls == []
    assert reply.content == "Let me answer directly: 42."
    assert reply.reasoning == f"Draft: {draft}"


def test_empty_think_block_leaves_empty_reasoning():
    reply = parse_reply("<think>\n\n</think>\n\n" + _hermes(*WEATHER))
    assert reply.reasoning == ""
    assert _calls(reply) == [WEATHER]


def test_auto_reads_the_format_after_the_think_block():
    # The <tool_call> only in the reasoning must not make "auto" pick hermes for a Mistral reply.
    reply = parse_reply("<think>not <tool_call> here</think>" + _mistral_v11(*WEATHER))
    assert _calls(reply) == [WEATHER]


# --------------------------------------------------------------------------------------------------------------------
# Hermes specifics
# --------------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "calls"),
    [
        pytest.param(
            '<tool_call>{"name": "get_weather", "arguments": {"city": "Paris"}}',
            [("get_weather", {"city": "Paris"})],
            id="unclosed-last",
        ),
        pytest.param(
            _hermes(*WEATHER) + '\n<tool_call>\n{"name": "get_time", "arguments": {"tz": "Europe/Paris"}}\n',
            [WEATHER, TIME],
            id="unclosed-after-closed",
        ),
        pytest.param(
            '<tool_call>{"name": "get_weather", "arguments": {"city": "Paris", "unit": "celsius"}}\n' + _hermes(*TIME),
            [WEATHER, TIME],
            id="unclosed-before-closed",
        ),
        pytest.param(
            "<tool_call>" + json.dumps({"name": "get_weather", "arguments": json.dumps(WEATHER[1])}) + "</tool_call>",
            [WEATHER],
            id="arguments-as-json-string",
        ),
        pytest.param(_hermes(*WEATHER, key="parameters"), [WEATHER], id="parameters-key"),
        pytest.param(
            "<tool_call>" + json.dumps([{"name": n, "arguments": a} for n, a in THREE]) + "</tool_call>",
            THREE,
            id="list-in-one-block",
        ),
        pytest.param(
            "<tool_call>\n" + "\n".join(_llama(n, a, "arguments") for n, a in THREE) + "\n</tool_call>",
            THREE,
            id="several-objects-in-one-block",
        ),
        pytest.param(
            "<tool_call>\n```json\n" + _llama(*WEATHER, key="arguments") + "\n```\n</tool_call>",
            [WEATHER],
            id="markdown-fence-json",
        ),
        pytest.param(
            '<tool_call>```\n{"name": "get_time", "arguments": {"tz": "Europe/Paris"}}\n```</tool_call>',
            [TIME],
            id="markdown-fence-bare",
        ),
        pytest.param(
            "<tool_call>"
            + json.dumps({"type": "function", "function": {"name": "get_time", "arguments": json.dumps(TIME[1])}})
            + "</tool_call>",
            [TIME],
            id="openai-function-shape",
        ),
        pytest.param('<tool_call>{"name": "ping"}</tool_call>', [PING], id="no-arguments-key"),
        pytest.param('<tool_call>{"name": "ping", "arguments": null}</tool_call>', [PING], id="null-arguments"),
        pytest.param('<tool_call>{"name": "ping", "arguments": ""}</tool_call>', [PING], id="empty-string-arguments"),
        pytest.param('<tool_call>{"name": "  ping ", "arguments": {}}</tool_call>', [PING], id="name-padded"),
        pytest.param(
            '<tool_call>{"name": "get_time", "arguments": {"tz": "Europe/Paris"}}}</tool_call>',
            [TIME],
            id="stray-closing-brace",
        ),
        pytest.param(
            '<tool_call>{"name": "get_weather", "arguments": {"city": "Rue <b>Paris</b>", "unit": "c"}}</tool_call>',
            [("get_weather", {"city": "Rue <b>Paris</b>", "unit": "c"})],
            id="markup-like-text-inside-a-string-value",
        ),
    ],
)
def test_hermes_shapes(text, calls):
    for format_ in ("hermes", "auto"):
        reply = parse_reply(text, format=format_)
        assert _calls(reply) == calls
        assert reply.invalid_tool_calls == []
        assert reply.content == ""
        _check_ids_and_types(reply)


def test_hermes_calls_with_non_ascii_arguments():
    reply = parse_reply('<tool_call>{"name": "translate", "arguments": {"text": "naïve café 東京"}}</tool_call>')
    assert _calls(reply) == [("translate", {"text": "naïve café 東京"})]


def test_hermes_calls_are_returned_whatever_their_name():
    reply = parse_reply(_hermes("not_offered", {}), format="hermes", tool_names={"get_weather"})
    assert _calls(reply) == [("not_offered", {})]


def test_hermes_format_leaves_other_markup_alone():
    text = "Plain " + _mistral_v11(*WEATHER)
    assert parse_reply(text, format="hermes") == ParsedReply(text, [], [], "")


# --------------------------------------------------------------------------------------------------------------------
# Mistral specifics
# --------------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "calls"),
    [
        pytest.param('[TOOL_CALLS] [{"name": "ping", "arguments": {}}]', [PING], id="v3-space-after-marker"),
        pytest.param('[TOOL_CALLS]{"name": "ping", "arguments": {}}', [PING], id="v3-single-object"),
        pytest.param(
            '[TOOL_CALLS][{"name": "get_time", "arguments": "{\\"tz\\": \\"Europe/Paris\\"}"}]',
            [TIME],
            id="v3-arguments-as-json-string",
        ),
        pytest.param(
            '[TOOL_CALLS][{"name": "get_time", "arguments": {"tz": "Europe/Paris"}, "id": "abcDEF123"}]',
            [TIME],
            id="v3-with-id",
        ),
        pytest.param(
            '[TOOL_CALLS]my.tool-name:v2[ARGS]{"x": 1}', [("my.tool-name:v2", {"x": 1})], id="v11-dotted-name"
        ),
        pytest.param('[TOOL_CALLS]get_time[ARGS] {"tz": "Europe/Paris"}', [TIME], id="v11-space-before-args"),
        pytest.param("[TOOL_CALLS]ping[ARGS]{}", [PING], id="v11-empty-args"),
        pytest.param('[TOOL_CALLS]get_time{"tz": "Europe/Paris"}', [TIME], id="v11-without-args-marker"),
        pytest.param(
            '[TOOL_CALLS][{"name": "get_weather", "arguments": {"city": "Paris", "unit": "celsius"}}, '
            '{"name": "get_time", "arguments": {"tz": "Europe/Paris"}}',
            [WEATHER, TIME],
            id="v3-list-missing-closing-bracket",
        ),
    ],
)
def test_mistral_shapes(text, calls):
    for format_ in ("mistral", "auto"):
        reply = parse_reply(text, format=format_)
        assert _calls(reply) == calls
        assert reply.invalid_tool_calls == []
        assert reply.content == ""
        _check_ids_and_types(reply)


def test_mistral_v3_list_cut_off_keeps_the_calls_it_completed():
    text = (
        '[TOOL_CALLS][{"name": "get_weather", "arguments": {"city": "Paris", "unit": "celsius"}}, '
        '{"name": "get_time", "arguments": {"tz": "Eur'
    )
    reply = parse_reply(text, format="mistral")
    assert _calls(reply) == [WEATHER]
    [bad] = reply.invalid_tool_calls
    assert bad["name"] == "get_time"
    assert bad["args"].startswith('{"tz": "Eur')
    assert "not valid JSON" in bad["error"]
    _check_ids_and_types(reply)


def test_mistral_text_after_the_calls_is_content():
    reply = parse_reply("[TOOL_CALLS]" + json.dumps([{"name": "ping", "arguments": {}}]) + " All set.")
    assert _calls(reply) == [PING]
    assert reply.content == "All set."


# --------------------------------------------------------------------------------------------------------------------
# Llama 3 specifics: a whole reply of JSON calls, or content
# --------------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("tool_names", [None, {"get_weather", "get_time", "ping"}], ids=["no-names", "names"])
@pytest.mark.parametrize(
    ("text", "calls"),
    [
        pytest.param('<|python_tag|>{"name": "get_time", "parameters": {"tz": "Europe/Paris"}}', [TIME], id="tagged"),
        pytest.param('{"name": "get_time", "parameters": {"tz": "Europe/Paris"}}', [TIME], id="bare-parameters"),
        pytest.param('{"name": "get_time", "arguments": {"tz": "Europe/Paris"}}', [TIME], id="bare-arguments"),
        pytest.param(
            '{"type": "function", "name": "get_time", "parameters": {"tz": "Europe/Paris"}}', [TIME], id="bare-type-key"
        ),
        pytest.param(
            '{"type": "function", "function": {"name": "get_time", "parameters": {"tz": "Europe/Paris"}}}',
            [TIME],
            id="bare-openai-shape",
        ),
        pytest.param(
            '{"name": "get_time", "parameters": "{\\"tz\\": \\"Europe/Paris\\"}"}', [TIME], id="bare-string-parameters"
        ),
        pytest.param(
            '```json\n{"name": "get_time", "parameters": {"tz": "Europe/Paris"}}\n```', [TIME], id="markdown-fence"
        ),
        pytest.param(
            '<|python_tag|>```\n{"name": "get_time", "parameters": {"tz": "Europe/Paris"}}\n```',
            [TIME],
            id="tag-and-fence",
        ),
        pytest.param('\n\n  {"name": "ping", "parameters": {}}  \n', [PING], id="surrounding-whitespace"),
    ],
)
def test_llama3_shapes(text, calls, tool_names):
    for format_ in ("llama3", "auto"):
        reply = parse_reply(text, format=format_, tool_names=tool_names)
        assert _calls(reply) == calls
        assert reply.invalid_tool_calls == []
        assert reply.content == ""
        _check_ids_and_types(reply)


NOT_CALLS = [
    pytest.param('{"name": "Alice", "age": 30}', id="object-with-other-keys"),
    pytest.param('{"name": "Alice"}', id="name-only"),
    pytest.param('{"name": "Alice", "type": "person"}', id="name-and-type-only"),
    pytest.param('{"answer": 42, "unit": "km"}', id="no-name"),
    pytest.param('{"name": 5, "parameters": {}}', id="name-not-a-string"),
    pytest.param('[{"name": "Alice", "age": 30}, {"name": "Bob", "age": 25}]', id="list-of-records"),
    pytest.param("[1, 2, 3]", id="list-of-numbers"),
    pytest.param("[]", id="empty-list"),
    pytest.param("{}", id="empty-object"),
    pytest.param('"just a string"', id="json-string"),
    pytest.param("42", id="json-number"),
    pytest.param('{"name": "get_time", "parameters": {}}\n{"name": "Alice", "age": 30}', id="call-then-record"),
    pytest.param('Here you go: {"name": "get_time", "parameters": {}}', id="text-before-object"),
    pytest.param('{"name": "get_time", "parameters": {}} is what I would send.', id="text-after-object"),
    pytest.param('{"name": "get_time", "parameters": {', id="broken-json-without-tag"),
    pytest.param('```json\n{"name": "Alice", "age": 30}\n```', id="fenced-record"),
]


@pytest.mark.parametrize("fmt", ["llama3", "auto"])
@pytest.mark.parametrize("tool_names", [None, {"get_time", "get_weather"}], ids=["no-names", "names"])
@pytest.mark.parametrize("text", NOT_CALLS)
def test_llama3_json_answers_that_are_not_calls_stay_content(text, tool_names, fmt):
    reply = parse_reply(text, format=fmt, tool_names=tool_names)
    assert reply == ParsedReply(text.strip(), [], [], "")


@pytest.mark.parametrize("fmt", ["llama3", "auto"])
@pytest.mark.parametrize(
    "text",
    [
        pytest.param('{"name": "delete_everything", "parameters": {}}', id="parameters"),
        pytest.param('{"name": "delete_everything", "arguments": {"really": true}}', id="arguments"),
        pytest.param(
            '[{"name": "get_time", "parameters": {}}, {"name": "delete_everything", "parameters": {}}]', id="list"
        ),
    ],
)
def test_llama3_bare_call_to_an_unknown_tool_stays_content(text, fmt):
    reply = parse_reply(text, format=fmt, tool_names=["get_weather", "get_time"])
    assert reply == ParsedReply(text, [], [], "")
    # Without tool_names the same objects do look like calls.
    assert parse_reply(text, format=fmt).tool_calls


def test_llama3_name_only_object_is_a_call_when_the_name_is_offered():
    reply = parse_reply('{"name": "ping"}', format="llama3", tool_names=("ping",))
    assert _calls(reply) == [PING]


def test_llama3_tagged_call_counts_whatever_its_name():
    reply = parse_reply('<|python_tag|>{"name": "not_offered", "parameters": {}}', tool_names={"get_time"})
    assert _calls(reply) == [("not_offered", {})]


# --------------------------------------------------------------------------------------------------------------------
# Malformed calls: InvalidToolCall with the name salvaged, the raw args, and what is wrong; never an exception
# --------------------------------------------------------------------------------------------------------------------

MALFORMED = [
    # hermes
    pytest.param(
        "hermes",
        '<tool_call>{"name": "get_weather", "arguments": {"city": "Paris"</tool_call>',
        "get_weather",
        '{"city": "Paris"',
        "arguments are not valid JSON",
        id="hermes-args-cut-off",
    ),
    pytest.param(
        "hermes",
        '<tool_call>{"name": "get_weather", "arguments": {"city": "Paris",}}</tool_call>',
        "get_weather",
        '{"city": "Paris",}',
        "arguments are not valid JSON",
        id="hermes-args-trailing-comma",
    ),
    pytest.param(
        "hermes",
        '<tool_call>{"name": "get_weather", "arguments": {\'city\': \'Paris\'}}</tool_call>',
        "get_weather",
        "{'city': 'Paris'}",
        "arguments are not valid JSON",
        id="hermes-args-single-quotes",
    ),
    pytest.param(
        "hermes",
        '<tool_call>{"name": "get_weather", "arguments": "city=Paris"}</tool_call>',
        "get_weather",
        "city=Paris",
        "arguments are not valid JSON",
        id="hermes-args-string-not-json",
    ),
    pytest.param(
        "hermes",
        '<tool_call>{"name": "get_weather", "arguments": "[\\"Paris\\"]"}</tool_call>',
        "get_weather",
        '["Paris"]',
        "arguments must be a JSON object, got an array",
        id="hermes-args-string-of-array",
    ),
    pytest.param(
        "hermes",
        '<tool_call>{"name": "get_weather", "arguments": ["Paris"]}</tool_call>',
        "get_weather",
        '["Paris"]',
        "arguments must be a JSON object, got an array",
        id="hermes-args-array",
    ),
    pytest.param(
        "hermes",
        '<tool_call>{"name": "get_weather", "arguments": 3}</tool_call>',
        "get_weather",
        "3",
        "arguments must be a JSON object, got a number",
        id="hermes-args-number",
    ),
    pytest.param(
        "hermes",
        '<tool_call>{"name": "get_weather", "arguments": true}</tool_call>',
        "get_weather",
        "true",
        "arguments must be a JSON object, got a boolean",
        id="hermes-args-boolean",
    ),
    pytest.param(
        "hermes",
        '<tool_call>{"arguments": {"city": "Paris"}}</tool_call>',
        None,
        '{"city": "Paris"}',
        "no name",
        id="hermes-no-name",
    ),
    pytest.param(
        "hermes",
        '<tool_call>{"name": "  ", "arguments": {"city": "Paris"}}</tool_call>',
        None,
        '{"city": "Paris"}',
        "no name",
        id="hermes-blank-name",
    ),
    pytest.param(
        "hermes",
        '<tool_call>{"name": ["get_weather"], "arguments": {}}</tool_call>',
        None,
        "{}",
        "no name",
        id="hermes-name-not-a-string",
    ),
    pytest.param(
        "hermes",
        '<tool_call>{"name": get_weather, "arguments": {"city": "Paris"}}</tool_call>',
        None,
        '{"city": "Paris"}',
        "the tool call is not valid JSON",
        id="hermes-unquoted-name",
    ),
    pytest.param(
        "hermes",
        '<tool_call>{"name": "get_wea',
        None,
        '{"name": "get_wea',
        "the tool call is not valid JSON",
        id="hermes-cut-off-in-name",
    ),
    pytest.param("hermes", "<tool_call></tool_call>", None, "", "empty", id="hermes-empty"),
    pytest.param("hermes", "<tool_call>\n  \n</tool_call>", None, "", "empty", id="hermes-blank"),
    pytest.param("hermes", "<tool_call>", None, "", "empty", id="hermes-open-tag-only"),
    pytest.param(
        "hermes",
        "<tool_call>get_weather(city='Paris')</tool_call>",
        None,
        "get_weather(city='Paris')",
        "must be a JSON object",
        id="hermes-python-syntax",
    ),
    pytest.param(
        "hermes",
        '<tool_call>"get_weather"</tool_call>',
        None,
        '"get_weather"',
        "must be a JSON object",
        id="hermes-json-string",
    ),
    pytest.param(
        "hermes",
        '<tool_call>["get_weather"]</tool_call>',
        None,
        '["get_weather"]',
        "must be a JSON object, got a string",
        id="hermes-list-of-string",
    ),
    # mistral
    pytest.param(
        "mistral",
        '[TOOL_CALLS][{"name": "get_weather", "arguments": {"city": "Par',
        "get_weather",
        '{"city": "Par',
        "not valid JSON",
        id="mistral-v3-cut-off",
    ),
    pytest.param(
        "mistral",
        '[TOOL_CALLS]{"name": "get_weather", "arguments": {"city": }}',
        "get_weather",
        '{"city": }',
        "arguments are not valid JSON",
        id="mistral-v3-object-broken-args",
    ),
    pytest.param(
        "mistral",
        '[TOOL_CALLS][{"arguments": {"city": "Paris"}}]',
        None,
        '{"city": "Paris"}',
        "no name",
        id="mistral-v3-no-name",
    ),
    pytest.param(
        "mistral",
        '[TOOL_CALLS][{"name": "get_weather", "arguments": "Paris"}]',
        "get_weather",
        "Paris",
        "arguments are not valid JSON",
        id="mistral-v3-args-string-not-json",
    ),
    pytest.param(
        "mistral",
        '[TOOL_CALLS]["get_weather"]',
        None,
        '["get_weather"]',
        "must be a JSON object, got a string",
        id="mistral-v3-element-not-object",
    ),
    pytest.param(
        "mistral",
        '[TOOL_CALLS]get_weather[ARGS]{"city": "Par',
        "get_weather",
        '{"city": "Par',
        "arguments are not valid JSON",
        id="mistral-v11-args-cut-off",
    ),
    pytest.param(
        "mistral",
        '[TOOL_CALLS]get_weather[ARGS]["Paris"]',
        "get_weather",
        '["Paris"]',
        "arguments must be a JSON object, got an array",
        id="mistral-v11-args-array",
    ),
    pytest.param(
        "mistral",
        "[TOOL_CALLS]get_weather[ARGS]city=Paris",
        "get_weather",
        "city=Paris",
        "no JSON arguments",
        id="mistral-v11-args-not-json",
    ),
    pytest.param(
        "mistral",
        "[TOOL_CALLS]get_weather[CALL_ID]abc123[ARGS]",
        "get_weather",
        "",
        "no JSON arguments",
        id="mistral-v11-args-missing",
    ),
    pytest.param(
        "mistral", "[TOOL_CALLS]get_weather", "get_weather", "", "no JSON arguments", id="mistral-v11-name-only"
    ),
    pytest.param("mistral", "[TOOL_CALLS]", None, "", "nothing follows", id="mistral-marker-only"),
    pytest.param("mistral", "[TOOL_CALLS] ???", None, "???", "expected a tool name", id="mistral-no-name"),
    # llama3 (only after <|python_tag|>: a bare malformed object is content)
    pytest.param(
        "llama3",
        '<|python_tag|>{"name": "get_weather", "parameters": ["Paris"]}',
        "get_weather",
        '["Paris"]',
        "arguments must be a JSON object, got an array",
        id="llama3-tagged-args-array",
    ),
    pytest.param(
        "llama3",
        '<|python_tag|>{"parameters": {"city": "Paris"}}',
        None,
        '{"city": "Paris"}',
        "no name",
        id="llama3-tagged-no-name",
    ),
    pytest.param(
        "llama3",
        '<|python_tag|>{"name": "get_weather", "parameters": "city=Paris"}',
        "get_weather",
        "city=Paris",
        "arguments are not valid JSON",
        id="llama3-tagged-args-string-not-json",
    ),
    pytest.param(
        "llama3",
        '<|python_tag|>brave_search.call(query="Paris weather")',
        None,
        'brave_search.call(query="Paris weather")',
        "JSON",
        id="llama3-tagged-python-syntax",
    ),
    pytest.param("llama3", "<|python_tag|>", None, "", "JSON", id="llama3-tag-only"),
    pytest.param(
        "llama3",
        '<|python_tag|>{"name": "get_weather", "parameters": {"city": "Paris"',
        "get_weather",
        '{"city": "Paris"',
        "not valid JSON",
        id="llama3-tagged-cut-off",
    ),
]


@pytest.mark.parametrize("detect", [False, True], ids=["explicit", "auto"])
@pytest.mark.parametrize(("fmt", "text", "name", "args", "error"), MALFORMED)
def test_malformed_call_becomes_an_invalid_tool_call(fmt, text, name, args, error, detect):
    reply = parse_reply(text, format="auto" if detect else fmt)
    assert reply.tool_calls == []
    assert [(call["name"], call["args"], error in call["error"]) for call in reply.invalid_tool_calls] == [
        (name, args, True)
    ], reply.invalid_tool_calls
    assert reply.content == ""
    _check_ids_and_types(reply)


@pytest.mark.parametrize(
    ("fmt", "text"),
    [
        pytest.param(
            "hermes",
            '<tool_call>{"name": "get_weather", "arguments": {"city": "Paris"}</tool_call>',
            id="hermes",
        ),
        pytest.param(
            "hermes",
            '<tool_call>{"arguments": {"city": "Paris"}, "name": "get_weather"</tool_call>',
            id="hermes-name-last",
        ),
        pytest.param("mistral", '[TOOL_CALLS]{"name": "get_weather", "arguments": {"city": "Paris"}', id="mistral-v3"),
    ],
)
def test_missing_closing_brace_of_the_call_is_not_blamed_on_valid_arguments(fmt, text):
    reply = parse_reply(text, format=fmt)
    [bad] = reply.invalid_tool_calls
    assert (bad["name"], bad["args"]) == ("get_weather", '{"city": "Paris"}')
    # The arguments {"city": "Paris"} are valid JSON; what is broken is the call object around them.
    assert bad["error"].startswith("the tool call is not valid JSON"), bad["error"]


@pytest.mark.parametrize("text", ["[TOOL_CALLS][", "[TOOL_CALLS][ \n", "Let me check. [TOOL_CALLS]["])
def test_mistral_list_cut_off_before_its_first_call_is_reported(text):
    # Like a bare "[TOOL_CALLS]" or an empty <tool_call>, an opened but empty call list is a failed call attempt,
    # which the agent must see rather than an empty reply.
    reply = parse_reply(text, format="mistral")
    assert reply.tool_calls == []
    assert [call["name"] for call in reply.invalid_tool_calls] == [None]


def test_mistral_v11_name_directly_followed_by_the_next_marker():
    reply = parse_reply("[TOOL_CALLS]ping[TOOL_CALLS]get_time[ARGS]" + json.dumps(TIME[1]), format="mistral")
    assert _calls(reply) == [TIME]
    [bad] = reply.invalid_tool_calls
    assert (bad["name"], bad["args"]) == ("ping", "")
    assert "no JSON arguments follow" in bad["error"], bad["error"]


@pytest.mark.parametrize(
    ("fmt", "text", "valid", "invalid"),
    [
        pytest.param(
            "hermes",
            _hermes(*WEATHER) + '<tool_call>{"name": "get_time", "arguments": {"tz": </tool_call>' + _hermes(*PING),
            [WEATHER, PING],
            ["get_time"],
            id="hermes",
        ),
        pytest.param(
            "mistral",
            _mistral_v11(*WEATHER) + '[TOOL_CALLS]get_time[ARGS]{"tz": ' + _mistral_v11(*PING),
            [WEATHER, PING],
            ["get_time"],
            id="mistral-v11",
        ),
        pytest.param(
            "mistral",
            '[TOOL_CALLS][{"name": "get_weather", "arguments": {"city": "Paris", "unit": "celsius"}}, '
            '{"name": "get_time", "arguments": []}, {"name": "ping", "arguments": {}}]',
            [WEATHER, PING],
            ["get_time"],
            id="mistral-v3",
        ),
        pytest.param(
            "llama3",
            '<|python_tag|>[{"name": "get_weather", "parameters": {"city": "Paris", "unit": "celsius"}}, '
            '{"name": "get_time", "parameters": 5}, {"name": "ping", "parameters": {}}]',
            [WEATHER, PING],
            ["get_time"],
            id="llama3-tagged-list",
        ),
    ],
)
def test_one_bad_call_does_not_spoil_the_others(fmt, text, valid, invalid):
    reply = parse_reply(text, format=fmt)
    assert _calls(reply) == valid
    assert [call["name"] for call in reply.invalid_tool_calls] == invalid
    _check_ids_and_types(reply)


@pytest.mark.parametrize(("fmt", "text"), THREE_CALLS_CASES)
def test_every_truncation_of_a_reply_parses_without_raising(fmt, text):
    # Generation can stop anywhere; every prefix must still give a reply, never an exception.
    full = "Let me check.\n" + text if fmt != "llama3" else text
    for end in range(len(full) + 1):
        for format_ in (fmt, "auto"):
            reply = parse_reply(full[:end], format=format_)
            _check_ids_and_types(reply)
            assert len(reply.tool_calls) <= 3


def test_random_markup_soup_never_raises():
    pieces = [
        "<tool_call>", "</tool_call>", "[TOOL_CALLS]", "[ARGS]", "[CALL_ID]", "<|python_tag|>", "<think>", "</think>",
        "<|im_end|>", "</s>", "{", "}", "[", "]", '"name"', '"arguments"', '"parameters"', ":", ",", ";", '"x"', "1",
        "null", "get_time", " ", "\n", "```", "```json\n", '{"name": "ping", "arguments": {}}',
    ]  # fmt: skip
    rng = random.Random(1234)
    for _ in range(3000):
        text = "".join(rng.choice(pieces) for _ in range(rng.randint(0, 30)))
        for fmt in FORMATS:
            reply = parse_reply(text, format=fmt, tool_names=rng.choice([None, {"ping"}]))
            assert isinstance(reply, ParsedReply)
            assert isinstance(reply.content, str)
            assert isinstance(reply.reasoning, str)
            _check_ids_and_types(reply)


# --------------------------------------------------------------------------------------------------------------------
# API: unknown format, ParsedReply, new_call_id
# --------------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", ["openai", "", "Hermes", "llama", "json", None])
def test_unknown_format_raises_value_error(fmt):
    with pytest.raises(ValueError, match="unknown tool call format"):
        parse_reply(_hermes(*WEATHER), format=fmt)


def test_parsed_reply_is_frozen():
    reply = parse_reply("hi")
    with pytest.raises(dataclasses.FrozenInstanceError):
        reply.content = "changed"  # type: ignore[misc]


def test_new_call_id_shape_and_uniqueness():
    ids = [new_call_id() for _ in range(2000)]
    assert all(ID.fullmatch(i) for i in ids)
    assert len(set(ids)) == len(ids)


# --------------------------------------------------------------------------------------------------------------------
# detect_format
# --------------------------------------------------------------------------------------------------------------------

QWEN_TEMPLATE = (
    "{%- if tools %}{{- '<|im_start|>system\\n' }}"
    '{{- "\\n\\nFor each function call, return a json object with function name and arguments within '
    '<tool_call></tool_call> XML tags:\\n<tool_call>\\n{\\"name\\": <function-name>, \\"arguments\\": '
    '<args-json-object>}\\n</tool_call><|im_end|>\\n" }}{%- endif %}'
    "{%- for message in messages %}{{- '<|im_start|>' + message.role + '\\n' + message.content + '<|im_end|>\\n' }}"
    "{%- endfor %}"
)
MISTRAL_TEMPLATE = (
    "{{- bos_token }}{%- for message in loop_messages %}{%- if message['role'] == 'user' %}"
    "{%- if tools is not none and (message == user_messages[-1]) %}{{- '[AVAILABLE_TOOLS]' + tools|tojson + "
    "'[/AVAILABLE_TOOLS]' }}{%- endif %}{{- '[INST]' + message['content'] + '[/INST]' }}"
    "{%- elif message.tool_calls is defined %}{{- '[TOOL_CALLS]' }}{%- for tool_call in message.tool_calls %}"
    "{{- tool_call.function.name + '[ARGS]' + tool_call.function.arguments|tojson }}{%- endfor %}{%- endif %}"
    "{%- endfor %}"
)
LLAMA31_TEMPLATE = (
    "{%- for message in messages %}{%- if 'tool_calls' in message %}"
    "{%- if builtin_tools is defined and tool_call.name in builtin_tools %}"
    "{{- '<|start_header_id|>assistant<|end_header_id|>\\n\\n' -}}{{- '<|python_tag|>' + tool_call.name }}"
    "{%- endif %}{%- elif message.role == 'tool' or message.role == 'ipython' %}"
    "{{- '<|start_header_id|>ipython<|end_header_id|>\\n\\n' }}{%- endif %}{%- endfor %}"
)
LLAMA32_NO_TAG_TEMPLATE = (
    "{%- for message in messages %}{%- if 'tool_calls' in message %}"
    "{{- '<|start_header_id|>assistant<|end_header_id|>\\n\\n' -}}"
    "{{- '{\"name\": \"' + tool_call.name + '\", ' }}{{- '\"parameters\": ' }}{{- tool_call.arguments | tojson }}"
    "{%- elif message.role == 'tool' or message.role == 'ipython' %}"
    "{{- '<|start_header_id|>ipython<|end_header_id|>\\n\\n' }}{%- endif %}{%- endfor %}"
)
LLAMA_PARAMETERS_TEMPLATE = (
    "{{- '<|start_header_id|>assistant<|end_header_id|>\\n\\n' -}}"
    "{{- '{\"name\": \"' + tool_call.name + '\", \"parameters\": ' + tool_call.arguments | tojson + '}' }}"
)
LLAMA3_PLAIN_TEMPLATE = (
    "{% set loop_messages = messages %}{% for message in loop_messages %}"
    "{% set content = '<|start_header_id|>' + message['role'] + '<|end_header_id|>\\n\\n' + message['content'] "
    "| trim + '<|eot_id|>' %}{{ content }}{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|start_header_id|>assistant<|end_header_id|>\\n\\n' }}{% endif %}"
)
CHATML_TEMPLATE = (
    "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + "
    "'\\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"
)


@pytest.mark.parametrize(
    ("template", "expected"),
    [
        pytest.param(QWEN_TEMPLATE, "hermes", id="qwen"),
        pytest.param(MISTRAL_TEMPLATE, "mistral", id="mistral"),
        pytest.param(LLAMA31_TEMPLATE, "llama3", id="llama3.1-python-tag"),
        pytest.param(LLAMA32_NO_TAG_TEMPLATE, "llama3", id="llama3-ipython-header"),
        pytest.param(LLAMA_PARAMETERS_TEMPLATE, "llama3", id="llama3-parameters-key"),
        pytest.param(LLAMA3_PLAIN_TEMPLATE, "auto", id="llama3-without-tools"),
        pytest.param(CHATML_TEMPLATE, "auto", id="plain-chatml"),
        pytest.param("", "auto", id="empty"),
        pytest.param(None, "auto", id="none"),
        pytest.param('ipython and "parameters" but no Llama header', "auto", id="no-header"),
    ],
)
def test_detect_format(template, expected):
    assert detect_format(template) == expected


@pytest.mark.parametrize(
    ("template", "fmt", "text"),
    [
        pytest.param(QWEN_TEMPLATE, "hermes", THREE_CALLS["hermes"][1], id="qwen"),
        pytest.param(MISTRAL_TEMPLATE, "mistral", THREE_CALLS["mistral-v11"][1], id="mistral"),
        pytest.param(LLAMA31_TEMPLATE, "llama3", THREE_CALLS["llama3-python-tag-semicolons"][1], id="llama3"),
    ],
)
def test_detected_format_parses_that_models_calls(template, fmt, text):
    assert detect_format(template) == fmt
    assert _calls(parse_reply(text, format=detect_format(template))) == THREE


# --------------------------------------------------------------------------------------------------------------------
# Linear cost: a megabyte of adversarial text parses in well under a second
# --------------------------------------------------------------------------------------------------------------------


def _fill(prefix: str, unit: str, suffix: str = "") -> str:
    """``prefix``, then ``unit`` repeated to make about a megabyte, then ``suffix``."""
    return prefix + unit * max(1, (MB - len(prefix) - len(suffix)) // len(unit)) + suffix


GARBAGE = {
    "hermes-open-braces": lambda: _fill("", "<tool_call>{"),
    "hermes-open-tags": lambda: _fill("", "<tool_call>"),
    "hermes-close-tags": lambda: _fill("", "</tool_call>"),
    "hermes-empty-blocks": lambda: _fill("", "<tool_call></tool_call>"),
    "hermes-opens-then-one-close": lambda: _fill("", "<tool_call>{", "</tool_call>"),
    "hermes-deep-list": lambda: _fill("<tool_call>", "["),
    "hermes-deep-object": lambda: _fill("<tool_call>", '{"a":'),
    "hermes-deep-args": lambda: _fill('<tool_call>{"name": "a", "arguments": ', "["),
    "hermes-deep-args-string": lambda: _fill('<tool_call>{"name": "a", "arguments": "', "["),
    "hermes-unterminated-name": lambda: _fill('<tool_call>{"name": "', "a"),
    "hermes-name-key-spaces": lambda: _fill('<tool_call>{"name"', " "),
    "hermes-name-keys": lambda: _fill("<tool_call>{", '"name":'),
    "hermes-fences": lambda: _fill("<tool_call>", "```"),
    "mistral-open-list-braces": lambda: _fill("[TOOL_CALLS][", "{"),
    "mistral-deep-list": lambda: _fill("[TOOL_CALLS]", "["),
    "mistral-markers": lambda: _fill("", "[TOOL_CALLS]"),
    "mistral-marker-brackets": lambda: _fill("", "[TOOL_CALLS]["),
    "mistral-names-without-args": lambda: _fill("", "[TOOL_CALLS]a"),
    "mistral-broken-args": lambda: _fill("", "[TOOL_CALLS]a[ARGS]{"),
    "mistral-long-name": lambda: _fill("[TOOL_CALLS]", "a"),
    "mistral-args-markers": lambda: _fill("[TOOL_CALLS]a", "[ARGS]"),
    "mistral-call-id-markers": lambda: _fill("[TOOL_CALLS]a", "[CALL_ID]"),
    "mistral-list-of-numbers": lambda: _fill("[TOOL_CALLS][", "1,"),
    "llama3-deep-list": lambda: _fill("", "["),
    "llama3-deep-tagged": lambda: _fill("<|python_tag|>", "["),
    "llama3-braces": lambda: _fill("", "{"),
    "llama3-semicolons": lambda: _fill('{"name": "a", "parameters": {}}', ";"),
    "llama3-records": lambda: _fill("", '{"name": "a", "age": 1}\n'),
    "think-opens": lambda: _fill("", "<think>"),
    "think-closes": lambda: _fill("", "</think>"),
    "end-markers-im-end": lambda: _fill("", "<|im_end|>"),
    "end-markers-eos": lambda: _fill("ok", "</s>"),
    "plain-text": lambda: _fill("", "All work and no play. "),
}


def _timed(text: str, fmt: str, tries: int = 3) -> tuple[float, ParsedReply]:
    """Best time of up to ``tries`` runs (a busy machine's scheduler is not the parser's cost), and the result."""
    best, result = math.inf, None
    for _ in range(tries):
        start = time.perf_counter()
        result = parse_reply(text, format=fmt)
        best = min(best, time.perf_counter() - start)
        if best < 0.25 or best > 3.0:  # clearly fast, or clearly not scheduler noise
            break
    assert result is not None
    return best, result


def _formats_for(shape: str) -> list[str]:
    """The format a shape attacks, and "auto"; shapes common to every format run under all four."""
    own = shape.partition("-")[0]
    return [own, "auto"] if own in FORMATS else FORMATS


# A 10 s cap keeps a quadratic regression from stalling the suite; it fails the test all the same.
@pytest.mark.timeout(10)
@pytest.mark.parametrize(("shape", "fmt"), [(shape, fmt) for shape in GARBAGE for fmt in _formats_for(shape)])
def test_one_megabyte_of_adversarial_text_parses_in_well_under_a_second(shape, fmt):
    text = GARBAGE[shape]()
    assert len(text) >= MB * 0.99
    seconds, reply = _timed(text, fmt)
    assert isinstance(reply, ParsedReply)
    assert seconds < 1.0, f"{shape} as {fmt}: {seconds:.2f}s"


@pytest.mark.timeout(10)
@pytest.mark.parametrize(
    ("fmt", "unit"),
    [
        pytest.param("hermes", _hermes(*TIME), id="hermes"),
        pytest.param("mistral", _mistral_v11(*TIME), id="mistral-v11"),
        pytest.param("llama3", _llama(*TIME) + ";", id="llama3"),
    ],
)
def test_a_megabyte_of_well_formed_calls_parses_in_well_under_a_second(fmt, unit):
    text = _fill("", unit)
    assert len(text) // len(unit) > MAX_CALLS
    seconds, reply = _timed(text, fmt)
    # Only the first MAX_CALLS calls are read; the one past them says the rest were ignored.
    assert len(reply.tool_calls) == MAX_CALLS
    assert all(call["name"] == "get_time" for call in reply.tool_calls)
    [overflow] = reply.invalid_tool_calls
    assert f"more than {MAX_CALLS} tool calls" in overflow["error"]
    _check_ids_and_types(reply)
    assert seconds < 1.0, f"{fmt}: {seconds:.2f}s"

"""The ReAct text parser: tricky but common model outputs, its ordering rules, and its linear cost."""

from __future__ import annotations

import math
import random
import string
import time
from collections.abc import Callable
from typing import Any

import pytest

from agentkit.react_parser import (
    ParsedAction,
    ParsedFinal,
    ParseFailure,
    cut_at_observation,
    drop_think,
    parse_react,
)

MB = 1_000_000

# --------------------------------------------------------------------------------------------------------------------
# Actions: the tool name and the shape of its input
# --------------------------------------------------------------------------------------------------------------------

ACTIONS = [
    pytest.param(
        'Action: calculator\nAction Input: {"expression": "2+2"}',
        "calculator",
        '{"expression": "2+2"}',
        {"expression": "2+2"},
        id="json-object",
    ),
    pytest.param("Action: search\nAction Input: cats and dogs", "search", "cats and dogs", "cats and dogs", id="plain"),
    pytest.param('Action: search\nAction Input: "cats"', "search", '"cats"', "cats", id="json-string"),
    pytest.param("Action: search\nAction Input: 'cats'", "search", "'cats'", "cats", id="single-quoted-string"),
    pytest.param(
        'Action: multiply\nAction Input: {\n  "a": 3,\n  "b": [1, 2]\n}',
        "multiply",
        '{\n  "a": 3,\n  "b": [1, 2]\n}',
        {"a": 3, "b": [1, 2]},
        id="multi-line-json",
    ),
    pytest.param(
        'Action: multiply\nAction Input: ```json\n{"a": 3,\n "b": 12.5}\n```',
        "multiply",
        '{"a": 3,\n "b": 12.5}',
        {"a": 3, "b": 12.5},
        id="json-fence-on-label-line",
    ),
    pytest.param(
        'Action: multiply\nAction Input:\n```json\n{"a": 3, "b": 4}\n```',
        "multiply",
        '{"a": 3, "b": 4}',
        {"a": 3, "b": 4},
        id="json-fence-on-next-line",
    ),
    pytest.param(
        'Action: multiply\nAction Input: ```\n{"a": 3, "b": 4}\n```',
        "multiply",
        '{"a": 3, "b": 4}',
        {"a": 3, "b": 4},
        id="bare-fence",
    ),
    pytest.param(
        'Action: multiply\nAction Input:\n```\n{"a": 3, "b": 4}\n```\n',
        "multiply",
        '{"a": 3, "b": 4}',
        {"a": 3, "b": 4},
        id="bare-fence-next-line",
    ),
    pytest.param(
        'Action: multiply\nAction Input: ```{"a": 3}```',
        "multiply",
        '{"a": 3}',
        {"a": 3},
        id="one-line-fence",
    ),
    pytest.param(
        "Action: shell\nAction Input: ```bash\nls -la\n```",
        "shell",
        "ls -la",
        "ls -la",
        id="plain-text-in-tagged-fence",
    ),
    pytest.param(
        '  Thought:  hmm  \r\n\tAction:\tcalculator  \r\nAction Input:   {"a": 1}   \r\n',
        "calculator",
        '{"a": 1}',
        {"a": 1},
        id="whitespace-crlf-tabs",
    ),
    pytest.param(
        'Action: calculator\r\nAction Input: {\r\n  "a": 1\r\n}\r\n',
        "calculator",
        '{\n  "a": 1\n}',
        {"a": 1},
        id="crlf-multi-line-json",
    ),
    pytest.param("ACTION: calculator\naction input: 3", "calculator", "3", 3, id="capitalisation"),
    pytest.param("action: calculator\nACTION INPUT: 3", "calculator", "3", 3, id="capitalisation-reversed"),
    pytest.param("Action : calculator\nAction  Input : 3", "calculator", "3", 3, id="spaces-around-label"),
    pytest.param("Action: calculator\nAction_Input: 3", "calculator", "3", 3, id="action_input-underscore"),
    pytest.param("Action: calculator\nActionInput: 3", "calculator", "3", 3, id="actioninput-joined"),
    pytest.param("Action: calculator\nInput: 3", "calculator", "3", 3, id="input-alias"),
    pytest.param(
        '**Action:** calculator\n**Action Input:** {"a": 1}',
        "calculator",
        '{"a": 1}',
        {"a": 1},
        id="markdown-bold-inside",
    ),
    pytest.param(
        '**Action**: calculator\n__Action Input__: {"a": 1}',
        "calculator",
        '{"a": 1}',
        {"a": 1},
        id="markdown-bold-outside",
    ),
    pytest.param("### Action: calculator\n> Action Input: 7", "calculator", "7", 7, id="heading-and-quote"),
    pytest.param("Action: `calculator`\nAction Input: 7", "calculator", "7", 7, id="backticked-tool"),
    pytest.param('Action: "calculator"\nAction Input: 7', "calculator", "7", 7, id="quoted-tool"),
    pytest.param("Action: calculator.\nAction Input: 7", "calculator", "7", 7, id="tool-trailing-period"),
    pytest.param("Action: calculator(2+2)", "calculator", "2+2", "2+2", id="inline-call"),
    pytest.param("Action: calculator (2+2)", "calculator", "2+2", "2+2", id="inline-call-space"),
    pytest.param(
        'Action: calculator({"expression": "2+2"})',
        "calculator",
        '{"expression": "2+2"}',
        {"expression": "2+2"},
        id="inline-call-json",
    ),
    pytest.param("Action: search[cats]", "search", "cats", "cats", id="inline-brackets"),
    pytest.param("Action: list_dir()", "list_dir", "", "", id="inline-empty-call"),
    pytest.param("Action: calculator(1)\nAction Input: 2", "calculator", "2", 2, id="explicit-input-beats-inline"),
    pytest.param(
        "Action: calculator\nAction Input: {'expression': '2+2', 'exact': True, 'n': None}",
        "calculator",
        "{'expression': '2+2', 'exact': True, 'n': None}",
        {"expression": "2+2", "exact": True, "n": None},
        id="python-dict",
    ),
    pytest.param(
        'Action: calculator\nAction Input: {"expression": "2+2"} and then I will read the result',
        "calculator",
        '{"expression": "2+2"} and then I will read the result',
        {"expression": "2+2"},
        id="json-then-junk",
    ),
    pytest.param(
        'Action: calculator\nAction Input: {"expression": "2+2"}\nI will now wait for the result.',
        "calculator",
        '{"expression": "2+2"}\nI will now wait for the result.',
        {"expression": "2+2"},
        id="json-then-junk-line",
    ),
    pytest.param("Action: calculator\nAction Input: 42", "calculator", "42", 42, id="bare-int"),
    pytest.param("Action: calculator\nAction Input: -2.5", "calculator", "-2.5", -2.5, id="bare-float"),
    pytest.param("Action: flag\nAction Input: true", "flag", "true", True, id="bare-bool"),
    pytest.param("Action: flag\nAction Input: null", "flag", "null", None, id="bare-null"),
    pytest.param("Action: pick\nAction Input: [1, 2]", "pick", "[1, 2]", [1, 2], id="bare-list"),
    # A bare (non-object) JSON value followed by text is not cut: the whole line is the plain-text input.
    pytest.param("Action: count\nAction Input: 42 apples", "count", "42 apples", "42 apples", id="number-then-text"),
    pytest.param("Action: list_dir", "list_dir", "", "", id="missing-input"),
    pytest.param("Action: list_dir\nAction Input:", "list_dir", "", "", id="empty-input"),
    pytest.param("Action:\ncalculator\nAction Input: 1", "calculator", "1", 1, id="tool-on-next-line"),
    pytest.param("Action: calculator with care\nAction Input: 1", "calculator", "1", 1, id="tool-then-words"),
    pytest.param(
        'Action: translate\nAction Input: {"text": "café ☕ 答案 🎉"}',
        "translate",
        '{"text": "café ☕ 答案 🎉"}',
        {"text": "café ☕ 答案 🎉"},
        id="unicode",
    ),
    pytest.param(
        "Action: translate\nAction Input: Grüße, мир",
        "translate",
        "Grüße, мир",
        "Grüße, мир",
        id="unicode-plain",
    ),
]


@pytest.mark.parametrize(("text", "tool", "raw", "value"), ACTIONS)
def test_action(text: str, tool: str, raw: str, value: Any) -> None:
    parsed = parse_react(text)
    assert isinstance(parsed, ParsedAction), parsed
    assert parsed.tool == tool
    assert parsed.raw_input == raw
    assert parsed.value == value
    assert type(parsed.value) is type(value)


def test_thought_is_kept_with_the_action() -> None:
    parsed = parse_react("Thought: I need the price.\nIt is in the tool.\nAction: stock_price\nAction Input: ACME")
    assert parsed == ParsedAction("I need the price.\nIt is in the tool.", "stock_price", "ACME", "ACME")


def test_text_before_the_first_label_counts_as_thought() -> None:
    parsed = parse_react("I should look it up.\nAction: search\nAction Input: cats")
    assert isinstance(parsed, ParsedAction)
    assert parsed.thought == "I should look it up."


def test_only_the_first_thought_is_kept() -> None:
    parsed = parse_react("Thought: first\nThought: second\nFinal Answer: done")
    assert parsed == ParsedFinal("first", "done")


def test_action_input_written_after_a_final_answer_does_not_belong_to_the_action() -> None:
    # The input belongs to the action only when nothing else (another action, an answer) comes between them.
    parsed = parse_react("Action: calculator\nFinal Answer: 4\nAction Input: 2+2")
    assert parsed == ParsedAction("", "calculator", "", "")


def test_first_of_two_actions_wins_with_its_own_input() -> None:
    parsed = parse_react("Action: first\nAction Input: 1\nAction: second\nAction Input: 2")
    assert parsed == ParsedAction("", "first", "1", 1)


def test_second_action_input_is_not_borrowed() -> None:
    parsed = parse_react("Action: first\nAction: second\nAction Input: 2")
    assert parsed == ParsedAction("", "first", "", "")


def test_action_input_before_the_action_is_not_used() -> None:
    parsed = parse_react("Action Input: 1\nAction: calculator")
    assert parsed == ParsedAction("", "calculator", "", "")


def test_python_literal_is_only_tried_on_small_inputs() -> None:
    # ast.literal_eval's cost is not linear, so a huge single-quoted dict stays plain text (no exception, no dict).
    big = "{" + ", ".join(f"'k{i}': {i}" for i in range(5_000)) + "}"
    parsed = parse_react(f"Action: store\nAction Input: {big}")
    assert isinstance(parsed, ParsedAction)
    assert parsed.value == big
    small = "{" + ", ".join(f"'k{i}': {i}" for i in range(10)) + "}"
    parsed = parse_react(f"Action: store\nAction Input: {small}")
    assert isinstance(parsed, ParsedAction)
    assert parsed.value == {f"k{i}": i for i in range(10)}


@pytest.mark.parametrize(
    "raw",
    [
        "{not json at all",
        "{'a': 1",
        "{'a': [1, 2}",
        "{" + "[" * 19_000,
        "{" + "(" * 19_000,
        "{'a': " + "-" * 19_000 + "1}",
        "{'a': " + "not " * 4_500 + "1}",
        "{'a': " + "9" * 19_000 + "}",
        "{'a': \x00}",
        "{" + "{" * 19_000,
        "{" + '"a":' * 5_000,
    ],
    ids=[
        "unclosed",
        "py-unclosed",
        "py-mismatched",
        "deep-brackets",
        "deep-parens",
        "deep-unary",
        "deep-not",
        "huge-int-literal",
        "nul-byte",
        "deep-braces",
        "repeated-keys",
    ],
)
def test_broken_object_input_falls_back_to_text(raw: str) -> None:
    parsed = parse_react(f"Action: tool\nAction Input: {raw}")
    assert isinstance(parsed, ParsedAction)
    assert parsed.tool == "tool"
    assert parsed.value == raw


@pytest.mark.parametrize("raw", ["[" * 100_000, "9" * 100_000, '"' + "a" * 100_000], ids=["deep", "digits", "quote"])
def test_broken_bare_input_falls_back_to_text(raw: str) -> None:
    parsed = parse_react(f"Action: tool\nAction Input: {raw}")
    assert isinstance(parsed, ParsedAction)
    assert parsed.value == raw


# --------------------------------------------------------------------------------------------------------------------
# Final answers
# --------------------------------------------------------------------------------------------------------------------

FINALS = [
    pytest.param("Final Answer: 42", "", "42", id="simple"),
    pytest.param("Thought: easy\nFinal Answer: 42", "easy", "42", id="with-thought"),
    pytest.param("final answer: 42", "", "42", id="lowercase"),
    pytest.param("FINAL ANSWER: 42", "", "42", id="uppercase"),
    pytest.param("Final_Answer: 42", "", "42", id="underscore"),
    pytest.param("FinalAnswer: 42", "", "42", id="joined"),
    pytest.param("**Final Answer:** 42", "", "42", id="markdown-bold"),
    pytest.param("## Final Answer: 42", "", "42", id="markdown-heading"),
    pytest.param("  Final Answer:\t42  \r\n", "", "42", id="whitespace-crlf"),
    pytest.param("Final Answer:\n42", "", "42", id="answer-on-next-line"),
    # Everything after the label is the answer, across lines and blank lines, up to the next label line.
    pytest.param(
        "Final Answer: Here are the steps:\n1. open\n\n2. close\n",
        "",
        "Here are the steps:\n1. open\n\n2. close",
        id="multi-line",
    ),
    pytest.param(
        "Final Answer: line one\r\nline two\r\n",
        "",
        "line one\nline two",
        id="multi-line-crlf",
    ),
    pytest.param("Final Answer: Note: the time is 10:30", "", "Note: the time is 10:30", id="colons-in-answer"),
    pytest.param("Final Answer: a\nNote: not a label\nb", "", "a\nNote: not a label\nb", id="unknown-label-kept"),
    # A line that starts with a label ends the answer, even the short `Input:` alias.
    pytest.param("Final Answer: a\nInput: b\nc", "", "a", id="label-line-ends-answer"),
    # ... and a `Thought:` written after the answer is not the answer's reasoning: parsing stops at it.
    pytest.param("Final Answer: a\nThought: b", "", "a", id="thought-line-ends-answer"),
    pytest.param("Final Answer: ```python\nprint(1)\n```", "", "```python\nprint(1)\n```", id="code-fence-kept"),
    pytest.param("Thought: café ☕\nFinal Answer: 答案 🎉", "café ☕", "答案 🎉", id="unicode"),
    pytest.param("<think>\nLet me think.\nAction: nope\n</think>\n\nFinal Answer: 4", "", "4", id="think-dropped"),
    pytest.param(
        "<think>Final Answer: wrong</think>\nThought: sure\nFinal Answer: right", "sure", "right", id="think-inline"
    ),
    pytest.param("  \n<think>x</think>Final Answer: 4", "", "4", id="think-after-whitespace"),
]


@pytest.mark.parametrize(("text", "thought", "answer"), FINALS)
def test_final(text: str, thought: str, answer: str) -> None:
    assert parse_react(text) == ParsedFinal(thought, answer)


# --------------------------------------------------------------------------------------------------------------------
# Ordering: the first of action / final answer wins; a self-written observation ends the output
# --------------------------------------------------------------------------------------------------------------------


def test_action_first_wins_over_a_later_final_answer() -> None:
    parsed = parse_react("Thought: t\nAction: calculator\nAction Input: 2+2\nFinal Answer: 4")
    assert isinstance(parsed, ParsedAction)
    assert parsed == ParsedAction("t", "calculator", "2+2", "2+2")
    assert "4" not in parsed.raw_input


def test_final_answer_first_wins_over_a_later_action() -> None:
    parsed = parse_react("Thought: t\nFinal Answer: 4\nAction: calculator\nAction Input: 2+2")
    assert isinstance(parsed, ParsedFinal)
    assert parsed == ParsedFinal("t", "4")
    assert "calculator" not in parsed.answer
    assert "Action" not in parsed.answer


def test_self_written_observation_ends_parsing() -> None:
    text = "Action: calculator\nAction Input: 2+2\nObservation: 4\nThought: done\nFinal Answer: 4"
    parsed = parse_react(text)
    assert parsed == ParsedAction("", "calculator", "2+2", "2+2")


@pytest.mark.parametrize("label", ["Observation:", "observation:", "**Observation:**", "  OBSERVATION :"])
def test_observation_label_variants_end_parsing(label: str) -> None:
    parsed = parse_react(f"Thought: t\n{label} 4\nFinal Answer: 4")
    assert isinstance(parsed, ParseFailure)
    assert parsed.thought == "t"


def test_observation_at_the_start_leaves_nothing() -> None:
    assert isinstance(parse_react("Observation: 4\nFinal Answer: 4"), ParseFailure)


def test_observation_inside_a_line_is_not_a_label() -> None:
    parsed = parse_react("Final Answer: my Observation: it works")
    assert parsed == ParsedFinal("", "my Observation: it works")


# --------------------------------------------------------------------------------------------------------------------
# Failures
# --------------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "needle", "thought"),
    [
        pytest.param("Action:\nAction Input: 2+2", "does not name a tool", "", id="empty-tool"),
        pytest.param("Thought: t\nAction:   \t", "does not name a tool", "t", id="blank-tool"),
        pytest.param(
            "I think the answer is 4.", "No 'Action:' or 'Final Answer:'", "I think the answer is 4.", id="no-labels"
        ),
        pytest.param("", "No 'Action:' or 'Final Answer:'", "", id="empty"),
        pytest.param("   \n\r\n\t", "No 'Action:' or 'Final Answer:'", "", id="whitespace"),
        pytest.param("Thought: only thinking", "No 'Action:' or 'Final Answer:'", "only thinking", id="thought-only"),
        pytest.param("The Action: is not at the line start, sorry", "No 'Action:'", None, id="label-too-late"),
        pytest.param("Thought: hmm\nAction Input: {}", "without an 'Action:' line", "hmm", id="input-without-action"),
        pytest.param("Final Answer:   \n  ", "'Final Answer:' is empty", "", id="empty-final"),
        pytest.param("<think>Final Answer: 4</think>", "No 'Action:'", "", id="answer-only-inside-think"),
    ],
)
def test_failure(text: str, needle: str, thought: str | None) -> None:
    parsed = parse_react(text)
    assert isinstance(parsed, ParseFailure), parsed
    assert needle in parsed.reason
    if thought is not None:
        assert parsed.thought == thought


def test_failure_reason_tells_the_model_what_to_write() -> None:
    parsed = parse_react("just chatting")
    assert isinstance(parsed, ParseFailure)
    assert "Action Input:" in parsed.reason
    assert "Final Answer:" in parsed.reason


def test_results_are_immutable() -> None:
    parsed = parse_react("Final Answer: 4")
    with pytest.raises(AttributeError):
        parsed.answer = "5"  # type: ignore[misc]


# --------------------------------------------------------------------------------------------------------------------
# cut_at_observation and drop_think
# --------------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param(
            "Thought: t\nAction: calc\nAction Input: 1\nObservation: 1\nFinal Answer: 1",
            "Thought: t\nAction: calc\nAction Input: 1",
            id="cut",
        ),
        pytest.param("Action: calc\n\n  **Observation:** x", "Action: calc", id="decorated"),
        pytest.param("Action: calc\nobservation: x\nObservation: y", "Action: calc", id="first-one"),
        pytest.param("Action: calc\r\nObservation: x\r\n", "Action: calc", id="crlf"),
        pytest.param("Observation: x\nFinal Answer: 1", "", id="at-start"),
        pytest.param("Final Answer: 1  \n\n", "Final Answer: 1", id="none-right-stripped"),
        pytest.param("Final Answer: the Observation: stays", "Final Answer: the Observation: stays", id="mid-line"),
        pytest.param("  Thought: a\r\n  b\nObservation:", "  Thought: a\r\n  b", id="kept-part-verbatim"),
        pytest.param("", "", id="empty"),
    ],
)
def test_cut_at_observation(text: str, expected: str) -> None:
    assert cut_at_observation(text) == expected


def test_cut_then_parse_matches_parse() -> None:
    text = "Thought: t\nAction: calc\nAction Input: 1\nObservation: 1\nFinal Answer: 1"
    assert parse_react(cut_at_observation(text)) == parse_react(text)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param("<think>scratch</think>Final Answer: 1", "Final Answer: 1", id="leading"),
        pytest.param("\n  <think>\na\nb\n</think>\nFinal Answer: 1", "\nFinal Answer: 1", id="leading-whitespace"),
        pytest.param("Final Answer: 1 <think>x</think>", "Final Answer: 1 <think>x</think>", id="not-leading"),
        pytest.param("<think>never closed\nFinal Answer: 1", "<think>never closed\nFinal Answer: 1", id="unclosed"),
        pytest.param("<think>a</think>b<think>c</think>d", "b<think>c</think>d", id="only-first-block"),
        # Some chat templates put `<think>` in the prompt: the reply starts inside the block.
        pytest.param("reasoning</think>Final Answer: 1", "Final Answer: 1", id="no-opening-tag"),
        pytest.param("Thought: x <think>y</think> z", "Thought: x <think>y</think> z", id="inline-block-kept"),
        pytest.param("no thinking here", "no thinking here", id="none"),
        pytest.param("", "", id="empty"),
    ],
)
def test_drop_think(text: str, expected: str) -> None:
    assert drop_think(text) == expected


# --------------------------------------------------------------------------------------------------------------------
# Linear time: a megabyte of garbage parses in well under a second, and twice as much costs about twice as long
# --------------------------------------------------------------------------------------------------------------------


def _random_text(size: int, alphabet: str, seed: int) -> str:
    rng = random.Random(seed)
    return "".join(rng.choices(alphabet, k=size))


GARBAGE: dict[str, Callable[[int], str]] = {
    "action-lines": lambda n: "Action:\n" * (n // 8),
    "action-one-line": lambda n: "Action:" * (n // 7),
    "action-input-lines": lambda n: "Action: x\n" + "Action Input:\n" * (n // 14),
    "final-lines": lambda n: "Final Answer: " + "a\n" * (n // 2),
    "newlines": lambda n: "\n" * n,
    "nested-braces": lambda n: "Action: x\nAction Input: " + "{" * n,
    "nested-brackets": lambda n: "Action: x\nAction Input: " + "[" * n,
    "brace-then-brackets": lambda n: "Action: x\nAction Input: {" + "[" * n,
    "brace-lines": lambda n: "Action: x\nAction Input: " + "{\n" * (n // 2),
    "random-printable": lambda n: _random_text(n, string.printable, 1),
    "random-json-ish": lambda n: (
        "Action: x\nAction Input: " + _random_text(n, string.ascii_letters + "{}[]\"':,\n ", 2)
    ),
    "one-line": lambda n: "x" * n,
    "one-line-action": lambda n: "Action: " + "x" * n,
    "unterminated-string": lambda n: 'Action: x\nAction Input: "' + "a" * n,
    "unterminated-object": lambda n: 'Action: x\nAction Input: {"a": "' + "a" * n,
    "digits": lambda n: "Action: x\nAction Input: " + "9" * n,
    "fences": lambda n: "Action: x\nAction Input:\n" + "```\n" * (n // 4),
    "parens": lambda n: "Action: x" + "(" * n + ")",
    "unclosed-think": lambda n: "<think>" + "a" * n,
    "colons": lambda n: ":" * n,
    "decoration": lambda n: "*" * n + "Action: x",
    "observations": lambda n: "Observation:\n" * (n // 13),
}


def _timed(func: Callable[[str], Any], text: str, tries: int = 3, good_enough: float = 0.25) -> tuple[float, Any]:
    """Best time of up to `tries` runs (a busy machine's scheduler is not the parser's cost), and the result."""
    best, result = math.inf, None
    for _ in range(tries):
        start = time.perf_counter()
        result = func(text)
        best = min(best, time.perf_counter() - start)
        if best < good_enough:
            break
    return best, result


@pytest.mark.parametrize("shape", list(GARBAGE))
def test_one_megabyte_of_garbage_parses_in_well_under_a_second(shape: str) -> None:
    text = GARBAGE[shape](MB)
    assert len(text) >= MB * 0.99
    seconds, result = _timed(parse_react, text)
    assert isinstance(result, (ParsedAction, ParsedFinal, ParseFailure))
    assert seconds < 1.0


@pytest.mark.parametrize("shape", ["action-lines", "newlines", "random-printable", "one-line", "unclosed-think"])
def test_helpers_are_linear_on_a_megabyte(shape: str) -> None:
    text = GARBAGE[shape](MB)
    assert _timed(cut_at_observation, text)[0] < 1.0
    assert _timed(drop_think, text)[0] < 1.0


@pytest.mark.slow
@pytest.mark.parametrize("shape", ["action-lines", "nested-braces", "random-json-ish", "one-line-action"])
def test_parse_time_scales_linearly(shape: str) -> None:
    one, two = GARBAGE[shape](MB), GARBAGE[shape](2 * MB)
    t1 = t2 = math.inf
    # Interleaved, best of three: both sizes see the same machine load.
    for _ in range(3):
        t1 = min(t1, _timed(parse_react, one, tries=1)[0])
        t2 = min(t2, _timed(parse_react, two, tries=1)[0])
    # Linear is ~2x; quadratic would be ~4x. The constant absorbs timer noise on tiny times.
    assert t2 < 4 * t1 + 0.05, f"1 MB: {t1:.3f}s, 2 MB: {t2:.3f}s"

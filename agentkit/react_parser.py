"""Parse classic ReAct text (Thought / Action / Action Input / Final Answer) in linear time.

The parser finds label lines with one linear-time regular expression (every repetition bounded) and reads only
the sections the rules need, stopping early, so a megabyte of garbage costs milliseconds.

Rules, in order:

* A ``<think>...</think>`` block before the answer is dropped.
* Labels are matched at the start of a line, ignoring case, surrounding spaces and markdown emphasis
  (``**Action:**``). ``Action Input`` may also be written ``Action_Input`` or ``Input``.
* An ``Observation:`` line ends the output: whatever follows was invented by the model, not seen by it.
* When an output holds both an action and a final answer, **the one written first wins** and the other is ignored.
  An action written first means the answer after it rests on an observation the model never saw; an answer written
  first is what the model committed to. A tool is never run *and* an answer returned from one output.
* The action input may be JSON (an object or a bare value), a Python-style dict, plain text, or any of those inside
  a code fence; text after a complete JSON value is ignored.
"""

from __future__ import annotations

import ast
import json
import re
from dataclasses import dataclass
from typing import Any

__all__ = ["ParseFailure", "ParsedAction", "ParsedFinal", "cut_at_observation", "drop_think", "parse_react"]

_KINDS = {
    "thought": "thought",
    "action": "action",
    "actioninput": "input",
    "input": "input",
    "finalanswer": "final",
    "observation": "observation",
}
# A label starts a line, may be wrapped in markdown (``**Action:**``) and ends with a colon. Every repetition is
# bounded and the label words share no characters with the decoration, so matching stays linear: a megabyte of
# garbage is scanned at C speed, and only label lines reach Python.
_DECORATION = r"[ \t*_`#>]{0,6}"
_LABEL = re.compile(
    rf"^{_DECORATION}(thought|action[ \t_]{{0,3}}input|action|input|final[ \t_]{{0,3}}answer|observation)"
    rf"{_DECORATION}:[ \t*_]*",
    re.IGNORECASE | re.MULTILINE,
)
_OBSERVATION = re.compile(rf"^{_DECORATION}observation{_DECORATION}:", re.IGNORECASE | re.MULTILINE)
_DECISIVE = re.compile(
    rf"^{_DECORATION}(action(?![ \t_]{{0,3}}input)|final[ \t_]{{0,3}}answer|observation){_DECORATION}:[ \t*_]*",
    re.IGNORECASE | re.MULTILINE,
)
_INPUT = re.compile(rf"^{_DECORATION}(?:action[ \t_]{{0,3}})?input{_DECORATION}:", re.IGNORECASE | re.MULTILINE)
_MAX_LITERAL = 20_000  # ast.literal_eval is only tried on inputs this small: its cost is not linear


@dataclass(frozen=True, slots=True)
class ParsedAction:
    """A tool call written in ReAct text.

    Attributes:
        thought: The reasoning before the action ('' when none).
        tool: The tool name as written.
        raw_input: The action input as written, fences removed.
        value: The input parsed: a dict, a JSON scalar or the plain string.
    """

    thought: str
    tool: str
    raw_input: str
    value: Any


@dataclass(frozen=True, slots=True)
class ParsedFinal:
    """A final answer written in ReAct text.

    Attributes:
        thought: The reasoning before the answer ('' when none).
        answer: The answer text.
    """

    thought: str
    answer: str


@dataclass(frozen=True, slots=True)
class ParseFailure:
    """An output that holds neither a usable action nor a final answer.

    Attributes:
        reason: What is wrong, written for the model.
        thought: Any reasoning found ('' when none).
    """

    reason: str
    thought: str = ""


def parse_react(text: str) -> ParsedAction | ParsedFinal | ParseFailure:
    """Parse one model output written in the ReAct text format.

    Args:
        text: The model's output.

    Returns:
        The action or final answer it holds, or a failure whose reason can be shown to the model.
    """
    scan = _Scan.of(drop_think(text))
    thought = scan.thought.strip()
    if scan.decision is None:
        if scan.orphan_input:
            return ParseFailure("'Action Input:' was given without an 'Action:' line naming the tool.", thought)
        return ParseFailure(
            "No 'Action:' or 'Final Answer:' found. Either call a tool with 'Action:' and 'Action Input:' "
            "lines, or answer with a 'Final Answer:' line.",
            thought,
        )
    body = scan.body.strip()
    if scan.decision == "final":
        if not body:
            return ParseFailure("'Final Answer:' is empty. Write the answer after it.", thought)
        return ParsedFinal(thought, body)
    tool, inline = _split_call(body.split("\n", 1)[0])
    if not tool:
        return ParseFailure("'Action:' does not name a tool.", thought)
    raw = _strip_fence((scan.input if scan.input is not None else inline).strip())
    return ParsedAction(thought, tool, raw, _parse_value(raw))


class _Scan:
    """What the rules need from an output, found in one pass that stops as soon as the rest cannot matter.

    Attributes:
        thought: The reasoning: text before the first label, else the first ``Thought:`` section, as long as it
            comes before the action or answer.
        decision: ``"action"`` or ``"final"``, whichever label came first; None when neither did.
        body: That section's text.
        input: The ``Action Input:`` section that directly follows the action, if any.
        orphan_input: Whether an ``Action Input:`` appeared with no action before it.
    """

    __slots__ = ("body", "decision", "input", "orphan_input", "thought")

    def __init__(self) -> None:
        self.thought = ""
        self.decision: str | None = None
        self.body = ""
        self.input: str | None = None
        self.orphan_input = False

    @classmethod
    def of(cls, text: str) -> _Scan:
        scan = cls()
        text = text.replace("\r\n", "\n").replace("\r", "\n")
        label = _LABEL.search(text)
        if text[: label.start() if label else len(text)].strip():
            scan.thought = text[: label.start()] if label else text
        while label is not None:
            kind = _kind(label)
            if kind == "observation":
                break  # whatever follows was invented by the model
            after = _LABEL.search(text, label.end())
            body = text[label.end() : after.start() if after else len(text)]
            if kind in ("action", "final"):
                scan.decision, scan.body = kind, body
                if kind == "action" and after is not None and _kind(after) == "input":
                    following = _LABEL.search(text, after.end())
                    scan.input = text[after.end() : following.start() if following else len(text)]
                break
            if kind == "thought" and not scan.thought:
                scan.thought = body
                label = after
                continue
            # A later thought or a stray input changes nothing: jump to the next label that can decide, noting
            # any input skipped on the way (the error message names it).
            start = label.end()
            label = _DECISIVE.search(text, start)
            scan.orphan_input = (
                scan.orphan_input
                or kind == "input"
                or _INPUT.search(text, start, label.start() if label else len(text)) is not None
            )
        return scan


def _kind(label: re.Match[str]) -> str:
    return _KINDS[_squash(label.group(1))]


def _squash(label: str) -> str:
    return "".join(label.lower().split()).replace("_", "")


def drop_think(text: str) -> str:
    """Drop a leading reasoning block: a reasoning model's scratchpad is not part of its reply.

    The block is ``<think>...</think>``, or ``...</think>`` alone when the chat template opened it in the prompt.
    """
    end = text.find("</think>")
    if end == -1:
        return text
    start = text.find("<think>", 0, end)
    if start == -1 or not text[:start].strip():
        return text[end + len("</think>") :]
    return text


def _split_call(line: str) -> tuple[str, str]:
    """Split ``tool``, ``tool[input]`` or ``tool(input)`` into name and inline input."""
    line = line.strip().strip("`'\"").strip()
    for opener, closer in (("(", ")"), ("[", "]")):
        start = line.find(opener)
        if start > 0 and line.endswith(closer):
            return line[:start].strip().strip("`'\""), line[start + 1 : -1]
    return line.split(" ", 1)[0].rstrip(".,;:").strip("`'\""), ""


def _strip_fence(raw: str) -> str:
    if not raw.startswith("```"):
        return raw
    body = raw[3:]
    newline = body.find("\n")
    # ```json\n{...}\n``` : drop the language tag line; a one-line ```{...}``` has none.
    body = body[newline + 1 :] if newline != -1 and body[:newline].strip().isalnum() else body
    end = body.rfind("```")
    return (body[:end] if end != -1 else body).strip()


def _parse_value(raw: str) -> Any:
    if not raw:
        return ""
    start = raw.find("{")
    if start != -1 and not raw[:start].strip():
        try:
            value, _ = json.JSONDecoder().raw_decode(raw, start)
            return value
        except (ValueError, RecursionError):
            pass
        if len(raw) <= _MAX_LITERAL:
            try:
                value = ast.literal_eval(raw)
            except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
                value = None
            if isinstance(value, dict):
                return value
    try:
        value = json.loads(raw)
    except (ValueError, RecursionError):
        return _unquote(raw)
    return value


def _unquote(raw: str) -> str:
    if len(raw) >= 2 and raw[0] == raw[-1] and raw[0] in "'\"":
        return raw[1:-1]
    return raw


def cut_at_observation(text: str) -> str:
    """Drop an ``Observation:`` line the model wrote itself, and everything after it.

    Args:
        text: A model output.

    Returns:
        The output up to (not including) its first observation line, right-stripped.
    """
    match = _OBSERVATION.search(text)
    return (text[: match.start()] if match else text).rstrip()

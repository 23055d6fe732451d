"""Parse classic ReAct text (Thought / Action / Action Input / Final Answer) in linear time.

The parser is a single pass over lines with fixed-width label checks and no backtracking regular expression, so a
megabyte of garbage costs milliseconds (LangChain's ReAct regex is quadratic on some inputs).

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
from dataclasses import dataclass
from typing import Any

__all__ = ["ParseFailure", "ParsedAction", "ParsedFinal", "cut_at_observation", "drop_think", "parse_react"]

_LABELS = {
    "thought": "thought",
    "action": "action",
    "action input": "input",
    "action_input": "input",
    "actioninput": "input",
    "input": "input",
    "final answer": "final",
    "final_answer": "final",
    "finalanswer": "final",
    "observation": "observation",
}
_MAX_LABEL = 24  # longest label plus markdown and spaces: the colon must come this early to count
_MAX_LITERAL = 20_000  # ast.literal_eval is only tried on inputs this small: its cost is not linear
_DECORATION = " \t*_`#>"


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
    sections = _sections(drop_think(text))
    thought = _first(sections, "thought")
    order = [kind for kind, _ in sections if kind in ("action", "final")]
    if not order:
        if _first(sections, "input") is not None:
            return ParseFailure("'Action Input:' was given without an 'Action:' line naming the tool.", thought or "")
        return ParseFailure(
            "No 'Action:' or 'Final Answer:' found. Either call a tool with 'Action:' and 'Action Input:' "
            "lines, or answer with a 'Final Answer:' line.",
            thought or "",
        )
    if order[0] == "final":
        answer = (_first(sections, "final") or "").strip()
        if not answer:
            return ParseFailure("'Final Answer:' is empty. Write the answer after it.", thought or "")
        return ParsedFinal(thought or "", answer)
    return _action(sections, thought or "")


def _action(sections: list[tuple[str, str]], thought: str) -> ParsedAction | ParseFailure:
    index = next(i for i, (kind, _) in enumerate(sections) if kind == "action")
    first_line = sections[index][1].strip().split("\n", 1)[0]
    tool, inline = _split_call(first_line)
    if not tool:
        return ParseFailure("'Action:' does not name a tool.", thought)
    # The input belongs to this action only if it comes before any other action or answer.
    raw = inline
    for kind, body in sections[index + 1 :]:
        if kind == "input":
            raw = body
            break
        if kind in ("action", "final"):
            break
    raw = _strip_fence(raw.strip())
    return ParsedAction(thought, tool, raw, _parse_value(raw))


def _sections(text: str) -> list[tuple[str, str]]:
    """Split text into (label, body) pairs; text before the first label counts as a thought."""
    sections: list[tuple[str, list[str]]] = [("thought", [])]
    for line in text.splitlines():
        label, rest = _label(line)
        if label == "observation":
            break
        if label is None:
            sections[-1][1].append(line)
        else:
            sections.append((label, [rest]))
    out = [(kind, "\n".join(lines).strip()) for kind, lines in sections]
    # An empty leading pseudo-thought is noise; an explicit empty "Thought:" is kept harmlessly.
    return out[1:] if not out[0][1] else out


def _label(line: str) -> tuple[str | None, str]:
    head = line[: _MAX_LABEL + 1]
    colon = head.find(":")
    if colon <= 0:
        return None, line
    name = " ".join(head[:colon].strip(_DECORATION).lower().split())
    kind = _LABELS.get(name)
    if kind is None:
        return None, line
    # Emphasis after the label goes (``**Action:** x``); backticks stay, they may open a code fence.
    return kind, line[colon + 1 :].lstrip(" \t*_")


def _first(sections: list[tuple[str, str]], kind: str) -> str | None:
    return next((body for k, body in sections if k == kind), None)


def drop_think(text: str) -> str:
    """Drop a leading ``<think>...</think>`` block (reasoning models' scratchpad is not part of the reply)."""
    end = text.find("</think>")
    if end != -1 and text.lstrip().startswith("<think>"):
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
    offset = 0
    for line in text.splitlines(keepends=True):
        if _label(line)[0] == "observation":
            return text[:offset].rstrip()
        offset += len(line)
    return text.rstrip()

"""What an episode leaves in long-term memory (write policies), and a cheap token count for prompt budgets.

A write policy is any function from an `AgentResult` to the memories worth keeping; `ChromaMemory.commit` calls it
after every episode and stores what it returns, tagged with the episode id.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

from agentkit.memory.records import NewMemory
from agentkit.steps import AgentResult

__all__ = ["WritePolicy", "approx_tokens", "remember_answers", "remember_nothing"]

WritePolicy = Callable[[AgentResult], Sequence[NewMemory]]
"""Decides what an episode leaves in long-term memory."""

_CHARS_PER_TOKEN = 4  # English text in common BPE vocabularies; budgets are estimates, not limits to the token
# An episode memory is found by its opening (the embedding model reads a few hundred tokens): keep it short.
_MAX_QUESTION_CHARS, _MAX_ANSWER_CHARS = 1000, 2000


def approx_tokens(text: str) -> int:
    """A tokenizer-free token estimate: one token per four characters, rounded up."""
    return math.ceil(len(text) / _CHARS_PER_TOKEN)


def remember_answers(result: AgentResult) -> list[NewMemory]:
    """The default policy: a finished episode is remembered as its question and answer, as an ``"episode"``.

    Episodes that ran out of steps or time, or failed, leave nothing: a wrong or partial answer recalled later would
    mislead more than it helps.
    """
    if result.status != "finished" or not result.answer or not result.answer.strip():
        return []
    text = f"Q: {_clip(result.input, _MAX_QUESTION_CHARS)}\nA: {_clip(result.answer, _MAX_ANSWER_CHARS)}"
    return [NewMemory(text, kind="episode", importance=0.3)]


def remember_nothing(result: AgentResult) -> list[NewMemory]:
    """A policy that keeps nothing: memories are written only by the `remember` tool or by hand."""
    return []


def _clip(text: str, limit: int) -> str:
    text = text.strip()
    return text if len(text) <= limit else text[: limit - 1] + "…"

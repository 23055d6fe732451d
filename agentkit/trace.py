"""Readable traces of agent episodes for the terminal: thoughts, tool calls, observations, answer, steps, time."""

from __future__ import annotations

import json
from typing import TextIO

from agentkit.steps import Action, AgentEvent, AgentResult, Final, FormatError, Observation, Thought

__all__ = ["TracePrinter"]

_OBSERVATION_LIMIT = 400  # characters of an observation shown; the model saw all of it


class TracePrinter:
    """Prints each event of `Agent.stream` as it happens.

    Args:
        out: Where to print.
        color: Use ANSI colours (for a terminal).
    """

    def __init__(self, out: TextIO, *, color: bool = False) -> None:
        self.out = out
        self.color = color

    def _paint(self, code: str, text: str) -> str:
        return f"\033[{code}m{text}\033[0m" if self.color else text

    def __call__(self, event: AgentEvent) -> None:
        """Print one event."""
        if isinstance(event, Thought):
            line = f"  thought   {event.text}"
        elif isinstance(event, Action):
            args = json.dumps(event.args, ensure_ascii=False)
            line = self._paint("36", f"  call      {event.tool}({args})")
        elif isinstance(event, Observation):
            text = event.content if len(event.content) <= _OBSERVATION_LIMIT else event.content[:_OBSERVATION_LIMIT]
            status = "" if event.status == "ok" else f" [{event.status}]"
            line = self._paint("2", f"  observed{status}  " + text.replace("\n", "\n            "))
        elif isinstance(event, FormatError):
            line = self._paint("33", f"  retry     {event.message.splitlines()[0]}")
        elif isinstance(event, Final):
            forced = " (out of steps)" if event.forced else ""
            line = self._paint("1;32", f"Answer{forced}: {event.answer}")
        else:
            line = self._summary(event)
        print(line, file=self.out, flush=True)

    def _summary(self, result: AgentResult) -> str:
        tokens = result.usage.get("total_tokens")
        parts = [f"status={result.status}", f"steps={result.n_steps}", f"model calls={result.model_calls}"]
        if tokens:
            parts.append(f"tokens={tokens}")
        parts.append(f"time={result.seconds:.2f}s")
        summary = self._paint("2", "  " + " ".join(parts))
        if result.error:
            summary += "\n" + self._paint("31", f"  error: {result.error}")
        return summary

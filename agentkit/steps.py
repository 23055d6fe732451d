"""The typed steps of an agent's transcript, and the result of one episode.

A step is what happened, not how it was said: the planner decides how steps become messages for a given wire
format (ReAct text or native tool calls). Steps are immutable and cheap, so streaming them costs nothing.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from langchain_core.messages import BaseMessage

__all__ = [
    "Action",
    "AgentEvent",
    "AgentResult",
    "Final",
    "FormatError",
    "Observation",
    "ObservationStatus",
    "Status",
    "Step",
    "Thought",
]

Status = Literal["finished", "max_steps", "timeout", "error"]
"""How an episode ended: a final answer, the step budget, the wall-clock budget, or a fault it could not recover."""

ObservationStatus = Literal["ok", "error", "invalid_args", "timeout", "denied", "unknown_tool"]
"""What became of one tool call: ran, raised, failed validation, timed out, was refused, or named no tool."""


@dataclass(frozen=True, slots=True)
class Thought:
    """The model's reasoning before it acted or answered.

    Attributes:
        step: The step number (1-based) this thought belongs to.
        text: The reasoning, as the model wrote it.
    """

    step: int
    text: str

    def __str__(self) -> str:
        return f"[{self.step}] Thought: {self.text}"


@dataclass(frozen=True, slots=True)
class Action:
    """One tool call the model asked for.

    Attributes:
        step: The step number (1-based).
        tool: The tool name as the model wrote it (it may name no tool; the observation says so).
        args: The arguments, parsed into a mapping.
        call_id: An id that ties the call to its observation.
    """

    step: int
    tool: str
    args: dict[str, Any]
    call_id: str

    def __str__(self) -> str:
        return f"[{self.step}] Action: {self.tool}({_short(repr(self.args))})"


@dataclass(frozen=True, slots=True)
class Observation:
    """What the model is shown after an action ran (or could not run).

    Attributes:
        step: The step number (1-based).
        tool: The tool name as the model wrote it.
        call_id: The id of the action it answers.
        content: The text the model sees (serialised, truncated).
        status: What became of the call.
        seconds: Wall-clock time spent on the call.
    """

    step: int
    tool: str
    call_id: str
    content: str
    status: ObservationStatus
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        """Whether the tool ran and returned normally."""
        return self.status == "ok"

    def __str__(self) -> str:
        flag = "" if self.ok else f" ({self.status})"
        return f"[{self.step}] Observation{flag}: {_short(self.content)}"


@dataclass(frozen=True, slots=True)
class FormatError:
    """A model output the planner could not act on; the model is told why and tries again.

    Attributes:
        step: The step number (1-based) the retry belongs to.
        raw: The model's output, as received.
        message: The explanation fed back to the model.
    """

    step: int
    raw: str
    message: str

    def __str__(self) -> str:
        return f"[{self.step}] Format error: {_short(self.message)}"


@dataclass(frozen=True, slots=True)
class Final:
    """The answer the episode returns.

    Attributes:
        step: The step number (1-based).
        answer: The final answer text.
        forced: True when the step budget ran out and the model was asked for its best answer.
    """

    step: int
    answer: str
    forced: bool = False

    def __str__(self) -> str:
        return f"[{self.step}] Final Answer: {self.answer}"


Step = Thought | Action | Observation | FormatError | Final


@dataclass(slots=True)
class AgentResult:
    """Everything one episode produced.

    Attributes:
        input: The user's question.
        answer: The final answer, or None when the episode ended without one.
        status: How the episode ended.
        steps: The typed transcript, in order.
        messages: The whole conversation with the model, in order. It only ever grows, so every step's prompt
            is a prefix of it (what a reward log stores and what a prefix cache reuses).
        episode_id: A unique id for this episode.
        error: Why the episode ended early, when it did.
        model_calls: How many times the model was called.
        usage: Token usage summed over model calls, when the model reports it.
        seconds: Wall-clock duration of the episode.
        memory_ids: Ids of the long-term memories put into the prompt.
    """

    input: str
    answer: str | None
    status: Status
    steps: list[Step]
    messages: list[BaseMessage] = field(default_factory=list)
    episode_id: str = ""
    error: str | None = None
    model_calls: int = 0
    usage: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0
    memory_ids: list[str] = field(default_factory=list)

    @property
    def actions(self) -> list[Action]:
        """The tool calls of the episode, in order."""
        return [s for s in self.steps if isinstance(s, Action)]

    @property
    def observations(self) -> list[Observation]:
        """The observations of the episode, in order."""
        return [s for s in self.steps if isinstance(s, Observation)]

    @property
    def n_steps(self) -> int:
        """How many steps (model turns that acted or answered) the episode used."""
        return max((s.step for s in self.steps), default=0)

    def __str__(self) -> str:
        lines = [str(s) for s in self.steps]
        lines.append(f"status={self.status} steps={self.n_steps} calls={self.model_calls} time={self.seconds:.2f}s")
        if self.error:
            lines.append(f"error: {self.error}")
        return "\n".join(lines)


AgentEvent = Step | AgentResult
"""What `Agent.stream` yields: each step as it happens, then the result."""


def _short(text: str, limit: int = 200) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"

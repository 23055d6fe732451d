"""One episode as a generator of effects, so the sync and async agents share every rule.

The generator decides; its driver (in `agentkit.agent`) acts. It yields:

* a `Step` for the driver to pass on (to hooks and to whoever streams the agent);
* a `CallModel` effect, answered with the reply message or a `ModelFailure`;
* a `RunTools` effect, answered with one `Observation` per request;

and returns the `AgentResult`. Budgets live here: steps, retries for malformed output, the wall-clock deadline.
"""

from __future__ import annotations

import time
from collections.abc import Generator, Sequence
from dataclasses import dataclass, field
from typing import Any

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import BaseMessage, HumanMessage, SystemMessage

from agentkit.planner import ChatRunnable, Planner, ToolRequest, Turn, _as_text_reply
from agentkit.protocols import Recollection, Slot
from agentkit.steps import Action, AgentResult, Final, FormatError, Observation, Status, Step, Thought
from agentkit.toolbox import Toolbox

__all__ = ["CallModel", "Effect", "EpisodeGen", "EpisodeSpec", "ModelFailure", "RunTools", "run_episode"]


@dataclass(frozen=True, slots=True)
class CallModel:
    """Call the model on the conversation so far.

    Attributes:
        runnable: The model, with tools or stop strings bound.
        messages: The conversation (the driver must not keep a reference: it keeps growing).
    """

    runnable: ChatRunnable
    messages: list[BaseMessage]


@dataclass(frozen=True, slots=True)
class RunTools:
    """Run one turn's tool calls.

    Attributes:
        requests: The calls.
        toolbox: The tools they may use.
        step: The step number.
    """

    requests: list[ToolRequest]
    toolbox: Toolbox
    step: int


@dataclass(frozen=True, slots=True)
class ModelFailure:
    """The model call raised or overran the deadline.

    Attributes:
        error: What it raised (None on a timeout).
        timed_out: True when the deadline passed first.
    """

    error: BaseException | None = None
    timed_out: bool = False


Effect = CallModel | RunTools


@dataclass(slots=True)
class EpisodeSpec:
    """Everything an episode needs, fixed before it starts.

    Attributes:
        llm: The chat model.
        runnable: The model with this episode's tools or stop strings bound (see `Planner.bind`).
        planner: The wire format.
        toolbox: The tools offered this episode.
        max_steps: Steps (model turns that act) before the forced final call.
        max_retries: Malformed replies tolerated per step before the episode ends with status ``error``.
        deadline: A `time.monotonic()` instant when the episode must end, or None.
        instructions: Extra system instructions from the user.
        memories: Long-term memories recalled for the question.
        slots: Entities understanding read from the question, for the prompt templates.
        history: Earlier turns of a conversation, placed between the system prompt and the question.
    """

    llm: BaseChatModel
    runnable: ChatRunnable
    planner: Planner
    toolbox: Toolbox
    max_steps: int
    max_retries: int
    deadline: float | None
    instructions: str = ""
    memories: Sequence[Recollection] = ()
    slots: Sequence[Slot] = ()
    history: Sequence[BaseMessage] = field(default_factory=tuple)


EpisodeGen = Generator[Step | Effect, Any, AgentResult]


def run_episode(spec: EpisodeSpec, question: str, episode_id: str) -> EpisodeGen:
    """Run one episode; see the module docs for the protocol with its driver.

    Args:
        spec: The episode's parts and budgets.
        question: The user's question.
        episode_id: The id recorded on the result.

    Returns:
        The result, as the generator's return value.
    """
    return _Episode(spec, question, episode_id).run()


class _Episode:
    def __init__(self, spec: EpisodeSpec, question: str, episode_id: str) -> None:
        self.spec = spec
        self.question = question
        self.episode_id = episode_id
        self.started = time.monotonic()
        # Slots are passed only when there are some, so planners written before they existed keep working.
        extra = {"slots": spec.slots} if spec.slots else {}
        system = spec.planner.system_prompt(
            spec.toolbox,
            max_steps=spec.max_steps,
            memories=[m.text for m in spec.memories],
            instructions=spec.instructions,
            **extra,
        )
        self.messages: list[BaseMessage] = [SystemMessage(system), *spec.history, HumanMessage(question)]
        self.steps: list[Step] = []
        self.usage: dict[str, int] = {}
        self.calls = 0

    def run(self) -> EpisodeGen:
        spec = self.spec
        for step in range(1, spec.max_steps + 1):
            turn = yield from self._turn(spec.runnable, step)
            if isinstance(turn, AgentResult):
                return turn
            if turn.final is not None:
                yield self._record(Final(step, turn.final))
                return self._finish("finished", answer=turn.final)
            for request in turn.actions:
                yield self._record(Action(step, request.tool, request.args, request.call_id))
            observations: list[Observation] = yield RunTools(turn.actions, spec.toolbox, step)
            for observation in observations:
                yield self._record(observation)
            self.messages.extend(spec.planner.observe(turn, observations, spec.max_steps - step))
        return (yield from self._last_call())

    def _turn(self, runnable: ChatRunnable, step: int) -> Generator[Step | Effect, Any, Turn | AgentResult]:
        """One usable reply, retrying malformed ones within the retry budget."""
        planner = self.spec.planner
        tries = self.spec.max_retries + 1
        for _ in range(tries):
            reply = yield from self._call(runnable)
            if isinstance(reply, AgentResult):
                return reply
            turn = planner.read(reply, self.spec.toolbox)
            self.messages.append(turn.message)
            if turn.thought:
                yield self._record(Thought(step, turn.thought))
            if turn.error is None:
                return turn
            yield self._record(FormatError(step, str(reply.text), turn.error))
            self.messages.extend(planner.reject(turn, self.spec.toolbox))
        return self._finish(
            "error",
            error=f"The model's reply could not be used {tries} times in a row at step {step}: {turn.error}",
        )

    def _last_call(self) -> Generator[Step | Effect, Any, AgentResult]:
        """The step budget is spent: one last call, without tools, for the model's best answer."""
        reply = yield from self._call(self.spec.planner.bind_final(self.spec.llm))
        if isinstance(reply, AgentResult):
            return reply
        self.messages.append(_as_text_reply(reply, str(reply.text)))
        answer = self.spec.planner.read_final(reply)
        if answer is None:
            return self._finish("max_steps", error="The model gave no answer when its steps ran out.")
        yield self._record(Final(self.spec.max_steps, answer, forced=True))
        return self._finish("max_steps", answer=answer)

    def _call(self, runnable: ChatRunnable) -> Generator[Effect, Any, BaseMessage | AgentResult]:
        """One model call, or the result that ends the episode when the deadline passed or the call failed."""
        deadline = self.spec.deadline
        if deadline is not None and time.monotonic() >= deadline:
            return self._timed_out()
        reply = yield CallModel(runnable, self.messages)
        self.calls += 1
        if isinstance(reply, ModelFailure):
            if reply.timed_out:
                return self._timed_out()
            error = reply.error
            return self._finish("error", error=f"The model call failed: {type(error).__name__}: {error}")
        _add_usage(self.usage, reply)
        return reply  # type: ignore[no-any-return]  # the driver answers CallModel with a message

    def _record(self, step: Step) -> Step:
        self.steps.append(step)
        return step

    def _timed_out(self) -> AgentResult:
        limit = (self.spec.deadline or self.started) - self.started
        return self._finish("timeout", error=f"The episode ran out of time ({limit:.3g} s wall-clock limit).")

    def _finish(self, status: Status, answer: str | None = None, error: str | None = None) -> AgentResult:
        return AgentResult(
            input=self.question,
            answer=answer,
            status=status,
            steps=self.steps,
            messages=self.messages,
            episode_id=self.episode_id,
            error=error,
            model_calls=self.calls,
            usage=self.usage,
            seconds=time.monotonic() - self.started,
            memory_ids=[m.id for m in self.spec.memories],
        )


def _add_usage(usage: dict[str, int], reply: BaseMessage) -> None:
    metadata = getattr(reply, "usage_metadata", None)
    if not metadata:
        return
    for key in ("input_tokens", "output_tokens", "total_tokens"):
        usage[key] = usage.get(key, 0) + int(metadata.get(key, 0) or 0)

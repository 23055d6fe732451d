"""The Agent: a LangChain `Runnable` that composes a chat model, tools, a planner and an executor.

The episode logic lives in `agentkit.episode` as a generator of effects; this module drives it, synchronously or
asynchronously, and does the I/O: model calls under the wall-clock limit, tool calls through the executor, LangChain
callbacks, hooks, memory.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Iterable, Iterator, Mapping, Sequence
from typing import Any

from langchain_core.callbacks import AsyncCallbackManagerForChainRun, CallbackManagerForChainRun
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import BaseMessage
from langchain_core.runnables import Runnable, RunnableConfig
from langchain_core.runnables.config import (
    ensure_config,
    get_async_callback_manager_for_config,
    get_callback_manager_for_config,
    patch_config,
)

from agentkit.drive import Drive
from agentkit.episode import CallModel, Effect, EpisodeSpec, ModelFailure, RunTools, run_episode
from agentkit.errors import ConfigError
from agentkit.executor import Executor
from agentkit.hooks import Hook
from agentkit.planner import ChatRunnable, Planner, default_planner
from agentkit.protocols import LongTermMemory, Recollection, Slot, TurnContext, Understanding
from agentkit.steps import AgentEvent, AgentResult, Step
from agentkit.toolbox import Toolbox, ToolLike
from agentkit.workers import Alarm

__all__ = ["Agent", "AgentInput"]

_BOUND_CACHE = 64  # tool sets whose model binding is kept

AgentInput = str | Mapping[str, Any]
"""A question, or ``{"input": question, "history": [messages]}`` to continue a conversation."""


class Agent(Runnable[AgentInput, AgentResult]):
    """A tool-using agent over any LangChain chat model.

    Args:
        llm: Any LangChain chat model.
        tools: LangChain tools, or plain typed functions with a docstring (wrapped automatically).
        planner: The wire format; by default native tool calls when the model implements `bind_tools`, ReAct
            text otherwise.
        executor: Runs tool calls; the default has a 30 s timeout per call.
        understanding: Reads each question first: which tools to offer, which memories to show.
        memory: Long-term memory, recalled before planning and written after each episode.
        hooks: Watchers of every step and episode (reward logging, metrics).
        max_steps: Steps (model turns that act) before one last call asks for the best answer.
        max_retries: Malformed replies tolerated per step; each is explained to the model.
        timeout: Wall-clock limit for a whole episode in seconds, or None for no limit.
        instructions: Extra system instructions, placed before the format rules.
        name: The run name shown in LangChain traces.

    Raises:
        TypeError: When `llm` is not a LangChain chat model or a part has the wrong type.
        ConfigError: On invalid budgets, tools or executor settings.
    """

    def __init__(
        self,
        llm: BaseChatModel,
        tools: Iterable[ToolLike] = (),
        *,
        planner: Planner | None = None,
        executor: Executor | None = None,
        understanding: Understanding | None = None,
        memory: LongTermMemory | None = None,
        hooks: Sequence[Hook] = (),
        max_steps: int = 8,
        max_retries: int = 2,
        timeout: float | None = 600.0,
        instructions: str = "",
        name: str = "agentkit",
    ) -> None:
        if not isinstance(llm, BaseChatModel):
            raise TypeError(
                f"llm must be a LangChain chat model (BaseChatModel), got {type(llm).__name__}. Wrap a "
                "text-completion model in a chat model, e.g. agentkit.llm.LocalChatModel or ChatHuggingFace."
            )
        _check_parts(planner, executor, understanding, memory, hooks)
        if not isinstance(max_steps, int) or max_steps < 1:
            raise ConfigError(f"max_steps must be a positive integer, got {max_steps!r}.")
        if not isinstance(max_retries, int) or max_retries < 0:
            raise ConfigError(f"max_retries must be a non-negative integer, got {max_retries!r}.")
        if timeout is not None and not timeout > 0:
            raise ConfigError(f"timeout must be a positive number of seconds or None, got {timeout!r}.")
        self.llm = llm
        self.toolbox = Toolbox(tools)
        self.planner = planner or default_planner(llm)
        self.executor = executor or Executor()
        self.executor.check(self.toolbox)
        self.understanding = understanding
        self.memory = memory
        self.hooks = list(hooks)
        self.max_steps = max_steps
        self.max_retries = max_retries
        self.timeout = timeout
        self.instructions = instructions
        self.name = name
        # Binding converts every tool schema for the model: done once per tool set, and here first so that a
        # model that cannot take this planner fails at construction.
        self._bound: dict[tuple[str, ...], ChatRunnable] = {}
        self._bind(self.toolbox)

    # -- Runnable -------------------------------------------------------------------------------------------

    def invoke(self, input: AgentInput, config: RunnableConfig | None = None, **kwargs: Any) -> AgentResult:
        """Run one episode to the end.

        Args:
            input: The question, or ``{"input": question, "history": [messages]}``.
            config: A LangChain run config (callbacks, tags, metadata, run name).
            **kwargs: Ignored; accepted for `Runnable` compatibility.

        Returns:
            The result; its `status` says how the episode ended. Model-facing faults never raise.

        Raises:
            TypeError: When the input is not a string or a mapping with an ``"input"`` string.
            ValueError: When the question is empty.
        """
        *_, result = self.stream(input, config)
        assert isinstance(result, AgentResult)  # the stream always ends with the result
        return result

    async def ainvoke(self, input: AgentInput, config: RunnableConfig | None = None, **kwargs: Any) -> AgentResult:
        """Async `invoke`: model and tools are awaited, sync tools run on worker threads."""
        events = [event async for event in self.astream(input, config)]
        result = events[-1]
        assert isinstance(result, AgentResult)  # the stream always ends with the result
        return result

    # The stream yields typed steps as they happen and then the result, which is richer than Runnable's contract
    # of streaming chunks of the output; invoke() returns the result alone.
    def stream(  # type: ignore[override]
        self, input: AgentInput, config: RunnableConfig | None = None, **kwargs: Any
    ) -> Iterator[AgentEvent]:
        """Run one episode, yielding each step as it happens and then the `AgentResult`.

        Raises:
            TypeError: When the input is not a string or a mapping with an ``"input"`` string.
            ValueError: When the question is empty.
        """
        question, history = _read_input(input)
        return self._stream(question, history, ensure_config(config))

    def astream(  # type: ignore[override]
        self, input: AgentInput, config: RunnableConfig | None = None, **kwargs: Any
    ) -> AsyncIterator[AgentEvent]:
        """Async `stream`."""
        question, history = _read_input(input)
        return self._astream(question, history, ensure_config(config))

    # -- drivers --------------------------------------------------------------------------------------------

    def _stream(self, question: str, history: Sequence[BaseMessage], config: RunnableConfig) -> Iterator[AgentEvent]:
        run = get_callback_manager_for_config(config).on_chain_start(
            None, {"input": question}, name=config.get("run_name") or self.name, run_id=config.pop("run_id", None)
        )
        alarm: Alarm | None = None
        try:
            episode_id = uuid.uuid4().hex
            child = self._child_config(config, run, episode_id)
            spec = self._spec(question, history)
            self._start(episode_id, question)
            if spec.deadline is not None:
                alarm = Alarm(spec.deadline)
            drive: Drive[Effect | Step, Any, AgentResult] = Drive(run_episode(spec, question, episode_id), None)
            for effect in drive:
                if isinstance(effect, CallModel):
                    drive.answer = _call_model(effect, child, alarm)
                elif isinstance(effect, RunTools):
                    drive.answer = self.executor.run(
                        effect.requests, effect.toolbox, step=effect.step, config=child, deadline=spec.deadline
                    )
                else:
                    self._step(episode_id, effect)
                    yield effect
            result = drive.result
            self._end(result)
        except BaseException as exc:
            run.on_chain_error(exc)
            raise
        finally:
            if alarm is not None:
                alarm.cancel()
        run.on_chain_end(result)
        yield result

    async def _astream(
        self, question: str, history: Sequence[BaseMessage], config: RunnableConfig
    ) -> AsyncIterator[AgentEvent]:
        run = await get_async_callback_manager_for_config(config).on_chain_start(
            None, {"input": question}, name=config.get("run_name") or self.name, run_id=config.pop("run_id", None)
        )
        try:
            episode_id = uuid.uuid4().hex
            child = self._child_config(config, run, episode_id)
            # Understanding and memory may embed or query a store: keep that off the event loop.
            spec = await asyncio.to_thread(self._spec, question, history)
            self._start(episode_id, question)
            drive: Drive[Effect | Step, Any, AgentResult] = Drive(run_episode(spec, question, episode_id), None)
            for effect in drive:
                if isinstance(effect, CallModel):
                    drive.answer = await _acall_model(effect, child, spec.deadline)
                elif isinstance(effect, RunTools):
                    drive.answer = await self.executor.arun(
                        effect.requests, effect.toolbox, step=effect.step, config=child, deadline=spec.deadline
                    )
                else:
                    self._step(episode_id, effect)
                    yield effect
            result = drive.result
            await asyncio.to_thread(self._end, result)
        except BaseException as exc:
            await run.on_chain_error(exc)
            raise
        await run.on_chain_end(result)
        yield result

    # -- episode parts --------------------------------------------------------------------------------------

    def _spec(self, question: str, history: Sequence[BaseMessage]) -> EpisodeSpec:
        deadline = None if self.timeout is None else time.monotonic() + self.timeout
        toolbox = self.toolbox
        recalled = list(self.memory.recall(question)) if self.memory is not None else []
        memories: list[Recollection] = []
        slots: Sequence[Slot] = ()
        if self.understanding is not None:
            understood = self.understanding.understand(question, TurnContext(toolbox, history, recalled))
            if understood.tools is not None:
                toolbox = toolbox.subset(understood.tools)
            memories.extend(understood.memories)
            slots = understood.slots
        seen = {m.id for m in memories}
        memories.extend(m for m in recalled if m.id not in seen)
        return EpisodeSpec(
            llm=self.llm,
            runnable=self._bind(toolbox),
            planner=self.planner,
            toolbox=toolbox,
            max_steps=self.max_steps,
            max_retries=self.max_retries,
            deadline=deadline,
            instructions=self.instructions,
            memories=memories,
            slots=slots,
            history=history,
        )

    def _bind(self, toolbox: Toolbox) -> ChatRunnable:
        key = tuple(toolbox.names)
        if key not in self._bound:
            if len(self._bound) >= _BOUND_CACHE:  # understanding may offer a different subset for every question
                self._bound.pop(next(iter(self._bound)))
            self._bound[key] = self.planner.bind(self.llm, toolbox)
        return self._bound[key]

    def _child_config(
        self, config: RunnableConfig, run: CallbackManagerForChainRun | AsyncCallbackManagerForChainRun, episode_id: str
    ) -> RunnableConfig:
        child = patch_config(config, callbacks=run.get_child())
        # Tracers can group model and tool runs by episode, and a reward log can join them to its records.
        child["metadata"] = {**child.get("metadata", {}), "agentkit_episode_id": episode_id}
        return child

    def _start(self, episode_id: str, question: str) -> None:
        for hook in self.hooks:
            hook.on_episode_start(episode_id, question)

    def _step(self, episode_id: str, step: Step) -> None:
        for hook in self.hooks:
            hook.on_step(episode_id, step)

    def _end(self, result: AgentResult) -> None:
        if self.memory is not None:
            self.memory.commit(result)
        for hook in self.hooks:
            hook.on_episode_end(result)


def _call_model(effect: CallModel, config: RunnableConfig, alarm: Alarm | None) -> BaseMessage | ModelFailure:
    def call() -> BaseMessage:
        return effect.runnable.invoke(effect.messages, config)

    if alarm is None:
        try:
            return call()
        except Exception as exc:  # a failing model is reported on the result, not raised
            return ModelFailure(exc)
    # On this thread, with the episode's alarm: a hand-off to a worker thread would cost more than everything else
    # agentkit does in a step. A local model stops between two tokens when the alarm rings.
    outcome = alarm.call(call)
    if outcome.timed_out:
        return ModelFailure(timed_out=True)
    if outcome.error is not None:
        return ModelFailure(outcome.error)
    assert outcome.value is not None
    return outcome.value


async def _acall_model(effect: CallModel, config: RunnableConfig, deadline: float | None) -> BaseMessage | ModelFailure:
    timeout = None if deadline is None else max(0.0, deadline - time.monotonic())
    try:
        return await asyncio.wait_for(effect.runnable.ainvoke(effect.messages, config), timeout)
    except asyncio.TimeoutError:
        return ModelFailure(timed_out=True)
    except Exception as exc:  # a failing model is reported on the result, not raised
        return ModelFailure(exc)


def _read_input(value: object) -> tuple[str, Sequence[BaseMessage]]:
    history: object = ()
    question = value
    if isinstance(value, Mapping):
        if "input" not in value:
            raise TypeError(
                f"Agent input mapping needs an 'input' key with the question; got keys {sorted(map(str, value))}."
            )
        question, history = value["input"], value.get("history", ())
    if not isinstance(question, str):
        raise TypeError(
            f"Agent input must be the question as a string (or {{'input': question}}), got {type(question).__name__}."
        )
    if not question.strip():
        raise ValueError("Agent input is empty: pass the question as a non-empty string.")
    if not isinstance(history, Sequence) or not all(isinstance(m, BaseMessage) for m in history):
        raise TypeError("'history' must be a list of LangChain messages (HumanMessage, AIMessage, ...).")
    return question, history


def _check_parts(
    planner: object, executor: object, understanding: object, memory: object, hooks: Sequence[object]
) -> None:
    expected: list[tuple[str, object, type]] = [
        ("planner", planner, Planner),
        ("executor", executor, Executor),
        ("understanding", understanding, Understanding),
        ("memory", memory, LongTermMemory),
    ]
    for label, part, kind in expected:
        if part is not None and not isinstance(part, kind):
            raise TypeError(f"{label} must be a {kind.__name__}, got {type(part).__name__}.")
    for hook in hooks:
        if not isinstance(hook, Hook):
            raise TypeError(f"hooks must be Hook instances (subclass agentkit.Hook), got {type(hook).__name__}.")

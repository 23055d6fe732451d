"""The tool executor: check each call, ask for approval, run the calls of one turn concurrently, report back.

Everything that can go wrong with a tool call is the model's to hear about, never a crash: an unknown name, a name
outside the allow-list, arguments that fail the tool's schema, a denial, an exception, a timeout. Each becomes an
`Observation` with a status, so the model can correct itself on its next step.

How a hung tool is stopped depends on its isolation (``tool.metadata["isolation"]`` overrides the executor's):

* ``"thread"`` (default): the call runs on a daemon thread; at its deadline the executor returns a timeout
  observation at once and raises `WorkerTimeout` inside the thread, which stops Python code at its next bytecode.
  A call blocked inside C (``time.sleep``, a socket read) is abandoned and ends when that call returns.
* ``"process"``: the call runs in a forked child that is SIGKILLed at its deadline, which stops anything. Use it for
  tools that may block in C code or that you do not trust; their in-memory side effects stay in the child.

Async tools run on the event loop under `asyncio.wait_for`, which cancels them at the deadline.
"""

from __future__ import annotations

import asyncio
import inspect
import json
import threading
import time
from collections.abc import Awaitable, Generator, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from langchain_core.callbacks import CallbackManager
from langchain_core.messages import ToolMessage
from langchain_core.runnables import RunnableConfig
from langchain_core.runnables.config import get_callback_manager_for_config, patch_config
from langchain_core.tools import BaseTool, StructuredTool, ToolException

from agentkit.approval import Approval, ApprovalCallback, Approve, Deny, Edit
from agentkit.drive import Drive
from agentkit.errors import ConfigError
from agentkit.planner import ToolRequest
from agentkit.steps import Observation, ObservationStatus
from agentkit.toolbox import Toolbox
from agentkit.workers import Outcome, arun_in_thread, run_in_process, run_in_thread

__all__ = ["Executor", "Isolation"]

_NOTE_ROOM = 80  # characters kept free for the truncation note

Isolation = Literal["thread", "process"]


@dataclass(frozen=True, slots=True)
class _Call:
    """A checked, approved call ready to run."""

    request: ToolRequest
    tool: BaseTool
    args: dict[str, Any]
    timeout: float
    note: str  # prepended to the observation, e.g. when a user edited the arguments


class Executor:
    """Runs the tool calls of one model turn.

    Args:
        timeout: Default per-call limit in seconds.
        timeouts: Per-tool limits by tool name, overriding `timeout`.
        max_output_chars: Longer outputs are cut to this many characters, with a note saying how much was cut.
        allow: When given, only these tools may run; calls to others are refused with an observation.
        approve: A callback asked before every call, or a mapping from tool name to callback for some tools. It
            returns `Approve()`, `Deny(reason)`, `Edit(args)` or a bool, and may be async under `ainvoke`.
        isolation: How calls run by default: ``"thread"`` or ``"process"`` (see the module docs).

    Raises:
        ConfigError: On a non-positive limit or an unknown isolation.
    """

    def __init__(
        self,
        *,
        timeout: float = 30.0,
        timeouts: Mapping[str, float] | None = None,
        max_output_chars: int = 8000,
        allow: Iterable[str] | None = None,
        approve: ApprovalCallback | Mapping[str, ApprovalCallback] | None = None,
        isolation: Isolation = "thread",
    ) -> None:
        self.timeouts = dict(timeouts or {})
        for name, limit in [("timeout", timeout), *self.timeouts.items()]:
            if not limit > 0:
                raise ConfigError(f"Tool timeout for {name!r} must be a positive number of seconds, got {limit!r}.")
        if max_output_chars < 100:
            raise ConfigError(f"max_output_chars must be at least 100, got {max_output_chars}.")
        if isolation not in ("thread", "process"):
            raise ConfigError(f"isolation must be 'thread' or 'process', got {isolation!r}.")
        self.timeout = timeout
        self.max_output_chars = max_output_chars
        self.allow = None if allow is None else frozenset(allow)
        self.approve = approve
        self.isolation: Isolation = isolation

    def check(self, toolbox: Toolbox) -> None:
        """Fail fast when the configuration names tools the agent does not have.

        Raises:
            ConfigError: Naming the unknown tools and the known ones.
        """
        named = (
            set(self.timeouts) | set(self.allow or ()) | set(self.approve if isinstance(self.approve, Mapping) else ())
        )
        unknown = sorted(named - set(toolbox.names))
        if unknown:
            raise ConfigError(
                f"Executor settings name tools the agent does not have: {', '.join(unknown)}. "
                f"Its tools are: {', '.join(toolbox.names) or '(none)'}."
            )
        for tool in toolbox.tools:
            chosen = (tool.metadata or {}).get("isolation", self.isolation)
            if chosen not in ("thread", "process"):
                raise ConfigError(f"Tool {tool.name!r} has metadata isolation={chosen!r}; use 'thread' or 'process'.")

    def run(
        self,
        requests: Sequence[ToolRequest],
        toolbox: Toolbox,
        *,
        step: int,
        config: RunnableConfig | None = None,
        deadline: float | None = None,
    ) -> list[Observation]:
        """Run one turn's calls, concurrently, and return their observations in request order.

        Args:
            requests: The calls the model asked for.
            toolbox: The agent's tools.
            step: The step number, recorded on each observation.
            config: The run config (callbacks reach each tool through it).
            deadline: A `time.monotonic()` instant no call may outlive (the episode's wall-clock limit).

        Returns:
            One observation per request.
        """
        gate: Drive[Approval | Awaitable[Approval], Approval, list[Observation | _Call]] = Drive(
            self._admit(requests, toolbox, step), True
        )
        for question in gate:
            gate.answer = _await_in_thread(question) if inspect.isawaitable(question) else question
        slots = gate.result
        calls = [(i, s) for i, s in enumerate(slots) if isinstance(s, _Call)]
        results: list[Observation | _Call] = list(slots)

        failures: list[BaseException] = []

        def work(index: int, call: _Call) -> None:
            try:
                results[index] = self._run_one(call, step, config, deadline)
            except BaseException as exc:  # tool faults are already observations: this is ours, so re-raise it
                failures.append(exc)

        if len(calls) == 1:
            work(*calls[0])
        else:
            # Each waiter returns by its call's deadline, so joining them all is bounded.
            waiters = [threading.Thread(target=work, args=pair, daemon=True) for pair in calls]
            for waiter in waiters:
                waiter.start()
            for waiter in waiters:
                waiter.join()
        if failures:
            raise failures[0]
        return [r for r in results if isinstance(r, Observation)]

    async def arun(
        self,
        requests: Sequence[ToolRequest],
        toolbox: Toolbox,
        *,
        step: int,
        config: RunnableConfig | None = None,
        deadline: float | None = None,
    ) -> list[Observation]:
        """Async `run`: async tools run on the loop, sync tools on threads, all of one turn at once."""
        gate: Drive[Approval | Awaitable[Approval], Approval, list[Observation | _Call]] = Drive(
            self._admit(requests, toolbox, step), True
        )
        for question in gate:
            gate.answer = await question if inspect.isawaitable(question) else question
        slots = gate.result
        pending = [self._arun_one(s, step, config, deadline) for s in slots if isinstance(s, _Call)]
        done = iter(await asyncio.gather(*pending))
        return [s if isinstance(s, Observation) else next(done) for s in slots]

    # -- checking -------------------------------------------------------------------------------------------

    def _admit(self, requests: Sequence[ToolRequest], toolbox: Toolbox, step: int) -> _Admission:
        """Check each request, yielding the approval question for each valid one (answered one at a time)."""
        slots: list[Observation | _Call] = []
        for request in requests:
            checked = self._check(request, toolbox, step)
            if isinstance(checked, _Call):
                verdict = yield self._ask(checked)
                checked = self._apply(verdict, checked, toolbox, step)
            slots.append(checked)
        return slots

    def _check(self, request: ToolRequest, toolbox: Toolbox, step: int) -> Observation | _Call:
        name = toolbox.resolve(request.tool)
        if name is None:
            return _refusal(
                request,
                step,
                "unknown_tool",
                f"Error: there is no tool named {request.tool!r}. Valid tools: {', '.join(toolbox.names) or '(none)'}.",
            )
        if self.allow is not None and name not in self.allow:
            allowed = ", ".join(n for n in toolbox.names if n in self.allow) or "(none)"
            return _refusal(
                request, step, "denied", f"Error: the tool {name!r} is not allowed here. Allowed: {allowed}."
            )
        problem = toolbox.validate(name, request.args)
        if problem is not None:
            return _refusal(request, step, "invalid_args", f"Error: invalid arguments for {name}: {problem}")
        tool = toolbox.get(name)
        assert tool is not None  # resolve() only returns names the toolbox holds
        return _Call(request, tool, dict(request.args), self.timeouts.get(name, self.timeout), "")

    def _ask(self, call: _Call) -> Approval | Awaitable[Approval]:
        callback = self.approve.get(call.tool.name) if isinstance(self.approve, Mapping) else self.approve
        if callback is None:
            return True
        # The callback sees the tool's exact name, whatever spelling the model used.
        return callback(ToolRequest(call.tool.name, dict(call.args), call.request.call_id))

    def _apply(self, verdict: Approval, call: _Call, toolbox: Toolbox, step: int) -> Observation | _Call:
        if verdict is True or isinstance(verdict, Approve):
            return call
        if verdict is False:
            verdict = Deny()
        if isinstance(verdict, Deny):
            return _refusal(
                call.request,
                step,
                "denied",
                f"Error: the call to {call.tool.name} was denied: {verdict.reason}.",
            )
        if isinstance(verdict, Edit):
            problem = toolbox.validate(call.tool.name, verdict.args)
            if problem is not None:
                return _refusal(
                    call.request, step, "invalid_args", f"Error: the edited arguments are invalid: {problem}"
                )
            note = f"(The user changed the arguments to {json.dumps(verdict.args, ensure_ascii=False, default=str)}.)\n"
            return _Call(call.request, call.tool, dict(verdict.args), call.timeout, note)
        raise TypeError(
            f"An approval callback returned {verdict!r}; return Approve(), Deny(reason), Edit(args) or a bool."
        )

    # -- running --------------------------------------------------------------------------------------------

    def _limit(self, call: _Call, deadline: float | None) -> float:
        if deadline is None:
            return call.timeout
        return max(0.0, min(call.timeout, deadline - time.monotonic()))

    def _isolation(self, tool: BaseTool) -> Isolation:
        return (tool.metadata or {}).get("isolation", self.isolation)  # type: ignore[no-any-return]  # see check()

    def _run_one(self, call: _Call, step: int, config: RunnableConfig | None, deadline: float | None) -> Observation:
        limit = self._limit(call, deadline)
        started = time.monotonic()
        if self._isolation(call.tool) == "process":
            outcome = _run_isolated(call, config, limit)
        elif _is_async_only(call.tool):
            # An async-only tool under a sync agent gets its own loop on the worker thread, so this also works
            # when the caller's thread already runs a loop (a notebook).
            outcome = run_in_thread(lambda: asyncio.run(call.tool.ainvoke(_tool_call(call), config)), limit)
        else:
            outcome = run_in_thread(lambda: call.tool.invoke(_tool_call(call), config), limit)
        return self._observe(call, step, outcome, limit, time.monotonic() - started)

    async def _arun_one(
        self, call: _Call, step: int, config: RunnableConfig | None, deadline: float | None
    ) -> Observation:
        limit = self._limit(call, deadline)
        started = time.monotonic()
        outcome: Outcome[Any]
        if self._isolation(call.tool) == "process":
            outcome = await asyncio.to_thread(_run_isolated, call, config, limit)
        elif _is_async_native(call.tool):
            try:
                outcome = Outcome(value=await asyncio.wait_for(call.tool.ainvoke(_tool_call(call), config), limit))
            except asyncio.TimeoutError:
                outcome = Outcome(timed_out=True)
            except Exception as exc:
                outcome = Outcome(error=exc)
        else:
            outcome = await arun_in_thread(lambda: call.tool.invoke(_tool_call(call), config), limit)
        return self._observe(call, step, outcome, limit, time.monotonic() - started)

    def _observe(self, call: _Call, step: int, outcome: Outcome[Any], limit: float, seconds: float) -> Observation:
        name = call.tool.name
        status: ObservationStatus
        if outcome.timed_out:
            status = "timeout"
            content = (
                f"Error: {name} did not finish within {limit:.3g} s and was stopped. "
                "Try a smaller input or another approach."
            )
        elif outcome.error is not None:
            status = "error"
            content = _describe_error(name, outcome.error)
        else:
            status = "ok"
            content = _serialise(outcome.value)
        content = _truncate(call.note + content, self.max_output_chars)
        return Observation(step, call.request.tool, call.request.call_id, content, status, seconds)


_Admission = Generator[Approval | Awaitable[Approval], Approval, list[Observation | _Call]]


def _refusal(request: ToolRequest, step: int, status: ObservationStatus, content: str) -> Observation:
    return Observation(step, request.tool, request.call_id, content, status, 0.0)


def _tool_call(call: _Call) -> dict[str, Any]:
    # Invoking with a ToolCall makes LangChain pass the call id to callbacks and return a ToolMessage.
    return {"type": "tool_call", "name": call.tool.name, "args": call.args, "id": call.request.call_id}


def _is_async_native(tool: BaseTool) -> bool:
    if isinstance(tool, StructuredTool):
        return tool.coroutine is not None
    return type(tool)._arun is not BaseTool._arun


def _is_async_only(tool: BaseTool) -> bool:
    return isinstance(tool, StructuredTool) and tool.func is None and tool.coroutine is not None


def _run_isolated(call: _Call, config: RunnableConfig | None, limit: float) -> Outcome[Any]:
    """Run a call in a child process; its callbacks are emitted here, since handlers do not survive a fork."""
    manager: CallbackManager = get_callback_manager_for_config(config or {})
    run = manager.on_tool_start(
        {"name": call.tool.name, "description": call.tool.description},
        str(call.args),
        inputs=call.args,
        tool_call_id=call.request.call_id,
    )
    quiet = patch_config(config, callbacks=CallbackManager(handlers=[]))
    outcome = run_in_process(lambda: _serialise(call.tool.invoke(_tool_call(call), quiet)), limit)
    if outcome.timed_out:
        run.on_tool_error(TimeoutError(f"{call.tool.name} timed out after {limit:.3g} s"))
    elif outcome.error is not None:
        run.on_tool_error(outcome.error)
    else:
        run.on_tool_end(outcome.value)
    return outcome


def _await_in_thread(awaitable: Awaitable[Approval]) -> Approval:
    # A sync agent may run inside a thread that already has a loop (a notebook): give the callback a loop of its own.
    async def wait() -> Approval:
        return await awaitable

    outcome = run_in_thread(lambda: asyncio.run(wait()), None)
    if outcome.error is not None:
        raise outcome.error
    return outcome.value  # type: ignore[return-value]  # run without a timeout: a value or an error


def _describe_error(name: str, error: BaseException) -> str:
    if isinstance(error, ToolException):
        return f"Error: {error}"
    return f"Error: {name} raised {type(error).__name__}: {error}"


def _serialise(value: Any) -> str:
    if isinstance(value, ToolMessage):
        value = value.content
    if isinstance(value, str):
        return value
    try:
        return json.dumps(value, ensure_ascii=False, default=str)
    except (TypeError, ValueError):  # circular structures and the like
        return str(value)


def _truncate(text: str, limit: int) -> str:
    if len(text) <= limit:
        return text
    kept = limit - _NOTE_ROOM
    return text[:kept] + f"\n... [output truncated: {len(text) - kept:,} of {len(text):,} characters cut]"

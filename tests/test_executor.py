"""The tool executor through the public API: every error path becomes an observation the agent recovers from."""

from __future__ import annotations

import asyncio
import os
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from langchain_core.callbacks import BaseCallbackHandler
from langchain_core.tools import BaseTool, StructuredTool, ToolException

from agentkit import Agent, Approve, ConfigError, Deny, Edit, Executor, ToolRequest, tool
from agentkit.testing import ScriptedChatModel, tool_call, tool_reply


@tool
def add(a: int, b: int) -> int:
    """Add two integers.

    Args:
        a: First.
        b: Second.
    """
    return a + b


def one_call_then_answer(*calls: Any, answer: str = "done") -> ScriptedChatModel:
    return ScriptedChatModel(responses=[tool_reply(*calls), answer])


def run(tools: list[Any], *calls: Any, executor: Executor | None = None, **agent_kwargs: Any):
    llm = one_call_then_answer(*calls)
    agent = Agent(llm=llm, tools=tools, executor=executor, **agent_kwargs)
    return agent.invoke("go"), llm


def test_tool_that_raises_becomes_an_observation_and_the_agent_recovers():
    @tool
    def broken(x: str) -> str:
        """Always fails.

        Args:
            x: Anything.
        """
        raise RuntimeError("disk on fire")

    result, llm = run([broken], tool_call("broken", x="a"))
    assert result.status == "finished"
    (obs,) = result.observations
    assert obs.status == "error"
    assert "RuntimeError: disk on fire" in obs.content
    # The model saw the error text in its next prompt.
    assert "disk on fire" in str(llm.calls[1].messages[-1].content)


def test_tool_exception_message_is_shown_as_is():
    @tool
    def picky(x: str) -> str:
        """Refuses politely.

        Args:
            x: Anything.
        """
        raise ToolException("use a positive number")

    result, _ = run([picky], tool_call("picky", x="a"))
    assert result.observations[0].content == "Error: use a positive number"


def test_hung_tool_times_out_within_a_second_of_its_limit():
    @tool
    def sleepy(x: str) -> str:
        """Sleeps for ten minutes.

        Args:
            x: Anything.
        """
        time.sleep(600)
        return "never"

    started = time.monotonic()
    result, _ = run([sleepy], tool_call("sleepy", x="a"), executor=Executor(timeouts={"sleepy": 0.5}))
    elapsed = time.monotonic() - started
    assert result.status == "finished"
    obs = result.observations[0]
    assert obs.status == "timeout"
    assert "did not finish within 0.5 s" in obs.content
    assert 0.5 <= elapsed < 1.5


def test_thread_timeout_really_stops_a_python_busy_loop():
    progress = {"n": 0}

    @tool
    def spin(x: str) -> str:
        """Loops forever in Python code.

        Args:
            x: Anything.
        """
        while True:
            progress["n"] += 1

    result, _ = run([spin], tool_call("spin", x="a"), executor=Executor(timeout=0.3))
    assert result.observations[0].status == "timeout"
    time.sleep(0.1)
    before = progress["n"]
    time.sleep(0.3)
    assert progress["n"] == before, "the worker thread kept running after its timeout"


def test_process_isolation_kills_a_tool_blocked_in_c(tmp_path: Path):
    pid_file = tmp_path / "pid"

    def blocked(x: str) -> str:
        """Blocks in C for ten minutes.

        Args:
            x: Anything.
        """
        pid_file.write_text(str(os.getpid()))
        time.sleep(600)
        return "never"

    isolated = StructuredTool.from_function(blocked, metadata={"isolation": "process"})
    started = time.monotonic()
    result, _ = run([isolated], tool_call("blocked", x="a"), executor=Executor(timeout=0.5))
    assert time.monotonic() - started < 1.5
    assert result.observations[0].status == "timeout"
    pid = int(pid_file.read_text())
    assert pid != os.getpid()
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)  # the child is gone (killed and reaped), not merely abandoned


def test_process_isolation_returns_values_and_errors():
    def square(n: int) -> int:
        """Square a number in a child process.

        Args:
            n: The number.
        """
        if n < 0:
            raise ValueError("negative")
        return n * n

    isolated = StructuredTool.from_function(square, metadata={"isolation": "process"})
    result, _ = run([isolated], tool_call("square", n=7), tool_call("square", n=-1))
    ok, bad = result.observations
    assert (ok.status, ok.content) == ("ok", "49")
    assert bad.status == "error" and "ValueError: negative" in bad.content


def test_ten_megabyte_output_is_truncated():
    @tool
    def firehose(x: str) -> str:
        """Returns ten megabytes.

        Args:
            x: Anything.
        """
        return "x" * 10_000_000

    result, llm = run([firehose], tool_call("firehose", x="a"), executor=Executor(max_output_chars=2000))
    obs = result.observations[0]
    assert obs.status == "ok"
    assert len(obs.content) <= 2000
    assert obs.content.startswith("x" * 1900)
    assert obs.content.endswith("[output truncated: 9,998,080 of 10,000,000 characters cut]")
    assert len(str(llm.calls[1].messages[-1].content)) < 2100


def test_non_string_results_are_serialised():
    class Point:
        def __str__(self) -> str:
            return "Point(1, 2)"

    @tool
    def structured(x: str) -> dict:
        """Returns a mapping.

        Args:
            x: Anything.
        """
        return {"price": 12.5, "tags": ["a", "b"], "when": None}

    @tool
    def opaque(x: str) -> object:
        """Returns an object.

        Args:
            x: Anything.
        """
        return Point()

    result, _ = run([structured, opaque], tool_call("structured", x="a"), tool_call("opaque", x="a"))
    first, second = result.observations
    assert first.content == '{"price": 12.5, "tags": ["a", "b"], "when": null}'
    assert second.content == "Point(1, 2)"


def test_unknown_tool_lists_valid_tools():
    result, _ = run([add], tool_call("multiply", a=1, b=2))
    obs = result.observations[0]
    assert obs.status == "unknown_tool"
    assert "no tool named 'multiply'" in obs.content and "Valid tools: add" in obs.content


def test_wrong_argument_types_are_refused_before_the_tool_runs():
    calls = []

    @tool
    def count(n: int) -> int:
        """Counts.

        Args:
            n: How many.
        """
        calls.append(n)
        return n

    result, _ = run([count], tool_call("count", n="many"), tool_call("count"))
    wrong, missing = result.observations
    assert wrong.status == missing.status == "invalid_args"
    assert "n:" in wrong.content and "integer" in wrong.content
    assert "Field required" in missing.content
    assert calls == []


def test_calls_of_one_turn_run_concurrently():
    @tool
    def slow(tag: str) -> str:
        """Sleeps half a second.

        Args:
            tag: Echoed back.
        """
        time.sleep(0.5)
        return tag

    started = time.monotonic()
    result, _ = run([slow], *(tool_call("slow", tag=str(i)) for i in range(4)))
    assert time.monotonic() - started < 1.2
    assert [o.content for o in result.observations] == ["0", "1", "2", "3"]


async def test_async_tools_run_concurrently_and_time_out_by_cancellation():
    cancelled = asyncio.Event()

    async def nap(seconds: float) -> str:
        """Sleeps asynchronously.

        Args:
            seconds: How long.
        """
        try:
            await asyncio.sleep(seconds)
        except asyncio.CancelledError:
            cancelled.set()
            raise
        return f"slept {seconds}"

    napper = StructuredTool.from_function(coroutine=nap)
    llm = one_call_then_answer(
        tool_call("nap", seconds=0.4), tool_call("nap", seconds=0.4), tool_call("nap", seconds=60)
    )
    agent = Agent(llm=llm, tools=[napper], executor=Executor(timeout=1.0))
    started = time.monotonic()
    result = await agent.ainvoke("go")
    assert time.monotonic() - started < 2.0
    assert [o.status for o in result.observations] == ["ok", "ok", "timeout"]
    assert cancelled.is_set()


def test_async_only_tool_works_under_a_sync_agent():
    async def fetch(key: str) -> str:
        """Fetches asynchronously.

        Args:
            key: What to fetch.
        """
        await asyncio.sleep(0)
        return key.upper()

    result, _ = run([StructuredTool.from_function(coroutine=fetch)], tool_call("fetch", key="abc"))
    assert result.observations[0].content == "ABC"


def test_allow_list_refuses_other_tools():
    @tool
    def delete_everything(x: str) -> str:
        """Dangerous.

        Args:
            x: Anything.
        """
        raise AssertionError("must not run")

    result, _ = run(
        [add, delete_everything],
        tool_call("delete_everything", x="a"),
        tool_call("add", a=1, b=2),
        executor=Executor(allow=["add"]),
    )
    denied, ok = result.observations
    assert denied.status == "denied" and "not allowed" in denied.content and "Allowed: add" in denied.content
    assert ok.content == "3"


def test_approval_callback_approves_denies_and_edits():
    seen: list[ToolRequest] = []

    def reviewer(request: ToolRequest):
        seen.append(request)
        if request.args["a"] == 1:
            return Approve()
        if request.args["a"] == 2:
            return Deny("too risky")
        if request.args["a"] == 3:
            return Edit({"a": 30, "b": request.args["b"]})
        return request.args["a"] != 4  # bools work too

    calls = [tool_call("add", a=a, b=1) for a in (1, 2, 3, 4, 5)]
    result, _ = run([add], *calls, executor=Executor(approve=reviewer))
    statuses = [(o.status, o.content) for o in result.observations]
    assert statuses[0] == ("ok", "2")
    assert statuses[1][0] == "denied" and "too risky" in statuses[1][1]
    assert statuses[2][0] == "ok" and statuses[2][1].endswith("31") and "changed the arguments" in statuses[2][1]
    assert statuses[3][0] == "denied"
    assert statuses[4] == ("ok", "6")
    assert [r.args["a"] for r in seen] == [1, 2, 3, 4, 5]


def test_approval_per_tool_mapping_and_invalid_edit():
    @tool
    def echo(text: str) -> str:
        """Echo.

        Args:
            text: Echoed.
        """
        return text

    executor = Executor(approve={"add": lambda request: Edit({"a": "not a number", "b": 1})})
    result, _ = run([add, echo], tool_call("add", a=1, b=2), tool_call("echo", text="hi"), executor=executor)
    edited, untouched = result.observations
    assert edited.status == "invalid_args" and "edited arguments are invalid" in edited.content
    assert untouched.content == "hi"


async def test_async_approval_callback_under_ainvoke_and_invoke():
    async def reviewer(request: ToolRequest):
        await asyncio.sleep(0)
        return Deny("nope")

    llm = one_call_then_answer(tool_call("add", a=1, b=2))
    agent = Agent(llm=llm, tools=[add], executor=Executor(approve=reviewer))
    result = await agent.ainvoke("go")
    assert result.observations[0].status == "denied"
    # A sync agent called from inside a running loop (as in a notebook) still awaits the callback.
    llm2 = one_call_then_answer(tool_call("add", a=1, b=2))
    result2 = Agent(llm=llm2, tools=[add], executor=Executor(approve=reviewer)).invoke("go")
    assert result2.observations[0].status == "denied"


def test_approval_callback_returning_nonsense_raises_for_the_developer():
    with pytest.raises(TypeError, match="approval callback returned"):
        run([add], tool_call("add", a=1, b=2), executor=Executor(approve=lambda r: "yes"))


def test_tool_callbacks_reach_langchain_handlers():
    class Recorder(BaseCallbackHandler):
        def __init__(self) -> None:
            self.events: list[str] = []
            self.lock = threading.Lock()

        def on_tool_start(self, serialized, input_str, **kwargs):
            with self.lock:
                self.events.append(f"start:{serialized['name']}")

        def on_tool_end(self, output, **kwargs):
            with self.lock:
                self.events.append("end")

        def on_tool_error(self, error, **kwargs):
            with self.lock:
                self.events.append(f"error:{type(error).__name__}")

    def square(n: int) -> int:
        """Square.

        Args:
            n: The number.
        """
        return n * n

    isolated = StructuredTool.from_function(square, metadata={"isolation": "process"})
    recorder = Recorder()
    llm = one_call_then_answer(tool_call("add", a=1, b=2), tool_call("square", n=3))
    Agent(llm=llm, tools=[add, isolated]).invoke("go", {"callbacks": [recorder]})
    assert sorted(recorder.events) == sorted(["start:add", "end", "start:square", "end"])


def test_configuration_errors_are_raised_at_construction():
    with pytest.raises(ConfigError, match="Two tools are named 'add'"):
        Agent(llm=ScriptedChatModel(), tools=[add, add])

    class Nameless(BaseTool):
        name: str = "nameless"
        description: str = ""

        def _run(self, *args: Any, **kwargs: Any) -> str:
            return ""

    with pytest.raises(ConfigError, match="has no description"):
        Agent(llm=ScriptedChatModel(), tools=[Nameless()])

    def undocumented(x: int) -> int:
        return x

    with pytest.raises(ConfigError, match="has no docstring"):
        Agent(llm=ScriptedChatModel(), tools=[undocumented])
    with pytest.raises(ConfigError, match="tools the agent does not have: ad"):
        Agent(llm=ScriptedChatModel(), tools=[add], executor=Executor(allow=["ad"]))
    with pytest.raises(ConfigError, match="positive number of seconds"):
        Executor(timeouts={"add": 0})
    with pytest.raises(ConfigError, match="isolation"):
        Executor(isolation="container")  # type: ignore[arg-type]
    boxed = StructuredTool.from_function(add.func, name="boxed", metadata={"isolation": "docker"})
    with pytest.raises(ConfigError, match="isolation='docker'"):
        Agent(llm=ScriptedChatModel(), tools=[boxed])

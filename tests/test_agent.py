"""The Agent through its public API: both wire formats, budgets, async, streaming, batch, callbacks, slots."""

from __future__ import annotations

import asyncio
import itertools
import threading
import time
from collections.abc import Sequence
from typing import Any

import pytest
from langchain_core.callbacks import BaseCallbackHandler
from langchain_core.language_models.fake_chat_models import FakeListChatModel, GenericFakeChatModel
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, ToolMessage
from langchain_core.runnables import Runnable, RunnableLambda

from agentkit import (
    Action,
    Agent,
    AgentResult,
    ConfigError,
    Final,
    FormatError,
    Hook,
    Observation,
    ReActPlanner,
    Recollection,
    Step,
    Thought,
    Toolbox,
    ToolCallingPlanner,
    Understood,
    tool,
)
from agentkit.testing import ScriptedChatModel, kinds, react, react_final, tool_call, tool_reply


@tool(parse_docstring=True)
def stock_price(ticker: str) -> float:
    """Look up the latest price.

    Args:
        ticker: Exchange symbol, e.g. "ACME".
    """
    return {"ACME": 12.5}.get(ticker, 0.0)


@tool(parse_docstring=True)
def multiply(a: float, b: float) -> float:
    """Multiply two numbers.

    Args:
        a: The first factor.
        b: The second factor.
    """
    return a * b


TOOLS = [stock_price, multiply]


def test_the_issue_example_with_native_tool_calls():
    llm = ScriptedChatModel(
        responses=[
            tool_reply(tool_call("stock_price", ticker="ACME")),
            tool_reply(tool_call("multiply", a=3, b=12.5)),
            "3 ACME shares are worth 37.5.",
        ]
    )
    result = Agent(llm=llm, tools=TOOLS, max_steps=8).invoke("What is 3 ACME shares worth?")
    assert result.status == "finished"
    assert result.answer == "3 ACME shares are worth 37.5."
    assert kinds(result) == ["action", "observation", "action", "observation", "final"]
    assert [o.content for o in result.observations] == ["12.5", "37.5"]
    assert result.n_steps == 3 and result.model_calls == 3
    assert result.usage["total_tokens"] > 0
    # Results go back as ToolMessages tied to their calls.
    tool_messages = [m for m in result.messages if isinstance(m, ToolMessage)]
    assert [m.tool_call_id for m in tool_messages] == [a.call_id for a in result.actions]
    # Tools are bound to every step's call.
    assert llm.calls[0].tools == ["stock_price", "multiply"]


def test_react_text_format_end_to_end():
    llm = ScriptedChatModel(
        responses=[
            react("stock_price", '{"ticker": "ACME"}', thought="I need the price."),
            react("Multiply", '```json\n{"a": 3,\n "b": 12.5}\n```'),
            react_final("37.5"),
        ]
    )
    result = Agent(llm=llm, tools=TOOLS, planner=ReActPlanner()).invoke("What is 3 ACME shares worth?")
    assert result.status == "finished" and result.answer == "37.5"
    assert result.steps[0] == Thought(1, "I need the price.")
    assert [(a.tool, a.args) for a in result.actions] == [
        ("stock_price", {"ticker": "ACME"}),
        ("multiply", {"a": 3, "b": 12.5}),
    ]
    # The model is asked to stop where the observation would begin, and sees the observation next.
    assert llm.calls[0].stop == ["\nObservation:"]
    assert str(llm.calls[1].messages[-1].content).startswith("Observation: 12.5")
    assert "Action: the tool to use, one of [stock_price, multiply]" in str(llm.calls[0].messages[0].content)


def test_plain_action_input_goes_to_the_only_argument():
    llm = ScriptedChatModel(responses=[react("stock_price", "ACME"), react_final("12.5")])
    result = Agent(llm=llm, tools=TOOLS, planner=ReActPlanner()).invoke("price?")
    assert result.actions[0].args == {"ticker": "ACME"}
    assert result.observations[0].content == "12.5"


def test_a_self_written_observation_is_cut_and_never_believed():
    lying = react("stock_price", "ACME") + "\nObservation: 999\nThought: done\nFinal Answer: 999"
    llm = ScriptedChatModel(responses=[lying, react_final("12.5")])
    result = Agent(llm=llm, tools=TOOLS, planner=ReActPlanner()).invoke("price?")
    assert result.answer == "12.5"
    assert "999" not in str(result.messages[2].content)


def test_action_and_final_answer_in_one_output_runs_the_tool_and_not_the_answer():
    both = react("stock_price", "ACME") + "\nFinal Answer: 7"
    llm = ScriptedChatModel(responses=[both, react_final("12.5")])
    result = Agent(llm=llm, tools=TOOLS, planner=ReActPlanner()).invoke("price?")
    assert kinds(result) == ["thought", "action", "observation", "thought", "final"]
    assert result.answer == "12.5"


def test_final_answer_written_first_wins_and_no_tool_runs():
    ran = []

    @tool
    def spy(x: str) -> str:
        """Records calls.

        Args:
            x: Anything.
        """
        ran.append(x)
        return x

    llm = ScriptedChatModel(responses=["Final Answer: 7\nAction: spy\nAction Input: boom"])
    result = Agent(llm=llm, tools=[spy], planner=ReActPlanner()).invoke("q")
    assert result.answer == "7" and ran == [] and result.model_calls == 1


def test_unknown_tool_in_text_lists_valid_tools():
    llm = ScriptedChatModel(responses=[react("google_search", "price"), react_final("ok")])
    result = Agent(llm=llm, tools=TOOLS, planner=ReActPlanner()).invoke("q")
    obs = result.observations[0]
    assert obs.status == "unknown_tool"
    assert "Valid tools: stock_price, multiply" in obs.content
    assert "Valid tools: stock_price, multiply" in str(llm.calls[1].messages[-1].content)


def test_missing_action_is_a_format_error_that_lists_tools_and_is_retried():
    llm = ScriptedChatModel(responses=["Thought: hmm\nAction Input: {}", react_final("ok")])
    result = Agent(llm=llm, tools=TOOLS, planner=ReActPlanner()).invoke("q")
    assert result.status == "finished"
    assert kinds(result) == ["thought", "format_error", "thought", "final"]
    feedback = str(llm.calls[1].messages[-1].content)
    assert "Invalid format" in feedback and "Valid tools: stock_price, multiply" in feedback
    assert result.n_steps == 1  # a retry does not spend a step


@pytest.mark.parametrize("planner", [ReActPlanner(), ToolCallingPlanner()], ids=["react", "tool_calling"])
def test_garbage_a_hundred_times_ends_with_error_after_the_retry_budget(planner):
    garbage = AIMessage(content="", invalid_tool_calls=[{"name": "x", "args": "{oops", "id": "1", "error": "bad"}])
    reply = "@@@ \x00 not a plan" if isinstance(planner, ReActPlanner) else garbage
    llm = ScriptedChatModel(responses=[reply] * 100)
    result = Agent(llm=llm, tools=TOOLS, planner=planner, max_retries=2).invoke("q")
    assert result.status == "error"
    assert result.model_calls == 3 and len(llm.calls) == 3
    assert kinds(result).count("format_error") == 3
    assert "could not be used 3 times in a row at step 1" in (result.error or "")


def test_max_steps_makes_one_last_call_without_tools_for_the_best_answer():
    looping = [tool_reply(tool_call("stock_price", ticker="ACME"))] * 3
    llm = ScriptedChatModel(responses=[*looping, "Best guess: 12.5"])
    result = Agent(llm=llm, tools=TOOLS, max_steps=3).invoke("q")
    assert result.status == "max_steps"
    assert result.answer == "Best guess: 12.5"
    assert result.steps[-1] == Final(3, "Best guess: 12.5", forced=True)
    assert result.model_calls == 4
    assert llm.calls[-1].tools == []  # the last call cannot call tools
    # The prompt tells the model how many steps remain, down to none.
    notes = [str(m.content) for m in result.messages if isinstance(m, ToolMessage)]
    assert notes[0].endswith("(2 steps left)") and notes[1].endswith("(1 step left)")
    assert "No steps left" in notes[2]
    assert "at most 3 steps" in str(result.messages[0].content)


def test_max_steps_in_react_mode_and_a_last_reply_without_answer_label():
    llm = ScriptedChatModel(responses=[react("stock_price", "ACME")] * 2 + ["It is 12.5."])
    result = Agent(llm=llm, tools=TOOLS, planner=ReActPlanner(), max_steps=2).invoke("q")
    assert result.status == "max_steps" and result.answer == "It is 12.5."
    assert "no steps left" in str(llm.calls[-1].messages[-1].content).lower()
    assert llm.calls[-1].stop is None


def test_wall_clock_timeout_stops_a_model_busy_in_python():
    # A local model generates token by token in Python: the alarm stops it between two steps.
    def generate_forever(messages: Sequence[BaseMessage]) -> str:
        while True:
            pass

    started = time.monotonic()
    result = Agent(llm=ScriptedChatModel(responses=[generate_forever]), tools=TOOLS, timeout=0.5).invoke("q")
    assert time.monotonic() - started < 1.0
    assert result.status == "timeout" and "0.5 s" in (result.error or "")
    assert result.answer is None


def test_a_late_reply_from_a_model_blocked_in_c_is_discarded():
    def blocked(messages: Sequence[BaseMessage]) -> str:
        time.sleep(0.8)  # a C call: it returns before the alarm can stop it
        return react_final("late")

    started = time.monotonic()
    result = Agent(llm=ScriptedChatModel(responses=[blocked]), tools=TOOLS, timeout=0.3).invoke("q")
    assert 0.8 <= time.monotonic() - started < 1.5
    assert result.status == "timeout" and result.answer is None


def test_the_alarm_never_fires_after_the_episode():
    agent = Agent(llm=ScriptedChatModel(responses=[answer_by_question], repeat=True), tools=TOOLS, timeout=0.2)
    for _ in range(20):
        assert agent.invoke("ACME").status == "finished"
    time.sleep(0.4)  # every episode's deadline passes here, outside any model call
    total = sum(range(200_000))  # plenty of bytecodes for a stray exception to land in
    assert total == 19_999_900_000


async def test_wall_clock_timeout_cancels_an_async_model_call():
    cancelled = asyncio.Event()

    async def hang(messages: Sequence[BaseMessage]) -> str:
        try:
            await asyncio.sleep(30)
        except asyncio.CancelledError:
            cancelled.set()
            raise
        return "late"

    llm = ScriptedChatModel(responses=[tool_reply(tool_call("stock_price", ticker="A")), hang])
    started = time.monotonic()
    result = await Agent(llm=llm, tools=TOOLS, timeout=0.5).ainvoke("q")
    assert time.monotonic() - started < 1.5
    assert result.status == "timeout" and kinds(result) == ["action", "observation"]
    assert cancelled.is_set()


def test_a_failing_model_is_reported_not_raised():
    def explode(messages: Sequence[BaseMessage]) -> str:
        raise ConnectionError("model server went away")

    result = Agent(llm=ScriptedChatModel(responses=[explode]), tools=TOOLS).invoke("q")
    assert result.status == "error"
    assert result.error == "The model call failed: ConnectionError: model server went away"


@pytest.mark.parametrize(
    ("bad", "error", "match"),
    [
        ("", ValueError, "empty"),
        ("   \n", ValueError, "empty"),
        (None, TypeError, "must be the question as a string"),
        (42, TypeError, "got int"),
        ({"question": "hi"}, TypeError, "'input' key"),
        ({"input": ["hi"]}, TypeError, "got list"),
        ({"input": "hi", "history": ["not a message"]}, TypeError, "history"),
    ],
)
def test_bad_input_raises_a_clear_error_before_anything_runs(bad, error, match):
    llm = ScriptedChatModel(responses=["unused"])
    agent = Agent(llm=llm, tools=TOOLS)
    with pytest.raises(error, match=match):
        agent.invoke(bad)
    with pytest.raises(error, match=match):
        agent.stream(bad)  # eager: raised on the call, not on first iteration
    assert llm.calls == []


def test_bad_construction_raises_config_errors():
    with pytest.raises(TypeError, match="BaseChatModel"):
        Agent(llm=RunnableLambda(lambda x: x), tools=TOOLS)  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="max_steps"):
        Agent(llm=ScriptedChatModel(), max_steps=0)
    with pytest.raises(ConfigError, match="max_retries"):
        Agent(llm=ScriptedChatModel(), max_retries=-1)
    with pytest.raises(ConfigError, match="timeout"):
        Agent(llm=ScriptedChatModel(), timeout=0)
    with pytest.raises(ConfigError, match="does not support native tool calls"):
        Agent(llm=FakeListChatModel(responses=["x"]), tools=TOOLS, planner=ToolCallingPlanner())
    with pytest.raises(TypeError, match="hooks must be Hook"):
        Agent(llm=ScriptedChatModel(), hooks=[object()])  # type: ignore[list-item]


def test_stream_yields_steps_as_they_happen_then_the_result():
    seen_when: list[tuple[str, int]] = []
    llm = ScriptedChatModel(responses=[tool_reply(tool_call("stock_price", ticker="ACME")), "12.5"])
    agent = Agent(llm=llm, tools=TOOLS)
    events = []
    for event in agent.stream("q"):
        events.append(event)
        seen_when.append((type(event).__name__, len(llm.calls)))
    assert [type(e) for e in events] == [Action, Observation, Final, AgentResult]
    # The action arrives before the second model call: steps are streamed, not buffered.
    assert seen_when[0] == ("Action", 1)
    assert events[-1].steps == events[:-1]


async def test_astream_and_ainvoke():
    llm = ScriptedChatModel(responses=[react("stock_price", "ACME"), react_final("12.5")] * 2)
    agent = Agent(llm=llm, tools=TOOLS, planner=ReActPlanner())
    events = [e async for e in agent.astream("q")]
    assert [type(e) for e in events] == [Thought, Action, Observation, Thought, Final, AgentResult]
    result = await agent.ainvoke("q")
    assert result.answer == "12.5"


def answer_by_question(messages: Sequence[BaseMessage]) -> AIMessage:
    """A stateless responder: look up a price once, then answer with it."""
    question = next(str(m.content) for m in messages if isinstance(m, HumanMessage))
    observed = [m for m in messages if isinstance(m, ToolMessage)]
    if not observed:
        return tool_reply(tool_call("stock_price", ticker=question))
    return AIMessage(content=f"{question}={str(observed[0].content).splitlines()[0]}")


def test_batch_runs_episodes_independently():
    agent = Agent(llm=ScriptedChatModel(responses=[answer_by_question], repeat=True), tools=TOOLS)
    results = agent.batch(["ACME", "ZZZ", "ACME"])
    assert [r.answer for r in results] == ["ACME=12.5", "ZZZ=0.0", "ACME=12.5"]
    assert len({r.episode_id for r in results}) == 3


async def test_abatch():
    agent = Agent(llm=ScriptedChatModel(responses=[answer_by_question], repeat=True), tools=TOOLS)
    results = await agent.abatch(["ACME", "ZZZ"])
    assert [r.answer for r in results] == ["ACME=12.5", "ZZZ=0.0"]


def test_agent_composes_as_a_runnable():
    agent = Agent(llm=ScriptedChatModel(responses=[answer_by_question], repeat=True), tools=TOOLS)
    chain = agent | RunnableLambda(lambda result: result.answer.upper())
    assert isinstance(agent, Runnable)
    assert chain.invoke("ACME") == "ACME=12.5"
    assert agent.with_config(run_name="pricing").invoke("ACME").status == "finished"


class Recorder(BaseCallbackHandler):
    def __init__(self) -> None:
        self.events: list[str] = []
        self.episode_ids: set[str] = set()
        self.lock = threading.Lock()

    def _add(self, event: str, kwargs: dict[str, Any]) -> None:
        with self.lock:
            self.events.append(event)
            if episode := (kwargs.get("metadata") or {}).get("agentkit_episode_id"):
                self.episode_ids.add(episode)

    def on_chain_start(self, serialized, inputs, **kwargs):
        self._add(f"chain_start:{kwargs.get('name')}", kwargs)

    def on_chain_end(self, outputs, **kwargs):
        self._add("chain_end", kwargs)

    def on_chat_model_start(self, serialized, messages, **kwargs):
        self._add("model_start", kwargs)

    def on_llm_end(self, response, **kwargs):
        self._add("model_end", kwargs)

    def on_tool_start(self, serialized, input_str, **kwargs):
        self._add(f"tool_start:{serialized['name']}", kwargs)

    def on_tool_end(self, output, **kwargs):
        self._add("tool_end", kwargs)


def test_langchain_callbacks_see_model_and_tool_calls():
    llm = ScriptedChatModel(responses=[tool_reply(tool_call("stock_price", ticker="ACME")), "12.5"])
    recorder = Recorder()
    result = Agent(llm=llm, tools=TOOLS).invoke("q", {"callbacks": [recorder], "run_name": "pricing"})
    assert recorder.events == [
        "chain_start:pricing",
        "model_start",
        "model_end",
        "tool_start:stock_price",
        "tool_end",
        "model_start",
        "model_end",
        "chain_end",
    ]
    assert recorder.episode_ids == {result.episode_id}


async def test_langchain_callbacks_async_and_astream_events():
    llm = ScriptedChatModel(responses=[tool_reply(tool_call("stock_price", ticker="ACME")), "12.5"] * 2)
    agent = Agent(llm=llm, tools=TOOLS)
    recorder = Recorder()
    await agent.ainvoke("q", {"callbacks": [recorder]})
    assert recorder.events.count("model_start") == 2 and recorder.events.count("tool_end") == 1
    kinds_seen = {e["event"] async for e in agent.astream_events("q", version="v2")}
    assert {"on_chain_start", "on_chat_model_start", "on_tool_start", "on_tool_end", "on_chain_end"} <= kinds_seen


def test_each_prompt_is_a_prefix_of_the_next():
    llm = ScriptedChatModel(
        responses=[
            react("stock_price", "ACME"),
            "no labels at all",
            react("multiply", '{"a": 3, "b": 12.5}'),
            react_final("37.5"),
        ]
    )
    result = Agent(llm=llm, tools=TOOLS, planner=ReActPlanner()).invoke("q")
    prompts = [c.messages for c in llm.calls]
    for shorter, longer in itertools.pairwise(prompts):
        assert longer[: len(shorter)] == shorter
    assert result.messages[: len(prompts[-1])] == prompts[-1]


def test_works_with_langchain_core_fake_chat_models():
    # FakeListChatModel has no bind_tools, so the agent speaks ReAct text to it; it ignores stop strings.
    fake = FakeListChatModel(responses=[react("stock_price", "ACME") + "\nObservation: made up", react_final("12.5")])
    result = Agent(llm=fake, tools=TOOLS).invoke("price?")
    assert isinstance(Agent(llm=fake).planner, ReActPlanner)
    assert result.status == "finished" and result.answer == "12.5"
    assert result.observations[0].content == "12.5"

    generic = GenericFakeChatModel(messages=iter([AIMessage(content=react_final("hello"))]))
    assert Agent(llm=generic).invoke("hi").answer == "hello"


async def test_fake_chat_model_async():
    fake = FakeListChatModel(responses=[react("multiply", '{"a": 2, "b": 4}'), react_final("8")])
    result = await Agent(llm=fake, tools=TOOLS).ainvoke("2*4?")
    assert result.answer == "8" and result.observations[0].content == "8.0"


def test_history_continues_a_conversation():
    llm = ScriptedChatModel(responses=["You asked about ACME."])
    history = [HumanMessage("What is ACME?"), AIMessage("A company.")]
    result = Agent(llm=llm, tools=TOOLS).invoke({"input": "What did I ask?", "history": history})
    assert llm.calls[0].messages[1:4] == [*history, HumanMessage("What did I ask?")]
    assert result.answer == "You asked about ACME."


class RecordingHook(Hook):
    def __init__(self) -> None:
        self.log: list[str] = []

    def on_episode_start(self, episode_id: str, question: str) -> None:
        self.log.append(f"start:{question}")

    def on_step(self, episode_id: str, step: Step) -> None:
        self.log.append(type(step).__name__)

    def on_episode_end(self, result: AgentResult) -> None:
        self.log.append(f"end:{result.status}")


class ListMemory:
    def __init__(self) -> None:
        self.committed: list[AgentResult] = []

    def recall(self, query: str) -> list[Recollection]:
        return [Recollection("m1", "ACME trades on the moon exchange.", 0.9)]

    def commit(self, result: AgentResult) -> None:
        self.committed.append(result)


class OnlyPrices:
    def understand(self, text: str, toolbox: Toolbox) -> Understood:
        return Understood(tools=["stock_price"], memories=[Recollection("u1", "The user likes round numbers.")])


def test_hooks_memory_and_understanding_slots():
    hook, memory = RecordingHook(), ListMemory()
    llm = ScriptedChatModel(responses=[tool_reply(tool_call("stock_price", ticker="ACME")), "12.5"])
    agent = Agent(llm=llm, tools=TOOLS, hooks=[hook], memory=memory, understanding=OnlyPrices())
    result = agent.invoke("ACME?")
    assert hook.log == ["start:ACME?", "Action", "Observation", "Final", "end:finished"]
    assert memory.committed == [result]
    assert result.memory_ids == ["u1", "m1"]
    system = str(llm.calls[0].messages[0].content)
    assert "moon exchange" in system and "round numbers" in system
    assert llm.calls[0].tools == ["stock_price"]  # understanding narrowed the tools offered


def test_format_error_and_thought_steps_are_typed():
    llm = ScriptedChatModel(responses=["Thought: x\nAction:", react_final("ok")])
    result = Agent(llm=llm, tools=TOOLS, planner=ReActPlanner()).invoke("q")
    errors = [s for s in result.steps if isinstance(s, FormatError)]
    assert len(errors) == 1 and errors[0].raw.startswith("Thought: x") and errors[0].step == 1
    assert "status=finished" in str(result)

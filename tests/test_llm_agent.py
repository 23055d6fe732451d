"""Whole agents on a real transformers model: both planner wire formats, end to end, and batched episodes.

The tiny model is trained on the exact prompts the agent sends (recorded from a scripted run of the same agent, then
rendered with the model's chat template) to answer with a tool call, then with the final answer. The ReAct reply
runs on past the action into an invented observation, which the planner's stop string must cut off.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pytest
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage
from langchain_core.utils.function_calling import convert_to_openai_tool

from agentkit import Agent, ReActPlanner, ToolCallingPlanner
from agentkit.llm import LocalChatModel
from agentkit.llm.prompt import render_prompt
from agentkit.testing import ScriptedChatModel, react, react_final, tool_call, tool_reply
from agentkit.tools import calculator

QUESTIONS = {"What is 17 + 25?": ("17 + 25", "42"), "What is 6 * 7 * 3?": ("6 * 7 * 3", "126")}
INVENTED = "\nObservation: 99\nThought: I now know the final answer.\nFinal Answer: 99"


def _react_agent(llm: BaseChatModel) -> Agent:
    return Agent(llm=llm, tools=[calculator], planner=ReActPlanner(), max_steps=4)


def _tool_calling_agent(llm: BaseChatModel) -> Agent:
    return Agent(llm=llm, tools=[calculator], planner=ToolCallingPlanner(), max_steps=4)


def _react_script(expression: str, answer: str) -> tuple[list[Any], list[str]]:
    replies = [react("calculator", expression), react_final(answer)]
    return replies, [replies[0] + INVENTED, replies[1]]


def _tool_script(expression: str, answer: str) -> tuple[list[Any], list[str]]:
    call = '<tool_call>\n{"name": "calculator", "arguments": {"expression": "' + expression + '"}}\n</tool_call>'
    return [tool_reply(tool_call("calculator", expression=expression)), AIMessage(answer)], [call, answer]


def _train(
    base: Path,
    out: Path,
    build: Callable[[BaseChatModel], Agent],
    script: Callable[[str, str], tuple[list[Any], list[str]]],
) -> Path:
    """Record the prompts a scripted run of the agent sends, and train the model to reply to them."""
    from transformers import AutoTokenizer

    from agentkit.llm.tiny import train_to_say

    shutil.copytree(base, out)
    tokenizer = AutoTokenizer.from_pretrained(out)
    pairs: list[str | tuple[str, str]] = []
    for question, (expression, answer) in QUESTIONS.items():
        replies, texts = script(expression, answer)
        scripted = ScriptedChatModel(responses=replies)
        agent = build(scripted)
        assert agent.invoke(question).answer == answer
        schemas = [convert_to_openai_tool(t) for t in agent.toolbox.tools]
        for call, text in zip(scripted.calls, texts, strict=True):
            pairs.append((render_prompt(tokenizer, call.messages, schemas if call.tools else None), text))
    train_to_say(out, pairs, steps=600)
    return out


@pytest.fixture(scope="module")
def react_dir(tiny_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _train(tiny_dir, tmp_path_factory.mktemp("react") / "model", _react_agent, _react_script)


@pytest.fixture(scope="module")
def tool_dir(tiny_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _train(tiny_dir, tmp_path_factory.mktemp("tools") / "model", _tool_calling_agent, _tool_script)


def _check(result: Any, answer: str, expression: str) -> None:
    assert result.status == "finished", result
    assert result.answer == answer
    actions = [s for s in result.steps if type(s).__name__ == "Action"]
    observations = [s for s in result.steps if type(s).__name__ == "Observation"]
    assert [(a.tool, a.args) for a in actions] == [("calculator", {"expression": expression})]
    assert [o.content for o in observations] == [answer]  # the real tool ran, not the model's invented one


def test_a_react_agent_runs_end_to_end_and_the_stop_string_cuts_the_invented_observation(react_dir: Path) -> None:
    llm = LocalChatModel.from_pretrained(react_dir, max_new_tokens=96)
    agent = _react_agent(llm)
    for question, (expression, answer) in QUESTIONS.items():
        _check(agent.invoke(question), answer, expression)
    assert llm.stats.calls == 4
    assert llm.stats.prefilled_tokens < 0.6 * llm.stats.prompt_tokens  # second steps reused the first's prefix


def test_a_tool_calling_agent_runs_end_to_end_on_native_tool_calls(tool_dir: Path) -> None:
    agent = _tool_calling_agent(LocalChatModel.from_pretrained(tool_dir, max_new_tokens=64))
    for question, (expression, answer) in QUESTIONS.items():
        _check(agent.invoke(question), answer, expression)


@pytest.mark.parametrize("wire", ["react", "tools"])
def test_agent_batch_shares_the_model_and_batches_its_steps(
    wire: str, react_dir: Path, tool_dir: Path, request: pytest.FixtureRequest
) -> None:
    directory, build = (react_dir, _react_agent) if wire == "react" else (tool_dir, _tool_calling_agent)
    llm = LocalChatModel.from_pretrained(directory, max_new_tokens=96)
    agent = build(llm)
    questions: Sequence[str] = list(QUESTIONS) * 2
    results = agent.batch(list(questions))
    for question, result in zip(questions, results, strict=True):
        expression, answer = QUESTIONS[question]
        _check(result, answer, expression)
    assert llm.stats.calls == 2 * len(questions)
    assert llm.stats.batches < llm.stats.calls


async def test_agent_ainvoke_on_the_local_model(tool_dir: Path) -> None:
    agent = _tool_calling_agent(LocalChatModel.from_pretrained(tool_dir, max_new_tokens=64))
    result = await agent.ainvoke("What is 17 + 25?")
    _check(result, "42", "17 + 25")

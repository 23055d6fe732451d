"""ConversationMemory: threads persisted in SQLite, trimmed to a budget, older turns summarised by the agent's model."""

from __future__ import annotations

import logging
import subprocess
import sys
from pathlib import Path

import pytest
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage

from agentkit import Agent
from agentkit.errors import ConfigError
from agentkit.memory import ConversationMemory
from agentkit.testing import ScriptedChatModel


def _turn(n: int) -> tuple[str, str]:
    return f"Question {n}: what about item {n}?", f"Answer {n}: item {n} is fine."


def _reply(messages: list[BaseMessage]) -> str:
    """The agent's model: summarises when asked to, answers otherwise."""
    last = str(messages[-1].content)
    if last.startswith("Summarise this conversation"):
        return "Ada asked about item 1; it is fine."
    return f"Reply to: {last.splitlines()[-1]}"


def test_threads_survive_a_restart(tmp_path: Path):
    path = tmp_path / "conversations.sqlite3"
    conversations = ConversationMemory(path)
    conversations.add_turn("ada", *_turn(1))
    conversations.add_turn("bob", *_turn(2))
    conversations.add_turn("ada", *_turn(3))
    script = f"""
from agentkit.memory import ConversationMemory
memory = ConversationMemory({str(path)!r})
print((memory.threads(), [m.content for m in memory.history("ada")]))
"""
    shown = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True).stdout
    assert shown.strip() == str((["ada", "bob"], [*_turn(1), *_turn(3)]))
    conversations.clear("ada")
    assert ConversationMemory(path).threads() == ["bob"]


def test_older_turns_are_summarised_by_the_agents_own_model(tmp_path: Path):
    llm = ScriptedChatModel(responses=[_reply], repeat=True)
    agent = Agent(llm)
    conversations = ConversationMemory(tmp_path / "c.sqlite3", llm=llm, max_tokens=50, keep_turns=2)
    for n in range(1, 4):
        result = agent.invoke({"input": _turn(n)[0], "history": conversations.history("t")})
        conversations.record("t", result)

    prompts = [str(c.messages[-1].content) for c in llm.calls if "Summarise" in str(c.messages[-1].content)]
    assert len(prompts) == 1 and "item 1" in prompts[0] and "item 2" not in prompts[0]
    assert conversations.summary("t") == "Ada asked about item 1; it is fine."

    history = conversations.history("t")
    assert [type(m) for m in history] == [HumanMessage, AIMessage] * 2  # roles still alternate
    assert str(history[0].content).startswith("(Summary of our earlier conversation: Ada asked about item 1")
    assert str(history[0].content).endswith(_turn(2)[0])
    assert history[2].content == _turn(3)[0]
    # The next episode sees the summary and the recent turns.
    agent.invoke({"input": "And item 4?", "history": history})
    assert "Ada asked about item 1" in str(llm.calls[-1].messages[1].content)


def test_without_a_model_the_latest_turns_fill_the_budget(tmp_path: Path):
    conversations = ConversationMemory(tmp_path / "c.sqlite3", max_tokens=30)
    for n in range(1, 6):
        conversations.add_turn("t", *_turn(n))
    history = conversations.history("t")
    assert [m.content for m in history] == [*_turn(4), *_turn(5)]
    assert sum(conversations.count_tokens(str(m.content)) for m in history) <= 30
    assert conversations.summary("t") == ""


def test_a_failing_summariser_keeps_every_turn(tmp_path: Path, caplog: pytest.LogCaptureFixture):
    def broken(messages: list[BaseMessage]) -> str:
        raise RuntimeError("model crashed")

    conversations = ConversationMemory(
        tmp_path / "c.sqlite3", llm=ScriptedChatModel(responses=[broken], repeat=True), max_tokens=30
    )
    with caplog.at_level(logging.WARNING):
        for n in range(1, 5):
            conversations.add_turn("t", *_turn(n))
    assert "model crashed" in caplog.text
    assert conversations.summary("t") == ""
    assert [m.content for m in conversations.history("t")][-2:] == list(_turn(4))


def test_bad_input_raises_what_to_do(tmp_path: Path):
    conversations = ConversationMemory(tmp_path / "c.sqlite3")
    for bad in ("", "  ", None):
        with pytest.raises(ConfigError, match="thread id"):
            conversations.history(bad)  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="non-empty question"):
        conversations.add_turn("t", "", "answer")
    with pytest.raises(ConfigError, match="max_tokens"):
        ConversationMemory(tmp_path / "d.sqlite3", max_tokens=0)
    (tmp_path / "garbage.sqlite3").write_bytes(b"not a database" * 100)
    with pytest.raises(ConfigError, match="Cannot use"):
        ConversationMemory(tmp_path / "garbage.sqlite3")
    with pytest.raises(ConfigError, match="Cannot use"):
        ConversationMemory(tmp_path)  # a folder, not a file

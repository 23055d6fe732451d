"""Conversation memory: multi-turn sessions keyed by a thread id, kept in one SQLite file.

Each turn is stored as the user's question and the agent's answer, so a restarted process continues where the
last one stopped. When a thread's history outgrows its token budget, the older turns are folded into a running
summary written by the agent's own chat model; the turns stay in the file, only the prompt gets shorter.

    conversations = ConversationMemory(llm=llm)
    result = agent.invoke({"input": question, "history": conversations.history("thread-1")})
    conversations.record("thread-1", result)
"""

from __future__ import annotations

import contextlib
import logging
import os
import sqlite3
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage

from agentkit.errors import ConfigError
from agentkit.memory.policy import approx_tokens
from agentkit.memory.store import default_memory_path
from agentkit.prompting import render
from agentkit.steps import AgentResult

__all__ = ["ConversationMemory"]

_log = logging.getLogger(__name__)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS turns (
    thread TEXT NOT NULL, seq INTEGER NOT NULL, question TEXT NOT NULL, answer TEXT NOT NULL, at REAL NOT NULL,
    PRIMARY KEY (thread, seq)
);
CREATE TABLE IF NOT EXISTS summaries (thread TEXT PRIMARY KEY, summary TEXT NOT NULL, upto INTEGER NOT NULL);
"""

Turn = tuple[int, str, str]  # (seq, question, answer)


class ConversationMemory:
    """Conversations by thread id, persisted, trimmed to a token budget, older turns summarised by a chat model.

    Args:
        path: The SQLite file; default ``conversations.sqlite3`` in `default_memory_path()`.
        llm: The chat model that writes summaries (the agent's own). Without one, older turns beyond the budget are
            simply left out of the history.
        max_tokens: The budget of one thread's history in the prompt.
        keep_turns: The most recent turns never folded into the summary.
        count_tokens: Counts tokens; default an estimate of four characters per token.

    Raises:
        ConfigError: On invalid settings, or when the file cannot be created, written or read as a database.
    """

    def __init__(
        self,
        path: str | os.PathLike[str] | None = None,
        *,
        llm: BaseChatModel | None = None,
        max_tokens: int = 2000,
        keep_turns: int = 2,
        count_tokens: Callable[[str], int] = approx_tokens,
    ) -> None:
        if isinstance(max_tokens, bool) or not isinstance(max_tokens, int) or max_tokens < 1:
            raise ConfigError(f"max_tokens must be a positive integer, got {max_tokens!r}.")
        if isinstance(keep_turns, bool) or not isinstance(keep_turns, int) or keep_turns < 1:
            raise ConfigError(f"keep_turns must be a positive integer, got {keep_turns!r}.")
        if llm is not None and not isinstance(llm, BaseChatModel):
            raise ConfigError(f"llm must be a LangChain chat model, got {type(llm).__name__}.")
        self.path = Path(path) if path is not None else default_memory_path() / "conversations.sqlite3"
        self.llm, self.max_tokens, self.keep_turns, self.count_tokens = llm, max_tokens, keep_turns, count_tokens
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with self._db() as db:
                db.executescript(_SCHEMA)
        except (OSError, sqlite3.Error) as exc:
            raise ConfigError(
                f"Cannot use {str(self.path)!r} for conversations ({exc}): pass a writable path to a new or "
                "existing conversation file."
            ) from exc

    def history(self, thread_id: str) -> list[BaseMessage]:
        """The thread as messages for ``agent.invoke({"input": ..., "history": ...})``, within the token budget.

        The summary of older turns, when there is one, opens the first message, so user and assistant turns still
        alternate strictly (what many chat templates require). The latest turn is always included.
        """
        summary, turns = self._load(_check_thread(thread_id))
        budget = self.max_tokens - (self.count_tokens(summary) if summary else 0)
        kept: list[Turn] = []
        for turn in reversed(turns):
            budget -= self._cost(turn)
            if kept and budget < 0:
                break
            kept.insert(0, turn)
        messages: list[BaseMessage] = []
        for n, (_, question, answer) in enumerate(kept):
            opening = f"(Summary of our earlier conversation: {summary})\n\n" if n == 0 and summary else ""
            messages += [HumanMessage(opening + question), AIMessage(answer)]
        return messages

    def add_turn(self, thread_id: str, question: str, answer: str) -> None:
        """Append one exchange, then summarise older turns when the thread is over budget.

        Raises:
            ConfigError: When the thread id, question or answer is not a string, or the question is empty.
        """
        thread = _check_thread(thread_id)
        if not isinstance(question, str) or not question.strip() or not isinstance(answer, str):
            raise ConfigError("A turn needs a non-empty question and an answer, both strings.")
        with self._db() as db:
            (last,) = db.execute("SELECT COALESCE(MAX(seq), 0) FROM turns WHERE thread = ?", (thread,)).fetchone()
            db.execute("INSERT INTO turns VALUES (?, ?, ?, ?, ?)", (thread, last + 1, question, answer, time.time()))
        self._compact(thread)

    def record(self, thread_id: str, result: AgentResult) -> None:
        """Append an episode as one exchange: its question and its answer (empty when it ended without one)."""
        self.add_turn(thread_id, result.input, result.answer or "")

    def summary(self, thread_id: str) -> str:
        """The summary of the thread's older turns ('' when none were summarised)."""
        return self._load(_check_thread(thread_id))[0]

    def threads(self) -> list[str]:
        """Every thread id with at least one turn, in order."""
        with self._db() as db:
            return [row[0] for row in db.execute("SELECT DISTINCT thread FROM turns ORDER BY thread")]

    def clear(self, thread_id: str) -> None:
        """Delete a thread: its turns and its summary."""
        thread = _check_thread(thread_id)
        with self._db() as db:
            db.execute("DELETE FROM turns WHERE thread = ?", (thread,))
            db.execute("DELETE FROM summaries WHERE thread = ?", (thread,))

    # -- internals ------------------------------------------------------------------------------------------

    @contextlib.contextmanager
    def _db(self) -> Iterator[sqlite3.Connection]:
        # A connection per operation: cheap for SQLite, and safe across threads and processes.
        db = sqlite3.connect(self.path, timeout=30)
        try:
            with db:  # one transaction, committed on success
                yield db
        finally:
            db.close()

    def _cost(self, turn: Turn) -> int:
        return self.count_tokens(turn[1]) + self.count_tokens(turn[2])

    def _load(self, thread: str) -> tuple[str, list[Turn]]:
        with self._db() as db:
            row = db.execute("SELECT summary, upto FROM summaries WHERE thread = ?", (thread,)).fetchone()
            summary, upto = row if row else ("", 0)
            turns = db.execute(
                "SELECT seq, question, answer FROM turns WHERE thread = ? AND seq > ? ORDER BY seq", (thread, upto)
            ).fetchall()
        return summary, turns

    def _compact(self, thread: str) -> None:
        """Fold all but the last `keep_turns` turns into the summary when the thread is over budget."""
        summary, turns = self._load(thread)
        used = sum(self._cost(t) for t in turns) + (self.count_tokens(summary) if summary else 0)
        older = turns[: -self.keep_turns]
        if self.llm is None or used <= self.max_tokens or not older:
            return
        # The summary should leave most of the budget to the turns kept verbatim.
        prompt = render(
            "conversation_summary.jinja",
            words=max(20, self.max_tokens // 4),
            summary=summary,
            turns=[(q, a) for _, q, a in older],
        )
        try:
            written = str(self.llm.invoke([HumanMessage(prompt)]).content).strip()
        except Exception as exc:  # a failing model must not lose turns: they stay, unsummarised
            _log.warning("Could not summarise conversation %r: %s", thread, exc)
            return
        if written:
            with self._db() as db:
                db.execute("INSERT OR REPLACE INTO summaries VALUES (?, ?, ?)", (thread, written, older[-1][0]))


def _check_thread(thread_id: object) -> str:
    if not isinstance(thread_id, str) or not thread_id.strip():
        raise ConfigError(f"A thread id must be a non-empty string, got {thread_id!r}.")
    return thread_id

"""The SQLite store behind `agentkit.rewards`: episodes and rewards, append-only (see that module for why SQLite)."""

from __future__ import annotations

import json
import os
import sqlite3
import threading
import time
import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from agentkit.errors import ConfigError

__all__ = ["EpisodeRecord", "Reward", "RewardLog"]

_SCHEMA_VERSION = 1
_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS episodes (seq INTEGER PRIMARY KEY AUTOINCREMENT, episode_id TEXT NOT NULL UNIQUE, "
    "task_id TEXT, model TEXT NOT NULL, adapter TEXT, status TEXT NOT NULL, created_at REAL NOT NULL, "
    "record TEXT NOT NULL)",
    "CREATE TABLE IF NOT EXISTS rewards (seq INTEGER PRIMARY KEY AUTOINCREMENT, episode_id TEXT NOT NULL "
    "REFERENCES episodes(episode_id), source TEXT NOT NULL, name TEXT NOT NULL, value REAL NOT NULL, label INTEGER, "
    "comment TEXT NOT NULL, created_at REAL NOT NULL)",
    "CREATE INDEX IF NOT EXISTS rewards_episode ON rewards(episode_id)",
    *(
        f"CREATE TRIGGER IF NOT EXISTS {table}_no_{verb} BEFORE {verb.upper()} ON {table} "
        "BEGIN SELECT RAISE(ABORT, 'the reward log is append-only'); END"
        for table in ("episodes", "rewards")
        for verb in ("update", "delete")
    ),
    f"PRAGMA user_version = {_SCHEMA_VERSION}",
)
_BUSY_TIMEOUT_MS = 60_000


@dataclass(frozen=True, slots=True)
class Reward:
    """One reward of an episode.

    Attributes:
        source: Where it came from: ``env`` (the task's checker), ``rule``, ``judge`` or ``feedback``.
        name: Which checker, rule, judge or user gave it.
        value: The reward; checkers, thumbs and `LLMJudge` give values in [0, 1].
        label: Thumbs up (True) or down (False) for feedback given as thumbs, else None.
        comment: Free text, e.g. the user's comment.
        created_at: Unix time it was recorded.
    """

    source: str
    name: str
    value: float
    label: bool | None = None
    comment: str = ""
    created_at: float = 0.0


@dataclass(frozen=True, slots=True)
class EpisodeRecord:
    """One logged episode, as read back from the log.

    Attributes:
        episode_id: The agent's episode id (`AgentResult.episode_id`).
        task_id: The task it attempted, when known.
        model: The model id.
        adapter: The adapter version (folder name and content hash), or None for the base model.
        question: The user's question.
        answer: The final answer, or None.
        status: How the episode ended.
        error: Why it ended early, when it did.
        created_at: Unix time the episode started.
        seconds: Wall-clock duration.
        model_calls: Model calls made.
        usage: Summed token usage.
        memory_ids: Ids of the long-term memories put into the prompt.
        tools: OpenAI-format schemas of the tools the agent had.
        messages: The conversation, as `langchain_core.messages.messages_to_dict` writes it.
        steps: The typed steps as dicts (``type``, their fields, and ``latency``: seconds since the previous event).
        turns: One dict per model reply: ``message_index``, ``content``, ``tool_calls``, ``stop_reason``,
            ``usage``, and ``token_ids`` / ``logprobs`` when the model returned them.
        rewards: Every reward, in the order recorded.
    """

    episode_id: str
    task_id: str | None
    model: str
    adapter: str | None
    question: str
    answer: str | None
    status: str
    error: str | None
    created_at: float
    seconds: float
    model_calls: int
    usage: dict[str, int]
    memory_ids: list[str]
    tools: list[dict[str, Any]]
    messages: list[dict[str, Any]]
    steps: list[dict[str, Any]]
    turns: list[dict[str, Any]]
    rewards: tuple[Reward, ...] = ()

    def reward(self, sources: Sequence[str] | None = None) -> float | None:
        """The episode's scalar reward: the mean over (source, name) of each one's latest value.

        Args:
            sources: Only rewards from these sources count (default: all).

        Returns:
            The reward, or None when the episode has no reward from those sources.
        """
        latest: dict[tuple[str, str], float] = {}
        for reward in self.rewards:
            if sources is None or reward.source in sources:
                latest[(reward.source, reward.name)] = reward.value
        return sum(latest.values()) / len(latest) if latest else None

    def thumbs(self) -> bool | None:
        """The latest thumbs-up/down feedback, or None when there is none."""
        labels = [r.label for r in self.rewards if r.source == "feedback" and r.label is not None]
        return labels[-1] if labels else None


class RewardLog:
    """An append-only reward log in one SQLite file, safe to share between threads and processes.

    Args:
        path: The database file; created with its tables when missing.

    Raises:
        ConfigError: When the file exists but is not a reward log, or WAL mode cannot be enabled.
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()
        self._conn: sqlite3.Connection | None = None
        self._pid = 0

    def _connection(self) -> sqlite3.Connection:
        # A connection must not cross a fork: a child process opens its own.
        if self._conn is None or self._pid != os.getpid():
            self._conn = _open(self.path)
            self._pid = os.getpid()
        return self._conn

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            conn = self._connection()
            # IMMEDIATE takes the write lock up front, so two writers never deadlock upgrading from a read.
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")

    def open(self) -> None:
        """Open the log now (creating it when missing), so a bad path fails before any episode runs.

        Raises:
            ConfigError: When the file exists but is not a reward log, or WAL mode cannot be enabled.
            OSError: When its folder cannot be created.
        """
        with self._lock:
            self._connection()

    def append(self, record: EpisodeRecord) -> None:
        """Write one episode and its rewards in one transaction.

        Raises:
            ValueError: When an episode with this id is already in the log.
        """
        row = asdict(record)
        rewards = row.pop("rewards")
        try:
            with self._write() as conn:
                conn.execute(
                    "INSERT INTO episodes (episode_id, task_id, model, adapter, status, created_at, record) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?)",
                    (
                        record.episode_id,
                        record.task_id,
                        record.model,
                        record.adapter,
                        record.status,
                        record.created_at,
                        json.dumps(row, ensure_ascii=False),
                    ),
                )
                _insert_rewards(conn, record.episode_id, [Reward(**r) for r in rewards])
        except sqlite3.IntegrityError as exc:
            raise ValueError(f"Episode {record.episode_id!r} is already in {self.path}.") from exc

    def add_reward(
        self,
        episode_id: str,
        value: float,
        *,
        source: str,
        name: str = "",
        label: bool | None = None,
        comment: str = "",
    ) -> Reward:
        """Attach a reward to a logged episode (from a judge run later, a rule, a user).

        Raises:
            ValueError: When no episode has this id.
        """
        reward = Reward(source, name or source, float(value), label, comment, time.time())
        with self._write() as conn:
            if conn.execute("SELECT 1 FROM episodes WHERE episode_id = ?", (episode_id,)).fetchone() is None:
                raise ValueError(
                    f"No episode {episode_id!r} in {self.path}: rewards attach to a logged episode "
                    "(use AgentResult.episode_id of an episode run with this log's RewardLogger)."
                )
            _insert_rewards(conn, episode_id, [reward])
        return reward

    def feedback(
        self,
        episode_id: str,
        *,
        thumbs: bool | None = None,
        score: float | None = None,
        comment: str = "",
        user: str = "user",
    ) -> Reward:
        """Record a user's feedback on an episode: thumbs up/down (1.0 / 0.0) or a score, and a comment.

        Raises:
            ValueError: When neither thumbs nor score is given, or no episode has this id.
        """
        if (thumbs is None) == (score is None):
            raise ValueError("Give feedback as exactly one of thumbs=True/False or score=<number> (plus a comment).")
        value = float(thumbs) if thumbs is not None else float(score)  # type: ignore[arg-type]
        return self.add_reward(episode_id, value, source="feedback", name=user, label=thumbs, comment=comment)

    def episodes(self) -> list[EpisodeRecord]:
        """Every logged episode with its rewards, oldest first; an unreadable row is skipped with a warning.

        Raises:
            ConfigError: When the log does not exist or is not a reward log.
        """
        if not self.path.is_file():
            raise ConfigError(f"No reward log at {self.path}; run episodes with a RewardLogger writing there first.")
        with self._lock:
            conn = self._connection()
            conn.execute("BEGIN")  # one snapshot for both tables
            try:
                rows = conn.execute("SELECT seq, episode_id, record FROM episodes ORDER BY seq").fetchall()
                reward_rows = conn.execute(
                    "SELECT episode_id, source, name, value, label, comment, created_at FROM rewards ORDER BY seq"
                ).fetchall()
            finally:
                conn.execute("COMMIT")
        rewards: dict[str, list[Reward]] = {}
        for episode_id, source, name, value, label, comment, created in reward_rows:
            rewards.setdefault(episode_id, []).append(
                Reward(source, name, value, None if label is None else bool(label), comment, created)
            )
        records = []
        for seq, episode_id, text in rows:
            try:
                records.append(EpisodeRecord(**json.loads(text), rewards=tuple(rewards.get(episode_id, ()))))
            except (TypeError, ValueError) as exc:
                warnings.warn(
                    f"{self.path}: episode row {seq} ({episode_id}) is not a record, skipped: {exc}", stacklevel=2
                )
        return records

    def close(self) -> None:
        """Close this process's connection (it reopens on next use)."""
        with self._lock:
            if self._conn is not None and self._pid == os.getpid():
                self._conn.close()
            self._conn = None


def _open(path: Path) -> sqlite3.Connection:
    path.parent.mkdir(parents=True, exist_ok=True)
    # Autocommit mode: transactions are explicit (BEGIN IMMEDIATE ... COMMIT) in RewardLog._write.
    conn = sqlite3.connect(path, timeout=_BUSY_TIMEOUT_MS / 1000, isolation_level=None, check_same_thread=False)
    try:
        conn.execute(f"PRAGMA busy_timeout = {_BUSY_TIMEOUT_MS}")
        mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
        if mode != "wal":
            raise ConfigError(f"Cannot use WAL mode for {path} (got {mode!r}); put the reward log on a local disk.")
        conn.execute("PRAGMA synchronous = FULL")
        # Checked and created under the write lock: two processes opening a new log at once create it once.
        conn.execute("BEGIN IMMEDIATE")
        try:
            _create(conn, path)
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")
    except sqlite3.DatabaseError as exc:
        conn.close()
        raise ConfigError(f"{path} is not an agentkit reward log: {exc}.") from exc
    except ConfigError:
        conn.close()
        raise
    return conn


def _create(conn: sqlite3.Connection, path: Path) -> None:
    version = conn.execute("PRAGMA user_version").fetchone()[0]
    if version == _SCHEMA_VERSION:
        return
    tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    if version != 0 or tables:
        raise ConfigError(
            f"{path} is not an agentkit reward log of schema version {_SCHEMA_VERSION} "
            f"(user_version {version}, tables {sorted(tables)})."
        )
    for statement in _SCHEMA:
        conn.execute(statement)


def _insert_rewards(conn: sqlite3.Connection, episode_id: str, rewards: Sequence[Reward]) -> None:
    conn.executemany(
        "INSERT INTO rewards (episode_id, source, name, value, label, comment, created_at) "
        "VALUES (?, ?, ?, ?, ?, ?, ?)",
        [(episode_id, r.source, r.name, r.value, r.label, r.comment, r.created_at or time.time()) for r in rewards],
    )

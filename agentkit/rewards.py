"""The reward log: every episode an agent runs, with its rewards, appended to one SQLite file.

`RewardLogger` is a `Hook`: give it to an `Agent` (or to `agentkit.evaluate.evaluate`) and each finished episode is
written with everything training needs (model and adapter, tool schemas, the whole conversation, each step with its
latency, each model turn with its stop reason and, when the model returns them, token ids and log-probabilities,
recalled memory ids, answer, status, usage) and its rewards: the task's checker (source ``env``), rule functions
(``rule``), judges such as `LLMJudge` (``judge``), and user feedback attached later by episode id (``feedback``).

Why SQLite in WAL mode rather than JSONL with an fsync per episode:

* **Atomic:** an episode and its first rewards go in one transaction; a reader sees all of it or none of it. A
  JSONL writer killed mid-line leaves a torn line that every reader must learn to skip.
* **Crash-safe under SIGKILL:** a committed transaction is in the write-ahead log before `commit` returns, and the
  next opener replays or ignores the log's tail by its checksums, so killing a writer loses at most the episode
  being written, never one whose write returned. ``synchronous=FULL`` also fsyncs each commit, which makes it
  survive power loss; one fsync per episode is nothing next to an episode's model calls.
* **Several writers at once:** evaluation threads, parallel collection processes and a feedback web app can all
  write; SQLite serialises the writers and ``busy_timeout`` makes each wait its turn instead of failing, while
  readers never block. Processes appending to one JSONL file can interleave a long line that a buffered writer
  split into several writes.
* **Append-only, enforced:** triggers refuse UPDATE and DELETE; feedback is a new reward row, never an edit.

The store is `agentkit.rewardlog.RewardLog`; WAL needs a local filesystem (not NFS). The log loads as a Hugging Face
dataset with `load_dataset`.
"""

from __future__ import annotations

import contextvars
import hashlib
import json
import os
import re
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, HumanMessage, messages_to_dict
from langchain_core.tools import BaseTool
from langchain_core.utils.function_calling import convert_to_openai_tool

from agentkit.errors import ConfigError
from agentkit.hooks import Hook
from agentkit.prompting import render
from agentkit.rewardlog import EpisodeRecord, Reward, RewardLog
from agentkit.steps import AgentResult, Step
from agentkit.tasks import Task

if TYPE_CHECKING:
    import datasets

__all__ = [
    "EpisodeRecord",
    "LLMJudge",
    "Reward",
    "RewardFn",
    "RewardLog",
    "RewardLogger",
    "adapter_version",
    "load_dataset",
    "model_name",
]


def model_name(model: BaseChatModel) -> str:
    """The id a chat model's episodes are logged under: its ``model_id``, else its ``model_name``, else its class."""
    return str(getattr(model, "model_id", "") or getattr(model, "model_name", "") or type(model).__name__)


RewardFn = Callable[[AgentResult], "float | bool | None"]
"""A rule or judge: scores a finished episode (a bool counts as 1.0 or 0.0; None gives no reward)."""

_TASK: contextvars.ContextVar[Task | str | None] = contextvars.ContextVar("agentkit_task", default=None)


@dataclass(slots=True)
class _Pending:
    started_at: float
    clock: float
    task: Task | str | None
    steps: list[dict[str, Any]] = field(default_factory=list)


class RewardLogger(Hook):
    """A hook that appends every finished episode, with its rewards, to a `RewardLog`.

    Which task an episode attempts is taken, in order, from ``with logger.task(task):`` around the agent call (a
    context variable, so it follows each thread and asyncio task: `evaluate` runs episodes on several threads),
    else from `tasks` by the question asked. A `Task` gives the episode a checker reward (source ``env``).

    Args:
        log: The log, or the path of its SQLite file.
        model: The chat model the agent runs on (its ``model_id`` and ``adapter`` are recorded), or a model id;
            default: the ``model_name`` the model put in its replies.
        adapter: The PEFT adapter folder applied to the model, when `model` is an id.
        tools: The tools the model is given as schemas (the agent's tools under the default tool-calling planner;
            none under `ReActPlanner`, whose prompt describes them in text). They become the ``tools`` column of
            preference pairs, so the training text is rendered as the model saw it.
        tasks: Tasks whose question identifies them (or whose id ``logger.task(id)`` names).
        rules: Functions scoring each episode (source ``rule``, named by the function's ``__name__``).
        judges: Judges scoring each episode, such as `LLMJudge` (source ``judge``).

    Raises:
        ConfigError: When two of `tasks` ask the same question under different ids.
    """

    def __init__(
        self,
        log: RewardLog | str | os.PathLike[str],
        *,
        model: BaseChatModel | str | None = None,
        adapter: str | os.PathLike[str] | None = None,
        tools: Sequence[BaseTool | Mapping[str, Any]] = (),
        tasks: Sequence[Task] = (),
        rules: Sequence[RewardFn] = (),
        judges: Sequence[RewardFn] = (),
    ) -> None:
        self.log = log if isinstance(log, RewardLog) else RewardLog(log)
        if isinstance(model, BaseChatModel):
            adapter = adapter or getattr(model, "adapter", None)
            model = model_name(model)
        self.model = model
        self.adapter = None if adapter is None else adapter_version(adapter)
        self.tools = [convert_to_openai_tool(t) if isinstance(t, BaseTool) else dict(t) for t in tools]
        self.by_question: dict[str, Task] = {}
        for task in tasks:
            known = self.by_question.setdefault(task.question, task)
            if known.id != task.id:
                raise ConfigError(
                    f"Tasks {known.id} and {task.id} ask the same question {task.question!r}; name the task per "
                    "episode with `with logger.task(task): agent.invoke(...)` instead of passing tasks=."
                )
        self.rewarders = [("rule", f) for f in rules] + [("judge", f) for f in judges]
        self._pending: dict[str, _Pending] = {}
        self._lock = threading.Lock()

    @staticmethod
    @contextmanager
    def task(task: Task | str) -> Iterator[None]:
        """Attribute the episodes run inside this block (on this thread or asyncio task) to `task`."""
        token = _TASK.set(task)
        try:
            yield
        finally:
            _TASK.reset(token)

    def on_episode_start(self, episode_id: str, question: str) -> None:
        """Note the start time and the task."""
        task = self._task(question)
        with self._lock:
            self._pending[episode_id] = _Pending(time.time(), time.monotonic(), task)

    def on_step(self, episode_id: str, step: Step) -> None:
        """Record the step with its latency (seconds since the previous event of the episode)."""
        with self._lock:
            pending = self._pending.get(episode_id)
        if pending is None:
            return
        now = time.monotonic()
        pending.steps.append({"type": type(step).__name__, **asdict(step), "latency": now - pending.clock})
        pending.clock = now

    def on_episode_end(self, result: AgentResult) -> None:
        """Score the episode and append it to the log."""
        with self._lock:
            pending = self._pending.pop(result.episode_id, None)
        if pending is None:  # the hook was added mid-episode: keep what the result holds
            pending = _Pending(time.time() - result.seconds, 0.0, self._task(result.input))
            pending.steps = [{"type": type(s).__name__, **asdict(s), "latency": None} for s in result.steps]
        task = pending.task
        rewards = [] if not isinstance(task, Task) else [Reward("env", "check", float(task.check(result)))]
        for source, score in self.rewarders:
            value = score(result)
            if value is not None:
                rewards.append(Reward(source, getattr(score, "__name__", type(score).__name__), float(value)))
        self.log.append(self._record(result, pending, tuple(rewards)))

    def _task(self, question: str) -> Task | str | None:
        named = _TASK.get()
        if isinstance(named, str):  # an id: the task itself when it is one of ours, for its checker
            return next((t for t in self.by_question.values() if t.id == named), named)
        return named or self.by_question.get(question)

    def feedback(self, episode_id: str, **feedback: Any) -> Reward:
        """`RewardLog.feedback` on this logger's log."""
        return self.log.feedback(episode_id, **feedback)

    def _record(self, result: AgentResult, pending: _Pending, rewards: tuple[Reward, ...]) -> EpisodeRecord:
        replies = [m for m in result.messages if isinstance(m, AIMessage)]
        model = self.model or next(
            (str(m.response_metadata["model_name"]) for m in replies if "model_name" in m.response_metadata), ""
        )
        task = pending.task
        return EpisodeRecord(
            episode_id=result.episode_id,
            task_id=task.id if isinstance(task, Task) else task,
            model=model,
            adapter=self.adapter,
            question=result.input,
            answer=result.answer,
            status=result.status,
            error=result.error,
            created_at=pending.started_at,
            seconds=result.seconds,
            model_calls=result.model_calls,
            usage=dict(result.usage),
            memory_ids=list(result.memory_ids),
            tools=self.tools,
            messages=messages_to_dict(result.messages),
            steps=pending.steps,
            turns=[_turn(i, m) for i, m in enumerate(result.messages) if isinstance(m, AIMessage)],
            rewards=rewards,
        )


def _turn(index: int, message: AIMessage) -> dict[str, Any]:
    meta = message.response_metadata
    turn: dict[str, Any] = {
        "message_index": index,
        "content": str(message.text),
        "tool_calls": [{"name": c["name"], "args": c["args"], "id": c.get("id")} for c in message.tool_calls],
        "invalid_tool_calls": [dict(c) for c in message.invalid_tool_calls],
        "stop_reason": meta.get("stop_reason") or meta.get("finish_reason"),
        "usage": dict(message.usage_metadata or {}),
    }
    for key in ("token_ids", "logprobs", "reasoning"):
        if key in meta:
            turn[key] = meta[key]
    return turn


def adapter_version(adapter: str | os.PathLike[str]) -> str:
    """An adapter's version: its folder name and a hash of its files, so a retrained adapter reads differently.

    A path that is not a folder is returned as given (a label chosen by the caller).
    """
    folder = Path(adapter)
    if not folder.is_dir():
        return str(adapter)
    digest = hashlib.sha256()
    for file in sorted(p for p in folder.iterdir() if p.is_file()):
        digest.update(file.name.encode())
        digest.update(file.read_bytes())
    return f"{folder.name}@{digest.hexdigest()[:12]}"


class LLMJudge:
    """A judge that asks a chat model to grade each answer from 0 to 10; the reward is the grade / 10.

    Args:
        llm: The judging chat model.
        rubric: What a good answer does, in words, added to the grading prompt.
        name: The reward's name in the log.
    """

    def __init__(self, llm: BaseChatModel, *, rubric: str = "", name: str = "llm_judge") -> None:
        self.llm = llm
        self.rubric = rubric
        self.__name__ = name

    def __call__(self, result: AgentResult) -> float | None:
        """Grade one episode; None when it has no answer or the judge's reply holds no grade."""
        if result.answer is None:
            return None
        prompt = render("judge.jinja", question=result.input, answer=result.answer, rubric=self.rubric)
        reply = str(self.llm.invoke([HumanMessage(prompt)]).text)
        grade = re.search(r"\b(10|[0-9])\b", reply)
        return None if grade is None else int(grade.group(1)) / 10


def load_dataset(path: str | os.PathLike[str], *, sources: Sequence[str] | None = None) -> datasets.Dataset:
    """The reward log as a Hugging Face dataset, one row per episode, oldest first.

    Nested parts whose shape varies between episodes (``tools``, ``messages``, ``steps``, ``turns``) are JSON
    strings, so every row has one schema; ``json.loads`` them (TRL reads a JSON ``tools`` column as is).

    Args:
        path: The log's SQLite file.
        sources: Which reward sources make the ``reward`` column (default: all); ``rewards`` keeps every one.

    Raises:
        ConfigError: When the file is missing or not a reward log.
    """
    import datasets

    text, number = datasets.Value("string"), datasets.Value("float64")
    features = datasets.Features(
        {
            **{k: text for k in ("episode_id", "task_id", "model", "adapter", "question", "answer", "status", "error")},
            **{k: number for k in ("created_at", "seconds", "reward")},
            "model_calls": datasets.Value("int64"),
            "usage": {k: datasets.Value("int64") for k in ("input_tokens", "output_tokens", "total_tokens")},
            "memory_ids": datasets.List(text),
            **{k: text for k in ("tools", "messages", "steps", "turns")},
            "rewards": datasets.List(
                {
                    "source": text,
                    "name": text,
                    "value": number,
                    "label": datasets.Value("bool"),
                    "comment": text,
                    "created_at": number,
                }
            ),
        }
    )
    rows = []
    for record in RewardLog(path).episodes():
        row = asdict(record)
        row.update({k: json.dumps(row[k], ensure_ascii=False) for k in ("tools", "messages", "steps", "turns")})
        row["usage"] = {k: int(record.usage.get(k, 0)) for k in features["usage"]}
        row["reward"] = record.reward(sources)
        rows.append(row)
    return datasets.Dataset.from_list(rows, features=features)

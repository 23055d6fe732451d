"""A Gymnasium-style environment over a task set, and user task files.

`TaskEnv` has Gymnasium's shape without depending on it: ``reset(seed=...)`` picks a task and returns its question
and an ``info`` dict (the `Task`, a fresh workspace folder holding the task's files and, for a memory task, a
long-term memory holding only its memories); ``step(action)`` takes the
agent's episode (an `AgentResult`) or a bare answer string and returns ``(observation, reward, terminated,
truncated, info)`` with the task checker's reward. One episode of the agent is one step of the environment::

    env = TaskEnv.builtin(50, split="train", seed=0)
    question, info = env.reset(seed=0)
    agent = Agent(llm, tools=env.tools())
    with logger.task(info["task"]):  # a RewardLogger among the agent's hooks
        result = agent.invoke(question)
    _, reward, terminated, truncated, info = env.step(result)

Task files are JSON lines, one task per line: ``{"question": ..., "expected": ..., "checker": "number" | "contains"
| "exact" | "regex"}`` with optional ``"category"``, ``"files"`` (workspace path to text), ``"memories"`` (facts
long-term memory holds before the episode) and ``"id"``; lines that
`agentkit.tasks.save_tasks` wrote load too.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import re
import shutil
import tempfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any

from agentkit.steps import AgentResult, Final
from agentkit.tasks import Split, Task, generate_tasks

if TYPE_CHECKING:
    from langchain_core.tools import BaseTool

    from agentkit.memory import ChromaMemory

__all__ = ["CHECKERS", "TaskEnv", "UserTask", "load_task_file"]

_NUMBER = re.compile(r"-?\d+(?:\.\d+)?")


def _number(expected: str, answer: str) -> bool:
    numbers = _NUMBER.findall(answer.replace(",", ""))
    target = float(expected)
    return bool(numbers) and abs(float(numbers[-1]) - target) <= 1e-6 * max(1.0, abs(target))


def _contains(expected: str, answer: str) -> bool:
    return " ".join(expected.split()).casefold() in " ".join(answer.split()).casefold()


CHECKERS: dict[str, Callable[[str, str], bool]] = {
    "number": _number,
    "contains": _contains,
    "exact": lambda expected, answer: answer.strip() == expected.strip(),
    "regex": lambda expected, answer: re.search(expected, answer) is not None,
}
"""How a user task judges an answer, given ``(expected, answer)``:

* ``number``: the last number in the answer (thousands commas ignored) equals `expected`, to a relative 1e-6;
* ``contains``: the answer contains `expected`, ignoring case and runs of whitespace;
* ``exact``: the answer is `expected`, ignoring surrounding whitespace;
* ``regex``: `expected` is a Python regular expression that matches somewhere in the answer.
"""


@dataclass(frozen=True, slots=True)
class UserTask(Task):
    """A task from a user's task file: a question, an expected answer and a named checker (see `CHECKERS`).

    It is a `Task`, so it goes wherever one does (`agentkit.evaluate.evaluate`, `RewardLogger`, `TaskEnv`).
    """

    checker: str = "contains"

    def check(self, result: AgentResult) -> bool:
        """Whether the episode finished with an answer the checker accepts."""
        answer = result.answer or ""
        return result.status == "finished" and bool(answer.strip()) and CHECKERS[self.checker](self.expected, answer)

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict, one line of a task file."""
        return {**Task.to_json(self), "checker": self.checker}


def load_task_file(path: str | os.PathLike[str]) -> list[Task]:
    """Read a task file (see the module docs).

    Raises:
        ValueError: On a line that is not a valid task, naming the file and line; on repeated ids; on no tasks.
    """
    tasks: list[Task] = []
    lines: dict[str, int] = {}
    with open(path, encoding="utf-8") as handle:
        for number, line in enumerate(handle, 1):
            if not line.strip():
                continue
            try:
                data = json.loads(line)
            except json.JSONDecodeError as exc:
                raise ValueError(f"{path}:{number}: invalid JSON: {exc.msg} at column {exc.colno}.") from exc
            try:
                task = _parse(data)
            except (ValueError, KeyError, TypeError, re.error) as exc:
                raise ValueError(f"{path}:{number}: not a task: {exc}") from exc
            if task.id in lines:
                raise ValueError(f"{path}:{number}: task id {task.id!r} repeats line {lines[task.id]}.")
            lines[task.id] = number
            tasks.append(task)
    if not tasks:
        raise ValueError(f"{path}: no tasks; write one JSON object per line with 'question', 'expected', 'checker'.")
    return tasks


def _parse(data: object) -> Task:
    if not isinstance(data, dict):
        raise ValueError(f"expected a JSON object, got {type(data).__name__}")
    if "plan" in data and "checker" not in data:
        return Task.from_json(data)  # a line save_tasks wrote
    for key in ("question", "expected"):
        if not isinstance(data.get(key), str) or not data[key].strip():
            raise ValueError(f"{key!r} must be a non-empty string")
    checker = data.get("checker")
    if checker not in CHECKERS:
        raise ValueError(f"'checker' must be one of {sorted(CHECKERS)}, got {checker!r}")
    question, expected = data["question"], data["expected"]
    if checker == "number":
        float(expected)  # raises ValueError: could not convert string to float
    if checker == "regex":
        re.compile(expected)
    files = data.get("files", {})
    if not isinstance(files, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in files.items()):
        raise ValueError("'files' must map workspace paths to file text")
    for name in files:
        parts = PurePosixPath(name).parts
        if not parts or name.startswith(("/", "\\")) or ".." in parts:
            raise ValueError(f"file path {name!r} must be relative and stay inside the workspace")
    memories = data.get("memories", [])
    if not isinstance(memories, list) or not all(isinstance(m, str) and m.strip() for m in memories):
        raise ValueError("'memories' must be a list of non-empty strings")
    category = str(data.get("category", "custom"))
    default_id = hashlib.sha256(f"{category}:{question}:{checker}:{expected}".encode()).hexdigest()[:12]
    return UserTask(
        str(data.get("id", default_id)),
        category,
        question,
        expected,
        files=files,
        memories=tuple(memories),
        checker=checker,
    )


class TaskEnv:
    """Gymnasium-style environment: each episode is one task, answered in one step.

    Args:
        tasks: The task set (generated, from `load_task_file`, or any `Task`s).
        seed: Seed of the task order; reseeded by ``reset(seed=...)``.
        shuffle: Visit tasks in a random order each pass (else in the order given).

    Raises:
        ValueError: When `tasks` is empty.
    """

    def __init__(self, tasks: Sequence[Task], *, seed: int | None = None, shuffle: bool = True) -> None:
        if not tasks:
            raise ValueError("TaskEnv needs at least one task.")
        self.tasks = list(tasks)
        self.shuffle = shuffle
        self.task: Task | None = None
        self.workspace: Path | None = None
        self.memory: ChromaMemory | None = None
        self._spare: ChromaMemory | None = None  # reused by every memory task: chromadb never frees a collection
        self._rng = random.Random(seed)
        self._order: list[int] = []

    @classmethod
    def builtin(
        cls, n: int, *, split: Split = "train", seed: int = 0, weights: Mapping[str, float] | None = None
    ) -> TaskEnv:
        """An environment over `n` generated tasks for the built-in tools (see `agentkit.tasks.generate_tasks`)."""
        return cls(generate_tasks(n, split=split, seed=seed, weights=weights), seed=seed)

    @classmethod
    def from_file(cls, path: str | os.PathLike[str], *, seed: int | None = None) -> TaskEnv:
        """An environment over the tasks of a task file (see `load_task_file`)."""
        return cls(load_task_file(path), seed=seed)

    def reset(self, *, seed: int | None = None, options: Mapping[str, Any] | None = None) -> tuple[str, dict[str, Any]]:
        """Start an episode on the next task.

        Args:
            seed: Reseed the task order (the same seed replays the same tasks).
            options: ``{"task_id": id}`` picks that task instead.

        Returns:
            The task's question, and info: ``task``, ``task_id``, ``category``, ``workspace`` (a fresh folder
            holding the task's files, for the agent's file tools) and ``memory`` (for a memory task, a long-term
            memory holding only the task's memories, for `remember` and `recall`; else None). Memory tasks share
            one memory object, emptied at each reset, as chromadb never frees one. `tools` binds the tools to both.

        Raises:
            KeyError: When ``options["task_id"]`` names no task.
        """
        if seed is not None:
            self._rng.seed(seed)
            self._order = []
        wanted = (options or {}).get("task_id")
        if wanted is not None:
            matches = [t for t in self.tasks if t.id == wanted]
            if not matches:
                raise KeyError(f"No task with id {wanted!r} in this environment.")
            self.task = matches[0]
        else:
            if not self._order:
                self._order = list(range(len(self.tasks)))[::-1]
                if self.shuffle:
                    self._rng.shuffle(self._order)
            self.task = self.tasks[self._order.pop()]
        self._clean()
        from agentkit.demonstrations import task_world

        self.workspace = Path(tempfile.mkdtemp(prefix="agentkit-env-"))
        self.memory = task_world(self.task, self.workspace, self._spare)
        self._spare = self.memory if self.memory is not None else self._spare
        return self.task.question, self._info()

    def step(self, action: AgentResult | str) -> tuple[str, float, bool, bool, dict[str, Any]]:
        """Judge the agent's episode (or a bare answer) against the current task.

        Args:
            action: The episode's `AgentResult`, or an answer string (checked as a finished episode without
                tool calls, so tasks judged on the tools used, such as built-in ``time`` tasks, fail it).

        Returns:
            ``(observation, reward, terminated, truncated, info)``: the question again (the task does not change),
            1.0 when the checker accepts the episode and 0.0 otherwise, True unless the episode ran out of its
            step or time budget, True when it did, and info with ``success`` and ``status`` added.

        Raises:
            RuntimeError: When called before `reset`.
        """
        if self.task is None:
            raise RuntimeError("Call reset() before step(): the environment has no current task.")
        if isinstance(action, str):
            action = AgentResult(self.task.question, action, "finished", [Final(1, action)])
        success = self.task.check(action)
        truncated = action.status in ("max_steps", "timeout")
        info = {**self._info(), "success": success, "status": action.status}
        return self.task.question, float(success), not truncated, truncated, info

    def tools(self) -> list[BaseTool]:
        """The built-in tools, confined to the current task's workspace; `remember` and `recall` for a memory task.

        Raises:
            RuntimeError: When called before `reset`.
        """
        if self.workspace is None:
            raise RuntimeError("Call reset() before tools(): the workspace is made per task.")
        from agentkit.demonstrations import agent_tools

        return agent_tools(self.workspace, memory=self.memory)

    def close(self) -> None:
        """Remove the current workspace."""
        self._clean()
        self.task = None

    def __enter__(self) -> TaskEnv:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _info(self) -> dict[str, Any]:
        assert self.task is not None  # callers check
        return {
            "task": self.task,
            "task_id": self.task.id,
            "category": self.task.category,
            "workspace": self.workspace,
            "memory": self.memory,
        }

    def _clean(self) -> None:
        if self.workspace is not None:
            shutil.rmtree(self.workspace, ignore_errors=True)
            self.workspace = None
        self.memory = None

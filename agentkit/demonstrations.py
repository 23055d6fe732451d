"""Gold episodes for supervised training, produced by the real agent and rendered as the model will see them.

A scripted teacher plays each task's gold plan through `Agent`, with the real built-in tools in a workspace that
holds the task's files, so observations, step counters and message layout are exactly what a deployed agent
produces. Each model call's conversation is rendered with the tokenizer's chat template (`render_prompt`, the
function `LocalChatModel` uses), and the episode becomes one text in which only the model's own turns are learned.
"""

from __future__ import annotations

import datetime as dt
import math
import multiprocessing
import random
import re
import tempfile
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from langchain_core.callbacks import CallbackManagerForLLMRun
from langchain_core.language_models import BaseChatModel, LanguageModelInput
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, ToolMessage, convert_to_messages
from langchain_core.outputs import ChatResult
from langchain_core.prompt_values import PromptValue
from langchain_core.runnables import Runnable, RunnableConfig, RunnableLambda
from langchain_core.tools import BaseTool
from langchain_core.utils.function_calling import convert_to_openai_tool

from agentkit.agent import Agent
from agentkit.llm.prompt import render_prompt
from agentkit.pairs import GOLD_PREFIX
from agentkit.rewards import model_name
from agentkit.tasks import MEMORY_CATEGORIES, Task
from agentkit.testing import ScriptedChatModel, tool_call, tool_reply
from agentkit.tools import calculator, file_tools, make_current_time, memory_tools

if TYPE_CHECKING:
    from agentkit.memory import ChromaMemory

__all__ = [
    "END_OF_TURN",
    "Demonstration",
    "GoldPrefixChatModel",
    "agent_tools",
    "demonstrate",
    "gold_plan_model",
    "task_world",
]

END_OF_TURN = "<|im_end|>"
"""What closes a turn in the default model's (ChatML) template; learned after every reply so the model stops."""

_STEPS_LEFT = re.compile(r"\n\((?:\d+ steps? left|No steps left[^)]*)\)\s*$")


@dataclass(frozen=True, slots=True)
class Demonstration:
    """One gold episode as text, with the character spans the model must learn.

    Attributes:
        task: The task it solves.
        text: The whole episode rendered with the chat template.
        learned: ``(start, end)`` character spans of the model's turns, each ending with `END_OF_TURN`.
    """

    task: Task
    text: str
    learned: tuple[tuple[int, int], ...]


def agent_tools(
    workspace: str | Path | None = None,
    clock: Callable[[dt.tzinfo], dt.datetime] | None = None,
    memory: ChromaMemory | None = None,
) -> list[BaseTool]:
    """The built-in tools in the order the default model was trained with.

    Args:
        workspace: The folder the file tools work in; None means ``AGENTKIT_WORKSPACE`` or the current directory.
        clock: What `current_time` reads (see `agentkit.tools.make_current_time`); None is the system clock.
        memory: A long-term memory: `remember` and `recall` on it come last. None leaves them out, as the shipped
            default model was trained without them.
    """
    tools = [calculator, make_current_time(clock), *file_tools(workspace)]
    return tools if memory is None else [*tools, *memory_tools(memory)]


def task_world(
    task: Task, workspace: str | Path, reuse: ChromaMemory | None = None, *, always: bool = False
) -> ChromaMemory | None:
    """Set a task's world up: its files written into `workspace` and, for a task that uses memory, its memory.

    Args:
        task: The task.
        workspace: A folder of the task's own.
        reuse: A memory of an earlier task to empty and reuse; None opens a fresh one in this process. Callers that
            run many tasks reuse one per concurrent episode: chromadb never gives back the 2.5 MB or so that each
            in-process collection costs, even once deleted.
        always: Give every task a memory, an empty one where the task holds none.

    Returns:
        For a memory task (a category of `MEMORY_CATEGORIES`, or memories to hold) or with `always`, a memory holding
        only the task's memories, for `agent_tools`; None for the others.
    """
    for path, text in task.files.items():
        target = Path(workspace, path)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text, encoding="utf-8")
    if not always and task.category not in MEMORY_CATEGORIES and not task.memories:
        return None
    if reuse is None:
        from agentkit.memory import ChromaMemory

        memory = ChromaMemory.ephemeral()
    else:
        memory = reuse
        memory.forget(namespace=memory.namespace)
    memory.add_many(list(task.memories))
    return memory


def _instant(task: Task) -> dt.datetime:
    """A time of the task's own, from 2020 through 2030, so the times the model learns to repeat vary."""
    start = dt.datetime(2020, 1, 1, tzinfo=dt.timezone.utc)
    return start + dt.timedelta(seconds=random.Random(task.id).randrange(11 * 365 * 24 * 3600))


def _results(messages: Sequence[BaseMessage]) -> list[str]:
    return [_STEPS_LEFT.sub("", str(m.content)) for m in messages if isinstance(m, ToolMessage)]


def _teacher(task: Task) -> Any:
    def reply(messages: list[BaseMessage]) -> AIMessage | str:
        results = {f"r{i}": value for i, value in enumerate(_results(messages))}
        step = len(results)
        if step < len(task.plan):
            call = task.plan[step]
            return tool_reply(tool_call(call.tool, **{k: v.format(**results) for k, v in call.args.items()}))
        return task.final.format(**results)

    return reply


def gold_plan_model(tasks: Sequence[Task]) -> ScriptedChatModel:
    """A chat model that plays the gold plan of whichever of `tasks` the agent asks it (found by the question).

    Run through `agentkit.evaluate.evaluate` with a `RewardLogger` whose model is `agentkit.pairs.GOLD_PLAN`, its
    episodes are logged exactly as the model's own rollouts of the same tasks are, so `agentkit.pairs` can pair a
    gold turn against a failed rollout's turn at the same point of the same conversation.

    Raises:
        KeyError: (on a call) When the conversation's question is not one of `tasks`.
    """
    by_question = {task.question: task for task in tasks}

    def reply(messages: list[BaseMessage]) -> AIMessage | str:
        question = next(str(m.content) for m in reversed(messages) if isinstance(m, HumanMessage))
        return _teacher(by_question[question])(messages)  # type: ignore[no-any-return]

    return ScriptedChatModel(responses=[reply], repeat=True)


def _messages(prompt: LanguageModelInput) -> list[BaseMessage]:
    if isinstance(prompt, PromptValue):
        return prompt.to_messages()
    return [HumanMessage(prompt)] if isinstance(prompt, str) else convert_to_messages(prompt)


class GoldPrefixChatModel(BaseChatModel):
    """Plays the first `steps` turns of each task's gold plan, then lets `model` finish the episode.

    Step-level exploration as in IPR (Xiong et al., 2024): run through `agentkit.evaluate.evaluate` with a
    `RewardLogger` and one of these per step of the gold plans, each episode starts from an expert prefix, and when
    the model's continuation fails, `agentkit.pairs` pairs the gold turn against the model's first own turn that
    departs from the plan. Unlike pairs cut where a whole rollout first goes wrong, this finds the mistakes a model
    makes *after* its first one, at every step of a plan. Episodes are logged under ``model_id`` (the model's id,
    `agentkit.pairs.GOLD_PREFIX` and the step count), so the rollouts of one prefix length are paired on their own.

    Attributes:
        model: The model that takes over from turn `steps` on.
        tasks: The tasks whose gold plans are played (found by the question).
        steps: Assistant turns to play from the gold plan (0: the model plays every turn).
    """

    model: BaseChatModel
    tasks: list[Task]
    steps: int

    @property
    def _llm_type(self) -> str:
        return "agentkit-gold-prefix"

    @property
    def model_id(self) -> str:
        """The model's id with the prefix length, e.g. ``agentkit-default+gold-prefix-2``."""
        return f"{model_name(self.model)}{GOLD_PREFIX}{self.steps}"

    @property
    def adapter(self) -> str | None:
        """The model's adapter, so the episodes' version names it."""
        return getattr(self.model, "adapter", None)

    def _pick(self, messages: Sequence[BaseMessage], model: Any, gold: Any) -> Any:
        # One tool result per gold turn, as `_teacher` counts them; the model's own turns never go back to gold.
        return gold if len(_results(messages)) < self.steps else model

    def bind_tools(self, tools: Sequence[Any], **kwargs: Any) -> Runnable[LanguageModelInput, AIMessage]:
        """Bind the tools to the gold plans and to the model, and route each call to one of them by its turn."""
        model, gold = self.model.bind_tools(tools, **kwargs), gold_plan_model(self.tasks).bind_tools(tools)

        def call(prompt: LanguageModelInput, config: RunnableConfig) -> AIMessage:
            return self._pick(_messages(prompt), model, gold).invoke(prompt, config)  # type: ignore[no-any-return]

        async def acall(prompt: LanguageModelInput, config: RunnableConfig) -> AIMessage:
            chosen = self._pick(_messages(prompt), model, gold)
            return await chosen.ainvoke(prompt, config)  # type: ignore[no-any-return]

        return RunnableLambda(call, afunc=acall, name=self.model_id)

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        chosen = self._pick(messages, self.model, gold_plan_model(self.tasks))
        return chosen._generate(messages, stop, run_manager, **kwargs)  # type: ignore[no-any-return]


def demonstrate(
    tasks: Sequence[Task], tokenizer: Any, *, max_steps: int = 8, processes: int = 1, memory: bool = False
) -> list[Demonstration]:
    """Play each task's gold plan through the agent and render the episode.

    Args:
        tasks: The tasks.
        tokenizer: A tokenizer whose chat template renders the conversations.
        max_steps: The agent's step budget, which the system prompt states (use the deployed agent's).
        processes: Worker processes, each playing a contiguous share of the tasks. Episodes do not depend on each
            other, so the result is the same; the agent loop is pure Python, and one process uses one core.
        memory: List the memory tools for every task, on an empty memory where the task holds none; otherwise only
            memory tasks have them.

    Returns:
        One demonstration per task, in order.

    Raises:
        RuntimeError: When a gold plan does not finish (a bug in the task generator).
    """
    if processes > 1 and len(tasks) > 1:
        size = math.ceil(len(tasks) / processes)
        shares = [list(tasks[i : i + size]) for i in range(0, len(tasks), size)]
        # Spawned, not forked: a fork after torch has started its OpenMP threads (a model trained earlier in this
        # process) hangs a worker as soon as it runs torch itself, as memory tasks' embedding model does.
        with ProcessPoolExecutor(len(shares), mp_context=multiprocessing.get_context("spawn")) as pool:
            played = pool.map(_demonstrate, shares, *([x] * len(shares) for x in (tokenizer, max_steps, memory)))
            return [demo for share in played for demo in share]
    return _demonstrate(tasks, tokenizer, max_steps, memory)


def _demonstrate(tasks: Sequence[Task], tokenizer: Any, max_steps: int, memory: bool) -> list[Demonstration]:
    demonstrations = []
    with tempfile.TemporaryDirectory(prefix="agentkit-demo-") as root:
        # The real clock would give every episode of a run the same minute, which a small model then memorises.
        now: list[dt.datetime] = []
        spare: ChromaMemory | None = None
        for task in tasks:
            now[:] = [_instant(task)]
            world = task_world(task, root, spare, always=memory)
            spare = world if world is not None else spare
            tools = agent_tools(root, lambda zone: now[0].astimezone(zone), world)  # noqa: PLW0108 (set per task)
            schemas = [convert_to_openai_tool(t) for t in tools]
            teacher = ScriptedChatModel(responses=[_teacher(task)] * (len(task.plan) + 1))
            result = Agent(llm=teacher, tools=tools, max_steps=max_steps).invoke(task.question)
            if result.status != "finished" or not task.check(result):
                raise RuntimeError(f"The gold plan of task {task.id} ({task.question!r}) failed: {result.status}.")
            prompts = [render_prompt(tokenizer, call.messages, schemas) for call in teacher.calls]
            text = prompts[-1] + (result.answer or "") + END_OF_TURN
            learned = []
            for start, following in zip(prompts, [*prompts[1:], text], strict=True):
                if not following.startswith(start):
                    raise RuntimeError("The chat template renders earlier turns differently later; cannot train on it.")
                end = following.index(END_OF_TURN, len(start)) + len(END_OF_TURN)
                learned.append((len(start), end))
            demonstrations.append(Demonstration(task, text, tuple(learned)))
    return demonstrations

"""The default model's held-out tasks with memory switched on, as `agentkit eval` does not run them.

`agentkit eval` gives the memory tools only to memory tasks. This script runs the 180 held-out tasks of seed 0 (the
six categories of `agentkit eval`), one after another, in one of two set-ups:

- ``tools``: the memory tools listed for every task, on an empty memory; no memories in the prompt;
- ``run``: what ``agentkit run --memory`` does: one memory shared by all the tasks, recalled into the prompt before
  each episode (``Agent(memory=...)``), each finished answer remembered, and the memory tools listed.

It prints the success per category. Run ``python benchmarks/memory_on.py --mode run`` (``--model DIR`` for another
model than the shipped one).
"""

from __future__ import annotations

import argparse
import collections
import tempfile

from agentkit import Agent
from agentkit.demonstrations import agent_tools, task_world
from agentkit.llm import LocalChatModel
from agentkit.llm.default import SHIPPED_MODEL
from agentkit.memory import ChromaMemory
from agentkit.tasks import generate_tasks


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mode", choices=("tools", "run"), default="run")
    parser.add_argument("--model", default=str(SHIPPED_MODEL))
    args = parser.parse_args()
    llm = LocalChatModel.from_pretrained(args.model)
    shared = ChromaMemory.ephemeral()
    wins: collections.Counter[str] = collections.Counter()
    seen: collections.Counter[str] = collections.Counter()
    for task in generate_tasks(180, split="heldout", seed=0):
        with tempfile.TemporaryDirectory() as root:
            task_world(task, root)  # the task's files; no memory task is among the six categories
            if args.mode == "run":
                agent = Agent(llm=llm, tools=agent_tools(root, memory=shared), memory=shared, max_steps=8)
            else:
                shared.forget(namespace=shared.namespace)
                agent = Agent(llm=llm, tools=agent_tools(root, memory=shared), max_steps=8)
            result = agent.invoke(task.question)
        seen[task.category] += 1
        wins[task.category] += bool(task.check(result))
    for category in sorted(seen):
        print(f"{category:14} {seen[category]:4} {100 * wins[category] / seen[category]:6.1f} %")
    print(f"{'all':14} {sum(seen.values()):4} {100 * sum(wins.values()) / sum(seen.values()):6.1f} %")


if __name__ == "__main__":
    main()

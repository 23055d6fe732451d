"""The ``agentkit`` command line.

``agentkit demo`` runs a full agent episode (planner, executor, built-in tools, callbacks) and prints its trace as it
happens. Until agentkit's local model lands, the demo's model is scripted, so it shows the framework at work
without a download or a GPU.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from langchain_core.language_models import BaseChatModel

from agentkit.agent import Agent
from agentkit.planner import Planner, ReActPlanner, ToolCallingPlanner
from agentkit.steps import AgentResult
from agentkit.testing import ScriptedChatModel, react, react_final, tool_call, tool_reply
from agentkit.tools import calculator, current_time

__all__ = ["main", "make_parser"]

DEMO_QUESTION = "A shop sells pens at 3.5 each. How much do 12 pens and a 7.25 notebook cost?"


def make_parser() -> argparse.ArgumentParser:
    """The argument parser for ``agentkit``."""
    parser = argparse.ArgumentParser(prog="agentkit", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    demo = commands.add_parser("demo", help="run one agent episode on a scripted model and print its trace")
    demo.add_argument(
        "--format",
        choices=("tool-calls", "react"),
        default="tool-calls",
        help="the planner's wire format: native tool calls or ReAct text (default: tool-calls)",
    )
    return parser


def _demo_model(wire_format: str) -> tuple[BaseChatModel, Planner]:
    if wire_format == "react":
        replies = [
            react("calculator", '{"expression": "12 * 3.5 + 7.25"}', thought="Twelve pens plus the notebook."),
            react_final("12 pens and a notebook cost 49.25."),
        ]
        return ScriptedChatModel(responses=replies), ReActPlanner()
    replies_: list[object] = [
        tool_reply(tool_call("calculator", expression="12 * 3.5 + 7.25")),
        "12 pens and a notebook cost 49.25.",
    ]
    return ScriptedChatModel(responses=replies_), ToolCallingPlanner()


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line.

    Args:
        argv: Arguments without the program name; defaults to ``sys.argv[1:]``.

    Returns:
        The exit status: 0 when the episode finished with an answer, 1 otherwise.
    """
    args = make_parser().parse_args(argv)
    llm, planner = _demo_model(args.format)
    agent = Agent(llm=llm, tools=[calculator, current_time], planner=planner, max_steps=6)
    print(f"Question: {DEMO_QUESTION}")
    result: AgentResult | None = None
    for event in agent.stream(DEMO_QUESTION):
        if isinstance(event, AgentResult):
            result = event
        else:
            print(event)
    assert result is not None  # the stream always ends with the result
    print(f"Answer: {result.answer}")
    print(f"status={result.status} steps={result.n_steps} model calls={result.model_calls} time={result.seconds:.3f}s")
    return 0 if result.status == "finished" else 1


if __name__ == "__main__":
    sys.exit(main())

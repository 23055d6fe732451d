"""The ``agentkit`` command line.

* ``agentkit run "question"``: one agent episode on the shipped default model (or ``--model``), traced as it happens
  and appended to the reward log (``$AGENTKIT_HOME/episodes.sqlite``; ``--log``, ``--no-log``);
* ``agentkit chat``: a conversation, one episode per turn, each seeing the turns before it, logged the same way;
* ``agentkit feedback EPISODE --up|--down|--score S``: rate a logged episode (KTO rows and pairs use it);
* ``agentkit eval``: success per task category on held-out generated tasks, with a JSON summary and a PNG chart;
* ``agentkit train-default``: rebuild the default model (``agentkit train-default --help`` lists its settings);
* ``agentkit pairs LOG --out DIR``: preference pairs from a reward log; ``agentkit dpo``: train an adapter on them;
  ``agentkit improve``: the whole loop (collect, pairs, DPO, held-out evaluation before and after);
* ``agentkit demo``: an episode on a scripted model, to see the framework without any model at all.
"""

from __future__ import annotations

import argparse
import sqlite3
import sys
from collections.abc import Sequence
from pathlib import Path

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage

from agentkit.agent import Agent
from agentkit.cli_pairs import add_parser as add_pairs_parser
from agentkit.cli_pairs import run as run_pairs
from agentkit.errors import ConfigError
from agentkit.home import agentkit_home
from agentkit.planner import Planner, ReActPlanner, ToolCallingPlanner
from agentkit.rewardlog import RewardLog
from agentkit.steps import AgentResult
from agentkit.testing import ScriptedChatModel, react, react_final, tool_call, tool_reply
from agentkit.trace import TracePrinter

__all__ = ["main", "make_parser"]

DEMO_QUESTION = "A shop sells pens at 3.5 each. How much do 12 pens and a 7.25 notebook cost?"
_LOG = "$AGENTKIT_HOME/episodes.sqlite"


def _model_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--model", default=None, help="a local model directory or cached hub id (default: agentkit's shipped model)"
    )
    parser.add_argument("--adapter", default=None, help="a PEFT adapter directory to apply (e.g. from agentkit dpo)")
    parser.add_argument("--device", default="auto", help="auto (GPU when present), cpu, cuda, ... (default: auto)")
    parser.add_argument(
        "--quantize",
        choices=["4bit", "8bit"],
        default=None,
        help="load the weights in 4 or 8 bits with bitsandbytes (CUDA, or the CPU with bitsandbytes>=0.47)",
    )
    parser.add_argument(
        "--constrained",
        action="store_true",
        help="constrain tool calls to the bound tools and their schemas while decoding (Hermes-format models)",
    )
    parser.add_argument("--max-steps", type=int, default=8, help="tool-using steps per episode (default: 8)")


def _session_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--workspace", default=None, help="folder the file tools work in (default: current directory)")
    _log_flag(parser)
    parser.add_argument("--no-log", action="store_true", help="do not log the episodes")
    parser.add_argument(
        "--memory",
        nargs="?",
        const="",
        default=None,
        metavar="DIR",
        help="long-term memory (recalled into the prompt, answers remembered, remember/recall tools) in DIR "
        "(default: $AGENTKIT_HOME/memory); off unless given, as the shipped model was not trained with memories "
        "recalled into its prompt",
    )


def _log_flag(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--log", default=None, help=f"the reward log (default: {_LOG})")


def make_parser() -> argparse.ArgumentParser:
    """The argument parser for ``agentkit``."""
    parser = argparse.ArgumentParser(prog="agentkit", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)

    run = commands.add_parser("run", help="answer one question with the agent and print its trace")
    run.add_argument("question", help="what to ask")
    _model_flags(run)
    _session_flags(run)

    chat = commands.add_parser("chat", help="talk with the agent; an empty line or Ctrl-D ends the session")
    _model_flags(chat)
    _session_flags(chat)
    chat.add_argument(
        "--thread",
        default=None,
        help="keep the conversation under this name in $AGENTKIT_HOME/conversations.sqlite3 and pick it up again "
        "next time (older turns are summarised by the model past a token budget); default: this session only",
    )

    rate = commands.add_parser("feedback", help="rate a logged episode: thumbs up or down, or a score")
    rate.add_argument("episode", help="the episode id that run and chat print")
    verdict = rate.add_mutually_exclusive_group(required=True)
    verdict.add_argument("--up", dest="thumbs", action="store_const", const=True, help="a good answer")
    verdict.add_argument("--down", dest="thumbs", action="store_const", const=False, help="a bad answer")
    verdict.add_argument("--score", type=float, default=None, help="a score instead of thumbs")
    rate.add_argument("--comment", default="", help="what was right or wrong")
    _log_flag(rate)

    ev = commands.add_parser("eval", help="score the agent on held-out generated tasks (JSON + PNG report)")
    _model_flags(ev)
    ev.add_argument("--tasks", default=None, help="a JSONL task file (default: generated held-out tasks)")
    ev.add_argument("--n", type=int, default=180, help="generated tasks to draw (default: 180)")
    ev.add_argument("--seed", type=int, default=0, help="seed for the generated tasks (default: 0)")
    ev.add_argument(
        "--categories",
        default=None,
        help="comma-separated categories of generated tasks, drawn equally; remember and recall (memory tasks, with "
        "the memory tools) only when named (default: the built-in tools' six)",
    )
    ev.add_argument("--out", default="eval-results", help="folder for summary.json and success.png")
    ev.add_argument("--concurrency", type=int, default=4, help="episodes run at once (default: 4)")

    commands.add_parser(
        "train-default", help="train agentkit's default model (flags: agentkit train-default --help)", add_help=False
    )
    add_pairs_parser(commands)
    commands.add_parser("dpo", help="DPO/KTO with a LoRA adapter on pairs (flags: agentkit dpo --help)", add_help=False)
    commands.add_parser(
        "improve", help="collect → pairs → DPO → held-out eval (flags: agentkit improve --help)", add_help=False
    )

    demo = commands.add_parser("demo", help="run one agent episode on a scripted model and print its trace")
    demo.add_argument(
        "--format",
        choices=("tool-calls", "react"),
        default="tool-calls",
        help="the planner's wire format: native tool calls or ReAct text (default: tool-calls)",
    )
    return parser


def _load(args: argparse.Namespace) -> BaseChatModel:
    from agentkit.llm.default import load_default_model

    return load_default_model(
        args.model,
        adapter=args.adapter,
        device=args.device,
        quantize=args.quantize,
        constrain_tool_calls=args.constrained,
    )


def _log_path(args: argparse.Namespace) -> Path:
    return Path(args.log) if args.log else agentkit_home() / "episodes.sqlite"


def _open_log(path: Path) -> RewardLog:
    log = RewardLog(path)
    try:
        log.open()
    except (OSError, sqlite3.Error) as exc:
        raise ConfigError(f"Cannot open the reward log {path} ({exc}): pass --log with a writable file.") from exc
    return log


def _agent(args: argparse.Namespace) -> tuple[Agent, RewardLog | None]:
    from agentkit.demonstrations import agent_tools
    from agentkit.rewards import RewardLogger

    # Log and memory are opened first, so a bad path fails before the model loads.
    log = None if args.no_log else _open_log(_log_path(args))
    tools, memory = agent_tools(args.workspace), None
    if args.memory is not None:
        from agentkit.memory import ChromaMemory
        from agentkit.tools import memory_tools

        memory = ChromaMemory(args.memory or agentkit_home() / "memory")
        tools += memory_tools(memory)
    llm = _load(args)
    # The tools go in as schemas: the default planner hands them to the chat template, so logged episodes make
    # training text rendered exactly as the model saw it.
    hooks = [] if log is None else [RewardLogger(log, model=llm, tools=tools)]
    return Agent(llm=llm, tools=tools, memory=memory, hooks=hooks, max_steps=args.max_steps), log


def _logged(result: AgentResult, log: RewardLog | None) -> None:
    if log is not None:
        print(
            f"Logged as episode {result.episode_id} in {log.path}; rate it: agentkit feedback {result.episode_id} "
            "--up (or --down)"
        )


def _stream(agent: Agent, question: str | dict[str, object], printer: TracePrinter) -> AgentResult:
    result: AgentResult | None = None
    for event in agent.stream(question):
        printer(event)
        if isinstance(event, AgentResult):
            result = event
    assert result is not None  # the stream always ends with the result
    return result


def _run(args: argparse.Namespace) -> int:
    agent, log = _agent(args)
    printer = TracePrinter(sys.stdout, color=sys.stdout.isatty())
    print(f"Question: {args.question}")
    result = _stream(agent, args.question, printer)
    _logged(result, log)
    return 0 if result.status == "finished" else 1


def _chat(args: argparse.Namespace) -> int:
    agent, log = _agent(args)
    printer = TracePrinter(sys.stdout, color=sys.stdout.isatty())
    history: list[BaseMessage] = []
    thread = None
    if args.thread is not None:
        from agentkit.memory import ConversationMemory

        thread = ConversationMemory(agentkit_home() / "conversations.sqlite3", llm=agent.llm)
        turns = sum(isinstance(m, HumanMessage) for m in thread.history(args.thread))
        print(f"Thread {args.thread!r} in {thread.path}: {turns} earlier turn(s) in the prompt.")
    while True:
        try:
            question = input("you> ").strip()
        except EOFError:
            print()
            return 0
        if not question or question in ("exit", "quit"):
            return 0
        past = history if thread is None else thread.history(args.thread)
        result = _stream(agent, {"input": question, "history": list(past)}, printer)
        _logged(result, log)
        if thread is None:
            history += [HumanMessage(question), AIMessage(result.answer or "")]
        else:
            thread.record(args.thread, result)


def _feedback(args: argparse.Namespace) -> int:
    path = _log_path(args)
    if not path.is_file():  # not created here: an empty log could only answer "no such episode"
        raise ConfigError(f"No reward log at {path}: episodes are logged by agentkit run and chat (see --log).")
    log = _open_log(path)
    try:
        reward = log.feedback(args.episode, thumbs=args.thumbs, score=args.score, comment=args.comment)
    except ValueError as exc:
        raise ConfigError(str(exc)) from exc
    print(f"Recorded feedback {reward.value:g} on episode {args.episode} in {log.path}")
    return 0


def _eval(args: argparse.Namespace) -> int:
    from tqdm.auto import tqdm

    from agentkit.envs import load_task_file
    from agentkit.evaluate import evaluate, plot_report, save_report
    from agentkit.tasks import generate_tasks

    weights = None if args.categories is None else dict.fromkeys(args.categories.replace(" ", "").split(","), 1.0)
    try:
        tasks = (
            load_task_file(args.tasks)
            if args.tasks
            else generate_tasks(args.n, split="heldout", seed=args.seed, weights=weights)
        )
    except ValueError as exc:
        raise ConfigError(str(exc)) from exc
    llm = _load(args)
    with tqdm(total=len(tasks), desc="eval", unit="task") as bar:
        report = evaluate(
            llm,
            tasks,
            model_name=args.model or "agentkit-default",
            max_steps=args.max_steps,
            concurrency=args.concurrency,
            progress=lambda done, _total: bar.update(done - bar.n),
        )
    out = Path(args.out)
    save_report(report, out / "summary.json")
    plot_report({report.model: report}, out / "success.png")
    print(report.table())
    print(f"Wrote {out / 'summary.json'} and {out / 'success.png'} ({report.seconds:.0f} s).")
    return 0


def _train_default(argv: Sequence[str]) -> int:
    from agentkit.train_default import main as train
    from agentkit.train_default import make_parser as train_parser

    (config,) = train_parser().parse_args_into_dataclasses(list(argv))
    report = train(config)
    print(f"Saved {report.output_dir} ({report.parameters:,} parameters) in {report.seconds:.0f} s.")
    if report.copying_formed is False:
        print("Copying did not form in the copy warm-up (see the warning above): this model will fail most multi-step")
        print("problems. Rerun with another --seed, or with the default warm-up settings where you changed them.")
    return 0


def _dpo(argv: Sequence[str]) -> int:
    from agentkit.dpo import main as train
    from agentkit.dpo import make_parser as dpo_parser

    (config,) = dpo_parser().parse_args_into_dataclasses(list(argv))
    report = train(config)
    print(
        f"Saved {report.output_dir}: {report.rows} rows, {report.dropped} longer than max_length dropped, "
        f"{report.steps} steps in {report.seconds:.0f} s."
    )
    return 0


def _improve(argv: Sequence[str]) -> int:
    import json

    from agentkit.improve import main as improve
    from agentkit.improve import make_parser as improve_parser

    (config,) = improve_parser().parse_args_into_dataclasses(list(argv))
    summary = improve(config)
    print(json.dumps({"multi_step_success": summary["multi_step"], "seconds": round(summary["seconds"])}, indent=2))
    return 0


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


def _demo(args: argparse.Namespace) -> int:
    from agentkit.tools import calculator, current_time

    llm, planner = _demo_model(args.format)
    agent = Agent(llm=llm, tools=[calculator, current_time], planner=planner, max_steps=6)
    print(f"Question: {DEMO_QUESTION}")
    result = _stream(agent, DEMO_QUESTION, TracePrinter(sys.stdout))
    return 0 if result.status == "finished" else 1


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line.

    Args:
        argv: Arguments without the program name; defaults to ``sys.argv[1:]``.

    Returns:
        The exit status: 0 on success, 1 when an episode ended without an answer, 2 on a usage or setup error.
    """
    argv = list(sys.argv[1:] if argv is None else argv)
    # These scripts' flags belong to their own parsers.
    scripts = {"train-default": _train_default, "dpo": _dpo, "improve": _improve}
    try:
        if argv[:1] and argv[0] in scripts:
            return scripts[argv[0]](argv[1:])
        args = make_parser().parse_args(argv)
        commands = {
            "run": _run,
            "chat": _chat,
            "feedback": _feedback,
            "eval": _eval,
            "demo": _demo,
            "pairs": run_pairs,
        }
        return commands[args.command](args)
    except ConfigError as exc:
        print(f"agentkit: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())

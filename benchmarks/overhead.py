"""Framework overhead per agent step: agentkit vs LangChain's `create_agent`, with a zero-latency scripted model.

Both frameworks get the same scripted chat model class (`agentkit.testing.ScriptedChatModel`), the same tool object
and the same scripted replies: an episode with S tool steps is S model turns that each call ``add`` once, then one
turn that answers. The model answers instantly and the tool returns ``a + b``, so what is timed is the frameworks'
own work per step: building prompts, reading replies, callbacks, validation, dispatching the tool, threads.

Each agent is built once per S (construction is not timed) and invoked many times; all timed runs, of every
framework and every S, are shuffled into one schedule so that drift in machine load hits them alike. Every timed run
is checked afterwards (status, number of tool executions, their outputs, the answer), so a broken run can never be
timed as a fast one. Both wall-clock and process CPU time are recorded; the goal is judged on wall-clock.

Figures:

* per-episode median and p90 for each framework and S;
* per-step cost, the slope of the median episode time over S (``(t(S_max) - t(S_min)) / (S_max - S_min)``), which
  cancels the fixed per-episode cost; the goal compares these slopes: agentkit <= 0.5x LangChain;
* a hand-written loop (the same model and tool calls with no framework at all) as the floor, to show each
  framework's cost net of the LangChain model and tool calls both of them make;
* agentkit with ``timeout=None`` (model calls on the calling thread instead of a worker thread), for information.

Run ``python benchmarks/overhead.py`` (``--quick`` for a short run, ``--json PATH`` to save the figures).
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import random
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from langchain.agents import create_agent
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, ToolMessage
from langchain_core.runnables import RunnableConfig
from machine import machine_info

from agentkit import Agent, tool
from agentkit.testing import ScriptedChatModel, tool_call, tool_reply

GOAL = 0.5
"""agentkit's per-step overhead must be at most this fraction of LangChain's."""

QUESTION = "Add the numbers up, one step at a time."
ANSWER = "done"
PACKAGES = ("langchain", "langchain-core", "langgraph", "langgraph-prebuilt", "pydantic", "pydantic-core", "jinja2")


@tool
def add(a: int, b: int) -> int:
    """Add two integers.

    Args:
        a: The first number.
        b: The second number.
    """
    return a + b


def responder(n_tool_steps: int) -> Callable[[Sequence[BaseMessage]], str | AIMessage]:
    """A stateless script: tool call k while the conversation holds k < S model replies, then the answer.

    Keyed on the conversation rather than on a call counter, so one model instance serves any number of episodes
    and both frameworks receive identical replies.
    """

    def reply(messages: Sequence[BaseMessage]) -> str | AIMessage:
        k = sum(isinstance(m, AIMessage) for m in messages)
        if k < n_tool_steps:
            return tool_reply(tool_call("add", call_id=f"call_{k}", a=k, b=1))
        return ANSWER

    return reply


def scripted_model(n_tool_steps: int) -> ScriptedChatModel:
    return ScriptedChatModel(responses=[responder(n_tool_steps)], repeat=True)


def forget_calls(llm: ScriptedChatModel) -> None:
    """Drop the scripted model's call log (it keeps a copy of every prompt) so memory stays flat across runs."""
    llm._calls.clear()


# -- the contenders ------------------------------------------------------------------------------------------------


@dataclass
class Contender:
    """One way of running an episode with S tool steps: built once, then `run` many times."""

    name: str
    n_tool_steps: int
    run: Callable[[], Any]
    check: Callable[[Any], str | None]  # None when the run did what the script says, else what went wrong
    llm: ScriptedChatModel
    wall_ns: list[int] = field(default_factory=list)
    cpu_ns: list[int] = field(default_factory=list)


def agentkit_contender(n: int, *, timeout: float | None = 600.0, name: str = "agentkit") -> Contender:
    """agentkit's `Agent` with its defaults (timeout=600 s: each model call runs on a worker thread)."""
    llm = scripted_model(n)
    agent = Agent(llm=llm, tools=[add], max_steps=n + 1, timeout=timeout)

    def check(result: Any) -> str | None:
        if result.status != "finished" or result.answer != ANSWER:
            return f"status={result.status} answer={result.answer!r} error={result.error!r}"
        if len(result.actions) != n or result.model_calls != n + 1:
            return f"{len(result.actions)} actions and {result.model_calls} model calls, expected {n} and {n + 1}"
        bad = [o for o in result.observations if not o.ok]
        if len(result.observations) != n or bad:
            return f"{len(result.observations)} observations, failed: {bad[:1]}"
        return None

    return Contender(name, n, lambda: agent.invoke(QUESTION), check, llm)


def langchain_contender(n: int) -> Contender:
    """LangChain v1 `create_agent` (a LangGraph graph: model node, ToolNode) with its defaults."""
    llm = scripted_model(n)
    graph = create_agent(model=llm, tools=[add])
    # LangGraph counts each node as one superstep: 2 per tool step, above its default limit of 25 for S >= 12.
    config: RunnableConfig = {"recursion_limit": 4 * n + 10}
    payload: Any = {"messages": [{"role": "user", "content": QUESTION}]}

    def check(state: Any) -> str | None:
        messages = state["messages"]
        results = [m for m in messages if isinstance(m, ToolMessage)]
        if len(results) != n or any(m.status != "success" for m in results):
            return f"{len(results)} tool messages, expected {n} (statuses {[m.status for m in results][:3]})"
        if [m.content for m in results] != [str(k + 1) for k in range(n)]:
            return f"unexpected tool outputs {[m.content for m in results][:3]}"
        if not isinstance(messages[-1], AIMessage) or messages[-1].content != ANSWER:
            return f"last message is {messages[-1]!r}, expected the answer {ANSWER!r}"
        return None

    return Contender("langchain", n, lambda: graph.invoke(payload, config), check, llm)


def hand_loop_contender(n: int) -> Contender:
    """No framework: the bare model and tool calls an agent loop cannot avoid, as the floor."""
    llm = scripted_model(n)
    bound = llm.bind_tools([add])

    def run() -> list[BaseMessage]:
        messages: list[BaseMessage] = [HumanMessage(QUESTION)]
        while True:
            reply = bound.invoke(messages)
            messages.append(reply)
            if not isinstance(reply, AIMessage) or not reply.tool_calls:
                return messages
            messages.extend(add.invoke(call) for call in reply.tool_calls)

    def check(messages: list[BaseMessage]) -> str | None:
        results = [m for m in messages if isinstance(m, ToolMessage)]
        if len(results) != n or messages[-1].content != ANSWER:
            return f"{len(results)} tool messages, expected {n}"
        return None

    return Contender("hand loop", n, run, check, llm)


# -- measuring -----------------------------------------------------------------------------------------------------


class BrokenRunError(AssertionError):
    """A run did not do what the script says: its time would be meaningless."""


def run_once(contender: Contender) -> tuple[int, int]:
    """One timed, checked episode; returns its wall-clock and CPU time (all threads of the process) in ns."""
    cpu_started = time.process_time_ns()
    started = time.perf_counter_ns()
    outcome = contender.run()
    elapsed = time.perf_counter_ns() - started
    cpu = time.process_time_ns() - cpu_started
    problem = contender.check(outcome)
    if problem is not None:
        raise BrokenRunError(f"{contender.name}, S={contender.n_tool_steps}: {problem}")
    forget_calls(contender.llm)
    return elapsed, cpu


def measure(contenders: list[Contender], runs: dict[int, int], warmup: int, seed: int = 0) -> None:
    """Warm every contender up, then time them all in one shuffled schedule.

    Every (contender, S) pair gets ``runs[S]`` timed runs, spread at random over the whole measurement, so drift in
    machine load (other processes, frequency scaling) falls on all pairs alike instead of on whichever ran last.
    """
    for contender in contenders:
        for _ in range(warmup):
            run_once(contender)
    schedule = [c for c in contenders for _ in range(runs[c.n_tool_steps])]
    random.Random(seed).shuffle(schedule)
    gc.collect()
    for contender in schedule:
        wall, cpu = run_once(contender)
        contender.wall_ns.append(wall)
        contender.cpu_ns.append(cpu)


def percentile(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    position = (len(ordered) - 1) * q
    low = int(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def slope(points: dict[int, float]) -> float:
    """Per-step cost from the two ends of the S range."""
    lo, hi = min(points), max(points)
    return (points[hi] - points[lo]) / (hi - lo)


def least_squares_slope(points: dict[int, float]) -> float:
    xs, ys = list(points), list(points.values())
    mx, my = statistics.fmean(xs), statistics.fmean(ys)
    return sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / sum((x - mx) ** 2 for x in xs)


def bootstrap_ratio(
    numerator: dict[int, list[float]], denominator: dict[int, list[float]], rounds: int = 1000
) -> tuple[float, float]:
    """A 95% interval for slope(numerator) / slope(denominator), resampling each sample set."""
    rng = random.Random(0)

    def resampled_slope(samples: dict[int, list[float]]) -> float:
        return slope({s: statistics.median(rng.choices(v, k=len(v))) for s, v in samples.items()})

    ratios = sorted(resampled_slope(numerator) / resampled_slope(denominator) for _ in range(rounds))
    return ratios[int(0.025 * rounds)], ratios[int(0.975 * rounds) - 1]


# -- reporting -----------------------------------------------------------------------------------------------------


Samples = dict[str, dict[int, list[float]]]
"""Milliseconds by contender name, then by S."""


def summarise(samples: Samples) -> dict[str, Any]:
    """Per-contender statistics in milliseconds and the per-step slopes."""
    table: dict[str, Any] = {}
    for name, by_steps in samples.items():
        rows = {}
        for s, values in by_steps.items():
            median = statistics.median(values)
            rows[s] = {
                "runs": len(values),
                "median_ms": median,
                "p10_ms": percentile(values, 0.10),
                "p90_ms": percentile(values, 0.90),
                "ms_per_model_call": median / (s + 1),
            }
        medians = {s: row["median_ms"] for s, row in rows.items()}
        table[name] = {
            "by_steps": rows,
            "per_step_ms": slope(medians) if len(medians) > 1 else None,
            "per_step_ms_least_squares": least_squares_slope(medians) if len(medians) > 1 else None,
        }
    return table


def compare(summary: dict[str, Any], samples: Samples) -> dict[str, Any]:
    """agentkit's per-step cost over LangChain's, with a bootstrap interval, and both net of the hand loop."""
    ak, lc = summary["agentkit"]["per_step_ms"], summary["langchain"]["per_step_ms"]
    low, high = bootstrap_ratio(samples["agentkit"], samples["langchain"])
    result: dict[str, Any] = {"ratio": ak / lc, "ratio_ci95": [low, high]}
    floor = summary.get("hand loop", {}).get("per_step_ms")
    if floor is not None:
        result["net_ratio"] = (ak - floor) / (lc - floor)
    return result


def report(summaries: dict[str, dict[str, Any]], samples: dict[str, Samples], info: dict[str, Any]) -> dict[str, Any]:
    """Print the tables and the verdict; return the verdict."""
    print("Machine:", info["processor"], f"| {info['cpu_count']} CPUs ({info['usable_cpus']} usable)")
    print("Platform:", info["platform"], "|", info["python"])
    print("Packages:", ", ".join(f"{k} {v}" for k, v in info["packages"].items()))
    load = " -> ".join(
        ", ".join(f"{x:.2f}" for x in info[key]) for key in ("load_average_start", "load_average_end") if info[key]
    )
    print(f"Load average (1, 5, 15 min), start -> end: {load}")
    print()
    wall, cpu = summaries["wall"], summaries["cpu"]
    header = (
        f"{'contender':<24}{'S':>4}{'runs':>6}{'median ms':>11}{'p90 ms':>9}{'ms/call':>9}{'CPU ms':>9}{'ak/lc':>7}"
    )
    print(header)
    print("-" * len(header))
    lc_rows = wall["langchain"]["by_steps"]
    for name, entry in wall.items():
        for s, row in entry["by_steps"].items():
            cpu_row = cpu[name]["by_steps"][s]
            print(
                f"{name:<24}{s:>4}{row['runs']:>6}{row['median_ms']:>11.3f}{row['p90_ms']:>9.3f}"
                f"{row['ms_per_model_call']:>9.3f}{cpu_row['median_ms']:>9.3f}"
                f"{row['median_ms'] / lc_rows[s]['median_ms']:>7.2f}"
            )
    print("(median, p90 and ms/call are wall-clock; CPU ms is the process's CPU time over all its threads)")
    print()
    verdict: dict[str, Any] = {"goal": GOAL}
    if wall["langchain"]["per_step_ms"] is None:
        print("The per-step slope needs at least two values of S.")
        return verdict
    print(f"{'per step (slope over S)':<24}{'wall ms':>10}{'(least sq.)':>12}{'net of floor':>14}{'CPU ms':>9}")
    floor = wall.get("hand loop", {}).get("per_step_ms")
    for name, entry in wall.items():
        net = "" if floor is None or name == "hand loop" else f"{entry['per_step_ms'] - floor:.3f}"
        print(
            f"{name:<24}{entry['per_step_ms']:>10.3f}{entry['per_step_ms_least_squares']:>12.3f}{net:>14}"
            f"{cpu[name]['per_step_ms']:>9.3f}"
        )
    print()
    for metric in ("wall", "cpu"):
        verdict[metric] = compare(summaries[metric], samples[metric])
    for metric, label in (("wall", "wall-clock"), ("cpu", "CPU time")):
        found = verdict[metric]
        low, high = found["ratio_ci95"]
        net = f", net of the hand loop {found['net_ratio']:.3f}" if "net_ratio" in found else ""
        print(
            f"Per-step ratio agentkit / langchain, {label}: {found['ratio']:.3f} "
            f"(95% bootstrap interval {low:.3f}-{high:.3f}){net}"
        )
    verdict["passed"] = verdict["wall"]["ratio"] <= GOAL
    print(f"Goal: agentkit <= {GOAL}x langchain per step (wall-clock): {'PASS' if verdict['passed'] else 'FAIL'}")
    return verdict


# -- main ----------------------------------------------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, nargs="+", default=[1, 5, 20], help="tool steps per episode (S)")
    parser.add_argument("--runs", type=int, nargs="+", help="timed runs for each S (default 300 150 100)")
    parser.add_argument("--warmup", type=int, default=10, help="untimed runs per contender and S")
    parser.add_argument("--quick", action="store_true", help="a short run (30/20/10 runs, 3 warmup)")
    parser.add_argument("--no-floor", action="store_true", help="skip the hand-written loop")
    parser.add_argument("--no-variants", action="store_true", help="skip agentkit with timeout=None")
    parser.add_argument("--json", metavar="PATH", help="write the figures and raw timings here")
    parser.add_argument("--strict", action="store_true", help="exit with status 1 when the goal is missed")
    args = parser.parse_args(argv)
    if args.quick:
        args.warmup = min(args.warmup, 3)
    defaults = [30, 20, 10] if args.quick else [300, 150, 100]
    if args.runs is None:
        args.runs = [defaults[min(i, len(defaults) - 1)] for i in range(len(args.steps))]
    if len(args.runs) == 1:
        args.runs = args.runs * len(args.steps)
    if len(args.runs) != len(args.steps) or any(s < 1 for s in args.steps) or any(r < 1 for r in args.runs):
        parser.error("--runs takes one count, or one per --steps value; steps and runs must be positive")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    # Tracing would time a network client, not a framework.
    for variable in ("LANGSMITH_TRACING", "LANGCHAIN_TRACING_V2", "LANGCHAIN_TRACING"):
        os.environ.pop(variable, None)
    info = machine_info(PACKAGES)
    started = time.monotonic()
    contenders: list[Contender] = []
    for steps in args.steps:
        contenders += [agentkit_contender(steps), langchain_contender(steps)]
        if not args.no_variants:
            contenders.append(agentkit_contender(steps, timeout=None, name="agentkit (timeout=None)"))
        if not args.no_floor:
            contenders.append(hand_loop_contender(steps))
    runs = dict(zip(args.steps, args.runs, strict=True))
    total = sum(runs[c.n_tool_steps] for c in contenders)
    print(f"Timing {total} episodes ({len(contenders)} contender x S pairs) ...", file=sys.stderr, flush=True)
    measure(contenders, runs, args.warmup)
    samples: dict[str, Samples] = {"wall": {}, "cpu": {}}
    for contender in contenders:
        samples["wall"].setdefault(contender.name, {})[contender.n_tool_steps] = [ns / 1e6 for ns in contender.wall_ns]
        samples["cpu"].setdefault(contender.name, {})[contender.n_tool_steps] = [ns / 1e6 for ns in contender.cpu_ns]
    info["load_average_end"] = list(os.getloadavg()) if hasattr(os, "getloadavg") else None
    info["seconds"] = time.monotonic() - started
    summaries = {metric: summarise(by_name) for metric, by_name in samples.items()}
    verdict = report(summaries, samples, info)
    if args.json:
        payload = {
            "machine": info,
            "args": vars(args),
            "summary": summaries,
            "verdict": verdict,
            "samples_ms": samples,
        }
        directory = os.path.dirname(args.json)
        if directory:
            os.makedirs(directory, exist_ok=True)
        with open(args.json, "w", encoding="utf-8") as out:
            json.dump(payload, out, indent=1)
        print(f"Wrote {args.json}")
    return 1 if args.strict and not verdict.get("passed", True) else 0


if __name__ == "__main__":
    sys.exit(main())

"""The local engine against its peers: same model folder, same prompts, same machine, one run.

Four measurements (issue 3), each printed as medians and a ratio:

1. **One ReAct step** that should stop at ``"\\nObservation:"``: agentkit's `LocalChatModel` against LangChain's
   local path as LangChain's docs set it up (`HuggingFacePipeline` with ``max_new_tokens=256`` in
   `ChatHuggingFace`). The model is a small Llama trained to write a ReAct action followed by an invented
   observation and to run on from there, as small models do; agentkit stops at the marker, LangChain ignores
   `stop`. agentkit runs without its prefix cache here, so only stopping is compared. Goal: <= 0.35x the time.
2. **A 6-step episode** with smolagents' `TransformersModel` on the same messages (system prompt with tool
   descriptions, question, then per step a ReAct reply and an observation). Per-step medians; the goal compares
   steps 3 and on: <= 0.5x. Also printed: prefilled prompt tokens / prompt tokens over steps 2 and on (agentkit's
   prefix reuse; smolagents prefills every prompt token every step). Goal <= 0.25. Run twice: with a short ReAct
   system prompt, and with the system prompt smolagents' own `ToolCallingAgent` sends (rules, examples, tools).
3. **8 episodes batched vs one after another** on agentkit (5 steps each, each step fed the model's own reply):
   generated tokens per second, in three interleaved pairs of runs (the VM's speed drifts), judged on the median
   pair ratio. Goal >= 2x on the CPU. Run on the 8-layer model, on the same model with
   grouped-query attention (2 key/value heads, as in today's small instruct models) and on a 4-layer, 256-wide one:
   the gain depends on what bounds batched decoding, the CPU's arithmetic, reading the keys and values, or the
   per-token overhead.
4. **Framework time**: per agentkit step, the share of wall time spent outside the model (prompt rendering,
   tokenizing, queueing, parsing). Goal <= 2%.

Models are built locally (`agentkit.llm.tiny`), so the run is offline: a trained 4-layer model for stopping, and a
larger randomly initialised 8-layer model (34M parameters) where only compute matters (episode and batching).
Each random model writes its greedy tokens the same way in every framework, which the script checks before it
reports a figure. Each framework runs in a process of its own (`isolated.py`: one OpenMP runtime each, as for a
user), and each call is timed inside its process.

Run ``python benchmarks/engine.py`` (``--quick`` for fewer repeats, ``--json PATH`` to save the figures after each
part). ``--device cuda`` runs every framework on the GPU in bfloat16; there, runs that should write the same text are
counted when they differ rather than stopping the run (`devices.check_same`).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, SystemMessage

from agentkit.llm import LocalChatModel
from agentkit.llm.prompt import render_prompt
from agentkit.llm.tiny import build_tiny_model, train_to_say

sys.path.insert(0, str(Path(__file__).parent))
import peers
from devices import check_same, dtype_for
from isolated import Isolated, alone
from machine import machine_info

STOP = ["\nObservation:"]
PACKAGES = ("torch", "transformers", "langchain-core", "langchain-huggingface", "smolagents")
TOOLS = [  # name, argument, description
    ("calculator", "expression", "Evaluate an arithmetic expression with + - * / and parentheses."),
    ("search", "query", "Search the web for a query and return the top results as text."),
    ("read_file", "path", "Read a text file from the working directory and return its content."),
    ("write_file", "path", "Write text to a file in the working directory, replacing what is there."),
    ("current_time", "timezone", "Return the current date and time in a timezone."),
    ("python", "code", "Run a short Python program and return what it prints."),
]
TOOLS_TEXT = "\n".join(
    f"{name}: {description} Args: {{'{arg}': {{'type': 'string', 'description': 'The {arg} to use.'}}}}"
    for name, arg, description in TOOLS
)
SYSTEM = (
    "Answer the following questions as best you can. You have access to the following tools:\n\n"
    f"{TOOLS_TEXT}\n\nUse the following format:\n\nQuestion: the input question\nThought: think about what to do\n"
    "Action: the tool to use\nAction Input: the input to the tool\nObservation: the result of the tool\n"
    "... (Thought/Action/Action Input/Observation can repeat)\nThought: I now know the final answer\n"
    "Final Answer: the final answer to the original question\n\nBegin!"
)
ACTION = 'Thought: I should use the calculator tool.\nAction: calculator\nAction Input: {"expression": "17+25"}'


def _observation(step: int) -> str:
    rows = ", ".join(f"row {step}.{i}: {(step * 37 + i * 11) % 97}" for i in range(8))
    return f"Observation: the tool returned {rows}."


def _reply(step: int) -> str:
    return (
        f"Thought: step {step} done, the numbers look right.\nAction: calculator\n"
        f'Action Input: {{"expression": "{step}*{step + 3}+{step * 7}"}}'
    )


def _median_ms(values: list[float]) -> float:
    return 1000 * statistics.median(values)


# ----------------------------------------------------------------------------------------------------------------------
# Each framework in a process of its own (see isolated.py): these build the call each process makes
# ----------------------------------------------------------------------------------------------------------------------


def _local_model(folder: str | Path, device: str, compile_decoding: bool, **settings: Any) -> LocalChatModel:
    """agentkit's model as every part loads it: in the device's dtype (bfloat16 on a GPU), compiled as asked."""
    return LocalChatModel.from_pretrained(
        folder, device=device, dtype=dtype_for(device), compile_decoding=compile_decoding, **settings
    )


def _agentkit_caller(
    folder: str, max_new_tokens: int, prefix_cache_size: int, device: str, compile_decoding: bool = False
) -> Callable[..., Any]:
    ours = _local_model(
        folder, device, compile_decoding, max_new_tokens=max_new_tokens, prefix_cache_size=prefix_cache_size
    )

    def call(messages: list[BaseMessage] | None, stop: list[str]) -> dict[str, Any] | None:
        if messages is None:
            ours.clear_cache()
            return None
        before = ours.stats.generate_seconds
        reply = ours.invoke(messages, stop=stop)
        return {
            "content": reply.content,
            "usage": reply.usage_metadata,
            "metadata": reply.response_metadata,
            "generate_seconds": ours.stats.generate_seconds - before,
        }

    return call


def _langchain_caller(folder: str, max_new_tokens: int, device: str) -> Callable[..., Any]:
    chat = peers.langchain_pipeline_chat(folder, max_new_tokens=max_new_tokens, device=device, dtype=dtype_for(device))
    return lambda messages, stop: peers.langchain_step(chat, messages, stop)[0]


def _smolagents_caller(folder: str, max_new_tokens: int, device: str) -> Callable[..., Any]:
    model = peers.smolagents_model(folder, max_new_tokens=max_new_tokens, device=device, dtype=dtype_for(device))
    return lambda messages, stop: peers.smolagents_step(model, messages, stop)[0]


# ----------------------------------------------------------------------------------------------------------------------
# 1. One ReAct step: stop strings
# ----------------------------------------------------------------------------------------------------------------------


def stop_step(folder: Path, repeats: int, device: str) -> dict[str, Any]:
    from transformers import AutoTokenizer

    messages: list[BaseMessage] = [SystemMessage(SYSTEM), HumanMessage("Question: What is 17 + 25?")]
    tokenizer = AutoTokenizer.from_pretrained(folder)
    with (
        Isolated(_agentkit_caller, str(folder), 256, 0, device) as ours,
        Isolated(_langchain_caller, str(folder), 256, device) as theirs,
    ):
        ours(messages, STOP)  # warm-up: first-call allocations, lazy imports
        theirs(messages, STOP)
        times: dict[str, list[float]] = {"agentkit": [], "langchain": []}
        tokens: dict[str, int] = {}
        for _ in range(repeats):
            reply, seconds = ours(messages, STOP)
            times["agentkit"].append(seconds)
            text, seconds = theirs(messages, STOP)
            times["langchain"].append(seconds)
            assert reply["content"] == ACTION, reply["content"]  # the trained action, cut at the marker
            tokens = {
                "agentkit": reply["usage"]["output_tokens"],
                "langchain": len(tokenizer(text, add_special_tokens=False)["input_ids"]),
            }
            assert text.startswith(ACTION) and STOP[0] in text  # LangChain ran on past the marker
    medians = {name: _median_ms(values) for name, values in times.items()}
    return {
        "median_ms": medians,
        "generated_tokens": tokens,
        "ratio": medians["agentkit"] / medians["langchain"],
        "goal": "<= 0.35",
    }


# ----------------------------------------------------------------------------------------------------------------------
# 2. A multi-step episode: prefix reuse
# ----------------------------------------------------------------------------------------------------------------------


def _smolagents_system_prompt() -> str:
    """smolagents' own `ToolCallingAgent` system prompt, rendered by smolagents with the same tools."""
    import importlib.resources

    import yaml
    from smolagents import Tool
    from smolagents.agents import populate_template

    tools = {}
    for name, arg, description in TOOLS:
        namespace: dict[str, Any] = {}
        exec(f"def forward(self, {arg}: str) -> str:\n    return {arg}\n", namespace)  # smolagents reads the signature
        attributes = {
            "name": name,
            "description": description,
            "inputs": {arg: {"type": "string", "description": f"The {arg} to use."}},
            "output_type": "string",
            "forward": namespace["forward"],
        }
        tools[name] = type(f"Tool_{name}", (Tool,), attributes)()
    prompts = importlib.resources.files("smolagents.prompts").joinpath("toolcalling_agent.yaml").read_text()
    template = yaml.safe_load(prompts)["system_prompt"]
    return str(populate_template(template, {"tools": tools, "managed_agents": {}, "custom_instructions": None}))


def _episode_messages(steps: int, system: str) -> list[list[BaseMessage]]:
    """The prompt of each step: the history grows by one reply and one observation per step."""
    history: list[BaseMessage] = [SystemMessage(system), HumanMessage("Question: Add up the rows of the table.")]
    prompts = []
    for step in range(steps):
        prompts.append(list(history))
        history += [AIMessage(_reply(step)), HumanMessage(_observation(step))]
    return prompts


def episode(
    folder: Path,
    steps: int,
    repeats: int,
    new_tokens: int,
    device: str,
    system: str = SYSTEM,
    compile_decoding: bool = False,
) -> dict[str, Any]:
    from transformers import AutoTokenizer

    prompts = _episode_messages(steps, system)
    converted = [peers.messages_to_smolagents(p) for p in prompts]
    tokenizer = AutoTokenizer.from_pretrained(folder)
    per_step: dict[str, list[list[float]]] = {"agentkit": [[] for _ in prompts], "smolagents": [[] for _ in prompts]}
    framework_seconds: list[float] = []
    framework_share: list[float] = []
    prefilled = prompt_tokens = differing = 0
    with (
        Isolated(_agentkit_caller, str(folder), new_tokens, 16, device, compile_decoding) as ours,
        Isolated(_smolagents_caller, str(folder), new_tokens, device) as theirs,
    ):
        ours(prompts[0], STOP)
        theirs(converted[0], STOP)
        for _ in range(repeats):
            ours(None, STOP)  # every episode starts cold: clear the prefix cache
            for step, (messages, smol) in enumerate(zip(prompts, converted, strict=True)):
                reply, wall = ours(messages, STOP)
                per_step["agentkit"][step].append(wall)
                framework_seconds.append(wall - reply["generate_seconds"])
                framework_share.append(framework_seconds[-1] / wall)
                text, seconds = theirs(smol, STOP)
                per_step["smolagents"][step].append(seconds)
                # Same model, same prompt, same greedy text (see check_same for the GPU).
                differing += text.strip() != reply["content"]
                if step >= 1:
                    prefilled += reply["metadata"]["prefilled_tokens"]
                    prompt_tokens += reply["metadata"]["prompt_tokens"]
    check_same(device, differing, f"of {repeats * steps} replies differ between the frameworks")
    medians = {name: [_median_ms(v) for v in steps_] for name, steps_ in per_step.items()}
    ratios = [a / b for a, b in zip(medians["agentkit"], medians["smolagents"], strict=True)]
    late = slice(2, None)
    return {
        "prompt_tokens_per_step": [len(tokenizer(render_prompt(tokenizer, p, None))["input_ids"]) for p in prompts],
        "median_ms_per_step": medians,
        "ratio_per_step": ratios,
        "ratio_from_step_3": sum(medians["agentkit"][late]) / sum(medians["smolagents"][late]),
        "goal": "<= 0.5 from step 3",
        "prefilled_over_prompt_tokens_from_step_2": {"agentkit": prefilled / prompt_tokens, "smolagents": 1.0},
        "prefill_goal": "<= 0.25",
        "replies_differing": differing,
        "framework_ms_median": _median_ms(framework_seconds),
        "framework_share_median": statistics.median(framework_share),
        "framework_goal": "<= 0.02",
    }


# ----------------------------------------------------------------------------------------------------------------------
# 3. Batched episodes
# ----------------------------------------------------------------------------------------------------------------------


def _run_episode(llm: LocalChatModel, index: int, steps: int) -> list[str]:
    messages: list[BaseMessage] = [
        SystemMessage(SYSTEM),
        HumanMessage(f"Question: episode {index}, what is {index}+7?"),
    ]
    replies = []
    for step in range(steps):
        reply = llm.invoke(messages, stop=STOP)
        replies.append(str(reply.content))
        messages += [AIMessage(reply.content), HumanMessage(_observation(step + index))]
    return replies


def batched(
    folder: Path, episodes: int, steps: int, new_tokens: int, pairs: int, device: str, compile_decoding: bool = False
) -> dict[str, Any]:
    """Throughput of `episodes` run one after another and batched, in `pairs` interleaved pairs of runs.

    The speed of a shared VM drifts by up to 2x within minutes, so each pair runs both modes back to back (in
    alternating order) and the goal is judged on the median of the pairs' ratios.
    """
    llm = _local_model(folder, device, compile_decoding, max_new_tokens=new_tokens, max_batch_size=episodes)
    _run_episode(llm, 0, 1)  # warm-up
    runs: dict[str, list[dict[str, Any]]] = {"one after another": [], "batched": []}
    outputs: dict[str, list[list[str]]] = {}
    ratios = []
    differing = 0
    for pair in range(pairs):
        modes = ("one after another", "batched") if pair % 2 == 0 else ("batched", "one after another")
        for mode in modes:
            llm.clear_cache()
            llm.stats.reset()
            started = time.perf_counter()
            if mode == "batched":  # one thread per episode, as agent.batch runs them
                with ThreadPoolExecutor(episodes) as pool:
                    results = list(pool.map(lambda i: _run_episode(llm, i, steps), range(episodes)))
            else:
                results = [_run_episode(llm, i, steps) for i in range(episodes)]
            wall = time.perf_counter() - started
            outputs[mode] = results
            runs[mode].append(
                {
                    "seconds": wall,
                    "generated_tokens": llm.stats.generated_tokens,
                    "tokens_per_second": llm.stats.generated_tokens / wall,
                    "generate_calls": llm.stats.batches,
                    "shared_prefix_batches": llm.stats.shared_prefix_batches,
                }
            )
        differing += sum(  # batching changes no episode's text (see check_same for the GPU)
            a != b for a, b in zip(outputs["batched"], outputs["one after another"], strict=True)
        )
        ratios.append(runs["batched"][-1]["tokens_per_second"] / runs["one after another"][-1]["tokens_per_second"])
    check_same(device, differing, f"of {pairs * episodes} episodes differ between batched and one after another")
    medians = {mode: statistics.median(r["tokens_per_second"] for r in rs) for mode, rs in runs.items()}
    return {
        "runs": runs,
        "median_tokens_per_second": medians,
        "pair_ratios": ratios,
        "throughput_ratio": statistics.median(ratios),
        "ratio_of_medians": medians["batched"] / medians["one after another"],
        "episodes_differing": differing,
        "goal": ">= 2 (median of the pair ratios)",
    }


# ----------------------------------------------------------------------------------------------------------------------


def build_models(workdir: Path) -> tuple[Path, Path]:
    """A trained small model that writes a ReAct action then runs on, and a larger random one for compute."""
    stop_folder = build_tiny_model(workdir / "stop", hidden_size=256, layers=4, heads=4)
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(stop_folder)
    prompt = render_prompt(tokenizer, [SystemMessage(SYSTEM), HumanMessage("Question: What is 17 + 25?")], None)
    # No end token after the invented observation: like small models without stop strings, it runs on.
    train_to_say(stop_folder, [(prompt, ACTION + "\nObservation: 42\nThought: I now know")], steps=400, end=False)
    compute_folder = build_tiny_model(
        workdir / "compute", hidden_size=512, layers=8, heads=8, vocab_size=1024, context=4096
    )
    return stop_folder, compute_folder


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="fewer repeats")
    parser.add_argument("--json", type=Path, help="write the figures here")
    parser.add_argument("--device", default="cpu", help='where every framework runs: "cpu" or "cuda[:N]" (bfloat16)')
    parser.add_argument(
        "--compile-decoding",
        action="store_true",
        help="agentkit decodes from static caches that torch compiles (CUDA graphs on a GPU): episode and batch parts",
    )
    parser.add_argument("--only", action="append", help="run only this part (repeatable): a key of the printed figures")
    args = parser.parse_args()
    device = args.device
    compiled = args.compile_decoding
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    repeats = 3 if args.quick else 7
    pairs = 1 if args.quick else 3
    with tempfile.TemporaryDirectory() as tmp:
        stop_folder, compute_folder = build_models(Path(tmp))
        figures: dict[str, Any] = {"machine": machine_info(PACKAGES), "device": device, "compile_decoding": compiled}
        parts: dict[str, Callable[[], dict[str, Any]]] = {
            "react_step_vs_langchain": lambda: stop_step(stop_folder, repeats, device),
            "episode_vs_smolagents": lambda: episode(compute_folder, 6, repeats, 24, device, SYSTEM, compiled),
            # The same with the system prompt smolagents' ToolCallingAgent itself sends (rules, examples, tools):
            # what an agent's prompt weighs in practice, and so what re-prefilling it every step costs.
            "episode_vs_smolagents_own_prompt": lambda: episode(
                compute_folder, 6, repeats, 24, device, _smolagents_system_prompt(), compiled
            ),
            "batch_of_8": lambda: alone(batched, compute_folder, 8, 5, 24, pairs, device, compiled),
            # The same model with grouped-query attention (2 key/value heads for 8 query heads), the layout of
            # today's small instruct models (Qwen2.5, Llama 3.2, SmolLM2): batched decoding reads a quarter of the
            # keys and values, which bound it above on a CPU.
            "batch_of_8_gqa": lambda: alone(
                batched,
                build_tiny_model(
                    Path(tmp) / "gqa", hidden_size=512, layers=8, heads=8, kv_heads=2, vocab_size=1024, context=4096
                ),
                8,
                5,
                24,
                pairs,
                device,
                compiled,
            ),
            # Where the CPU's arithmetic, not per-token overhead, bounds decoding (above), batching gains less;
            # a smaller model shows the other end of the range.
            "batch_of_8_small_model": lambda: alone(
                batched,
                build_tiny_model(Path(tmp) / "small", hidden_size=256, layers=4, heads=4, context=4096),
                8,
                5,
                24,
                pairs,
                device,
                compiled,
            ),
        }
        unknown = set(args.only or []) - set(parts)
        if unknown:
            sys.exit(f"unknown parts: {', '.join(sorted(unknown))}; the parts are {', '.join(parts)}")
        failed = []
        for name, part in parts.items():
            if args.only and name not in args.only:
                continue
            try:
                figures[name] = part()
            except Exception as error:  # a failed part is reported; the others still run
                figures[name] = {"error": f"{type(error).__name__}: {error}"[:1000]}
                failed.append(name)
            if args.json:  # after each part, so a run cut short keeps what it measured
                args.json.parent.mkdir(parents=True, exist_ok=True)
                args.json.write_text(json.dumps(figures, indent=2) + "\n")
    print(json.dumps(figures, indent=2))
    if failed:
        sys.exit(f"failed: {', '.join(failed)}")


if __name__ == "__main__":
    main()

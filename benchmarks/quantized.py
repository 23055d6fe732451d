"""Quantised weights on the CPU: what `LocalChatModel(quantize="4bit"|"8bit")` saves in memory and time.

Decoding one row reads every weight once per token, so on a CPU it is bound by the memory's speed, and weights of a
quarter or half the bytes read faster: bitsandbytes (0.47 on) runs its 4- and 8-bit layers on the CPU. Prefilling
is bound by arithmetic instead, which bitsandbytes' CPU kernels do in bfloat16 (4-bit) or int8 (8-bit). Unquantised
bfloat16 weights are measured too, for reference: on a CPU with bfloat16 instructions they halve the bytes as well.

The model is a randomly initialised Llama built by `agentkit.llm.tiny` (only compute matters here, so random
weights serve; what quantising does to a trained model's answers is bitsandbytes' own subject): by default 16 layers,
1024 wide, 270M parameters, the size of the smallest real chat models. Each precision is loaded as a user loads it,
``LocalChatModel.from_pretrained(folder, device="cpu", dtype=..., quantize=...)``, in a process of its own
(`isolated.py`), and the parent interleaves their calls so that the VM's drift hits them alike. Per precision the
script reports:

- the weights' bytes in memory (`get_memory_footprint`);
- decoding: milliseconds per token, from a 1-token and a 65-token reply to the same 200-token prompt;
- prefilling a 1,000-token prompt (the prefix cache off, so every call prefills it whole);
- an agent step: a 6-step episode (a system prompt, then a question and one observation per step, 24 new tokens a
  step, prefix reuse on), median step time from step 3, as in `engine.py`.

Run ``python benchmarks/quantized.py`` (about 7 minutes on 2 vCPUs; ``--quick`` for fewer repeats, ``--shape
small`` for engine.py's 34M model, ``--json PATH`` to save the figures).
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from isolated import Isolated
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, SystemMessage
from machine import machine_info

from agentkit.llm import LocalChatModel
from agentkit.llm.tiny import build_tiny_model

SHAPES = {
    "medium": {"hidden_size": 1024, "layers": 16, "heads": 16},
    "small": {"hidden_size": 512, "layers": 8, "heads": 8},
}
# The weights as loaded: dtype, quantize. bfloat16 for reference: on a CPU with bfloat16 instructions it halves the
# bytes too, without quantising.
PRECISIONS = {
    "float32": ("float32", None),
    "bfloat16": ("bfloat16", None),
    "8bit": ("float32", "8bit"),
    "4bit": ("float32", "4bit"),
}
SYSTEM = "You are a careful assistant. Use the tools when a question needs them. " * 20
STEPS, NEW_TOKENS = 6, 24


def _messages(steps: int) -> list[list[BaseMessage]]:
    """Each step's conversation: the system prompt, a question, then a reply and an observation per earlier step."""
    conversation: list[BaseMessage] = [SystemMessage(SYSTEM), HumanMessage("Question: what do rows 1 to 8 add up to?")]
    prompts = []
    for step in range(steps):
        prompts.append(list(conversation))
        conversation += [
            AIMessage(f"Thought: step {step}, adding the next row.\nAction: calculator"),
            HumanMessage(f"Observation: row {step} holds " + ", ".join(str(step * 7 + i) for i in range(12))),
        ]
    return prompts


def _caller(folder: str, precision: str) -> Callable[..., Any]:
    """In the child: the model at `precision`, and a call that runs one measurement on it."""
    # One model per process: a second would run on a second worker thread, with an OpenMP team of its own.
    llm = LocalChatModel.from_pretrained(
        folder,
        device="cpu",
        dtype=PRECISIONS[precision][0],
        quantize=PRECISIONS[precision][1],
        max_new_tokens=NEW_TOKENS,
    )

    def call(kind: str, payload: Any) -> Any:
        if kind == "footprint":
            return llm.model.get_memory_footprint()
        if kind == "clear":
            llm.clear_cache()
            return None
        if kind == "generate":  # payload: (prompt, new tokens), prefilled whole; the model's seconds, tokens written
            prompt, new_tokens = payload
            llm.clear_cache()
            before = llm.stats.generate_seconds
            reply = llm.invoke(prompt, max_tokens=new_tokens)
            return llm.stats.generate_seconds - before, reply.usage_metadata["output_tokens"]
        return llm.invoke(payload).usage_metadata["output_tokens"]  # one episode step, on the cache of the last

    return call


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--shape", choices=sorted(SHAPES), default="medium")
    parser.add_argument("--quick", action="store_true", help="2 repeats instead of 5")
    parser.add_argument("--json", type=Path, help="write the figures here")
    args = parser.parse_args()
    repeats = 2 if args.quick else 5

    with tempfile.TemporaryDirectory() as workdir:
        folder = build_tiny_model(Path(workdir) / "model", vocab_size=1024, context=4096, seed=1, **SHAPES[args.shape])
        from transformers import AutoTokenizer

        tokenizer = AutoTokenizer.from_pretrained(folder)
        words = tokenizer.decode(list(range(20, 1000))).split()
        short, long = " ".join(words[:200]), " ".join(words * 4)
        long = tokenizer.decode(tokenizer(long)["input_ids"][:1000])
        short = tokenizer.decode(tokenizer(short)["input_ids"][:200])
        prompts = _messages(STEPS)
        children = {precision: Isolated(_caller, str(folder), precision) for precision in PRECISIONS}
        try:
            results = _measure(children, short, long, prompts, repeats)
        finally:
            for child in children.values():
                child.close()
    report = {"machine": machine_info(["torch", "transformers", "bitsandbytes"]), "shape": args.shape, **results}
    _print(report)
    if args.json:
        args.json.write_text(json.dumps(report, indent=2))


def _measure(
    children: dict[str, Isolated], short: str, long: str, prompts: list[list[BaseMessage]], repeats: int
) -> dict[str, Any]:
    decode: dict[str, list[float]] = {p: [] for p in children}
    prefill: dict[str, list[float]] = {p: [] for p in children}
    steps: dict[str, list[list[float]]] = {p: [[] for _ in prompts] for p in children}
    for child in children.values():  # warm up: the first call of each kind pays one-off costs
        child("generate", (short, 2))
        child("step", prompts[0])
    for _ in range(repeats):
        for precision, child in children.items():
            (one, written_one), _ = child("generate", (short, 1))
            (many, written), _ = child("generate", (short, 65))
            if (written_one, written) != (1, 65):
                raise AssertionError(f"{precision}: wrote {written_one} and {written} tokens, not 1 and 65")
            decode[precision].append((many - one) / 64)
            (seconds, _), _ = child("generate", (long, 1))
            prefill[precision].append(seconds)
            child("clear", None)
            for step, messages in enumerate(prompts):
                written, wall = child("step", messages)
                if written != NEW_TOKENS:
                    raise AssertionError(f"{precision}: step {step} wrote {written} tokens, not {NEW_TOKENS}")
                steps[precision][step].append(wall)
    footprint = {p: child("footprint", None)[0] for p, child in children.items()}
    return {
        "repeats": repeats,
        "weights_mb": {p: footprint[p] / 1e6 for p in children},
        "decode_ms_per_token": {p: 1000 * statistics.median(v) for p, v in decode.items()},
        "prefill_1000_ms": {p: 1000 * statistics.median(v) for p, v in prefill.items()},
        "step_ms_from_step_3": {
            p: 1000 * statistics.median([t for step in v[2:] for t in step]) for p, v in steps.items()
        },
    }


def _print(report: dict[str, Any]) -> None:
    print(f"shape {report['shape']}, {report['repeats']} repeats, {report['machine']['processor']}")
    columns = ("weights_mb", "decode_ms_per_token", "prefill_1000_ms", "step_ms_from_step_3")
    print(f"{'precision':<10}" + "".join(f"{c:>22}" for c in columns))
    for precision in PRECISIONS:
        cells = []
        for column in columns:
            value = report[column][precision]
            ratio = value / report[column]["float32"]
            cells.append(f"{value:>13.1f} ({ratio:4.2f}x)")
        print(f"{precision:<10}" + "".join(f"{c:>22}" for c in cells))


if __name__ == "__main__":
    main()

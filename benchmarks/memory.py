"""Long-term memory: agentkit's `ChromaMemory` against plain `langchain_chroma.Chroma`, same embeddings, same run.

Three measurements, all with the offline all-MiniLM-L6-v2 `Embedder` (its default backend: ONNX Runtime on a CPU)
and persistent (on-disk) stores:

1. **Adding 1,000 memories**: `add_many` in one batch vs `add` one at a time (goal: batched >= 5x faster), and vs
   `langchain_chroma.Chroma.add_texts` on the same texts with the same embeddings (goal: <= 1.1x its time). Batched
   runs are repeated five times into fresh stores, each agentkit run followed by a langchain-chroma one; medians are
   reported, and the ratio is the median of the five pairs' ratios.
2. **Query latency** at 10k and 100k records: `search` (embedding of the query included, top 5 of 40 candidates
   re-ranked) and `recall` (the agent's path: search, token budget, access times written back). Goal: p50 <= 20 ms.
   The query embedding alone is timed too, in the default backend and in PyTorch.
   The stores are built from precomputed vectors to save time: 10k texts are embedded once; the 100k store holds
   each of them 10 times, the copies' vectors jittered slightly (and re-normalised) so that no two are equal.
3. **Recall on BFCL's memory category** (data from the PyPI package ``bfcl-eval``): every user turn of the
   prerequisite conversations is stored (one namespace, or collection, per scenario); each question is searched in
   its scenario; a hit is the turn holding the answer's source text among the top 5. Goal: hit@5 >= 0.9 and at least
   langchain-chroma's.

Run ``python benchmarks/memory.py`` (``--quick`` for a short run; ``--json PATH`` to save the figures, merged into
the file when it exists; ``--parts query --torch-threads 1`` to rerun one part with one torch thread). Needs
``pip install -e ".[bench]"`` and ``pip install --no-deps bfcl-eval`` (its own dependencies would downgrade numpy).
"""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import os
import platform
import re
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import numpy as np

from agentkit.embeddings import Embedder
from agentkit.memory import ChromaMemory

PEERS = ("chromadb", "langchain-chroma", "sentence-transformers")
ADD_GOAL, PEER_GOAL, LATENCY_GOAL_MS, RECALL_GOAL = 5.0, 1.1, 20.0, 0.9

_PEOPLE = ["Ada", "Bob", "Chen", "Dana", "Emil", "Farah", "Goran", "Hana", "Ivan", "Jade", "Kofi", "Lena"]
_FACTS = [
    "likes {x} tea in the morning",
    "moved to {x} last spring",
    "has a meeting about {x} on Tuesday",
    "is allergic to {x}",
    "wants a reminder to call {x}",
    "prefers {x} for long trips",
    "finished the report on {x}",
    "booked a table at the {x} restaurant",
]
_THINGS = ["green", "Lisbon", "budget planning", "peanuts", "the dentist", "trains", "solar panels", "Thai", "jasmine"]


def sentences(n: int) -> list[str]:
    """`n` distinct, realistic short memories."""
    out = []
    for i in range(n):
        person = _PEOPLE[i % len(_PEOPLE)]
        fact = _FACTS[(i // len(_PEOPLE)) % len(_FACTS)].format(x=_THINGS[(i // 7) % len(_THINGS)])
        out.append(f"{person} {fact} (note {i}).")
    return out


def _chroma_peer(embedder: Embedder, folder: str) -> Any:
    from chromadb.config import Settings
    from langchain_chroma import Chroma

    return Chroma(
        collection_name="peer",
        embedding_function=embedder,
        persist_directory=folder,
        collection_configuration={"hnsw": {"space": "cosine"}},
        client_settings=Settings(anonymized_telemetry=False, is_persistent=True, persist_directory=folder),
    )


def _timed(run: Any) -> float:
    started = time.perf_counter()
    run()
    return time.perf_counter() - started


def bench_add(embedder: Embedder, root: Path, n: int, one_by_one: int, repeats: int) -> dict[str, Any]:
    texts = sentences(n)
    batched, peer = [], []
    for r in range(repeats):  # alternate, so that drift in machine load hits both alike
        memory = ChromaMemory(root / f"batched-{r}", embeddings=embedder)
        batched.append(_timed(lambda memory=memory: memory.add_many(texts)))
        assert memory.count() == n
        store = _chroma_peer(embedder, str(root / f"peer-{r}"))
        peer.append(_timed(lambda store=store: store.add_texts(texts)))
    single_memory = ChromaMemory(root / "single", embeddings=embedder)
    single = _timed(lambda: [single_memory.add(t) for t in texts[:one_by_one]]) * n / one_by_one
    result = {
        "records": n,
        "batched_s": statistics.median(batched),
        "batched_runs_s": batched,
        "one_at_a_time_s": single,
        "one_at_a_time_measured": one_by_one,
        "langchain_chroma_s": statistics.median(peer),
        "langchain_chroma_runs_s": peer,
    }
    result["speedup_vs_one_at_a_time"] = result["one_at_a_time_s"] / result["batched_s"]
    # Judged on the median of each interleaved pair's ratio, which cancels drift in the machine's load between pairs;
    # the ratio of the two medians is kept too.
    result["ratio_vs_langchain_chroma"] = statistics.median(a / b for a, b in zip(batched, peer, strict=True))
    result["ratio_of_medians_vs_langchain_chroma"] = result["batched_s"] / result["langchain_chroma_s"]
    return result


def _jittered(base: np.ndarray, copies: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    out = [base] + [base + rng.normal(scale=0.01, size=base.shape).astype(np.float32) for _ in range(copies - 1)]
    stacked = np.concatenate(out)
    return stacked / np.linalg.norm(stacked, axis=1, keepdims=True)


def _percentiles(samples: list[float]) -> dict[str, float]:
    ms = np.asarray(samples) * 1000
    return {"p50_ms": float(np.percentile(ms, 50)), "p95_ms": float(np.percentile(ms, 95)), "n": len(samples)}


def bench_queries(embedder: Embedder, root: Path, base: int, sizes: list[int], queries: int) -> dict[str, Any]:
    texts = sentences(base)
    vectors = embedder.encode(texts)
    asked = [f"What does {p} {v}?" for p in _PEOPLE for v in ("like to drink", "need to remember", "prefer")]
    asked = (asked * (queries // len(asked) + 1))[:queries]
    # The same model in PyTorch eager, for comparison with the default backend (ONNX Runtime on a CPU).
    in_pytorch = Embedder(device="cpu", backend="torch")
    in_pytorch.embed_query("warm up")
    results: dict[str, Any] = {}
    for size in sizes:
        copies = size // base
        memory = ChromaMemory(root / f"query-{size}", embeddings=embedder)
        started = time.perf_counter()
        all_texts = [t if c == 0 else f"{t} [copy {c}]" for c in range(copies) for t in texts]
        memory.add_many(all_texts, vectors=_jittered(vectors, copies).tolist())
        build = time.perf_counter() - started
        for q in asked[:20]:  # warm: load the index, fill caches
            memory.search(q)
        search = [_timed(lambda q=q, m=memory: m.search(q)) for q in asked]
        recall = [_timed(lambda q=q, m=memory: m.recall(q)) for q in asked]
        embed = [_timed(lambda q=q: embedder.embed_query(q)) for q in asked]
        pytorch = [_timed(lambda q=q: in_pytorch.embed_query(q)) for q in asked]
        results[str(size)] = {
            "records": memory.count(),
            "build_s": build,
            "search": _percentiles(search),
            "recall": _percentiles(recall),
            "query_embedding": _percentiles(embed),
            "query_embedding_pytorch": _percentiles(pytorch),
        }
    return results


# -- BFCL memory ------------------------------------------------------------------------------------------------------


def _words(text: str) -> set[tuple[str, ...]]:
    words = re.findall(r"[a-z0-9]+", text.lower().replace("\u2019", "'"))
    return {tuple(words[i : i + 3]) for i in range(len(words) - 2)}


def load_bfcl() -> tuple[dict[str, list[tuple[str, str]]], list[tuple[str, str, str]]]:
    """Turns per scenario as (turn id, text), and questions as (scenario, question, source turn id).

    BFCL gives each answer's source as an excerpt (with "..." cuts and typographic quotes); the source turn is the
    turn sharing the most word trigrams with it.
    """
    import bfcl_eval

    data = Path(bfcl_eval.__file__).parent / "data"
    turns: dict[str, list[tuple[str, str]]] = {}
    for path in sorted((data / "memory_prereq_conversation").glob("memory_*.json")):
        scenario = path.stem.removeprefix("memory_")
        for line in path.read_text(encoding="utf-8").splitlines():
            conversation = json.loads(line)
            for n, turn in enumerate(conversation["question"]):
                for message in turn:
                    if message["role"] == "user":
                        turns.setdefault(scenario, []).append((f"{conversation['id']}#{n}", message["content"]))
    answers = {
        a["id"]: a for a in map(json.loads, (data / "possible_answer" / "BFCL_v4_memory.json").read_text().splitlines())
    }
    questions = []
    for line in (data / "BFCL_v4_memory.json").read_text(encoding="utf-8").splitlines():
        q = json.loads(line)
        source = _words(answers[q["id"]]["source"])
        best = max(turns[q["scenario"]], key=lambda t: len(source & _words(t[1])))
        questions.append((q["scenario"], q["question"][0][0]["content"], best[0]))
    return turns, questions


def bench_bfcl(embedder: Embedder, root: Path) -> dict[str, Any]:
    turns, questions = load_bfcl()
    memory = ChromaMemory(root / "bfcl", embeddings=embedder)
    turn_of: dict[str, str] = {}
    peers = {}
    for scenario, items in turns.items():
        ids = memory.add_many([text for _, text in items], namespace=scenario)
        turn_of.update(zip(ids, (tid for tid, _ in items), strict=True))
        peers[scenario] = _chroma_peer(embedder, str(root / f"bfcl-peer-{scenario}"))
        peers[scenario].add_texts([text for _, text in items], ids=[tid for tid, _ in items])
    ours = peer = 0
    for scenario, question, source in questions:
        hits = memory.search(question, k=5, namespaces=[scenario])
        ours += source in {turn_of[h.record.id] for h in hits}
        peer += source in {d.id for d in peers[scenario].similarity_search(question, k=5)}
    return {
        "questions": len(questions),
        "turns": sum(len(v) for v in turns.values()),
        "agentkit_hit_at_5": ours / len(questions),
        "langchain_chroma_hit_at_5": peer / len(questions),
    }


def _verdict(ok: bool) -> str:
    return "PASS" if ok else "MISSED"


def _report_add(add: dict[str, Any]) -> None:
    print(
        f"add {add['records']}: batched {add['batched_s']:.2f} s, one at a time {add['one_at_a_time_s']:.2f} s "
        f"-> {add['speedup_vs_one_at_a_time']:.1f}x (goal >= {ADD_GOAL}x: "
        f"{_verdict(add['speedup_vs_one_at_a_time'] >= ADD_GOAL)}); langchain-chroma {add['langchain_chroma_s']:.2f} s "
        f"-> ratio {add['ratio_vs_langchain_chroma']:.2f}, median of {len(add['batched_runs_s'])} interleaved pairs "
        f"(goal <= {PEER_GOAL}: {_verdict(add['ratio_vs_langchain_chroma'] <= PEER_GOAL)}; ratio of the medians "
        f"{add['ratio_of_medians_vs_langchain_chroma']:.2f})"
    )


def _report_query(query: dict[str, Any]) -> None:
    for q in (v for k, v in query.items() if k != "settings"):
        print(
            f"query at {q['records']:,} records (built in {q['build_s']:.0f} s): search p50 "
            f"{q['search']['p50_ms']:.1f} ms p95 {q['search']['p95_ms']:.1f} ms (goal p50 <= {LATENCY_GOAL_MS} ms: "
            f"{_verdict(q['search']['p50_ms'] <= LATENCY_GOAL_MS)}); recall p50 {q['recall']['p50_ms']:.1f} ms "
            f"p95 {q['recall']['p95_ms']:.1f} ms; query embedding alone p50 {q['query_embedding']['p50_ms']:.1f} ms "
            f"(in PyTorch: {q['query_embedding_pytorch']['p50_ms']:.1f} ms)"
        )


def _report_bfcl(bfcl: dict[str, Any]) -> None:
    ok = bfcl["agentkit_hit_at_5"] >= max(RECALL_GOAL, bfcl["langchain_chroma_hit_at_5"])
    print(
        f"BFCL memory ({bfcl['questions']} questions, {bfcl['turns']} turns): hit@5 agentkit "
        f"{bfcl['agentkit_hit_at_5']:.3f} vs langchain-chroma {bfcl['langchain_chroma_hit_at_5']:.3f} "
        f"(goal >= {RECALL_GOAL} and >= langchain-chroma: {_verdict(ok)})"
    )


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes, one repeat")
    parser.add_argument("--json", type=Path, help="save the figures here (merged into an existing file)")
    parser.add_argument("--parts", default="add,query,bfcl", help="comma-separated: add, query, bfcl")
    parser.add_argument("--torch-threads", type=int, help="torch.set_num_threads (default: torch's choice)")
    args = parser.parse_args(argv)
    parts = set(args.parts.split(","))
    if args.torch_threads:
        import torch

        # On a shared VM, torch's spinning threads fight other processes: one query embedding took ~500 ms with
        # two threads and ~15 ms with one while other jobs ran (see benchmarks/README.md).
        torch.set_num_threads(args.torch_threads)
    embedder = Embedder(device="cpu")
    embedder.encode(["warm up"])
    figures: dict[str, Any] = json.loads(args.json.read_text()) if args.json and args.json.exists() else {}
    figures.update(
        machine={"cpu": platform.processor() or platform.machine(), "cores": os.cpu_count(), "python": sys.version},
        versions={p: importlib.metadata.version(p) for p in PEERS},
    )
    import torch

    settings = {
        "torch_threads": torch.get_num_threads(),
        "embedding_backend": embedder.backend,
        "load_average_at_start": os.getloadavg(),
    }
    with tempfile.TemporaryDirectory(prefix=f"agentkit-memory-{uuid.uuid4().hex[:6]}-") as tmp:
        root = Path(tmp)
        if "add" in parts:
            n, single, repeats = (200, 50, 1) if args.quick else (1000, 1000, 5)
            figures["add"] = {**bench_add(embedder, root, n, single, repeats), **settings}
            _report_add(figures["add"])
        if "query" in parts:
            base, sizes = (1000, [1000, 10_000]) if args.quick else (10_000, [10_000, 100_000])
            queries = 50 if args.quick else 200
            figures["query"] = {**bench_queries(embedder, root, base, sizes, queries), "settings": settings}
            _report_query(figures["query"])
        if "bfcl" in parts:
            figures["bfcl_memory"] = {**bench_bfcl(embedder, root), **settings}
            _report_bfcl(figures["bfcl_memory"])
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(figures, indent=2) + "\n")
    return figures


if __name__ == "__main__":
    main()

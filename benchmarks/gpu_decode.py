"""Decode speed of a ~1B model on a GPU, against the GPU's memory-bandwidth limit (issue 3).

A decoding step reads every weight once and each row's keys and values, so on a GPU the step can take no less than
those bytes over the memory bandwidth: that is the limit each figure is set against. The model is randomly
initialised in Llama 3.2 1B's shape (16 layers, 2048 wide, an 8192-wide MLP, 32 query and 8 key/value heads, tied
embeddings) with a tokenizer trained locally (`agentkit.llm.tiny`), so the run is offline. That tokenizer's corpus
gives it a few hundred tokens, not Llama's 128,256, so the model holds 0.97B parameters, not 1.24B (both printed).
Only compute matters here, not what it writes.

Measured, in bfloat16, for 1 and 8 rows:

* **agentkit**: `LocalChatModel.invoke` (8 rows: 8 threads at once, which its engine batches into one `generate`).
* **transformers `generate`** on the same weights: the library call agentkit's engine makes, without the engine.
* **transformers `generate` with a static cache**, which transformers compiles (`torch.compile`, CUDA graphs): what
  the same weights reach when the per-kernel launch cost of eager PyTorch is gone.
* **agentkit, `compile_decoding=True`**: the engine copies its prefilled batch cache into a static cache and
  decodes through that same compiled path (`agentkit.llm.static_cache`).

Each is timed at two reply lengths and the difference taken, so a figure is the cost of one more decoding step with
the prompt's prefill and the call's fixed cost removed. The bandwidth is measured in the same run (a device-to-device
copy, bytes read plus written) and the vendor's figure is printed beside it.

Run ``python benchmarks/gpu_decode.py`` (``--json PATH`` to save the figures). ``--shape small --device cpu`` runs the
same script on a small model, to check it without a GPU.
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

from langchain_core.messages import BaseMessage, HumanMessage, SystemMessage

from agentkit.llm import LocalChatModel
from agentkit.llm.prompt import render_prompt
from agentkit.llm.tiny import build_tiny_model

sys.path.insert(0, str(Path(__file__).parent))
from devices import seconds, synchronize
from engine import SYSTEM
from machine import machine_info

PACKAGES = ("torch", "transformers")
SHAPES: dict[str, dict[str, int]] = {
    "1b": {"hidden_size": 2048, "layers": 16, "heads": 32, "kv_heads": 8, "vocab_size": 32000},
    "small": {"hidden_size": 256, "layers": 4, "heads": 4, "kv_heads": 2, "vocab_size": 1024},
}
SHORT, LONG = 32, 288  # reply lengths: the difference, 256 steps, is what a figure divides by
# Memory bandwidth by the vendor's datasheets, printed beside the measured copy bandwidth.
DATASHEET_BYTES_PER_SECOND = {"H200": 4.8e12, "H100": 3.35e12}


def _conversation(index: int) -> list[BaseMessage]:
    return [SystemMessage(SYSTEM), HumanMessage(f"Question: episode {index}, what is {index} + 7?")]


def copy_bandwidth(device: str) -> float:
    """Bytes read plus written per second by a 2 GiB device-to-device copy (median of 20)."""
    import torch

    source = torch.empty(2**31, dtype=torch.uint8, device=device)
    target = torch.empty_like(source)
    times = []
    for _ in range(23):
        times.append(seconds(device, target.copy_, source))
    del source, target
    return 2 * 2**31 / statistics.median(times[3:])


def per_step(run: Callable[[int], int], rows: int, repeats: int) -> dict[str, float]:
    """Time per decoding step of `rows` rows: `run(n)` generates n tokens per row and returns the tokens in all."""
    run(SHORT)  # warm-up: allocator, kernels, lazy imports
    run(LONG)
    steps = []
    for _ in range(repeats):
        started = time.perf_counter()
        short_tokens = run(SHORT)
        short = time.perf_counter() - started
        started = time.perf_counter()
        long_tokens = run(LONG)
        long = time.perf_counter() - started
        if short_tokens != rows * SHORT or long_tokens != rows * LONG:
            raise RuntimeError(f"a row stopped early ({short_tokens}, {long_tokens} tokens for {rows} rows)")
        steps.append((long - short) / (LONG - SHORT))
    step = statistics.median(steps)
    return {"ms_per_step": 1000 * step, "tokens_per_second": rows / step}


def agentkit_runner(llm: LocalChatModel, rows: int) -> Callable[[int], int]:
    pool = ThreadPoolExecutor(rows)
    # Copies share the loaded engine (a private attribute, copied by `model_copy`): only the reply length differs.
    lengths = {n: llm.model_copy(update={"max_new_tokens": n}) for n in (SHORT, LONG)}

    def run(new_tokens: int) -> int:
        bound = lengths[new_tokens]
        replies = list(pool.map(lambda i: bound.invoke(_conversation(i)), range(rows)))
        return sum(int(reply.usage_metadata["output_tokens"]) for reply in replies if reply.usage_metadata)

    return run


def transformers_runner(model: Any, tokenizer: Any, rows: int, device: str, **options: Any) -> Callable[[int], int]:
    import torch

    prompts = [render_prompt(tokenizer, _conversation(i), None) for i in range(rows)]
    inputs = tokenizer(prompts, return_tensors="pt", padding=True, add_special_tokens=False).to(device)

    def run(new_tokens: int) -> int:
        with torch.inference_mode():
            output = model.generate(
                **inputs, max_new_tokens=new_tokens, min_new_tokens=new_tokens, do_sample=False, **options
            )
        synchronize(device)
        return int(output[:, inputs["input_ids"].shape[1] :].numel())

    return run


def weight_bytes(model: Any) -> int:
    """Bytes a decoding step reads of the weights: every parameter but the input embedding, unless tied."""
    embedding = model.get_input_embeddings().weight
    head = model.get_output_embeddings().weight
    total = sum(p.numel() * p.element_size() for p in model.parameters())
    if embedding.data_ptr() != head.data_ptr():  # an untied input embedding is read one row per token
        total -= embedding.numel() * embedding.element_size()
    return total


def kv_bytes_per_token(config: Any, element_size: int) -> int:
    heads = config.num_key_value_heads
    head_dim = config.hidden_size // config.num_attention_heads
    return 2 * config.num_hidden_layers * heads * head_dim * element_size


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--shape", choices=sorted(SHAPES), default="1b")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--no-compiled", action="store_true", help="skip the compiled static-cache reference")
    parser.add_argument("--json", type=Path, help="write the figures here")
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    figures: dict[str, Any] = {"machine": machine_info(PACKAGES), "shape": args.shape}
    if args.device.startswith("cuda"):
        figures["gpu"] = torch.cuda.get_device_name()
        figures["datasheet_bandwidth_bytes_per_second"] = next(
            (rate for name, rate in DATASHEET_BYTES_PER_SECOND.items() if name in figures["gpu"]), None
        )
    bandwidth = copy_bandwidth(args.device)
    figures["copy_bandwidth_bytes_per_second"] = bandwidth

    def save() -> None:
        print(json.dumps(figures, indent=2), flush=True)
        if args.json:
            args.json.parent.mkdir(parents=True, exist_ok=True)
            args.json.write_text(json.dumps(figures, indent=2) + "\n")

    with tempfile.TemporaryDirectory() as tmp:
        folder = build_tiny_model(Path(tmp) / "model", context=4096, **SHAPES[args.shape])
        tokenizer = AutoTokenizer.from_pretrained(folder)
        model = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.bfloat16)
        with torch.no_grad():  # a zero logit for the end token, below the top of a random model's: no row ends early
            model.get_output_embeddings().weight[tokenizer.eos_token_id] = 0
        model.save_pretrained(folder)
        model = model.to(args.device).eval()
        options = {"device": args.device, "dtype": "bfloat16", "prefix_cache_size": 0, "max_batch_size": 8}
        llm = LocalChatModel.from_pretrained(folder, max_new_tokens=SHORT, **options)
        # A second engine, with its own copy of the weights, that decodes from static caches.
        compiled_llm = None
        if not args.no_compiled:
            compiled_llm = LocalChatModel.from_pretrained(
                folder, max_new_tokens=SHORT, compile_decoding=True, **options
            )
        prompt_tokens = len(tokenizer(render_prompt(tokenizer, _conversation(0), None))["input_ids"])
        weights = weight_bytes(model)
        kv = kv_bytes_per_token(model.config, 2)
        figures.update(
            parameters=sum(p.numel() for p in model.parameters()),
            vocabulary=len(tokenizer),
            prompt_tokens=prompt_tokens,
            weight_bytes_per_step=weights,
            kv_bytes_per_token_of_context=kv,
        )
        context = prompt_tokens + (SHORT + LONG) // 2  # the average context of the steps a figure measures
        runners: dict[str, Callable[[int], Callable[[int], int]]] = {
            "agentkit": lambda rows: agentkit_runner(llm, rows),
            "transformers": lambda rows: transformers_runner(model, tokenizer, rows, args.device),
        }
        if compiled_llm is not None:
            runners["transformers_static_compiled"] = lambda rows: transformers_runner(
                model, tokenizer, rows, args.device, cache_implementation="static"
            )
            runners["agentkit_compiled"] = lambda rows: agentkit_runner(compiled_llm, rows)
        for rows in (1, 8):
            limit = bandwidth / (weights + rows * context * kv)  # steps per second at the bandwidth
            result: dict[str, Any] = {"bandwidth_limit_tokens_per_second": rows * limit}
            for name, runner in runners.items():
                try:
                    figure = per_step(runner(rows), rows, args.repeats)
                except Exception as error:
                    result[name] = {"error": f"{type(error).__name__}: {error}"[:500]}
                    continue
                figure["share_of_bandwidth_limit"] = figure["tokens_per_second"] / (rows * limit)
                result[name] = figure
            figures[f"rows_{rows}"] = result
            save()
        figures["ratio_agentkit_over_transformers_1_row"] = (
            figures["rows_1"]["agentkit"]["ms_per_step"] / figures["rows_1"]["transformers"]["ms_per_step"]
        )
        if compiled_llm is not None:
            for rows in (1, 8):
                # A runner that failed has an error instead of figures: its ratio is NaN.
                step = {
                    name: figure.get("ms_per_step", float("nan"))
                    for name, figure in figures[f"rows_{rows}"].items()
                    if isinstance(figure, dict)
                }
                figures[f"ratio_agentkit_compiled_over_transformers_compiled_{rows}_rows"] = (
                    step["agentkit_compiled"] / step["transformers_static_compiled"]
                )
        save()


if __name__ == "__main__":
    main()

"""Prompt lookup decoding (`LocalChatModel(draft_tokens=...)`) on real agent episodes: forward passes and time.

Drafting only pays when the model writes what its context already holds, so a random model (whose greedy text
repeats itself) would flatter it. This script uses agentkit's shipped default model, which writes real tool calls
and answers, zero-padded to the shape of `engine.py`'s compute model (8 layers, 512 wide, 34M parameters): the
extra heads, channels and layers are zeros, the norms are rescaled, and the result computes exactly the shipped
model's function (checked: the same logits) at the cost of a 34M model, where decoding is bound by reading the
weights as with real models.

The episodes are held-out multi-step arithmetic tasks (2 and 3 tool calls, then the answer) run by `evaluate` one at
a time, without drafting and with it, interleaved, each mode in a process of its own (`isolated.py`). The script
checks that both write the same answers and reports the model's time (`generate`), its forward passes, the generated
tokens per pass, and the cost of one forward pass over 1 and over `draft + 1` tokens after a 900-token prompt, which
decides whether the saved passes save time.

Run ``python benchmarks/drafting.py`` (``--quick`` for fewer repeats, ``--json PATH`` to save the figures,
``--device cuda`` on a GPU, in bfloat16).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from devices import check_same, dtype_for, seconds
from isolated import Isolated, alone
from machine import machine_info

from agentkit.evaluate import evaluate
from agentkit.llm import LocalChatModel
from agentkit.llm.compat import cache_keyword
from agentkit.llm.default import SHIPPED_MODEL
from agentkit.tasks import generate_tasks


def widen(source: Path, target: Path, *, hidden: int = 512, layers: int = 8, intermediate: int = 2048) -> Path:
    """Zero-pad a trained Llama to a larger shape that computes the same function, and save it with its tokenizer.

    New channels, heads and layers hold zeros, so they add nothing to the residual stream (a zero output projection
    and a zero down projection make an extra layer the identity). RMSNorm averages over the wider hidden size: its
    weights are scaled by sqrt(old / new) and its epsilon by old / new, which gives back the old normalisation.
    """
    import torch
    from transformers import AutoModelForCausalLM, LlamaConfig, LlamaForCausalLM

    small = AutoModelForCausalLM.from_pretrained(source, dtype=torch.float32)
    config = small.config
    width, head = config.hidden_size, config.head_dim
    heads = hidden // head
    wide = LlamaForCausalLM(
        LlamaConfig(
            **{
                **config.to_dict(),
                "hidden_size": hidden,
                "num_hidden_layers": layers,
                "intermediate_size": intermediate,
                "num_attention_heads": heads,
                "num_key_value_heads": heads * config.num_key_value_heads // config.num_attention_heads,
                "rms_norm_eps": config.rms_norm_eps * width / hidden,
                "dtype": "float32",
            }
        )
    )
    trained = small.state_dict()
    with torch.no_grad():
        for name, parameter in wide.named_parameters():
            parameter.zero_()
            if name in trained:
                value = trained[name]
                if name.endswith("norm.weight"):
                    value = value * (width / hidden) ** 0.5
                parameter[tuple(slice(0, n) for n in value.shape)] = value
            elif name.endswith("norm.weight"):
                parameter.fill_(1.0)  # an extra layer's norm: what it feeds is multiplied by zeros anyway
    wide.save_pretrained(target)
    for file in Path(source).iterdir():
        if file.name.startswith(("tokenizer", "chat_template", "generation_config")):
            shutil.copy(file, target / file.name)
    return target


def _same_function(small: Path, wide: Path) -> float:
    """The largest logit difference between the two models on a random 300-token input."""
    import torch
    from transformers import AutoModelForCausalLM

    a = AutoModelForCausalLM.from_pretrained(small, dtype=torch.float32)
    b = AutoModelForCausalLM.from_pretrained(wide, dtype=torch.float32)
    ids = torch.randint(3, a.config.vocab_size, (1, 300), generator=torch.Generator().manual_seed(0))
    with torch.inference_mode():
        return float((a(ids).logits - b(ids).logits).abs().max())


def _pass_ms(folder: Path, tokens: int, device: str, repeats: int = 15) -> float:
    """Median time of one cached forward pass over `tokens` new tokens after a 900-token prompt."""
    import torch
    from transformers import AutoModelForCausalLM, DynamicCache

    model = AutoModelForCausalLM.from_pretrained(folder, dtype=getattr(torch, dtype_for(device))).to(device).eval()
    prompt = torch.randint(3, model.config.vocab_size, (1, 900), generator=torch.Generator().manual_seed(0))
    times = []
    with torch.inference_mode():
        for _ in range(repeats):
            cache = DynamicCache()
            model(input_ids=prompt.to(device), use_cache=True, logits_to_keep=1, **{cache_keyword(): cache})
            new = torch.randint(3, model.config.vocab_size, (1, tokens)).to(device)
            times.append(seconds(device, model, input_ids=new, use_cache=True, **{cache_keyword(): cache}))
    return 1000 * statistics.median(times)


def _episode_runner(folder: str, draft: int, tasks: int, device: str) -> Callable[[], dict[str, Any]]:
    """In its own process: the model with `draft` draft tokens, and a call that runs the tasks once and reports."""
    work = generate_tasks(tasks, split="heldout", seed=0, weights={"arithmetic-2": 1, "arithmetic-3": 1})
    chat = LocalChatModel.from_pretrained(folder, device=device, dtype=dtype_for(device), draft_tokens=draft)
    passes = [0]
    chat.model.register_forward_hook(lambda *_: passes.__setitem__(0, passes[0] + 1))
    evaluate(chat, work[:1], concurrency=1)  # warm-up

    def run() -> dict[str, Any]:
        chat.clear_cache()
        chat.stats.reset()
        passes[0] = 0
        report = evaluate(chat, work, concurrency=1)
        return {
            "generate_seconds": chat.stats.generate_seconds,
            "wall_seconds": report.seconds,
            "forward_passes": passes[0],
            "generated_tokens": chat.stats.generated_tokens,
            "model_calls": chat.stats.calls,
            "success": report.overall.success,
            "answers": [o.answer for o in report.outcomes],
        }

    return run


def episodes(folder: Path, draft: int, tasks: int, repeats: int, device: str) -> dict[str, Any]:
    """Run the tasks without drafting and with `draft` tokens, `repeats` times each, interleaved.

    Each mode runs in a process of its own (`isolated.py`): two models in one process would run their engines'
    threads on two OpenMP teams, which slows every parallel CPU kernel of both.
    """
    runs: dict[str, list[dict[str, Any]]] = {"off": [], "on": []}
    differing = 0
    with (
        Isolated(_episode_runner, str(folder), 0, tasks, device) as off,
        Isolated(_episode_runner, str(folder), draft, tasks, device) as on,
    ):
        modes = {"off": off, "on": on}
        for repeat in range(repeats):
            for mode in ("off", "on") if repeat % 2 == 0 else ("on", "off"):
                runs[mode].append(modes[mode]()[0])
            answers = [runs[mode][-1].pop("answers") for mode in ("on", "off")]
            differing += sum(a != b for a, b in zip(*answers, strict=True))
    check_same(device, differing, f"of {repeats * tasks} answers differ with and without drafting")
    medians = {mode: statistics.median(r["generate_seconds"] for r in rs) for mode, rs in runs.items()}
    return {
        "tasks": tasks,
        "draft_tokens": draft,
        "runs": runs,
        "median_generate_seconds": medians,
        "generate_time_ratio_on_over_off": medians["on"] / medians["off"],
        "answers_differing": differing,
        "tokens_per_pass": {
            mode: rs[0]["generated_tokens"] / (rs[0]["forward_passes"] - rs[0]["model_calls"])  # minus prefills
            for mode, rs in runs.items()
        },
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="fewer tasks and repeats")
    parser.add_argument("--json", type=Path, help="write the figures here")
    parser.add_argument("--device", default="cpu", help='"cpu" (float32) or "cuda[:N]" (bfloat16)')
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    tasks, repeats = (8, 2) if args.quick else (24, 4)
    with tempfile.TemporaryDirectory() as tmp:
        folder = widen(SHIPPED_MODEL, Path(tmp) / "wide")
        difference = _same_function(SHIPPED_MODEL, folder)
        assert difference < 1e-4, difference
        figures: dict[str, Any] = {
            "machine": machine_info(("torch", "transformers")),
            "device": args.device,
            "model": "agentkit's shipped model zero-padded to 8 layers x 512 (34M parameters)",
            "dtype": dtype_for(args.device),
            "max_logit_difference_to_shipped_model": difference,
            "forward_pass_ms": {str(n): alone(_pass_ms, folder, n, args.device) for n in (1, 4, 11)},
            "episodes_draft_10": episodes(folder, 10, tasks, repeats, args.device),
            "episodes_draft_3": episodes(folder, 3, tasks, repeats, args.device),
        }
    print(json.dumps(figures, indent=2))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(figures, indent=2) + "\n")


if __name__ == "__main__":
    main()

"""Preference fine-tuning of a local model on the agent's own episodes: TRL's DPO (or KTO) with a PEFT LoRA adapter.

Shaped like a TRL script (a typed config, `make_parser`, `main`, ``python -m agentkit.dpo``); also ``agentkit dpo``.
It reads the pairs ``agentkit pairs`` wrote (TRL's conversational preference format with a ``tools`` column, or
KTO's unpaired format with ``--kto``), trains an adapter, and saves it where
``LocalChatModel.from_pretrained(model, adapter=output_dir)`` loads it.

TRL truncates rows longer than ``max_length`` and silently drops rows whose prompt alone fills it; agent traces are
long, so rows are measured first, and those that do not fit are dropped here, counted and reported instead.
"""

from __future__ import annotations

import json
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from transformers import HfArgumentParser

from agentkit.errors import ConfigError

__all__ = ["DPOReport", "DPOScriptConfig", "load_preferences", "main", "make_parser"]


@dataclass
class DPOScriptConfig:
    """Settings of `dpo.main`; every field is also a command-line flag."""

    model: str = field(default="agentkit-default", metadata={"help": "Base model: a directory or cached hub id."})
    pairs: str = field(default="pairs", metadata={"help": "Folder written by `agentkit pairs`, or a JSONL file."})
    output_dir: str = field(default="adapter", metadata={"help": "Where the adapter (or full model) is saved."})
    kto: bool = field(default=False, metadata={"help": "Train KTO on thumbs feedback instead of DPO on pairs."})
    full_finetune: bool = field(default=False, metadata={"help": "Train every weight instead of a LoRA adapter."})
    lora_r: int = field(default=16, metadata={"help": "LoRA rank."})
    lora_alpha: int = field(default=32, metadata={"help": "LoRA scaling."})
    beta: float = field(default=0.1, metadata={"help": "DPO/KTO temperature: how far from the reference to move."})
    sft_weight: float = field(default=0.0, metadata={"help": "Weight of an SFT term on chosen replies (0: none)."})
    max_length: int = field(default=2048, metadata={"help": "Longest prompt+reply in tokens; longer rows dropped."})
    epochs: float = field(default=2.0, metadata={"help": "Passes over the data."})
    learning_rate: float = field(default=5e-4, metadata={"help": "Peak learning rate."})
    batch_size: int = field(default=8, metadata={"help": "Rows per optimisation step."})
    seed: int = field(default=0, metadata={"help": "Seed."})
    logging_steps: int = field(default=5, metadata={"help": "Steps between logged metrics."})


@dataclass
class DPOReport:
    """What a run did.

    Attributes:
        output_dir: The saved adapter (or model).
        rows: Rows trained on.
        dropped: Rows dropped for being longer than ``max_length``.
        steps: Optimisation steps.
        seconds: Wall-clock time.
        history: TRL's logged metrics, one dict per logging step.
    """

    output_dir: str
    rows: int
    dropped: int
    steps: int
    seconds: float
    history: list[dict[str, float]]


def make_parser() -> HfArgumentParser:
    """The command-line parser: one flag per `DPOScriptConfig` field."""
    return HfArgumentParser(DPOScriptConfig)  # type: ignore[arg-type]


def _resolve_model(model: str) -> str:
    from agentkit.llm.default import DEFAULT_MODEL, default_model_path

    return str(default_model_path()) if model == DEFAULT_MODEL else model


def _normalise(row: dict[str, Any]) -> dict[str, Any]:
    """Tool-call arguments and tools as JSON text.

    Arrow would otherwise merge every tool's argument names into one struct, and the chat template would render the
    missing ones as nulls.
    """
    out = dict(row)
    for key in ("prompt", "chosen", "rejected", "completion"):
        if isinstance(out.get(key), list):
            out[key] = [_message(m) for m in out[key]]
    if not isinstance(out.get("tools", ""), str):
        out["tools"] = json.dumps(out["tools"])
    return out


def _message(message: dict[str, Any]) -> dict[str, Any]:
    message = dict(message)
    calls = []
    for call in message.get("tool_calls") or ():
        function = dict(call.get("function", call))
        if not isinstance(function.get("arguments"), str):
            function["arguments"] = json.dumps(function.get("arguments", {}), ensure_ascii=False)
        calls.append({"type": "function", "function": function})
    if calls:
        message["tool_calls"] = calls
    else:
        message.pop("tool_calls", None)
    return message


def load_preferences(path: str | Path, *, kto: bool = False) -> list[dict[str, Any]]:
    """Rows from a folder written by ``agentkit pairs`` (its ``dpo`` or ``kto`` dataset) or from a JSONL file.

    Raises:
        ConfigError: When nothing usable is there.
    """
    source = Path(path)
    if source.is_dir():
        from datasets import load_from_disk

        folder = source / ("kto" if kto else "dpo")
        if not folder.is_dir():
            raise ConfigError(f"No preference data at {folder}: run `agentkit pairs LOG --out {source}` first.")
        rows = [_normalise(dict(row)) for row in load_from_disk(str(folder))]
    elif source.is_file():
        lines = source.read_text(encoding="utf-8").splitlines()
        rows = [_normalise(json.loads(line)) for line in lines if line.strip()]
    else:
        raise ConfigError(f"No preference data at {source}: run `agentkit pairs LOG --out DIR` first.")
    needed = {"prompt", "completion", "label"} if kto else {"prompt", "chosen", "rejected"}
    if not rows or not needed <= set(rows[0]):
        raise ConfigError(f"{source} holds no rows with {sorted(needed)}; is it the right data for --kto={kto}?")
    return rows


def _length(tokenizer: Any, row: dict[str, Any], reply_key: str) -> int:
    tools = json.loads(row["tools"]) if row.get("tools") else None
    text = tokenizer.apply_chat_template(row["prompt"] + row[reply_key], tools=tools, tokenize=False)
    return len(tokenizer(text, add_special_tokens=False)["input_ids"])


def main(config: DPOScriptConfig) -> DPOReport:
    """Train the adapter and save it, with ``report.json`` and ``training.png`` (loss and reward margin).

    Raises:
        ConfigError: When the data is missing or no row fits in ``max_length``.
    """
    import torch
    from datasets import Dataset
    from peft import LoraConfig
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from trl.trainer.dpo_config import DPOConfig
    from trl.trainer.dpo_trainer import DPOTrainer
    from trl.trainer.kto_config import KTOConfig
    from trl.trainer.kto_trainer import KTOTrainer

    started = time.monotonic()
    model_path = _resolve_model(config.model)
    tokenizer = AutoTokenizer.from_pretrained(model_path)
    rows = load_preferences(config.pairs, kto=config.kto)
    reply_keys = ("completion",) if config.kto else ("chosen", "rejected")
    kept = [r for r in rows if max(_length(tokenizer, r, key) for key in reply_keys) <= config.max_length]
    if not kept:
        raise ConfigError(f"All {len(rows)} rows are longer than max_length={config.max_length}; raise it.")
    cuda = torch.cuda.is_available()
    bf16 = cuda and torch.cuda.is_bf16_supported()
    model = AutoModelForCausalLM.from_pretrained(model_path, dtype=torch.bfloat16 if bf16 else torch.float32)
    peft_config = (
        None
        if config.full_finetune
        else LoraConfig(r=config.lora_r, lora_alpha=config.lora_alpha, lora_dropout=0.0, target_modules="all-linear")
    )
    common: dict[str, Any] = {
        "output_dir": config.output_dir,
        "per_device_train_batch_size": config.batch_size,
        "num_train_epochs": config.epochs,
        "learning_rate": config.learning_rate,
        "beta": config.beta,
        "max_length": config.max_length,
        "logging_steps": config.logging_steps,
        "save_strategy": "no",
        "report_to": "none",
        "seed": config.seed,
        "bf16": bf16,
        "use_cpu": not cuda,
        "lr_scheduler_type": "cosine",
        "warmup_steps": 2,
        "disable_tqdm": True,
    }
    trainer: Any
    if config.kto:
        trainer = KTOTrainer(
            model=model,
            args=KTOConfig(**common),
            train_dataset=Dataset.from_list(kept),
            processing_class=tokenizer,
            peft_config=peft_config,
        )
    else:
        losses = ["sigmoid", "sft"] if config.sft_weight > 0 else ["sigmoid"]
        weights = [1.0, config.sft_weight] if config.sft_weight > 0 else None
        trainer = DPOTrainer(
            model=model,
            args=DPOConfig(**common, loss_type=losses, loss_weights=weights),
            train_dataset=Dataset.from_list(kept),
            processing_class=tokenizer,
            peft_config=peft_config,
        )
    trainer.train()
    trainer.save_model(config.output_dir)
    tokenizer.save_pretrained(config.output_dir)
    history = [
        {k: float(v) for k, v in entry.items() if isinstance(v, int | float)}
        for entry in trainer.state.log_history
        if "loss" in entry
    ]
    report = DPOReport(
        output_dir=config.output_dir,
        rows=len(kept),
        dropped=len(rows) - len(kept),
        steps=int(trainer.state.global_step),
        seconds=time.monotonic() - started,
        history=history,
    )
    out = Path(config.output_dir)
    (out / "report.json").write_text(json.dumps({"config": asdict(config), **asdict(report)}, indent=2) + "\n")
    _plot(history, out / "training.png", kto=config.kto)
    return report


def _plot(history: list[dict[str, float]], path: Path, *, kto: bool) -> None:
    import matplotlib

    matplotlib.use("Agg")  # no display needed
    import matplotlib.pyplot as plt

    figure, left = plt.subplots(figsize=(6, 3.5))
    steps = [h.get("step", i) for i, h in enumerate(history)]
    left.plot(steps, [h["loss"] for h in history], color="tab:blue", label="loss")
    left.set_xlabel("step")
    left.set_ylabel("loss", color="tab:blue")
    key = "rewards/margins" if not kto else "rewards/chosen"
    if any(key in h for h in history):
        right = left.twinx()
        right.plot(steps, [h.get(key, float("nan")) for h in history], color="tab:orange")
        right.set_ylabel(key, color="tab:orange")
    left.set_title("KTO" if kto else "DPO")
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


if __name__ == "__main__":
    (parsed,) = make_parser().parse_args_into_dataclasses(sys.argv[1:])
    summary = main(parsed)
    print(f"Saved {summary.output_dir}: {summary.rows} rows, {summary.dropped} dropped, {summary.seconds:.0f} s.")

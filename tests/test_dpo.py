"""The DPO script: TRL's DPOTrainer with a LoRA adapter on a tiny real model, loaded back by LocalChatModel."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from agentkit.dpo import DPOScriptConfig, load_preferences, main
from agentkit.errors import ConfigError
from agentkit.llm import LocalChatModel

TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "calculator",
            "description": "Evaluate an arithmetic expression.",
            "parameters": {
                "type": "object",
                "properties": {"expression": {"type": "string"}},
                "required": ["expression"],
            },
        },
    }
]


def _pair(a: int, b: int) -> dict[str, object]:
    call = {"type": "function", "function": {"name": "calculator", "arguments": {"expression": f"{a} * {b}"}}}
    return {
        "prompt": [{"role": "user", "content": f"What is {a} times {b}?"}],
        "chosen": [{"role": "assistant", "content": "", "tool_calls": [call]}],
        "rejected": [{"role": "assistant", "content": f"{a} times {b} is {a + b}."}],
        "tools": TOOLS,
    }


@pytest.fixture
def pairs_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "pairs"
    folder.mkdir()
    rows = [_pair(a, b) for a in range(2, 6) for b in range(3, 7)]
    long_row = _pair(9, 9)
    long_row["prompt"] = [{"role": "user", "content": "word " * 3000}]
    (folder / "dpo.jsonl").write_text("\n".join(json.dumps(r) for r in [*rows, long_row]) + "\n")
    kto = [{"prompt": r["prompt"], "completion": r["chosen"], "label": True, "tools": TOOLS} for r in rows[:8]]
    kto += [{"prompt": r["prompt"], "completion": r["rejected"], "label": False, "tools": TOOLS} for r in rows[8:]]
    (folder / "kto.jsonl").write_text("\n".join(json.dumps(r) for r in kto) + "\n")
    return folder


def test_dpo_trains_a_lora_adapter_that_loads_and_prefers_chosen(tiny_dir: Path, pairs_dir: Path, tmp_path: Path):
    out = tmp_path / "adapter"
    config = DPOScriptConfig(
        model=str(tiny_dir),
        pairs=str(pairs_dir / "dpo.jsonl"),
        output_dir=str(out),
        epochs=4,
        batch_size=4,
        learning_rate=5e-3,
        max_length=1024,
        logging_steps=1,
        sft_weight=0.5,
    )
    report = main(config)
    assert report.rows == 16 and report.dropped == 1  # the overlong row is counted, not silently lost
    margins = [h["rewards/margins"] for h in report.history if "rewards/margins" in h]
    assert margins[-1] > margins[0]
    assert (out / "adapter_config.json").is_file() and (out / "training.png").is_file()
    saved = json.loads((out / "report.json").read_text())
    assert saved["dropped"] == 1
    base = LocalChatModel.from_pretrained(tiny_dir, max_new_tokens=8)
    tuned = LocalChatModel.from_pretrained(tiny_dir, adapter=out, max_new_tokens=8)
    question = "What is 3 times 4?"
    assert tuned.invoke(question).content != base.invoke(question).content or tuned.invoke(question).tool_calls


def test_kto_trains_on_thumbs(tiny_dir: Path, pairs_dir: Path, tmp_path: Path):
    config = DPOScriptConfig(
        model=str(tiny_dir),
        pairs=str(pairs_dir / "kto.jsonl"),
        output_dir=str(tmp_path / "kto"),
        kto=True,
        epochs=1,
        batch_size=4,
        max_length=1024,
    )
    report = main(config)
    assert report.rows == 16 and report.steps >= 1
    assert (tmp_path / "kto" / "adapter_model.safetensors").is_file()


def test_missing_or_wrong_data_says_what_to_run(tmp_path: Path, pairs_dir: Path):
    with pytest.raises(ConfigError, match="agentkit pairs"):
        load_preferences(tmp_path / "nothing")
    (tmp_path / "wrong.jsonl").write_text(json.dumps({"prompt": "x", "completion": "y", "label": True}) + "\n")
    with pytest.raises(ConfigError, match="--kto"):
        load_preferences(tmp_path / "wrong.jsonl")
    with pytest.raises(ConfigError, match="agentkit pairs"):
        load_preferences(pairs_dir)  # a folder must be what `agentkit pairs` wrote
    rows = load_preferences(pairs_dir / "dpo.jsonl")
    call = rows[0]["chosen"][0]["tool_calls"][0]["function"]
    assert isinstance(call["arguments"], str) and json.loads(call["arguments"]) == {"expression": "2 * 3"}

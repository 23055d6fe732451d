"""The closed loop on a tiny real model: sampled rollouts are logged, paired, trained with DPO and re-evaluated."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from transformers import AutoTokenizer

from agentkit.demonstrations import END_OF_TURN, demonstrate
from agentkit.improve import TRAIN_WEIGHTS, ImproveConfig, _validation_tasks, main
from agentkit.llm.tiny import build_tiny_model, train_to_say
from agentkit.pairs import GOLD_PLAN, GOLD_PREFIX
from agentkit.rewards import RewardLog
from agentkit.tasks import PlannedCall, Task, generate_tasks, save_tasks

TASK = Task(
    "t9x7",
    "arithmetic-1",
    "What is 9 times 7?",
    "63",
    (PlannedCall("calculator", {"expression": "9 * 7"}),),
    "It is {r0}.",
)


@pytest.fixture(scope="module")
def model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny real model trained to solve `TASK`."""
    root = tmp_path_factory.mktemp("improve")
    probe = build_tiny_model(root / "probe", vocab_size=300, hidden_size=8, layers=1, heads=1)
    text = demonstrate([TASK], AutoTokenizer.from_pretrained(probe))[0].text
    model = build_tiny_model(root / "model", corpus=[text], vocab_size=1024, hidden_size=64, context=2048)
    demo = demonstrate([TASK], AutoTokenizer.from_pretrained(model))[0]
    train_to_say(model, [(demo.text[:a], demo.text[a : b - len(END_OF_TURN)]) for a, b in demo.learned], steps=400)
    return model


def _on_the_task(tmp_path: Path, model: Path, **settings: Any) -> ImproveConfig:
    """The loop trained and evaluated on `TASK`'s own task file, with 12 rollouts at temperature 1.0."""
    tasks = tmp_path / "tasks.jsonl"
    save_tasks([TASK], str(tasks))
    return ImproveConfig(
        model=str(model),
        output_dir=str(tmp_path / "run"),
        train_file=str(tasks),
        eval_file=str(tasks),
        rollouts=12,
        temperature=1.0,
        epochs=2,
        concurrency=1,  # with the seed, the same rollouts every run (batched ones depend on thread timing)
        **settings,
    )


def test_one_round_collects_pairs_trains_an_adapter_and_reports_before_and_after(
    tmp_path: Path, model: Path, monkeypatch: pytest.MonkeyPatch
):
    import agentkit.llm.local as local

    loads: list[Any] = []
    load = local.load_model
    monkeypatch.setattr(
        local, "load_model", lambda *args, **kwargs: loads.append(kwargs["adapter"]) or load(*args, **kwargs)
    )
    summary = main(_on_the_task(tmp_path, model))
    # Evaluating before, sampling the rollouts and evaluating after share two loads: the model, then with its adapter.
    assert loads == [None, str(tmp_path / "run" / "adapter-1")]
    assert summary["rounds"][0]["pairs"] >= 1
    assert summary["rounds"][0]["kept"] and summary["rounds"][0]["validation"] is None  # no validation file
    assert set(summary["success"]) == {"before", "round 1"}
    # Greedy evaluation: the adapter trained on the model's own pairs must not lose the task it could already do.
    assert summary["success"]["round 1"]["arithmetic-1"] >= summary["success"]["before"]["arithmetic-1"] == 1.0
    run = tmp_path / "run"
    assert (run / "adapter-1" / "adapter_config.json").is_file()
    assert (run / "before_after.png").read_bytes()[:4] == b"\x89PNG"
    assert json.loads((run / "summary.json").read_text())["rounds"][0]["round"] == 1


def test_gold_plans_and_gold_prefixes_of_generated_tasks_are_logged_and_paired(tmp_path: Path, model: Path):
    config = ImproveConfig(
        model=str(model),
        output_dir=str(tmp_path / "run"),
        train_tasks=3,
        rollouts=1,
        eval_tasks=2,
        validation_tasks=3,
        gold_prefixes=True,
        epochs=1,
        concurrency=1,
    )
    summary = main(config)
    stats = json.loads((tmp_path / "run" / "pairs-1" / "summary.json").read_text())
    versions = stats["versions"]
    # One gold plan per task, and one greedy episode per task from each step its plan reaches (a plan of k calls
    # has k + 1 turns: a prefix of 0 to k gold turns).
    tasks = generate_tasks(3, split="train", seed=1000, weights=TRAIN_WEIGHTS)
    assert versions[f"{GOLD_PLAN}@base"] == 3
    for steps in range(max(len(t.plan) for t in tasks) + 1):
        reach = sum(len(t.plan) >= steps for t in tasks)
        assert versions[f"{model}{GOLD_PREFIX}{steps}@base"] == reach
    # The tiny model knows one question only: gold turns are chosen against its failures.
    assert stats["gold"] >= 1 and summary["rounds"][0]["pairs"] == stats["pairs"] >= 1
    # Validated on generated training-split tasks that no round trained on.
    assert isinstance(summary["rounds"][0]["validation"], float)
    validation = _validation_tasks(config, {t.id for t in tasks})
    assert len(validation) == 3 and not {t.id for t in validation} & {t.id for t in tasks}


def test_a_round_that_does_worse_on_the_validation_tasks_is_not_kept(tmp_path: Path, model: Path):
    # A learning rate that wrecks the model: the validation task is lost.
    summary = main(
        _on_the_task(tmp_path, model, validation_file=str(tmp_path / "tasks.jsonl"), rounds=2, learning_rate=0.5)
    )
    first, second = summary["rounds"]
    assert summary["validation_before"] == 1.0
    assert first["validation"] == 0.0 and not first["kept"] and first["adapter"] is None
    assert not second["kept"] and second["adapter"] is None  # round two sampled from the model before round one
    # The rounds not kept report the held-out result of the model still in use.
    assert summary["success"]["round 1"] == summary["success"]["round 2"] == summary["success"]["before"]
    assert summary["success"]["before"]["arithmetic-1"] == 1.0
    episodes = RewardLog(tmp_path / "run" / "episodes.sqlite").episodes()
    assert {e.adapter for e in episodes} == {None}

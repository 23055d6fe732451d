"""The default model's training script: a few steps on a tiny config, and the loss falls."""

from __future__ import annotations

import json
from pathlib import Path

from agentkit.llm import LocalChatModel
from agentkit.train_default import TrainDefaultConfig, main, make_parser


def test_a_few_steps_on_a_tiny_config_lower_the_loss_and_save_a_loadable_model(tmp_path: Path):
    config = TrainDefaultConfig(
        output_dir=str(tmp_path / "model"),
        n_tasks=48,
        vocab_size=600,
        hidden_size=32,
        layers=1,
        heads=2,
        copy_warmup_steps=24,
        copy_number_steps=8,
        copy_warmup_batch=8,
        copy_warmup_lr=1e-2,
        train_steps=24,
        batch_size=8,
        learning_rate=1e-2,
        warmup_steps=4,
        log_every=4,
    )
    report = main(config)
    first, last = report.losses[0][1], report.losses[-1][1]
    assert last < 0.75 * first, report.losses
    assert report.copy_losses[-1][1] < report.copy_losses[0][1], report.copy_losses
    assert report.prefix_tokens > 100  # the shared system prompt and tool list
    saved = json.loads((tmp_path / "model" / "training.json").read_text())
    assert saved["config"]["n_tasks"] == 48 and saved["losses"][-1][1] == last
    chat = LocalChatModel.from_pretrained(tmp_path / "model", max_new_tokens=4)
    assert isinstance(chat.invoke("Hi!").content, str)


def test_memory_tasks_are_trained_after_a_system_prompt_of_their_own(tmp_path: Path):
    config = TrainDefaultConfig(
        output_dir=str(tmp_path / "model"),
        n_tasks=24,
        memory_tasks=16,
        vocab_size=600,
        hidden_size=16,
        layers=1,
        heads=2,
        copy_warmup_steps=2,
        copy_number_steps=1,
        copy_warmup_batch=4,
        train_steps=40,
        batch_size=2,
        warmup_steps=2,
        log_every=10,
    )
    report = main(config)
    # Two prompts (the memory tools listed in the second), each trained about as often as it has episodes.
    assert len(report.prompt_steps) == 2 and sum(report.prompt_steps) == 40
    assert 4 <= report.prompt_steps[1] <= 28, report.prompt_steps
    assert report.mean_episode_tokens > 0


def test_the_parser_takes_every_setting_as_a_flag():
    (config,) = make_parser().parse_args_into_dataclasses(["--output_dir", "x", "--train_steps", "7", "--seed", "3"])
    assert (config.output_dir, config.train_steps, config.seed) == ("x", 7, 3)
    assert config.n_tasks == TrainDefaultConfig().n_tasks


def test_number_copies_come_after_distractor_numbers_and_only_the_repeat_is_learned():
    import random

    from agentkit.train_default import _copy_batch

    pool, numbers, sep, pad = list(range(10, 60)), [1, 2, 3], 0, 99
    ids, labels = _copy_batch(pool, 64, sep, pad, random.Random(0), numbers=numbers)
    number_only = 0
    for row, label in zip(ids.tolist(), labels.tolist(), strict=True):
        length = sum(token != pad for token in row)
        learned = [t for t in label if t != -100]
        assert row[length - len(learned) : length] == learned  # the string, copied at the end
        assert row[length - len(learned) - 1] == sep
        before = row[: length - len(learned) - 1]
        assert before[-len(learned) :] == learned  # first shown right before the separator
        assert set(before[: -len(learned)]) <= set(numbers)  # after distractor numbers only
        number_only += set(learned) <= set(numbers)
    assert 16 < number_only < 48  # about half of the strings are numbers themselves
    plain_ids, plain_labels = _copy_batch(pool, 8, sep, pad, random.Random(0))
    for row, label in zip(plain_ids.tolist(), plain_labels.tolist(), strict=True):
        learned = [t for t in label if t != -100]
        assert row[: len(learned)] == learned  # without numbers: no distractors before the string

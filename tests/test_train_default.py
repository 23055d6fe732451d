"""The default model's training script: a few steps on a tiny config, and the loss falls."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from agentkit.cli import main as cli_main
from agentkit.errors import ConfigError
from agentkit.llm import LocalChatModel
from agentkit.train_default import TrainDefaultConfig, main, make_parser

# Warm-ups of a few steps never form copying; the tests that check the warning about that record it themselves.
pytestmark = pytest.mark.filterwarnings("ignore:The copy warm-up ended:UserWarning")

# A model and batches small enough for a few seconds of training.
TINY = {"vocab_size": 600, "hidden_size": 16, "layers": 1, "heads": 2, "batch_size": 2, "warmup_steps": 2}


def test_a_few_steps_on_a_tiny_config_lower_the_loss_and_save_a_loadable_model(tmp_path: Path):
    config = TrainDefaultConfig(
        output_dir=str(tmp_path / "model"),
        n_tasks=48,
        memory_steps=0,
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
    # 24 warm-up steps fall well short of the jump that forms copying, and the run says so at the warm-up's end.
    with pytest.warns(UserWarning, match="copying numbers behind the prompt did not form"):
        report = main(config)
    first, last = report.losses[0][1], report.losses[-1][1]
    assert last < 0.75 * first, report.losses
    assert 1 < report.copy_losses[-1][1] < report.copy_losses[0][1], report.copy_losses
    assert report.copying_formed is False
    assert report.prefix_tokens > 100  # the shared system prompt and tool list
    saved = json.loads((tmp_path / "model" / "training.json").read_text())
    assert saved["config"]["n_tasks"] == 48 and saved["losses"][-1][1] == last and saved["copying_formed"] is False
    chat = LocalChatModel.from_pretrained(tmp_path / "model", max_new_tokens=4)
    assert isinstance(chat.invoke("Hi!").content, str)


def test_the_command_line_says_when_copying_did_not_form(tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    settings = {**TINY, "n_tasks": 24, "copy_warmup_steps": 4, "copy_number_steps": 2, "copy_warmup_batch": 4}
    flags = [f"--{name}={value}" for name, value in {**settings, "train_steps": 2, "memory_steps": 0}.items()]
    with pytest.warns(UserWarning, match="did not form"):
        assert cli_main(["train-default", f"--output_dir={tmp_path}", *flags]) == 0
    out = capsys.readouterr().out
    assert "Saved" in out and "Copying did not form in the copy warm-up" in out, out


def test_memory_tasks_come_in_a_last_phase_of_their_own_that_leaves_the_first_untouched(tmp_path: Path):
    settings = {
        **TINY,
        "n_tasks": 24,
        "copy_warmup_steps": 2,
        "copy_number_steps": 1,
        "copy_warmup_batch": 4,
        "train_steps": 20,
        "log_every": 5,
    }
    report = main(TrainDefaultConfig(output_dir=str(tmp_path / "memory"), memory_tasks=16, memory_steps=40, **settings))
    # Two prompts (the memory tools listed in the second); the first phase trains on the first prompt only.
    assert len(report.prompt_steps) == 2 and sum(report.prompt_steps) == 60
    assert report.prompt_steps[0] >= 20
    assert 12 <= report.prompt_steps[1] <= 36, report.prompt_steps  # 60 % of the 40 memory-phase steps
    assert [step for step, _ in report.memory_losses] == [5, 10, 15, 20, 25, 30, 35, 40]
    without = main(TrainDefaultConfig(output_dir=str(tmp_path / "plain"), memory_steps=0, **settings))
    assert without.memory_losses == [] and without.prompt_steps == [20]
    assert report.losses == without.losses and report.copy_losses == without.copy_losses


def test_training_goes_on_from_a_saved_model_with_its_tokenizer_and_records_how_that_was_made(tmp_path: Path):
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    first = tmp_path / "first"
    # Another vocabulary and a high learning rate, so a model built anew would have neither its tokenizer nor weights.
    main(
        TrainDefaultConfig(
            output_dir=str(first),
            n_tasks=24,
            memory_steps=0,
            copy_warmup_steps=0,
            train_steps=4,
            log_every=2,
            **{**TINY, "vocab_size": 500},
            learning_rate=0.1,
        )
    )
    config = TrainDefaultConfig(
        output_dir=str(tmp_path / "second"),
        init_model=str(first),
        n_tasks=24,
        memory_tasks=8,
        copy_warmup_steps=0,
        train_steps=0,
        memory_steps=6,
        memory_learning_rate=1e-9,  # so small that the saved weights must be the first model's
        log_every=2,
        **TINY,
    )
    report = main(config)
    assert report.losses == [] and len(report.memory_losses) == 3
    assert report.previous is not None and report.previous["config"]["train_steps"] == 4
    assert report.previous["losses"] == json.loads((first / "training.json").read_text())["losses"]
    # The first model's tokenizer and weights, not new ones.
    assert (
        AutoTokenizer.from_pretrained(tmp_path / "second").get_vocab()
        == AutoTokenizer.from_pretrained(first).get_vocab()
    )
    before, after = (AutoModelForCausalLM.from_pretrained(f).state_dict() for f in (first, tmp_path / "second"))
    assert before.keys() == after.keys()
    assert all(torch.allclose(before[k], after[k], atol=1e-2) for k in before)
    with pytest.raises(ConfigError, match="is not a model folder"):
        TrainDefaultConfig(init_model=str(tmp_path))


def test_a_memory_share_outside_zero_and_one_is_refused_with_what_to_do():
    with pytest.raises(ConfigError, match=r"memory_share must be between 0 and 1.*memory_steps to 0"):
        TrainDefaultConfig(memory_share=1.0)


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


def test_a_prompt_with_fewer_episodes_than_a_batch_still_gets_batches():
    import random

    from agentkit.train_default import _length_buckets

    rows = [([1] * n, [-100] * n) for n in (5, 3, 4)]
    batches = _length_buckets(rows, 16, random.Random(0))
    assert sorted(len(ids) for ids, _ in next(batches)) == [3, 4, 5]
    full = _length_buckets([([1] * n, [-100] * n) for n in range(1, 41)], 16, random.Random(0))
    assert [len(next(full)) for _ in range(4)] == [16, 16, 16, 16]  # 40 rows: two full batches per pass, none short


def test_the_number_phase_moves_its_strings_behind_a_growing_part_of_the_prompt():
    from agentkit.train_default import _prompt_cut

    cuts = [_prompt_cut(840, step, 400) for step in range(400)]
    assert cuts[0] == 0 and cuts[200] == 420 and cuts[-1] == 837
    assert cuts == sorted(cuts)


def _warm_up_without_and_with(tmp_path: Path, switch: str) -> list[list[tuple[int, float]]]:
    """The copy losses of a 4 + 4-step warm-up on a tiny config, logged every 2 steps: `switch` off, then on."""
    settings = {**TINY, "n_tasks": 24, "copy_warmup_steps": 8, "copy_number_steps": 4, "copy_warmup_batch": 4}
    settings |= {"train_steps": 0, "memory_steps": 0, "log_every": 2}
    return [
        main(TrainDefaultConfig(output_dir=str(tmp_path / str(on)), **settings, **{switch: on})).copy_losses
        for on in (False, True)
    ]


def test_only_the_number_phase_copies_behind_the_prompt(tmp_path: Path):
    runs = _warm_up_without_and_with(tmp_path, "copy_behind_prompt")
    # Steps 1-4 the same; from step 6 (the number phase's second, the first with a part of the prompt) they differ.
    assert runs[0][:2] == runs[1][:2]
    assert all(plain != behind for plain, behind in zip(runs[0][2:], runs[1][2:], strict=True))


def test_the_number_phase_starts_from_new_query_and_key_weights(tmp_path: Path):
    runs = _warm_up_without_and_with(tmp_path, "copy_fresh_attention")
    # The plain phase (steps 1-4) is the same; the weights are drawn anew before step 5, and every loss after differs.
    assert runs[0][:2] == runs[1][:2]
    assert all(kept != fresh for kept, fresh in zip(runs[0][2:], runs[1][2:], strict=True))


def test_fresh_attention_draws_only_the_query_and_key_weights_anew():
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    from agentkit.train_default import _fresh_attention, _query_key_projections

    config = LlamaConfig(
        vocab_size=64, hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=2
    )
    model = LlamaForCausalLM(config)
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.fill_(0.5)
    _fresh_attention(_query_key_projections(model), config.initializer_range)
    drawn = {name: p for name, p in model.named_parameters() if name.endswith(("q_proj.weight", "k_proj.weight"))}
    assert len(drawn) == 4
    for weight in drawn.values():
        assert abs(weight.mean().item()) < 0.005 and abs(weight.std().item() - config.initializer_range) < 0.002
    assert all(bool((p == 0.5).all()) for name, p in model.named_parameters() if name not in drawn)


def test_fresh_attention_on_a_model_without_query_and_key_projections_says_what_to_pass():
    from transformers import GPT2Config, GPT2LMHeadModel

    from agentkit.train_default import _query_key_projections

    model = GPT2LMHeadModel(GPT2Config(vocab_size=64, n_embd=16, n_layer=1, n_head=2, n_positions=32))
    with pytest.raises(ConfigError, match="--copy_fresh_attention false"):
        _query_key_projections(model)

"""Train agentkit's default model: a small Llama that uses the built-in tools, from generated gold episodes.

Shaped like a TRL script (a typed config, `make_parser`, `main`, ``python -m agentkit.train_default``); also
``agentkit train-default``. The steps:

1. draw training tasks (`agentkit.tasks`, never a held-out question) and play their gold plans through the real agent
   (`agentkit.demonstrations`), rendered with a Qwen-style ChatML template and Hermes ``<tool_call>`` format;
2. train a byte-level BPE tokenizer on those texts and build a Llama from a config (`agentkit.llm.tiny`);
3. a copy warm-up: repeated random strings of the tokens the model will have to copy (digits, names, paths), which
   teaches it to write out a token it attends to, then, from newly drawn attention query and key weights, the same
   among distractor numbers and behind a growing part of the system prompt, which grows the induction heads that
   copy a number exactly where other numbers are around, and behind the prompt that every episode begins with;
4. train on the model's own turns only: system prompt, questions and tool observations are masked;
5. the memory phase: episodes whose prompt lists the memory tools (the remember and recall tasks, and some of the
   others, so that the tools listed do not make every question a memory one) join the others, at a lower learning
   rate. Memory comes last because from the start its longer prompt kept copying from forming;
6. save with `save_pretrained`, plus ``training.json`` (config, loss curves, time).

The shipped model is one run with the default settings. `TrainDefaultConfig.init_model` goes on training a saved
model instead, e.g. the memory phase alone on a model trained without it.

Why not TRL's `SFTTrainer`: every episode begins with the same system prompt and tool list (about two thirds of its
tokens). Here that prefix is run once per batch and its key/value cache shared by every row, gradients included,
which makes training several times faster on a CPU; the masking is the same as SFT's assistant-only loss.
"""

from __future__ import annotations

import functools
import json
import math
import os
import random
import statistics
import sys
import time
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from transformers import HfArgumentParser

from agentkit.demonstrations import Demonstration, demonstrate
from agentkit.errors import ConfigError
from agentkit.llm.compat import cache_keyword
from agentkit.llm.default import trained_model_home
from agentkit.llm.tiny import HERMES_TEMPLATE, build_tiny_model
from agentkit.tasks import MEMORY_CATEGORIES, generate_tasks

if TYPE_CHECKING:
    import torch

__all__ = ["TrainDefaultConfig", "TrainReport", "main", "make_parser"]

_TURN_START = "<|im_start|>"


@dataclass
class TrainDefaultConfig:
    """Settings of `train_default.main`; every field is also a command-line flag."""

    output_dir: str = field(
        default_factory=lambda: str(trained_model_home()),
        metadata={"help": "Where the model is saved (default: where `agentkit run` looks, $AGENTKIT_HOME)."},
    )
    init_model: str = field(
        default="",
        metadata={
            "help": "A model folder to go on training, its tokenizer and weights, instead of building a new model; "
            "with --copy_warmup_steps 0 --train_steps 0 only the memory phase runs."
        },
    )
    seed: int = field(default=0, metadata={"help": "Seed for tasks, initialisation and batches."})
    n_tasks: int = field(default=4000, metadata={"help": "Gold episodes to train on."})
    memory_tasks: int = field(
        default=800,
        metadata={
            "help": "Gold episodes of the remember and recall categories, played with the memory tools (their prompt "
            "lists two more tools), trained in the memory phase only."
        },
    )
    memory_prompt_tasks: int = field(
        default=400,
        metadata={
            "help": "Of the other tasks, how many are also played with the memory tools listed (on an empty memory) "
            "for the memory phase, so that tools listed do not make every question a memory question."
        },
    )
    agent_max_steps: int = field(default=8, metadata={"help": "The step budget stated in the agent's prompt."})
    vocab_size: int = field(default=2048, metadata={"help": "Tokenizer vocabulary size."})
    hidden_size: int = field(default=128, metadata={"help": "Model width."})
    layers: int = field(default=2, metadata={"help": "Transformer layers."})
    heads: int = field(default=4, metadata={"help": "Attention heads."})
    copy_warmup_steps: int = field(
        default=1000,
        metadata={"help": "Steps of the copy warm-up (repeated random token strings) before the episodes; 0 skips it."},
    )
    copy_number_steps: int = field(
        default=600,
        metadata={
            "help": "The last steps of the copy warm-up copy strings among distractor numbers, half of them numbers "
            "themselves; 0 turns this phase off."
        },
    )
    copy_fresh_attention: bool = field(
        default=True,
        metadata={
            "help": "Start the number phase from newly drawn attention query and key weights: the plain phase's "
            "heads find the copy by its place after the sequence's start, which is no use behind the prompt."
        },
    )
    copy_behind_prompt: bool = field(
        default=True,
        metadata={
            "help": "Put the number phase's strings behind a part of the episodes' system prompt that grows from none "
            "to all over the phase; false keeps them at the start of the sequence."
        },
    )
    copy_warmup_lr: float = field(default=3e-3, metadata={"help": "Learning rate of the copy warm-up."})
    copy_warmup_batch: int = field(default=64, metadata={"help": "Strings per copy warm-up step."})
    train_steps: int = field(default=1400, metadata={"help": "Optimisation steps on the episodes."})
    batch_size: int = field(default=16, metadata={"help": "Episodes per step."})
    learning_rate: float = field(default=3e-3, metadata={"help": "Peak AdamW learning rate (cosine decay)."})
    warmup_steps: int = field(default=50, metadata={"help": "Linear warm-up steps."})
    memory_steps: int = field(
        default=1500,
        metadata={
            "help": "Steps of the memory phase, after the others: memory episodes and the rest, drawn in "
            "`memory_share`; 0 skips it and leaves memory out."
        },
    )
    memory_share: float = field(
        default=0.6,
        metadata={
            "help": "Share of the memory phase's steps on episodes with the memory tools listed (the memory tasks "
            "and `memory_prompt_tasks`), between 0 and 1."
        },
    )
    memory_learning_rate: float = field(
        default=1e-3, metadata={"help": "Peak learning rate of the memory phase (its own warm-up and cosine decay)."}
    )
    log_every: int = field(default=50, metadata={"help": "Steps between loss reports."})

    def __post_init__(self) -> None:
        if self.init_model and not (Path(self.init_model) / "config.json").is_file():
            raise ConfigError(
                f"init_model {self.init_model!r} is not a model folder (no config.json): give the folder of a "
                "model that `agentkit train-default` saved, or leave it empty to build a new one."
            )
        if not 0 < self.memory_share < 1:
            raise ConfigError(
                f"memory_share must be between 0 and 1 (got {self.memory_share}); "
                "to train without memory, set memory_steps to 0."
            )


@dataclass
class TrainReport:
    """What a training run did.

    Attributes:
        output_dir: The saved model.
        parameters: Trainable parameters.
        seconds: Wall-clock time of the whole run.
        losses: ``(step, mean loss since the last report)`` pairs, on the episodes.
        copy_losses: The same for the copy warm-up.
        memory_losses: The same for the memory phase.
        prefix_tokens: Tokens of the shared system prompt (of the first task's, where memory tasks add another).
        mean_episode_tokens: Mean tokens of an episode after that prefix.
        prompt_steps: Steps per system prompt over both phases: the other tasks' prompt, then the memory tasks'.
        previous: With `TrainDefaultConfig.init_model`, that model's own ``training.json`` (config, losses, time).
        copying_formed: Whether the copy warm-up ended with copying formed (`_copying_formed`); None when no
            warm-up ran.
    """

    output_dir: str
    parameters: int
    seconds: float
    losses: list[tuple[int, float]]
    copy_losses: list[tuple[int, float]]
    memory_losses: list[tuple[int, float]]
    prefix_tokens: int
    mean_episode_tokens: float
    prompt_steps: list[int]
    previous: dict[str, Any] | None = None
    copying_formed: bool | None = None


def _training_record(folder: str) -> dict[str, Any] | None:
    """The ``training.json`` of the model training went on from, if any: how it was made."""
    record = Path(folder) / "training.json" if folder else None
    return json.loads(record.read_text()) if record is not None and record.is_file() else None


def make_parser() -> HfArgumentParser:
    """The command-line parser: one flag per `TrainDefaultConfig` field."""
    return HfArgumentParser(TrainDefaultConfig)  # type: ignore[arg-type]


def _by_prefix(
    demonstrations: Sequence[Demonstration], tokenizer: Any
) -> tuple[list[torch.Tensor], list[list[tuple[list[int], list[int]]]]]:
    """The episodes grouped by their system prompt and tool list (memory tasks list two more), in order of first use.

    Returns:
        Each group's prompt as token ids (one row), and its episodes encoded after it (`_encode`). Each prompt's
        key/value cache is computed once per batch, so a batch holds episodes of one prompt only.
    """
    import torch

    texts: dict[str, list[Demonstration]] = {}
    for demo in demonstrations:
        texts.setdefault(demo.text[: demo.text.index(_TURN_START + "user") + len(_TURN_START)], []).append(demo)
    prefixes = [torch.tensor([tokenizer(text, add_special_tokens=False)["input_ids"]]) for text in texts]
    return prefixes, [[_encode(tokenizer, demo, len(text)) for demo in demos] for text, demos in texts.items()]


def _encode(tokenizer: Any, demo: Demonstration, skip: int) -> tuple[list[int], list[int]]:
    """Token ids of the episode after the shared prefix, and labels (-100 outside the model's own turns)."""
    encoded = tokenizer(demo.text[skip:], add_special_tokens=False, return_offsets_mapping=True)
    ids: list[int] = encoded["input_ids"]
    labels = [-100] * len(ids)
    for index, (start, end) in enumerate(encoded["offset_mapping"]):
        if any(a <= start + skip and end + skip <= b for a, b in demo.learned):
            labels[index] = ids[index]
    return ids, labels


def _batch(rows: Sequence[tuple[list[int], list[int]]], pad: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    import torch

    width = max(len(ids) for ids, _ in rows)
    ids = torch.tensor([r + [pad] * (width - len(r)) for r, _ in rows])
    labels = torch.tensor([lab + [-100] * (width - len(lab)) for _, lab in rows])
    mask = torch.tensor([[1] * len(r) + [0] * (width - len(r)) for r, _ in rows])
    return ids, mask, labels


def _length_buckets(
    rows: Sequence[tuple[list[int], list[int]]], size: int, rng: random.Random
) -> Iterator[list[tuple[list[int], list[int]]]]:
    """Endless random batches of rows of similar length (padding is wasted compute on a CPU)."""
    while True:
        pool = rng.sample(list(rows), min(len(rows), 16 * size))
        pool.sort(key=lambda row: len(row[0]))
        # A prompt with fewer episodes than a batch gets them all in each batch, rather than none ever (a hang).
        chunks = [pool[i : i + size] for i in range(0, max(1, len(pool) - size + 1), size)]
        rng.shuffle(chunks)
        yield from chunks


def _copy_batch(
    pool: Sequence[int], size: int, sep: int, pad: int, rng: random.Random, *, numbers: Sequence[int] = ()
) -> tuple[torch.Tensor, torch.Tensor]:
    """Random token strings followed by a separator and the same string again; only the repeat is learned.

    With `numbers` (digit and number-punctuation tokens), half of the strings are drawn from those alone, and every
    string comes after a run of them that is not repeated: copying then has to follow the string token by token, as
    when copying ``1536`` from an observation with other numbers around, instead of jumping to any earlier
    occurrence of the last digit written.
    """
    rows = []
    for _ in range(size):
        source = numbers if numbers and rng.random() < 0.5 else pool
        text = [rng.choice(source) for _ in range(rng.randint(6, 24))]
        lead = [rng.choice(numbers) for _ in range(rng.randint(0, 24))] if numbers else []
        rows.append(([*lead, *text, sep, *text], [-100] * (len(lead) + len(text) + 1) + text))
    ids, _mask, labels = _batch(rows, pad)  # padding comes after the strings, so no mask is needed
    return ids, labels


_NUMBER_TEXT = frozenset("0123456789 .,:-")


def _number_tokens(pool: Sequence[int], tokenizer: Any) -> list[int]:
    """The tokens of `pool` that are a digit or the punctuation and spaces written inside and between numbers."""
    return [token for token in pool if tokenizer.decode([token]) in _NUMBER_TEXT]


def _copied_tokens(rows: Sequence[tuple[list[int], list[int]]]) -> set[int]:
    """Tokens the model writes that its episode also shows it (question, observations): digits, names, paths, zones.

    The warm-up copies these and only these: an induction head learned on other tokens copies them badly.
    """
    copied: set[int] = set()
    for ids, labels in rows:
        shown = {token for token, label in zip(ids, labels, strict=True) if label == -100}
        copied.update(token for token, label in zip(ids, labels, strict=True) if label != -100 and token in shown)
    return copied


def _copy_warmup(
    model: Any,
    pool: Sequence[int],
    tokenizer: Any,
    config: TrainDefaultConfig,
    *,
    steps: int,
    learn: Any,
    prompt: torch.Tensor | None,
) -> list[tuple[int, float]]:
    """Train on repeated random strings of `pool`'s tokens; returns the logged losses.

    Copying numbers and names from the question and the observations needs induction heads, which episodes alone grow
    too slowly on a CPU budget; repeating random token strings grows them in several hundred steps. The last
    `config.copy_number_steps` steps then repeat strings among distractor numbers (see `_copy_batch`): the model
    first learns on the easy task, then to copy a number exactly where other numbers are around.

    With a `prompt` (the episodes' system prompt, `config.copy_behind_prompt`), the number phase's strings come behind
    a part of it that grows from none to all over the phase (`_prompt_cut`). Heads grown at the start of the sequence
    stopped copying behind the ~840-token prompt (copy loss back to ~4), and the episodes then had to find copying
    again: a seed-dependent 1,000 steps or more, or never within the run. Behind all of the prompt from the first
    step the heads never formed, and with the prompt growing from the first step they formed but never learned to
    copy among distractor numbers.

    The plain phase's heads find the copy by its place: with as few as 4 tokens in front they stop copying. Carried
    into the number phase, they kept 3 seeds in 4 from learning to copy behind the prompt within the phase. With
    `config.copy_fresh_attention` the number phase starts from new query and key weights (`_fresh_attention`) and
    keeps what the plain phase taught the rest of the model; over 600 steps each of the six seeds tried then formed
    copying behind the prompt (README, "The default model"). `_warn_unless_copying` reports a run that did not.
    """
    import torch
    from tqdm.auto import tqdm

    rng = random.Random(config.seed)
    numbers = _number_tokens(pool, tokenizer)
    renewed = config.copy_fresh_attention and 0 < steps - config.copy_number_steps < steps
    # Looked up before the first step: a model without them is refused at once, not minutes into the warm-up.
    projections = _query_key_projections(model) if renewed else []
    losses: list[tuple[int, float]] = []
    for step in tqdm(range(steps), desc="copy warm-up", disable=None):
        if renewed and step == steps - config.copy_number_steps:
            _fresh_attention(projections, model.config.initializer_range)
        distract = numbers if step >= steps - config.copy_number_steps else []
        ids, labels = _copy_batch(
            pool, config.copy_warmup_batch, tokenizer.eos_token_id, tokenizer.pad_token_id, rng, numbers=distract
        )
        numbered = step - (steps - config.copy_number_steps)
        cut = 0 if prompt is None or numbered < 0 else _prompt_cut(prompt.shape[1], numbered, config.copy_number_steps)
        if prompt is not None and cut:
            loss = _loss(model, prompt[:, :cut], ids, torch.ones_like(ids), labels)  # padding only follows strings
        else:
            loss = _copy_loss(model, ids, labels)
        learn(loss, step=step, total=steps, log=losses, name="copy")
    return losses


def _query_key_projections(model: Any) -> list[Any]:
    """The attention's query and key projections, which `_fresh_attention` draws anew."""
    projections = [module for name, module in model.named_modules() if name.endswith((".q_proj", ".k_proj"))]
    if not projections:
        raise ConfigError(
            f"copy_fresh_attention needs attention layers with q_proj and k_proj (Llama-style), and this "
            f"{type(model).__name__} has none: pass --copy_fresh_attention false."
        )
    return projections


def _fresh_attention(projections: Sequence[Any], std: float) -> None:
    """Draw these query and key weights anew, as the model's initialisation does; nothing else changes.

    Values, outputs, embeddings and MLPs keep what the plain phase taught them: writing out the token a head attends
    to. Where a head attends is learned again, this time by the tokens' content.
    """
    import torch

    with torch.no_grad():
        for projection in projections:
            projection.weight.normal_(0.0, std)


# The copy loss of the warm-up's last logged steps under which copying counts as formed. Of twelve warm-ups without
# fresh attention weights (seeds 0-3 at three learning rates; README, "The default model"), six ended at 0.22-0.37,
# five at 2.8-4.0, and one at 0.87, still falling: copying forms in a jump or not at all. With the default warm-up,
# seeds 0-5 ended at 0.21-0.54, and the shipped model's at 0.23; a seed-1 model whose warm-up (without fresh
# weights) ended at 2.95 solved 13 % of all tasks.
_COPYING_FORMED = 1.0


def _copying_formed(copy_losses: Sequence[tuple[int, float]]) -> bool | None:
    """Whether a copy warm-up with these logged losses formed copying (None: no warm-up ran)."""
    return copy_losses[-1][1] < _COPYING_FORMED if copy_losses else None


def _warn_unless_copying(copy_losses: Sequence[tuple[int, float]], config: TrainDefaultConfig) -> bool | None:
    """`_copying_formed`, with a warning when it did not: the run goes on, but its model will copy badly.

    The check runs before the episodes, about five minutes into a run of fifteen, so a user can stop and change the seed
    instead of waiting for a model that fails most multi-step problems.
    """
    formed = _copying_formed(copy_losses)
    if formed is False:
        where = "behind the prompt" if config.copy_behind_prompt and config.copy_number_steps else "from its context"
        warnings.warn(
            f"The copy warm-up ended at a copy loss of {copy_losses[-1][1]:.2f} (runs that formed copying ended under "
            f"{_COPYING_FORMED:g}): with seed {config.seed} and copy_warmup_lr {config.copy_warmup_lr:g}, copying "
            f"numbers {where} did not form, and the trained model will fail most multi-step problems. "
            "Stop now and rerun with another --seed, or with the default warm-up settings where you changed them "
            '(README, "The default model").',
            stacklevel=3,
        )
    return formed


def _prompt_cut(length: int, step: int, steps: int) -> int:
    """How many of the prompt's `length` tokens come before the copy strings at `step` of a phase of `steps`."""
    return length * step // steps


def _copy_loss(model: Any, ids: torch.Tensor, labels: torch.Tensor) -> Any:
    return _learned_loss(model, model.get_decoder()(input_ids=ids).last_hidden_state, labels)


def _learned_loss(model: Any, hidden: torch.Tensor, labels: torch.Tensor) -> Any:
    """Next-token loss where labels are set, running the output layer on those positions only."""
    import torch

    targets = labels[:, 1:]
    learned = targets != -100
    logits = model.get_output_embeddings()(hidden[:, :-1][learned])
    return torch.nn.functional.cross_entropy(logits.float(), targets[learned])


def _loss(model: Any, prefix: torch.Tensor, ids: torch.Tensor, mask: torch.Tensor, labels: torch.Tensor) -> Any:
    """Next-token loss on the learned tokens, the shared prefix computed once for the whole batch."""
    import torch

    # The decoder alone: the prefix's logits are never used, and the vocabulary projection of 837 positions cost
    # about 5 % of a step.
    cache = getattr(model.get_decoder()(input_ids=prefix, use_cache=True), cache_keyword())
    cache.batch_repeat_interleave(ids.shape[0])
    full_mask = torch.cat([torch.ones(ids.shape[0], prefix.shape[1], dtype=mask.dtype), mask], dim=1)
    hidden = model.get_decoder()(input_ids=ids, attention_mask=full_mask, **{cache_keyword(): cache}).last_hidden_state
    return _learned_loss(model, hidden, labels)


def _gold_episodes(config: TrainDefaultConfig, tokenizer: Any) -> tuple[list[Demonstration], list[Demonstration]]:
    """The gold episodes rendered with `tokenizer`'s template: the first phase's, and the memory phase's.

    The memory phase's are the memory tasks and the first `memory_prompt_tasks` of the others, all played with the
    memory tools listed; none when that phase is skipped.
    """
    tasks = generate_tasks(config.n_tasks, split="train", seed=config.seed)
    # All cores: the one step of the run that would otherwise leave all but one idle.
    play = functools.partial(
        demonstrate, tokenizer=tokenizer, max_steps=config.agent_max_steps, processes=os.cpu_count() or 1
    )
    if not config.memory_steps:
        return play(tasks), []
    memory = dict.fromkeys(MEMORY_CATEGORIES, 1.0)
    memory_tasks = generate_tasks(config.memory_tasks, split="train", seed=config.seed, weights=memory)
    return play(tasks), play([*memory_tasks, *tasks[: config.memory_prompt_tasks]], memory=True)


def _schedule(config: TrainDefaultConfig, warm: int, step: int) -> float:
    """The learning rate at `step` as a multiple of `config.learning_rate`, across the phases.

    The copy warm-up ramps up linearly, then holds; the episodes, then the memory phase, each ramp up linearly to
    their own peak and decay along a cosine to 5 % of it.
    """
    if step < warm:
        return config.copy_warmup_lr / config.learning_rate * min(1.0, (step + 1) / config.warmup_steps)
    step -= warm
    if step < config.train_steps:
        return _warm_cosine(step, config.train_steps, config.warmup_steps)
    peak = config.memory_learning_rate / config.learning_rate
    return peak * _warm_cosine(step - config.train_steps, config.memory_steps, config.warmup_steps)


def _warm_cosine(step: int, total: int, warmup: int) -> float:
    if step < warmup:
        return (step + 1) / warmup
    progress = (step - warmup) / max(1, total - warmup)
    return 0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * progress))


def _train_episodes(
    model: Any,
    episodes: _Episodes,
    shares: Sequence[float],
    steps: int,
    *,
    pick: random.Random,
    learn: Any,
    name: str,
) -> tuple[list[tuple[int, float]], list[int]]:
    """Train `steps` steps, each on a batch of one prompt's episodes drawn by `shares`.

    Returns:
        The logged losses and the steps per prompt.
    """
    from tqdm.auto import tqdm

    prompt_steps = [0] * len(shares)
    losses: list[tuple[int, float]] = []
    for step in tqdm(range(steps), desc=name, disable=None):
        i = pick.choices(range(len(shares)), shares)[0]
        prompt_steps[i] += 1
        ids, mask, labels = _batch(next(episodes.batches[i]), episodes.pad)
        learn(_loss(model, episodes.prefixes[i], ids, mask, labels), step=step, total=steps, log=losses, name=name)
    return losses, prompt_steps


@dataclass
class _Episodes:
    """Encoded episodes by prompt (`_by_prefix`), with an endless stream of batches for each prompt."""

    prefixes: list[torch.Tensor]
    groups: list[list[tuple[list[int], list[int]]]]
    batches: list[Iterator[list[tuple[list[int], list[int]]]]]
    pad: int

    @classmethod
    def of(
        cls, demonstrations: Sequence[Demonstration], tokenizer: Any, config: TrainDefaultConfig, *, stream: str = ""
    ) -> _Episodes:
        prefixes, groups = _by_prefix(demonstrations, tokenizer)
        # The first prompt's batches are seeded with the seed alone, as they were before prompts could be several.
        seeds = [config.seed if i == 0 and not stream else f"{config.seed}{stream}-{i}" for i in range(len(groups))]
        batches = [
            _length_buckets(group, config.batch_size, random.Random(seed))
            for group, seed in zip(groups, seeds, strict=True)
        ]
        return cls(prefixes, groups, batches, tokenizer.pad_token_id)

    def __add__(self, other: _Episodes) -> _Episodes:
        return _Episodes(
            self.prefixes + other.prefixes, self.groups + other.groups, self.batches + other.batches, self.pad
        )

    def shares(self, weight: float = 1.0) -> list[float]:
        """Each prompt's share of `weight`, in proportion to its episodes (so every episode is seen about as often)."""
        total = sum(len(group) for group in self.groups)
        return [weight * len(group) / total for group in self.groups]


def _start(config: TrainDefaultConfig, out: Path) -> tuple[Any, Any, list[Demonstration], list[Demonstration]]:
    """The tokenizer and model to train (built in `out`, or `config.init_model`'s), and the gold episodes."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    if config.init_model:
        tokenizer = AutoTokenizer.from_pretrained(config.init_model)
        demonstrations, memory_demonstrations = _gold_episodes(config, tokenizer)
        model = AutoModelForCausalLM.from_pretrained(config.init_model, dtype=torch.float32)
        tokenizer.save_pretrained(out)
    else:
        # Render once with the template alone (the text does not depend on the vocabulary), then fit the tokenizer.
        template_only = build_tiny_model(out, vocab_size=300, hidden_size=8, layers=1, heads=1)
        demonstrations, memory_demonstrations = _gold_episodes(config, AutoTokenizer.from_pretrained(template_only))
        build_tiny_model(
            out,
            chat_template=HERMES_TEMPLATE,
            # The first phase's texts only: that phase is the recipe tuned to grow the copying heads, and the words
            # of the memory tasks split into smaller pieces copy just as well.
            corpus=[d.text for d in demonstrations],
            vocab_size=config.vocab_size,
            hidden_size=config.hidden_size,
            layers=config.layers,
            heads=config.heads,
            seed=config.seed,
            context=2048,
        )
        tokenizer = AutoTokenizer.from_pretrained(out)
        model = AutoModelForCausalLM.from_pretrained(out, dtype=torch.float32)
    return tokenizer, model, demonstrations, memory_demonstrations


def main(config: TrainDefaultConfig) -> TrainReport:
    """Train and save the default model.

    Args:
        config: The settings.

    Returns:
        A report of the run, also saved as ``training.json`` next to the model.
    """
    import torch
    from tqdm.auto import tqdm

    started = time.monotonic()
    torch.manual_seed(config.seed)
    out = Path(config.output_dir)

    tokenizer, model, demonstrations, memory_demonstrations = _start(config, out)
    episodes = _Episodes.of(demonstrations, tokenizer, config)
    pool = sorted(set().union(*map(_copied_tokens, episodes.groups)) - set(tokenizer.all_special_ids))
    warm = config.copy_warmup_steps if pool else 0  # episodes that never repeat anything need no copying

    optimizer = torch.optim.AdamW(model.parameters(), lr=config.learning_rate, weight_decay=0.01, betas=(0.9, 0.98))
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, functools.partial(_schedule, config, warm))

    windows: dict[str, list[float]] = {}

    def learn(loss: Any, *, step: int, total: int, log: list[tuple[int, float]], name: str) -> None:
        optimizer.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        scheduler.step()
        window = windows.setdefault(name, [])
        window.append(loss.item())
        if (step + 1) % config.log_every == 0 or step + 1 == total:
            log.append((step + 1, sum(window) / len(window)))
            tqdm.write(f"{name} {step + 1}: loss {log[-1][1]:.4f}")
            window.clear()

    model.train()
    prompt = episodes.prefixes[0] if config.copy_behind_prompt else None
    copy_losses = _copy_warmup(model, pool, tokenizer, config, steps=warm, learn=learn, prompt=prompt)
    copying_formed = _warn_unless_copying(copy_losses, config)

    pick = random.Random(f"{config.seed}-prompts")
    losses, prompt_steps = _train_episodes(
        model, episodes, episodes.shares(), config.train_steps, pick=pick, learn=learn, name="step"
    )
    memory_losses: list[tuple[int, float]] = []
    if memory_demonstrations:
        # Memory comes last: from the start, its longer prompt kept the copying heads from forming at all (README).
        memory = _Episodes.of(memory_demonstrations, tokenizer, config, stream="memory")
        shares = episodes.shares(1 - config.memory_share) + memory.shares(config.memory_share)
        memory_losses, steps = _train_episodes(
            model, episodes + memory, shares, config.memory_steps, pick=pick, learn=learn, name="memory"
        )
        prompt_steps = [a + b for a, b in zip(prompt_steps + [0] * len(memory.groups), steps, strict=True)]
        episodes += memory
    model.eval()
    # Half-precision storage halves the checkpoint; the loader widens it back to float32 on a CPU.
    model.to(torch.bfloat16).save_pretrained(out)
    report = TrainReport(
        output_dir=str(out),
        parameters=sum(p.numel() for p in model.parameters()),
        seconds=time.monotonic() - started,
        losses=losses,
        copy_losses=copy_losses,
        memory_losses=memory_losses,
        prefix_tokens=int(episodes.prefixes[0].shape[1]),
        mean_episode_tokens=statistics.mean(len(ids) for group in episodes.groups for ids, _ in group),
        prompt_steps=prompt_steps,
        previous=_training_record(config.init_model),
        copying_formed=copying_formed,
    )
    (out / "training.json").write_text(json.dumps({"config": asdict(config), **asdict(report)}, indent=2) + "\n")
    return report


if __name__ == "__main__":
    (parsed,) = make_parser().parse_args_into_dataclasses(sys.argv[1:])
    summary = main(parsed)
    print(f"Saved {summary.output_dir} ({summary.parameters:,} parameters) in {summary.seconds:.0f} s.")

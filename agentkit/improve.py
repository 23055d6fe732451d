"""The closed learning loop: collect episodes → preference pairs → DPO → evaluate on held-out tasks, before and after.

``agentkit improve`` (a TRL-shaped script: typed config, `make_parser`, `main`). Each round samples several rollouts
per training task at a temperature above 0, logging every episode and its checker reward (`RewardLogger`), plays each
training task's gold plan through the same agent and logs it too (with ``gold_prefixes``, also the model finishing
each task greedily from every step of its gold plan: `agentkit.demonstrations.GoldPrefixChatModel`), pairs the best
rollout of a task (or its gold plan, when none did as well) against the worst at their first differing turn
(`agentkit.pairs`), trains a LoRA adapter with TRL's DPO (`agentkit.dpo`) on the pairs of every round so far, and
evaluates greedily on the same held-out tasks as before training. A round is kept only if its adapter does at least
as well as the model before it on validation tasks (training-split tasks no round trains on; never the held-out
ones), so a later round never falls back on them; round two collects with round one's adapter when it was kept, so
it finds the mistakes that are left.
"""

from __future__ import annotations

import json
import sys
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from transformers import HfArgumentParser, set_seed

from agentkit.envs import load_task_file
from agentkit.errors import ConfigError
from agentkit.evaluate import EvalReport, evaluate, plot_report, save_report
from agentkit.tasks import MULTI_STEP, Task, generate_tasks

__all__ = ["TRAIN_WEIGHTS", "ImproveConfig", "main", "make_parser"]

TRAIN_WEIGHTS = {"arithmetic-1": 1.0, "arithmetic-2": 2.0, "arithmetic-3": 2.0, "time": 0.5, "file": 0.5, "chat": 0.5}
"""Category weights of the generated training tasks: the multi-step categories, which the loop is to improve, twice."""


@dataclass
class ImproveConfig:
    """Settings of `improve.main`; every field is also a command-line flag."""

    model: str = field(default="agentkit-default", metadata={"help": "The model to improve (directory or id)."})
    output_dir: str = field(default="improve-run", metadata={"help": "Logs, pairs, adapters and reports go here."})
    rounds: int = field(default=1, metadata={"help": "Collect → pairs → DPO rounds."})
    train_tasks: int = field(default=384, metadata={"help": "Training tasks per round (multi-step weighted)."})
    rollouts: int = field(default=4, metadata={"help": "Sampled episodes per training task."})
    temperature: float = field(default=0.7, metadata={"help": "Sampling temperature of the rollouts."})
    gold_plans: bool = field(
        default=True,
        metadata={"help": "Pair a task's gold plan against its worst rollout when no rollout succeeded (ETO)."},
    )
    gold_prefixes: bool = field(
        default=False,
        metadata={
            "help": "Also let the model finish each training task greedily from every step of its gold plan and pair "
            "the gold turn against its first departing turn where that fails (IPR; needs gold_plans). Off by "
            "default: on the default model these pairs made DPO worse (README)."
        },
    )
    eval_tasks: int = field(default=180, metadata={"help": "Held-out tasks for the before/after evaluation."})
    validation_tasks: int = field(
        default=90,
        metadata={
            "help": "Generated training-split tasks, none trained on, that each round's adapter must do as well on "
            "as the model it would replace, or the round is not kept (0, or a train_file without a validation_file: "
            "keep every round)."
        },
    )
    validation_file: str = field(
        default="", metadata={"help": "A JSONL task file to validate rounds on instead of generated tasks."}
    )
    train_file: str = field(default="", metadata={"help": "A JSONL task file to train on instead of generated tasks."})
    eval_file: str = field(default="", metadata={"help": "A JSONL task file to evaluate on instead of held-out ones."})
    seed: int = field(
        default=0, metadata={"help": "Seed for tasks, rollouts (reproducible at concurrency 1) and training."}
    )
    epochs: float = field(default=2.0, metadata={"help": "DPO passes over the pairs."})
    learning_rate: float = field(
        default=2e-4, metadata={"help": "DPO learning rate (on the default model, 5e-4 and above made it worse)."}
    )
    beta: float = field(default=0.1, metadata={"help": "DPO beta."})
    sft_weight: float = field(default=1.0, metadata={"help": "Weight of the SFT term on chosen turns."})
    concurrency: int = field(default=4, metadata={"help": "Episodes run at once."})


def make_parser() -> HfArgumentParser:
    """The command-line parser: one flag per `ImproveConfig` field."""
    return HfArgumentParser(ImproveConfig)  # type: ignore[arg-type]


class _Models:
    """The model with the adapter in use, loaded once for sampling and greedy calls alike, and one at a time.

    A round samples, plays gold prefixes greedily, validates and evaluates. Loaded for each, a user's model would
    load up to four times a round, and two of it would be held at once while the gold prefixes play.
    """

    def __init__(self, model: str, temperature: float) -> None:
        self._model, self._temperature = model, temperature
        self._adapter: str | None = None
        self._loaded: Any = None

    def sampling(self, adapter: str | None) -> Any:
        """The model at the rollouts' temperature, its prefix cache cleared (a seed then gives the same rollouts)."""
        chat = self._load(adapter)
        chat.clear_cache()
        return chat

    def greedy(self, adapter: str | None) -> Any:
        """The same loaded model, decoding greedily."""
        # pydantic copies private attributes by reference: the copy shares the loaded engine, weights and worker.
        return self._load(adapter).model_copy(update={"temperature": 0.0})

    def release(self) -> None:
        """Let the loaded model go (its weights are freed once nothing else holds it), before training loads another."""
        self._loaded = None

    def _load(self, adapter: str | None) -> Any:
        from agentkit.llm.default import load_default_model

        if self._loaded is None or adapter != self._adapter:
            self._loaded = None  # let the last model's weights go before the next one loads
            self._loaded = load_default_model(
                self._model, adapter=adapter, temperature=self._temperature, return_logprobs=True
            )
            self._adapter = adapter
        return self._loaded


def _train_tasks(config: ImproveConfig, number: int) -> list[Task]:
    if config.train_file:
        return load_task_file(config.train_file)
    return generate_tasks(config.train_tasks, split="train", seed=config.seed + 1000 * number, weights=TRAIN_WEIGHTS)


def _collect(
    config: ImproveConfig, models: _Models, number: int, tasks: list[Task], *, adapter: str | None, log: Path
) -> None:
    """Log the round's episodes: sampled rollouts, and for generated tasks the gold plans (and gold prefixes)."""
    from agentkit.demonstrations import GoldPrefixChatModel, agent_tools, gold_plan_model
    from agentkit.pairs import GOLD_PLAN
    from agentkit.rewards import RewardLogger

    sampler = models.sampling(adapter)
    logger = RewardLogger(log, model=sampler, adapter=adapter, tools=agent_tools(), tasks=tasks)
    rollouts = [task for task in tasks for _ in range(config.rollouts)]
    # Sampling draws from torch's global generator: the same seed gives the same rollouts one at a time
    # (concurrent ones are batched as they arrive, which changes the draws).
    set_seed(config.seed + number)
    evaluate(sampler, rollouts, hooks=[logger], concurrency=config.concurrency)
    if not config.gold_plans or config.train_file:  # a user's task file has answers, not plans
        return
    gold = RewardLogger(log, model=GOLD_PLAN, tools=agent_tools(), tasks=tasks)
    evaluate(gold_plan_model(tasks), tasks, hooks=[gold], concurrency=config.concurrency)
    if config.gold_prefixes:
        greedy = models.greedy(adapter)  # the mistakes that the held-out evaluation meets
        for steps in range(max(len(task.plan) for task in tasks) + 1):
            branch = GoldPrefixChatModel(model=greedy, tasks=tasks, steps=steps)
            logger = RewardLogger(log, model=branch, tools=agent_tools(), tasks=tasks)
            reach = [task for task in tasks if len(task.plan) >= steps]
            evaluate(branch, reach, hooks=[logger], concurrency=config.concurrency)


def _validation_tasks(config: ImproveConfig, trained: set[str]) -> list[Task]:
    """The validation tasks: the file's, or generated training-split tasks whose ids are not in `trained`."""
    if config.validation_file:
        return load_task_file(config.validation_file)
    if not config.validation_tasks or config.train_file:  # generated tasks say nothing about a user's own
        return []
    drawn = generate_tasks(config.validation_tasks + len(trained), split="train", seed=config.seed + 999)
    return [task for task in drawn if task.id not in trained][: config.validation_tasks]


def _validate(models: _Models, adapter: str | None, tasks: list[Task]) -> float | None:
    """Greedy success on the validation tasks (None without any)."""
    return evaluate(models.greedy(adapter), tasks).overall.success if tasks else None


def main(config: ImproveConfig) -> dict[str, Any]:
    """Run the loop and write ``summary.json`` and ``before_after.png`` under ``output_dir``.

    Returns:
        The summary: validation success before training; per round, pairs, validation success, whether it was
        kept, the adapter in use after it and seconds; and the before/after success per category.

    Raises:
        ConfigError: When a round produces no pairs (nothing to learn from: more rollouts or tasks may help).
    """
    from agentkit.dpo import DPOScriptConfig
    from agentkit.dpo import main as dpo
    from agentkit.pairs import write_pairs

    started = time.monotonic()
    out = Path(config.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    heldout = (
        load_task_file(config.eval_file)
        if config.eval_file
        else generate_tasks(config.eval_tasks, split="heldout", seed=config.seed)
    )
    models = _Models(config.model, config.temperature)
    reports: dict[str, EvalReport] = {"before": evaluate(models.greedy(None), heldout, model_name="before")}
    save_report(reports["before"], out / "eval-before.json")
    per_round = [_train_tasks(config, number) for number in range(1, config.rounds + 1)]
    validation = _validation_tasks(config, {task.id for tasks in per_round for task in tasks})
    best = validation_before = _validate(models, None, validation)
    rounds: list[dict[str, Any]] = []
    adapter: str | None = None
    log = out / "episodes.sqlite"
    for number, tasks in enumerate(per_round, start=1):
        round_started = time.monotonic()
        _collect(config, models, number, tasks, adapter=adapter, log=log)
        pairs_dir = out / f"pairs-{number}"
        stats = write_pairs(log, pairs_dir, max_pairs_per_task=2)
        if not stats.pairs:
            raise ConfigError(f"Round {number} found no preference pairs: {stats.explain()}")
        candidate = str(out / f"adapter-{number}")
        models.release()
        trained = dpo(
            DPOScriptConfig(
                model=config.model,
                pairs=str(pairs_dir),
                output_dir=candidate,
                epochs=config.epochs,
                learning_rate=config.learning_rate,
                beta=config.beta,
                sft_weight=config.sft_weight,
                seed=config.seed,
            )
        )
        # A round that does worse on the validation tasks is not kept: the next one starts from the model before it.
        score = _validate(models, candidate, validation)
        kept = score is None or best is None or score >= best
        label, previous = f"round {number}", list(reports)[-1]
        if kept:
            adapter, best = candidate, score
            reports[label] = evaluate(models.greedy(adapter), heldout, model_name=label)
        else:  # the same model as the round before, so the same held-out result
            reports[label] = replace(reports[previous], model=f"{label} (not kept: {previous})")
        save_report(reports[label], out / f"eval-round-{number}.json")
        rounds.append(
            {
                "round": number,
                "pairs": stats.pairs,
                "dropped": trained.dropped,
                "validation": score,
                "kept": kept,
                "adapter": adapter,
                "seconds": time.monotonic() - round_started,
            }
        )
    plot_report(reports, out / "before_after.png", title="Held-out success before and after DPO")
    summary = {
        "config": asdict(config),
        "validation_before": validation_before,
        "rounds": rounds,
        "success": {label: {c: s.success for c, s in r.categories.items()} for label, r in reports.items()},
        "multi_step": {
            label: sum(r.categories[c].success * r.categories[c].n for c in MULTI_STEP if c in r.categories)
            / max(1, sum(r.categories[c].n for c in MULTI_STEP if c in r.categories))
            for label, r in reports.items()
        },
        "seconds": time.monotonic() - started,
    }
    (out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    return summary


if __name__ == "__main__":
    (parsed,) = make_parser().parse_args_into_dataclasses(sys.argv[1:])
    result = main(parsed)
    print(json.dumps({"multi_step": result["multi_step"], "seconds": round(result["seconds"])}, indent=2))

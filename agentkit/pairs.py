"""Preference data from the reward log, in TRL's conversational formats: DPO pairs and KTO rows.

Rollouts are grouped by task and model version (model id and adapter: never paired across versions); within a
group, sampled at temperature > 0, the best is paired against the worst, the second best against the second worst,
and so on, while their rewards differ by at least the margin (ties never pair) and up to a cap per task. Episodes
played from a task's gold plan (model `GOLD_PLAN`, see `agentkit.demonstrations.gold_plan_model`) join every group
of that task in which no rollout did as well: the gold episode is then the chosen side and the worst rollout the
rejected one, expert against failure as in ETO (Song et al., 2024). Where rollouts of a task always fail alike,
sampling alone finds no pair for it. Each pair is cut at the first assistant turn where the two episodes differ:

* ``prompt``: the shared history (system, user, earlier assistant tool-call turns, ``tool`` messages);
* ``chosen`` / ``rejected``: that one assistant turn of each (a tool call, or a final answer);
* ``tools``: the JSON schemas the model was given, as a JSON string (TRL's trainers ``json.loads`` it).

Messages are ``{"role", "content", "tool_calls", "name", "tool_call_id"}``, unused keys None (transformers drops
them before rendering); tool calls are ``{"id", "type": "function", "function": {"name", "arguments"}}`` with the
arguments as a JSON string, as OpenAI sends them, so rows with different tools share one Arrow schema (dict
arguments would be merged into one struct with every tool's keys). The rendered training text is exactly what
`agentkit.llm.LocalChatModel` renders at inference for templates that, like Qwen3's and agentkit's, write string
arguments as they are.

KTO rows (``prompt`` / ``completion`` / ``label``) come from thumbs feedback: one row per assistant turn of each
episode with thumbs up or down, labelled with its latest thumbs.

Command line: ``agentkit pairs rewards.db --out pairs/`` writes ``pairs/dpo`` and ``pairs/kto`` (``datasets``
``save_to_disk``; load with ``datasets.load_from_disk``) and ``pairs/summary.json``.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from langchain_core.messages import messages_from_dict

from agentkit.errors import ConfigError
from agentkit.llm.prompt import to_chat
from agentkit.rewardlog import EpisodeRecord, RewardLog

if TYPE_CHECKING:
    import datasets

__all__ = ["GOLD_PLAN", "GOLD_PREFIX", "PairStats", "build_kto", "build_pairs", "to_trl_messages", "write_pairs"]

Chat = list[dict[str, Any]]

GOLD_PLAN = "gold-plan"
"""The model id under which episodes played from tasks' gold plans are logged (see the module docs)."""

GOLD_PREFIX = "+gold-prefix-"
"""Joins a model id and a step count into the id of its episodes that start from a gold prefix: ``m+gold-prefix-2``
(`agentkit.demonstrations.GoldPrefixChatModel`)."""


@dataclass
class PairStats:
    """What pair building found; written to ``summary.json``.

    Attributes:
        episodes: Episodes read.
        unrewarded: Episodes without a reward from the chosen sources.
        groups: Groups of rollouts (task x model x adapter) with a reward.
        single: Groups with fewer than two rewarded rollouts.
        below_margin: Groups whose next candidate pair differed by less than the margin (ties included).
        same_turns: Candidate pairs whose assistant turns never differ.
        context_differs: Candidate pairs that differ before any assistant turn does (another system prompt or
            tool set, or a tool that returned something else).
        gold: Groups in which no rollout did as well as the task's gold-plan episode, which joined them.
        duplicates: Candidate pairs with the same prompt, chosen and rejected turns as one already made (kept once).
        pairs: DPO pairs written.
        kto_rows: KTO rows written.
        versions: Episodes per ``model@adapter``.
    """

    episodes: int = 0
    unrewarded: int = 0
    groups: int = 0
    single: int = 0
    below_margin: int = 0
    same_turns: int = 0
    context_differs: int = 0
    gold: int = 0
    duplicates: int = 0
    pairs: int = 0
    kto_rows: int = 0
    versions: dict[str, int] = field(default_factory=dict)

    def explain(self) -> str:
        """One line saying where the episodes went."""
        return (
            f"{self.episodes} episodes ({self.unrewarded} without a reward) in {self.groups} task groups: "
            f"{self.single} with a single rollout, {self.below_margin} whose rewards differ by less than the margin, "
            f"{self.same_turns} pairs with identical turns, {self.context_differs} differing before an assistant "
            f"turn, {self.gold} joined by a gold plan, {self.duplicates} duplicates; {self.pairs} pairs and "
            f"{self.kto_rows} KTO rows. Episodes per version: {self.versions}."
        )


def to_trl_messages(messages: Sequence[dict[str, Any]]) -> Chat:
    """Logged messages (``messages_to_dict`` form) in TRL's conversational format (see the module docs)."""
    chat = to_chat(messages_from_dict(list(messages)), tool_role=True)
    out: Chat = []
    for message in chat:
        calls = message.get("tool_calls")
        out.append(
            {
                "role": message["role"],
                "content": message["content"],
                "tool_calls": None
                if not calls
                else [
                    {
                        "id": c.get("id"),
                        "type": "function",
                        "function": {
                            "name": c["function"]["name"],
                            "arguments": json.dumps(c["function"]["arguments"], ensure_ascii=False),
                        },
                    }
                    for c in calls
                ],
                "name": message.get("name"),
                "tool_call_id": message.get("tool_call_id"),
            }
        )
    return out


def _key(m: dict[str, Any]) -> tuple[Any, ...]:
    # Call ids are random per episode; what the model saw and said is the rest.
    calls = tuple((c["function"]["name"], c["function"]["arguments"]) for c in m["tool_calls"] or ())
    return m["role"], m["content"], calls, m["name"]


def _same(a: dict[str, Any], b: dict[str, Any]) -> bool:
    return _key(a) == _key(b)


def _version(episode: EpisodeRecord) -> str:
    return f"{episode.model}@{episode.adapter or 'base'}"


def _cut(best: EpisodeRecord, worst: EpisodeRecord, stats: PairStats) -> dict[str, Any] | None:
    chosen, rejected = to_trl_messages(best.messages), to_trl_messages(worst.messages)
    index = next((i for i, (a, b) in enumerate(zip(chosen, rejected, strict=False)) if not _same(a, b)), None)
    if index is None:
        stats.same_turns += 1
        return None
    if best.tools != worst.tools or chosen[index]["role"] != "assistant" or rejected[index]["role"] != "assistant":
        stats.context_differs += 1
        return None
    return {
        "prompt": chosen[:index],
        "chosen": [chosen[index]],
        "rejected": [rejected[index]],
        "tools": json.dumps(best.tools, ensure_ascii=False),
        "task_id": best.task_id,
        "version": _version(worst),  # the model that made the rollouts (the chosen side may be a gold plan)
        "chosen_episode": best.episode_id,
        "rejected_episode": worst.episode_id,
    }


def _text_of(row: dict[str, Any]) -> tuple[Any, ...]:
    """What a pair trains on: two rows with the same text are one pair (from gold-prefix episodes that agree)."""
    return tuple(_key(m) for part in ("prompt", "chosen", "rejected") for m in row[part]), row["tools"]


def build_pairs(
    episodes: Sequence[EpisodeRecord],
    *,
    margin: float = 0.5,
    max_pairs_per_task: int = 1,
    sources: Sequence[str] | None = None,
) -> tuple[list[dict[str, Any]], PairStats]:
    """DPO pairs from logged rollouts (see the module docs).

    Args:
        episodes: Logged episodes (`RewardLog.episodes`).
        margin: Least reward difference between chosen and rejected; must be positive, so ties never pair.
        max_pairs_per_task: Most pairs per task and model version.
        sources: Reward sources that count (default: all; see `EpisodeRecord.reward`).

    Returns:
        The rows (each with ``chosen_reward`` and ``rejected_reward`` too) and the statistics.

    Raises:
        ConfigError: On a margin that is not positive or a cap below 1.
    """
    if not margin > 0:
        raise ConfigError(f"margin must be positive (ties never make a pair), got {margin!r}.")
    if max_pairs_per_task < 1:
        raise ConfigError(f"max_pairs_per_task must be at least 1, got {max_pairs_per_task!r}.")
    stats = PairStats(episodes=len(episodes))
    rows: list[dict[str, Any]] = []
    written: set[tuple[Any, ...]] = set()
    for scored in _groups(episodes, sources, stats):
        if len(scored) < 2:
            stats.single += 1
            continue
        scored.sort(key=lambda item: (-item[0], item[1].created_at))
        made, best, worst = 0, 0, len(scored) - 1
        while best < worst and made < max_pairs_per_task:
            (high, chosen), (low, rejected) = scored[best], scored[worst]
            if high - low < margin:
                stats.below_margin += 1
                break
            row = _cut(chosen, rejected, stats)
            if row is not None:
                text = _text_of(row)
                if text in written:
                    stats.duplicates += 1
                else:
                    written.add(text)
                    rows.append({**row, "chosen_reward": high, "rejected_reward": low})
                    made += 1
            best, worst = best + 1, worst - 1
    stats.pairs = len(rows)
    return rows, stats


def _groups(
    episodes: Sequence[EpisodeRecord], sources: Sequence[str] | None, stats: PairStats
) -> list[list[tuple[float, EpisodeRecord]]]:
    """The rewarded rollouts per task and model version, with the task's gold plan where no rollout matched it."""
    groups: dict[tuple[str, str], list[tuple[float, EpisodeRecord]]] = {}
    gold: dict[str, tuple[float, EpisodeRecord]] = {}
    for episode in episodes:
        stats.versions[_version(episode)] = stats.versions.get(_version(episode), 0) + 1
        reward = episode.reward(sources)
        if reward is None:
            stats.unrewarded += 1
            continue
        task = episode.task_id or f"question:{episode.question}"
        if episode.model != GOLD_PLAN:
            groups.setdefault((task, _version(episode)), []).append((reward, episode))
        elif task not in gold or reward > gold[task][0]:
            gold[task] = (reward, episode)
    stats.groups = len(groups)
    out = []
    for (task, _), scored in groups.items():
        if task in gold and max(reward for reward, _ in scored) < gold[task][0]:
            out.append([gold[task], *scored])
            stats.gold += 1
        else:
            out.append(scored)
    return out


def build_kto(episodes: Sequence[EpisodeRecord]) -> list[dict[str, Any]]:
    """KTO rows from thumbs feedback: each assistant turn of a thumbed episode, labelled with the thumbs."""
    rows = []
    for episode in episodes:
        label = episode.thumbs()
        if label is None:
            continue
        chat = to_trl_messages(episode.messages)
        for index, message in enumerate(chat):
            if message["role"] == "assistant" and index and chat[index - 1]["role"] in ("user", "tool"):
                rows.append(
                    {
                        "prompt": chat[:index],
                        "completion": [message],
                        "label": label,
                        "tools": json.dumps(episode.tools, ensure_ascii=False),
                        "task_id": episode.task_id,
                        "version": _version(episode),
                        "episode": episode.episode_id,
                    }
                )
    return rows


def _features(kind: str) -> datasets.Features:
    import datasets

    text = datasets.Value("string")
    call = {"id": text, "type": text, "function": {"name": text, "arguments": text}}
    message = {"role": text, "content": text, "tool_calls": datasets.List(call), "name": text, "tool_call_id": text}
    chat = datasets.List(message)
    common = {"prompt": chat, "tools": text, "task_id": text, "version": text}
    if kind == "dpo":
        number = datasets.Value("float64")
        return datasets.Features(
            {
                **common,
                "chosen": chat,
                "rejected": chat,
                "chosen_episode": text,
                "rejected_episode": text,
                "chosen_reward": number,
                "rejected_reward": number,
            }
        )
    return datasets.Features({**common, "completion": chat, "label": datasets.Value("bool"), "episode": text})


def write_pairs(
    log: str | os.PathLike[str],
    out: str | os.PathLike[str],
    *,
    margin: float = 0.5,
    max_pairs_per_task: int = 1,
    sources: Sequence[str] | None = None,
    model: str | None = None,
) -> PairStats:
    """Build DPO pairs and KTO rows from a reward log and save them under `out`.

    Writes ``out/dpo`` and ``out/kto`` (each only when it has rows; ``datasets.load_from_disk`` reads them) and
    ``out/summary.json`` (the statistics and settings).

    Args:
        log: The reward log's SQLite file.
        out: The output folder.
        margin: See `build_pairs`.
        max_pairs_per_task: See `build_pairs`.
        sources: See `build_pairs`.
        model: Only episodes of this model id, its gold-prefix ones and gold-plan ones (default: all, each version
            paired within itself).

    Returns:
        The statistics; ``pairs`` and ``kto_rows`` are 0 when nothing could be built (`PairStats.explain`).

    Raises:
        ConfigError: When the log is missing or not a reward log, or the settings are invalid.
    """
    import datasets

    episodes = [
        e
        for e in RewardLog(log).episodes()
        if model is None or e.model in (model, GOLD_PLAN) or e.model.startswith(model + GOLD_PREFIX)
    ]
    rows, stats = build_pairs(episodes, margin=margin, max_pairs_per_task=max_pairs_per_task, sources=sources)
    kto = build_kto(episodes)
    stats.kto_rows = len(kto)
    folder = Path(out)
    folder.mkdir(parents=True, exist_ok=True)
    for kind, data in (("dpo", rows), ("kto", kto)):
        shutil.rmtree(folder / kind, ignore_errors=True)  # a rerun never leaves an earlier run's rows behind
        if data:
            datasets.Dataset.from_list(data, features=_features(kind)).save_to_disk(str(folder / kind))
    settings = {
        "log": str(log),
        "margin": margin,
        "max_pairs_per_task": max_pairs_per_task,
        "sources": sources,
        "model": model,
    }
    summary = {"settings": settings, **asdict(stats)}
    (folder / "summary.json").write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    return stats

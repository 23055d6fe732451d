"""Pairs from crafted reward logs: margins, ties, caps, versions, the cut point, and TRL's own dataset preparation."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import pytest
from langchain_core.messages import messages_from_dict

from agentkit import Agent, ConfigError
from agentkit.cli_pairs import add_parser, run
from agentkit.demonstrations import GoldPrefixChatModel, agent_tools, gold_plan_model
from agentkit.pairs import GOLD_PLAN, build_kto, build_pairs, write_pairs
from agentkit.rewards import RewardLog, RewardLogger
from agentkit.tasks import Task, generate_tasks
from agentkit.testing import ScriptedChatModel, tool_call, tool_reply

TASKS = generate_tasks(3, seed=0, weights={"arithmetic-2": 1.0})  # A: (61 + 19) / 8 = 10


def _calc(expression: str) -> Any:
    return tool_reply(tool_call("calculator", expression=expression))


def _rollout(logger: RewardLogger, task: Task | str, replies: list[Any], workspace: Path) -> str:
    question = task.question if isinstance(task, Task) else task
    agent = Agent(ScriptedChatModel(responses=replies), tools=agent_tools(workspace), hooks=[logger])
    with logger.task(task if isinstance(task, Task) else question):
        return agent.invoke(question).episode_id


@pytest.fixture(scope="module")
def log(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A log of crafted rollouts; the comments say what each group is for."""
    root = tmp_path_factory.mktemp("pairs")
    path, workspace = root / "log.db", root / "ws"
    workspace.mkdir()
    logger = RewardLogger(path, model="m1", tools=agent_tools(workspace))
    a, b, c = TASKS
    good = [_calc("61 + 19"), _calc("80 / 8"), "Each child gets 10 shells."]
    # A: two correct, one wrong at the second call, one wrong at the first call.
    kept = _rollout(logger, a, good, workspace)
    _rollout(logger, a, [_calc("61 + 19"), "Each child gets 80 shells."], workspace)
    _rollout(logger, a, good, workspace)
    _rollout(logger, a, [_calc("61 * 19"), _calc("1159 / 8"), "Each child gets 144.875 shells."], workspace)
    # B: a tie (both correct).
    for _ in range(2):
        _rollout(logger, b, [_calc("3 * 5"), _calc("20 - 15"), "David gets 5 back."], workspace)
    # C: one correct rollout on model m1, one wrong on model m2: different versions never pair.
    _rollout(logger, c, [_calc("9.25 - 1"), _calc("8.25 * 4"), "4 plants cost 33."], workspace)
    other = RewardLogger(path, model="m2", tools=agent_tools(workspace))
    _rollout(other, c, ["4 plants cost 37."], workspace)
    # D: no task; identical replies that users judged differently.
    thumbs = [_rollout(logger, "Hi, I am Anna.", ["Hello Anna!"], workspace) for _ in range(2)]
    logger.feedback(thumbs[0], thumbs=True)
    logger.feedback(thumbs[1], thumbs=False)
    logger.feedback(kept, thumbs=True)
    return path


def _calls(message: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    return [(c["function"]["name"], json.loads(c["function"]["arguments"])) for c in message["tool_calls"] or ()]


def test_best_against_worst_with_margin_ties_caps_and_versions(log: Path) -> None:
    episodes = RewardLog(log).episodes()
    rows, stats = build_pairs(episodes, margin=0.5, max_pairs_per_task=2)
    assert (stats.episodes, stats.groups, stats.pairs) == (10, 5, 2)
    assert (stats.single, stats.below_margin, stats.same_turns, stats.context_differs) == (2, 1, 1, 0)
    assert stats.versions == {"m1@base": 9, "m2@base": 1}
    first, second = rows
    assert {first["task_id"], second["task_id"]} == {TASKS[0].id}
    # Best against worst: the first correct rollout against the one wrong from its first call.
    assert [m["role"] for m in first["prompt"]] == ["system", "user"]
    assert _calls(first["chosen"][0]) == [("calculator", {"expression": "61 + 19"})]
    assert _calls(first["rejected"][0]) == [("calculator", {"expression": "61 * 19"})]
    # Second best against second worst: cut at the second assistant turn, the shared call and result in the prompt.
    assert [m["role"] for m in second["prompt"]] == ["system", "user", "assistant", "tool"]
    assert _calls(second["prompt"][2]) == [("calculator", {"expression": "61 + 19"})]
    assert second["prompt"][3]["content"].startswith("80")
    assert _calls(second["chosen"][0]) == [("calculator", {"expression": "80 / 8"})]
    assert second["rejected"][0]["content"] == "Each child gets 80 shells." and not second["rejected"][0]["tool_calls"]
    assert (second["chosen_reward"], second["rejected_reward"]) == (1.0, 0.0)
    assert json.loads(first["tools"])[0]["function"]["name"] == "calculator"

    capped, _ = build_pairs(episodes, margin=0.5)
    assert len(capped) == 1 and capped[0]["chosen_episode"] == first["chosen_episode"]
    assert build_pairs(episodes, margin=1.5)[1].pairs == 0  # a margin no pair meets
    assert build_pairs(episodes, sources=["feedback"])[1].same_turns == 1  # only user feedback: group D alone
    with pytest.raises(ConfigError, match="ties never"):
        build_pairs(episodes, margin=0)


def test_a_gold_plan_is_chosen_against_rollouts_that_all_failed_and_only_there(tmp_path: Path) -> None:
    path, workspace = tmp_path / "log.db", tmp_path / "ws"
    workspace.mkdir()
    a, b, _ = TASKS
    m1 = RewardLogger(path, model="m1", tools=agent_tools(workspace))
    # A: both m1 rollouts fail (a tie that pairs nothing), and m2's single rollout fails too.
    _rollout(m1, a, [_calc("61 * 19"), _calc("1159 / 8"), "Each child gets 144.875 shells."], workspace)
    _rollout(m1, a, [_calc("61 + 19"), "Each child gets 80 shells."], workspace)
    _rollout(RewardLogger(path, model="m2", tools=agent_tools(workspace)), a, ["Each child gets 8 shells."], workspace)
    # B: one m1 rollout succeeds, so its own success is paired, not the gold plan.
    _rollout(m1, b, [_calc("3 * 5"), _calc("20 - 15"), "David gets 5 back."], workspace)
    _rollout(m1, b, ["David gets 15 back."], workspace)
    _gold(path, workspace, [a, b])

    rows, stats = build_pairs(RewardLog(path).episodes(), max_pairs_per_task=2)
    assert (stats.groups, stats.gold, stats.pairs) == (3, 2, 3)
    assert stats.versions[f"{GOLD_PLAN}@base"] == 2
    by_version = {(r["task_id"], r["version"]): r for r in rows}
    assert set(by_version) == {(a.id, "m1@base"), (a.id, "m2@base"), (b.id, "m1@base")}
    # The gold plan against m1's worst rollout on A (of two equally bad, the later), cut where they part: after the
    # shared first call. One pair, the cap notwithstanding: the two failed rollouts tie, and ties never pair.
    m1_on_a = by_version[(a.id, "m1@base")]
    assert _calls(m1_on_a["prompt"][2]) == [("calculator", {"expression": "61 + 19"})]
    assert _calls(m1_on_a["chosen"][0]) == [("calculator", {"expression": "80 / 8"})]
    assert m1_on_a["rejected"][0]["content"] == "Each child gets 80 shells."
    assert (m1_on_a["chosen_reward"], m1_on_a["rejected_reward"]) == (1.0, 0.0)
    assert by_version[(a.id, "m2@base")]["rejected"][0]["content"] == "Each child gets 8 shells."
    # On B, m1's own success is the chosen side.
    gold_ids = {e.episode_id for e in RewardLog(path).episodes() if e.model == GOLD_PLAN}
    assert by_version[(b.id, "m1@base")]["chosen_episode"] not in gold_ids
    # Filtering on one model keeps the gold plans.
    assert write_pairs(path, tmp_path / "pairs", max_pairs_per_task=2, model="m1").pairs == 2


def _gold(path: Path, workspace: Path, tasks: list[Task]) -> None:
    gold = RewardLogger(path, model=GOLD_PLAN, tools=agent_tools(workspace))
    teacher = Agent(gold_plan_model(TASKS), tools=agent_tools(workspace), hooks=[gold])
    for task in tasks:  # the gold plans, played through the same agent
        with gold.task(task):
            assert teacher.invoke(task.question).answer


def test_gold_prefixes_pair_every_mistake_of_a_plan_once(tmp_path: Path) -> None:
    path, workspace = tmp_path / "log.db", tmp_path / "ws"
    workspace.mkdir()
    a = TASKS[0]  # 61 + 19, then 80 / 8, then "Each child gets 10 shells."

    def model(messages: list[Any]) -> Any:  # right first, wrong after: multiplies, then miscounts
        done = sum(m.type == "tool" for m in messages)
        return [_calc("61 + 19"), _calc("80 * 8"), "Each child gets 11 shells."][min(done, 2)]

    inner = ScriptedChatModel(responses=[model], repeat=True)
    for steps in range(len(a.plan) + 1):
        branch = GoldPrefixChatModel(model=inner, tasks=TASKS, steps=steps)
        assert branch.model_id == f"ScriptedChatModel+gold-prefix-{steps}"
        logger = RewardLogger(path, model=branch, tools=agent_tools(workspace))
        with logger.task(a):
            Agent(branch, tools=agent_tools(workspace), hooks=[logger]).invoke(a.question)
    _gold(path, workspace, [a])
    episodes = RewardLog(path).episodes()
    # Each gold turn is played as planned, however the model would have gone on.
    by_model = {e.model: e for e in episodes}
    assert by_model["ScriptedChatModel+gold-prefix-2"].steps[2]["args"] == {"expression": "80 / 8"}
    assert by_model["ScriptedChatModel+gold-prefix-1"].steps[2]["args"] == {"expression": "80 * 8"}

    rows, stats = build_pairs(episodes)
    # Prefixes 0 and 1 fail at the same turn alike (the model's first turn is the gold one): one pair. Prefix 2, both
    # calls played from the plan, fails at the answer.
    assert (stats.groups, stats.gold, stats.duplicates, stats.pairs) == (3, 3, 1, 2)
    second, answer = sorted(rows, key=lambda r: len(r["prompt"]))
    assert [m["role"] for m in second["prompt"]] == ["system", "user", "assistant", "tool"]
    assert _calls(second["chosen"][0]) == [("calculator", {"expression": "80 / 8"})]
    assert _calls(second["rejected"][0]) == [("calculator", {"expression": "80 * 8"})]
    assert len(answer["prompt"]) == 6 and answer["prompt"][5]["content"].startswith("10")
    assert answer["chosen"][0]["content"] == "Each child gets 10 shells."
    assert answer["rejected"][0]["content"] == "Each child gets 11 shells."
    assert answer["version"] == "ScriptedChatModel+gold-prefix-2@base"
    # Filtering on the model keeps its gold-prefix episodes; another model's filter keeps none of them.
    assert write_pairs(path, tmp_path / "p1", model="ScriptedChatModel").pairs == 2
    assert write_pairs(path, tmp_path / "p2", model="other").pairs == 0


def test_kto_rows_from_thumbs(log: Path) -> None:
    rows = build_kto(RewardLog(log).episodes())
    assert [(r["label"], len(r["prompt"])) for r in rows] == [(True, 2), (True, 4), (True, 6), (True, 2), (False, 2)]
    assert rows[2]["completion"][0]["content"] == "Each child gets 10 shells."
    assert rows[3]["completion"][0]["content"] == "Hello Anna!" and rows[3]["task_id"] == "Hi, I am Anna."


def test_trl_prepares_the_written_datasets_as_the_model_sees_them(log: Path, tmp_path: Path, tiny_dir: Path) -> None:
    import datasets
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from trl import DPOConfig, DPOTrainer, KTOConfig, KTOTrainer

    from agentkit.llm.prompt import render_prompt

    stats = write_pairs(log, tmp_path / "out", max_pairs_per_task=2)
    assert (stats.pairs, stats.kto_rows) == (2, 5)
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert summary["pairs"] == 2 and summary["settings"]["margin"] == 0.5
    dpo = datasets.load_from_disk(str(tmp_path / "out" / "dpo"))
    kto = datasets.load_from_disk(str(tmp_path / "out" / "kto"))

    tokenizer = AutoTokenizer.from_pretrained(tiny_dir)
    model = AutoModelForCausalLM.from_pretrained(tiny_dir)
    common = {"output_dir": str(tmp_path / "trl"), "report_to": [], "bf16": False, "max_length": 4096}
    dpo_ready = DPOTrainer(model, args=DPOConfig(**common), train_dataset=dpo, processing_class=tokenizer)
    kto_ready = KTOTrainer(model, args=KTOConfig(**common), train_dataset=kto, processing_class=tokenizer)

    episodes = {e.episode_id: e for e in RewardLog(log).episodes()}
    for row, ready in zip(dpo, dpo_ready.train_dataset, strict=True):
        chosen = episodes[row["chosen_episode"]]
        seen = messages_from_dict(chosen.messages[: len(row["prompt"])])
        # TRL trains on exactly the prompt the agent's local model rendered at that step.
        assert tokenizer.decode(ready["prompt_ids"]) == render_prompt(tokenizer, seen, chosen.tools)
        completions = [tokenizer.decode(ready[k]) for k in ("chosen_ids", "rejected_ids")]
        assert all(text.endswith("<|im_end|>\n") for text in completions) and completions[0] != completions[1]
    assert '"arguments": {"expression": "80 / 8"}' in tokenizer.decode(dpo_ready.train_dataset[1]["chosen_ids"])
    assert "null" not in tokenizer.decode(dpo_ready.train_dataset[0]["prompt_ids"])  # no merged-schema holes
    labels = [bool(r["label"]) for r in kto_ready.train_dataset]
    assert len(labels) == 5 and labels.count(False) == 1
    assert tokenizer.decode(kto_ready.train_dataset[4]["completion_ids"]) == "Hello Anna!<|im_end|>\n"


def _cli(*argv: str) -> int:
    parser = argparse.ArgumentParser(prog="agentkit")
    add_parser(parser.add_subparsers(dest="command", required=True))
    return run(parser.parse_args(list(argv)))


def test_cli_exit_codes(log: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert _cli("pairs", str(log), "--out", str(tmp_path / "ok"), "--source", "env") == 0
    assert "Wrote 1 DPO pairs and 5 KTO rows" in capsys.readouterr().out
    lonely = tmp_path / "lonely.db"
    _rollout(RewardLogger(lonely, model="m"), TASKS[0], ["Each child gets 10 shells."], tmp_path)
    assert _cli("pairs", str(lonely), "--out", str(tmp_path / "none")) == 1
    err = capsys.readouterr().err
    assert "no pairs or KTO rows" in err and "1 with a single rollout" in err
    assert not (tmp_path / "none" / "dpo").exists() and (tmp_path / "none" / "summary.json").exists()
    (tmp_path / "junk.db").write_text("not a database " * 50)
    assert _cli("pairs", str(tmp_path / "junk.db"), "--out", str(tmp_path / "bad")) == 2
    assert "not an agentkit reward log" in capsys.readouterr().err
    assert _cli("pairs", str(log), "--out", str(tmp_path / "m2"), "--model", "m2") == 1  # one m2 episode: no pair

"""The reward log: schema, durability under SIGKILL, concurrent writers, feedback, judges, dataset loading."""

from __future__ import annotations

import json
import signal
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from agentkit import Agent, ConfigError
from agentkit.evaluate import evaluate
from agentkit.rewards import LLMJudge, RewardLog, RewardLogger, adapter_version, load_dataset
from agentkit.tasks import generate_tasks
from agentkit.testing import OFFLINE_ENV, ScriptedChatModel, tool_call, tool_reply
from agentkit.tools import calculator

# A child process that runs real agent episodes through a RewardLogger and prints each episode id once its write
# returned. The answer is long so that a kill often lands inside a write.
_CHILD = textwrap.dedent(
    """
    import sys
    from agentkit import Agent
    from agentkit.rewards import RewardLogger
    from agentkit.testing import ScriptedChatModel

    path, count = sys.argv[1], int(sys.argv[2])
    logger = RewardLogger(path, model="child-model")
    agent = Agent(ScriptedChatModel(responses=["The answer is 42. " * 400], repeat=True), hooks=[logger])
    for i in range(count):
        result = agent.invoke(f"question {i}?")
        print(result.episode_id, flush=True)
    """
)


def _child(path: Path, count: int) -> subprocess.Popen[str]:
    env = {**OFFLINE_ENV, "PATH": "/usr/bin:/bin", "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    return subprocess.Popen(
        [sys.executable, "-c", _CHILD, str(path), str(count)], stdout=subprocess.PIPE, text=True, env=env
    )


def _arith(n: int, seed: int = 0) -> list:
    return generate_tasks(n, seed=seed, weights={"arithmetic-1": 1.0})


def _solver(messages: list) -> object:
    """Solve an arithmetic-1 task the gold way: one calculator call, then the result as the answer."""
    from langchain_core.messages import ToolMessage

    results = [m for m in messages if isinstance(m, ToolMessage)]
    if not results:
        question = next(m for m in messages if m.type == "human").content
        task = next(t for t in _arith(6) if t.question == question)
        return tool_reply(tool_call("calculator", **task.plan[0].args))
    return f"The answer is {str(results[-1].content).split()[0]}."


def test_sigkill_mid_stream_loses_no_finished_episode(tmp_path: Path) -> None:
    path = tmp_path / "log.db"
    child = _child(path, 10_000)
    assert child.stdout is not None
    done = [child.stdout.readline().strip() for _ in range(40)]
    child.send_signal(signal.SIGKILL)
    done += [line.strip() for line in child.stdout]  # ids printed before the kill landed
    child.wait()
    assert child.returncode == -signal.SIGKILL
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    log = RewardLog(path)
    logged = {e.episode_id for e in log.episodes()}
    assert set(done) <= logged and len(logged) - len(done) <= 1  # at most the episode being written, committed
    episode = log.episodes()[0]
    assert episode.model == "child-model" and episode.status == "finished"
    log.feedback(done[0], thumbs=True)  # the log is writable after the crash
    assert log.episodes()[0].thumbs() is True


def test_several_processes_log_at_once(tmp_path: Path) -> None:
    path = tmp_path / "log.db"
    children = [_child(path, 25) for _ in range(3)]
    printed = []
    for child in children:
        out, _ = child.communicate(timeout=120)
        assert child.returncode == 0
        printed += out.split()
    episodes = RewardLog(path).episodes()
    assert len(printed) == 75 and sorted(e.episode_id for e in episodes) == sorted(printed)


def test_threads_map_episodes_to_tasks_and_checker_rewards(tmp_path: Path) -> None:
    tasks = _arith(6)
    logger = RewardLogger(tmp_path / "log.db", model="m", tools=[calculator], tasks=tasks, rules=[_short])
    llm = ScriptedChatModel(responses=[_solver], repeat=True)
    report = evaluate(llm, tasks, hooks=[logger], concurrency=3)
    assert report.overall.success == 1.0
    episodes = logger.log.episodes()
    assert sorted(e.task_id or "" for e in episodes) == sorted(t.id for t in tasks)
    by_task = {t.id: t for t in tasks}
    for episode in episodes:
        assert episode.question == by_task[episode.task_id or ""].question
        assert [(r.source, r.name, r.value) for r in episode.rewards] == [
            ("env", "check", 1.0),
            ("rule", "_short", 1.0),
        ]
        assert [s["type"] for s in episode.steps] == ["Action", "Observation", "Final"]
        assert all(s["latency"] >= 0 for s in episode.steps)
        assert episode.tools[0]["function"]["name"] == "calculator"
        assert [m["type"] for m in episode.messages] == ["system", "human", "ai", "tool", "ai"]
        assert episode.turns[0]["tool_calls"][0]["name"] == "calculator" and episode.turns[0]["message_index"] == 2
        assert episode.usage["total_tokens"] > 0 and episode.model_calls == 2


def _short(result: object) -> bool:
    return getattr(result, "n_steps", 99) <= 2


def test_task_context_overrides_and_ambiguous_tasks_are_refused(tmp_path: Path) -> None:
    task = _arith(1)[0]
    clone = type(task)("other-id", task.category, task.question, task.expected, task.plan, task.final)
    with pytest.raises(ConfigError, match="same question"):
        RewardLogger(tmp_path / "log.db", tasks=[task, clone])
    logger = RewardLogger(tmp_path / "log.db", tasks=[task])
    agent = Agent(ScriptedChatModel(responses=[f"It is {task.expected}."], repeat=True), hooks=[logger])
    with logger.task(clone):
        agent.invoke(task.question)
    with logger.task("just-an-id"):
        agent.invoke(task.question)
    with logger.task(task.id):  # an id of a known task: its checker applies
        agent.invoke(task.question)
    agent.invoke("Another question?")
    first, second, third, fourth = logger.log.episodes()
    assert [e.task_id for e in (first, second, third, fourth)] == ["other-id", "just-an-id", task.id, None]
    assert [r.source for r in first.rewards] == ["env"] and not second.rewards and second.reward() is None
    assert third.reward() == 1.0 and fourth.reward() is None


def test_feedback_later_from_another_handle_and_dataset(tmp_path: Path) -> None:
    path = tmp_path / "log.db"
    judge = LLMJudge(ScriptedChatModel(responses=["Grade: 8"], repeat=True))
    mute = LLMJudge(ScriptedChatModel(responses=["no idea"], repeat=True), name="mute")
    logger = RewardLogger(path, model="m", tasks=_arith(2), judges=[judge, mute])
    llm = ScriptedChatModel(responses=[_solver], repeat=True)
    ids = [Agent(llm, [calculator], hooks=[logger]).invoke(t.question).episode_id for t in _arith(2)]
    later = RewardLog(path)  # e.g. a feedback web app
    later.feedback(ids[0], thumbs=False, comment="wrong units")
    later.feedback(ids[1], score=0.25, user="ana")
    with pytest.raises(ValueError, match="No episode 'nope'"):
        later.feedback("nope", thumbs=True)
    with pytest.raises(ValueError, match="exactly one"):
        later.feedback(ids[0], thumbs=True, score=1.0)
    data = load_dataset(path)
    assert data.num_rows == 2 and data[0]["episode_id"] == ids[0]
    first = data[0]["rewards"]
    assert [(r["source"], r["name"], r["value"], r["label"]) for r in first] == [
        ("env", "check", 1.0, None),
        ("judge", "llm_judge", 0.8, None),
        ("feedback", "user", 0.0, False),
    ]
    assert first[2]["comment"] == "wrong units"
    assert data[0]["reward"] == pytest.approx((1.0 + 0.8 + 0.0) / 3)
    assert load_dataset(path, sources=["feedback"])[1]["reward"] == 0.25
    assert json.loads(data[1]["messages"])[1]["data"]["content"] == _arith(2)[1].question


def test_bad_logs_and_append_only(tmp_path: Path) -> None:
    junk = tmp_path / "junk.db"
    junk.write_bytes(b"this is not sqlite at all" * 100)
    with pytest.raises(ConfigError, match="not an agentkit reward log"):
        RewardLog(junk).episodes()
    other = tmp_path / "other.db"
    with sqlite3.connect(other) as conn:
        conn.execute("CREATE TABLE notes (x)")
    with pytest.raises(ConfigError, match="not an agentkit reward log"):
        RewardLog(other).add_reward("x", 1.0, source="rule")
    with pytest.raises(ConfigError, match="No reward log"):
        load_dataset(tmp_path / "missing.db")

    path = tmp_path / "log.db"
    logger = RewardLogger(path, model="m")
    result = Agent(ScriptedChatModel(responses=["hi"], repeat=True), hooks=[logger]).invoke("hello")
    with pytest.raises(ValueError, match="already in"):
        logger.on_episode_end(result)
    logger.feedback(result.episode_id, thumbs=True)
    with sqlite3.connect(path) as conn:
        for statement in ("UPDATE episodes SET status = 'x'", "DELETE FROM rewards", "DELETE FROM episodes"):
            with pytest.raises(sqlite3.IntegrityError, match="append-only"):
                conn.execute(statement)
        conn.execute(
            "INSERT INTO episodes (episode_id, model, status, created_at, record) VALUES ('f', '', '', 0, '{')"
        )
    with pytest.warns(UserWarning, match=r"row 2 \(f\) is not a record"):
        episodes = RewardLog(path).episodes()
    assert [e.episode_id for e in episodes] == [result.episode_id]


def test_local_model_turns_keep_token_ids_logprobs_and_stop_reason(tiny_dir: Path, tmp_path: Path) -> None:
    from agentkit.llm import LocalChatModel

    llm = LocalChatModel.from_pretrained(tiny_dir, return_logprobs=True, max_new_tokens=6)
    logger = RewardLogger(tmp_path / "log.db", model=llm)
    Agent(llm, hooks=[logger], max_retries=0).invoke("hi")
    (episode,) = logger.log.episodes()
    assert episode.model == str(tiny_dir) and episode.adapter is None
    for turn in episode.turns:
        assert turn["stop_reason"] in ("stop", "eos", "length")
        assert len(turn["token_ids"]) == len(turn["logprobs"]) == turn["usage"]["output_tokens"] > 0
        assert all(p <= 0 for p in turn["logprobs"])


def test_adapter_version_changes_with_content(tmp_path: Path) -> None:
    adapter = tmp_path / "adapter"
    adapter.mkdir()
    (adapter / "adapter_model.safetensors").write_bytes(b"one")
    first = adapter_version(adapter)
    (adapter / "adapter_model.safetensors").write_bytes(b"two")
    assert first.startswith("adapter@") and adapter_version(adapter) != first
    assert adapter_version("v3") == "v3"

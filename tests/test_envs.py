"""TaskEnv and user task files: each checker, bad files, the Gymnasium-style loop with a real agent."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from agentkit import Agent
from agentkit.envs import TaskEnv, UserTask, load_task_file
from agentkit.evaluate import evaluate
from agentkit.steps import AgentResult, Final
from agentkit.tasks import Task, generate_tasks, save_tasks
from agentkit.testing import ScriptedChatModel, tool_call, tool_reply


def _write(path: Path, *lines: object) -> Path:
    path.write_text("".join((x if isinstance(x, str) else json.dumps(x)) + "\n" for x in lines), encoding="utf-8")
    return path


def _answer(task: Task, answer: str, status: str = "finished") -> bool:
    return task.check(AgentResult(task.question, answer, status, [Final(1, answer)]))  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("checker", "expected", "good", "bad"),
    [
        ("number", "1234.5", "It costs 1,234.50 in total.", "It costs 1234 or so."),
        ("number", "-3", "The result is -3", "3 or 4, then -3 and finally 7"),
        ("contains", "Buy  milk", "The note says: buy milk on Monday.", "The note says: buy bread."),
        ("exact", "Paris", "  Paris\n", "Paris."),
        ("regex", r"\b\d{2}:\d{2}\b", "It is 09:41 in Tokyo.", "It is nine in Tokyo."),
    ],
)
def test_each_checker(tmp_path: Path, checker: str, expected: str, good: str, bad: str) -> None:
    path = _write(tmp_path / "t.jsonl", {"question": "q?", "expected": expected, "checker": checker})
    (task,) = load_task_file(path)
    assert isinstance(task, UserTask) and task.category == "custom"
    assert _answer(task, good)
    assert not _answer(task, bad)
    assert not _answer(task, good, status="max_steps")  # only finished episodes count, as for built-in tasks
    assert not _answer(task, "")


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("{not json", "invalid JSON: Expecting property name enclosed in double quotes at column 2"),
        ('["a list"]', "expected a JSON object"),
        ({"expected": "1", "checker": "number"}, "'question' must be a non-empty string"),
        ({"question": "q", "expected": "", "checker": "exact"}, "'expected' must be a non-empty string"),
        ({"question": "q", "expected": "1", "checker": "fuzzy"}, "'checker' must be one of"),
        ({"question": "q", "expected": "ten", "checker": "number"}, "could not convert"),
        ({"question": "q", "expected": "([", "checker": "regex"}, "unterminated"),
        ({"question": "q", "expected": "x", "checker": "exact", "files": {"../x": "y"}}, "inside the workspace"),
        ({"question": "q", "expected": "x", "checker": "exact", "files": {"/etc/x": "y"}}, "inside the workspace"),
        ({"question": "q", "expected": "x", "checker": "exact", "files": ["a"]}, "'files' must map"),
        ({"question": "q", "expected": "x", "checker": "exact", "memories": "a fact"}, "'memories' must be a list"),
        ({"question": "q", "expected": "x", "checker": "exact", "memories": [""]}, "'memories' must be a list"),
    ],
)
def test_bad_task_files_name_the_line(tmp_path: Path, line: object, message: str) -> None:
    path = _write(tmp_path / "bad.jsonl", {"question": "fine?", "expected": "1", "checker": "number"}, line)
    with pytest.raises(ValueError, match=r"bad\.jsonl:2: ") as caught:
        load_task_file(path)
    assert message in str(caught.value)


def test_repeated_ids_and_empty_files(tmp_path: Path) -> None:
    task = {"question": "q", "expected": "1", "checker": "number"}
    with pytest.raises(ValueError, match=r"dup\.jsonl:3: task id .* repeats line 1"):
        load_task_file(_write(tmp_path / "dup.jsonl", task, "", task))
    with pytest.raises(ValueError, match="no tasks"):
        load_task_file(_write(tmp_path / "empty.jsonl", ""))


def test_task_files_round_trip_with_generated_tasks(tmp_path: Path) -> None:
    generated = generate_tasks(4, split="heldout", seed=3)
    save_tasks(generated, str(tmp_path / "gen.jsonl"))
    user = load_task_file(_write(tmp_path / "u.jsonl", {"question": "2+2?", "expected": "4", "checker": "number"}))
    both = tmp_path / "both.jsonl"
    _write(both, *(json.dumps(t.to_json()) for t in [*load_task_file(tmp_path / "gen.jsonl"), *user]))
    loaded = load_task_file(both)
    assert loaded[:4] == generated
    assert loaded[4] == user[0] and isinstance(loaded[4], UserTask)


def test_reset_step_loop_with_a_real_agent(tmp_path: Path) -> None:
    path = _write(
        tmp_path / "t.jsonl",
        {
            "question": "What does notes/a.txt say?",
            "expected": "Call Ben",
            "checker": "contains",
            "category": "file",
            "files": {"notes/a.txt": "Call Ben at noon."},
        },
        {"question": "What is 6 times 7?", "expected": "42", "checker": "number"},
    )
    with TaskEnv.from_file(path, seed=1) as env:
        seen = []
        for _ in range(2):
            question, info = env.reset()
            task = info["task"]
            seen.append(task.id)
            if task.category == "file":
                assert (info["workspace"] / "notes" / "a.txt").read_text() == "Call Ben at noon."
                replies = [tool_reply(tool_call("read_file", path="notes/a.txt")), "It says: Call Ben at noon."]
            else:
                replies = ["It is 41."]  # wrong on purpose
            result = Agent(ScriptedChatModel(responses=replies), tools=env.tools()).invoke(question)
            observation, reward, terminated, truncated, info = env.step(result)
            assert (observation, terminated, truncated) == (question, True, False)
            assert reward == (1.0 if task.category == "file" else 0.0) and info["success"] is (reward == 1.0)
        assert sorted(seen) == sorted(t.id for t in env.tasks)  # one pass visits every task once
        workspace = env.workspace
        _, reward, *_ = env.step("It is 42.")  # a bare answer string
    assert workspace is not None and not workspace.exists()  # closing removes the workspace


def test_each_episode_gets_a_memory_of_its_own_holding_the_tasks_memories(tmp_path: Path) -> None:
    path = _write(
        tmp_path / "t.jsonl",
        {
            "question": "What is my dog called?",
            "expected": "Hugo",
            "checker": "contains",
            "memories": ["The user's dog is called Hugo.", "The user's favourite city is Lisbon."],
        },
    )
    with TaskEnv.from_file(path) as env:
        for _ in range(2):  # a second episode of the same task starts from the task's memories again
            question, info = env.reset()
            assert {h.record.text for h in info["memory"].search("dog", k=5)} == set(info["task"].memories)
            replies = [
                tool_reply(tool_call("remember", text="The user's cat is called Mia.")),
                tool_reply(tool_call("recall", query="the user's dog")),
                "Your dog is called Hugo.",
            ]
            result = Agent(ScriptedChatModel(responses=replies), tools=env.tools()).invoke(question)
            assert "The user's dog is called Hugo." in result.observations[1].content
            assert env.step(result)[1] == 1.0
            assert len(info["memory"].search("pet", k=5)) == 3  # what the episode stored went to its own memory


def test_seeds_replay_and_options_pick_a_task() -> None:
    env = TaskEnv.builtin(6, split="train", seed=0)
    first = [env.reset(seed=7)[1]["task_id"]] + [env.reset()[1]["task_id"] for _ in range(5)]
    again = [env.reset(seed=7)[1]["task_id"]] + [env.reset()[1]["task_id"] for _ in range(5)]
    assert first == again and sorted(first) == sorted(t.id for t in env.tasks)
    wanted = env.tasks[3]
    assert env.reset(options={"task_id": wanted.id})[0] == wanted.question
    with pytest.raises(KeyError):
        env.reset(options={"task_id": "nope"})
    fresh = TaskEnv(env.tasks)
    with pytest.raises(RuntimeError, match="reset"):
        fresh.step("x")
    with pytest.raises(ValueError):
        TaskEnv([])
    env.close()


def test_user_tasks_work_in_evaluate(tmp_path: Path) -> None:
    path = _write(tmp_path / "t.jsonl", {"question": "What is 6 times 7?", "expected": "42", "checker": "number"})
    llm = ScriptedChatModel(responses=[tool_reply(tool_call("calculator", expression="6 * 7")), "6 times 7 is 42."])
    report = evaluate(llm, load_task_file(path), concurrency=1)
    assert report.overall.success == 1.0 and report.categories["custom"].n == 1


def test_memory_tasks_are_evaluated_with_the_memory_tools_on_their_own_memories() -> None:
    recalls = generate_tasks(2, split="heldout", seed=0, weights={"recall": 1.0})
    remember = generate_tasks(1, split="heldout", seed=0, weights={"remember": 1.0})[0]
    arithmetic = generate_tasks(1, split="heldout", seed=0, weights={"arithmetic-1": 1.0})[0]
    replies: list[object] = []
    for task in recalls:  # the gold answer is only right when recall showed the task's own memories
        replies += [tool_reply(tool_call("recall", query=task.plan[0].args["query"])), task.final]
    replies += [tool_reply(tool_call("remember", text=remember.expected)), "Noted.", "I would rather not."]
    llm = ScriptedChatModel(responses=replies)
    report = evaluate(llm, [*recalls, remember, arithmetic], concurrency=1)  # one at a time: the script is in order
    assert [o.success for o in report.outcomes] == [True, True, True, False]
    assert all(fact in str(llm.calls[1].messages[-1].content) for fact in recalls[0].memories)
    assert "recall" in llm.calls[0].tools and "recall" not in llm.calls[-1].tools  # memory tools for memory tasks


def test_many_memory_tasks_reuse_one_memory_per_concurrent_episode(monkeypatch: pytest.MonkeyPatch) -> None:
    # chromadb keeps every in-process collection's memory (about 2.5 MB) even once deleted, so memories are reused:
    # emptied, then given the next task's facts.
    from agentkit.memory import ChromaMemory

    opened: list[ChromaMemory] = []
    real = ChromaMemory.ephemeral.__func__  # type: ignore[attr-defined]

    def ephemeral(cls: type[ChromaMemory], **settings: object) -> ChromaMemory:  # counts, then opens a real one
        opened.append(real(cls, **settings))
        return opened[-1]

    monkeypatch.setattr(ChromaMemory, "ephemeral", classmethod(ephemeral))
    tasks = generate_tasks(6, split="heldout", seed=1, weights={"recall": 1.0})
    replies: list[object] = []
    for task in tasks:
        replies += [tool_reply(tool_call("recall", query=task.plan[0].args["query"])), task.final]
    llm = ScriptedChatModel(responses=replies)
    report = evaluate(llm, tasks, concurrency=1)
    assert report.overall.success == 1.0 and len(opened) == 1
    for task, call in zip(tasks, llm.calls[1::2], strict=True):  # each recall showed its own task's facts only
        shown = str(call.messages[-1].content)
        assert shown.count("- [fact]") == len(task.memories) and all(f in shown for f in task.memories)
    with TaskEnv(tasks) as env:
        for _ in range(3):
            env.reset()
            assert env.memory is not None and env.memory.count() == len(env.task.memories)  # type: ignore[union-attr]
    assert len(opened) == 2

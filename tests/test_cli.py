"""The command line: run, chat and eval on a default model retrained where `agentkit train-default` puts it.

The "default model" here is a tiny real model trained in the test on one gold episode rendered through the real
agent, so the whole path is exercised: lookup in ``$AGENTKIT_HOME``, loading, chat template with the built-in tools,
tool call, observation, answer, trace.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from transformers import AutoTokenizer

from agentkit.cli import _load, main, make_parser
from agentkit.demonstrations import END_OF_TURN, demonstrate
from agentkit.llm.tiny import build_tiny_model, train_to_say
from agentkit.memory import ChromaMemory, ConversationMemory
from agentkit.rewardlog import RewardLog
from agentkit.tasks import PlannedCall, Task, save_tasks

QUESTION = "What is 17 times 23?"
TASK = Task(
    "t17x23", "arithmetic-1", QUESTION, "391", (PlannedCall("calculator", {"expression": "17 * 23"}),), "It is {r0}."
)


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("agentkit-home")
    probe = build_tiny_model(root / "probe", vocab_size=300, hidden_size=8, layers=1, heads=1)
    text = demonstrate([TASK], AutoTokenizer.from_pretrained(probe))[0].text
    model = build_tiny_model(root / "default-model", corpus=[text], vocab_size=1024, hidden_size=64, context=2048)
    demo = demonstrate([TASK], AutoTokenizer.from_pretrained(model))[0]
    train_to_say(model, [(demo.text[:a], demo.text[a : b - len(END_OF_TURN)]) for a, b in demo.learned], steps=400)
    return root


@pytest.fixture
def default_home(home: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("AGENTKIT_HOME", str(home))
    return home


@pytest.mark.parametrize(
    "flags", [[], ["--constrained"], ["--quantize", "8bit"]], ids=["free", "constrained", "eight-bit"]
)
def test_run_uses_the_default_model_and_prints_the_trace(
    default_home: Path, capsys: pytest.CaptureFixture[str], flags: list[str]
):
    # The model writes valid calls already, so the constrained run must give the very same trace; so must 8-bit
    # weights (LLM.int8() keeps the outlier features in 16 bits).
    assert main(["run", QUESTION, *flags]) == 0
    out = capsys.readouterr().out
    assert 'call      calculator({"expression": "17 * 23"})' in out
    assert "observed  391" in out
    assert "Answer: It is 391." in out
    assert "status=finished steps=2" in out


@pytest.mark.parametrize(("bits", "layer"), [("4bit", "Linear4bit"), ("8bit", "Linear8bitLt")])
def test_quantize_loads_the_weights_in_that_many_bits(default_home: Path, bits: str, layer: str) -> None:
    llm = _load(make_parser().parse_args(["run", QUESTION, "--device", "cpu", "--quantize", bits]))
    assert layer in {type(module).__name__ for module in llm.model.modules()}  # type: ignore[attr-defined]


def test_chat_runs_one_episode_per_turn(
    default_home: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
):
    lines = iter([QUESTION, ""])
    monkeypatch.setattr("builtins.input", lambda _prompt: next(lines))
    assert main(["chat"]) == 0
    out = capsys.readouterr().out
    assert out.count("status=") == 1 and "391" in out


def test_run_logs_the_episode_and_feedback_rates_it(
    default_home: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
):
    log = tmp_path / "episodes.sqlite"
    assert main(["run", QUESTION, "--log", str(log)]) == 0
    [episode] = RewardLog(log).episodes()
    assert f"Logged as episode {episode.episode_id} in {log}" in capsys.readouterr().out
    assert (episode.question, episode.answer, episode.status) == (QUESTION, "It is 391.", "finished")
    assert "calculator" in [tool["function"]["name"] for tool in episode.tools]
    assert main(["feedback", episode.episode_id, "--down", "--comment", "too terse", "--log", str(log)]) == 0
    [rated] = RewardLog(log).episodes()
    assert rated.thumbs() is False and rated.rewards[-1].comment == "too terse"
    assert main(["feedback", "no-such-episode", "--up", "--log", str(log)]) == 2
    assert "No episode 'no-such-episode'" in capsys.readouterr().err
    assert main(["feedback", episode.episode_id, "--up", "--log", str(tmp_path / "other.sqlite")]) == 2
    assert "No reward log at" in capsys.readouterr().err and not (tmp_path / "other.sqlite").exists()
    with pytest.raises(SystemExit):  # thumbs up and down at once: argparse refuses
        main(["feedback", episode.episode_id, "--up", "--down", "--log", str(log)])


def test_run_logs_under_agentkit_home_by_default_and_not_with_no_log(
    default_home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    home = tmp_path / "home"
    shutil.copytree(default_home / "default-model", home / "default-model")
    monkeypatch.setenv("AGENTKIT_HOME", str(home))
    assert main(["run", QUESTION, "--no-log"]) == 0
    assert not (home / "episodes.sqlite").exists()
    assert main(["run", QUESTION]) == 0
    assert len(RewardLog(home / "episodes.sqlite").episodes()) == 1


def test_a_log_that_cannot_be_used_fails_before_the_model_loads(
    default_home: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
):
    not_a_log = tmp_path / "notes.txt"
    not_a_log.write_text("my notes, not a database\n" * 100)
    for log in (not_a_log, tmp_path):  # a file of something else; a folder
        assert main(["run", QUESTION, "--log", str(log)]) == 2
        err = capsys.readouterr()
        assert err.out == "" and err.err.startswith("agentkit: error:") and str(log) in err.err
    assert not_a_log.read_text() == "my notes, not a database\n" * 100


def test_run_with_memory_remembers_the_answer_and_recalls_it_next_time(default_home: Path, tmp_path: Path):
    # The tiny model never saw the memory tools in its prompt, so its answers here are not the point: what the
    # agent stores and recalls around them is.
    store, log = tmp_path / "memory", tmp_path / "episodes.sqlite"
    assert main(["run", QUESTION, "--memory", str(store), "--log", str(log)]) == 0
    [first] = RewardLog(log).episodes()
    assert first.memory_ids == []  # nothing stored yet
    assert {"remember", "recall"} <= {tool["function"]["name"] for tool in first.tools}
    [kept] = ChromaMemory(store).search(QUESTION)
    assert kept.record.text == f"Q: {QUESTION}\nA: {first.answer}"
    main(["run", "What is 17 times 24?", "--memory", str(store), "--log", str(log)])
    second = RewardLog(log).episodes()[1]
    assert second.memory_ids == [kept.record.id]  # the first episode was recalled into the second one's prompt
    assert kept.record.text in second.messages[0]["data"]["content"]


def test_chat_with_a_thread_picks_the_conversation_up_after_a_restart(
    default_home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
):
    log = tmp_path / "episodes.sqlite"
    for question in (QUESTION, "And 17 times 24?"):  # two sessions, as two runs of the command
        lines = iter([question, ""])
        monkeypatch.setattr("builtins.input", lambda _prompt, lines=lines: next(lines))
        assert main(["chat", "--thread", "sums", "--log", str(log)]) == 0
    out = capsys.readouterr().out
    assert "Thread 'sums'" in out and ": 0 earlier turn(s)" in out and ": 1 earlier turn(s)" in out
    first, second = RewardLog(log).episodes()
    contents = [message["data"]["content"] for message in second.messages]
    assert QUESTION in contents and first.answer in contents  # the first session's turn, in the second's prompt
    assert "sums" in ConversationMemory(default_home / "conversations.sqlite3").threads()


def test_eval_writes_a_json_summary_and_a_chart(default_home: Path, tmp_path: Path):
    tasks = tmp_path / "tasks.jsonl"
    save_tasks([TASK], str(tasks))
    assert main(["eval", "--tasks", str(tasks), "--out", str(tmp_path / "report")]) == 0
    summary = json.loads((tmp_path / "report" / "summary.json").read_text())
    assert summary["overall"]["n"] == 1 and summary["categories"]["arithmetic-1"]["success"] == 1.0
    assert summary["overall"]["well_formed"] == 1.0 and summary["overall"]["mean_steps"] == 2.0
    assert (tmp_path / "report" / "success.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_eval_draws_the_categories_named_memory_ones_included(
    default_home: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
):
    out = tmp_path / "report"
    assert main(["eval", "--categories", "recall, remember", "--n", "4", "--out", str(out)]) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["overall"]["n"] == 4 and set(summary["categories"]) == {"recall", "remember"}
    capsys.readouterr()
    assert main(["eval", "--categories", "poetry", "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("agentkit: error: Unknown task categories ['poetry']") and "'recall'" in err


def test_no_default_model_is_one_line_saying_what_to_do(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
):
    # An install without the shipped checkpoint, and nothing retrained on this machine.
    monkeypatch.setenv("AGENTKIT_HOME", str(tmp_path))
    monkeypatch.setattr("agentkit.llm.default.SHIPPED_MODEL", tmp_path / "not-installed")
    assert main(["run", "Hi"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("agentkit: error:") and "agentkit train-default" in err and len(err.splitlines()) == 1
    assert main(["run", "Hi", "--model", str(tmp_path / "nowhere")]) == 2
    assert len(capsys.readouterr().err.strip().splitlines()) == 1


def test_the_console_script_runs_the_main_job(home: Path):
    done = subprocess.run(
        [sys.executable, "-m", "agentkit.cli", "run", QUESTION],
        check=False,
        capture_output=True,
        text=True,
        timeout=180,
        env={**os.environ, "AGENTKIT_HOME": str(home)},
    )
    assert done.returncode == 0, done.stderr
    assert "Answer: It is 391." in done.stdout

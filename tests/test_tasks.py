"""Generated tasks: splits never overlap, generation is deterministic, gold plans pass their own checkers."""

from __future__ import annotations

from pathlib import Path

import pytest
from transformers import AutoTokenizer

from agentkit.demonstrations import END_OF_TURN, demonstrate
from agentkit.steps import Action, AgentResult, Final, Observation
from agentkit.tasks import CATEGORIES, MEMORY_CATEGORIES, Task, generate_tasks, load_tasks, save_tasks

EVERY = dict.fromkeys((*CATEGORIES, *MEMORY_CATEGORIES), 1.0)


def _result(answer: str, *steps: object, status: str = "finished") -> AgentResult:
    return AgentResult(input="q", answer=answer, status=status, steps=[*steps, Final(len(steps) + 1, answer)])  # type: ignore[arg-type]


def test_train_and_heldout_never_share_a_task():
    train = {(t.question, t.memories) for t in generate_tasks(3000, split="train", seed=1, weights=EVERY)}
    heldout = {(t.question, t.memories) for t in generate_tasks(300, split="heldout", seed=2, weights=EVERY)}
    assert not train & heldout
    assert len(heldout) == 300
    # Apart from recall questions, asked of other memories, not even the question text is shared.
    assert not {q for q, m in train if not m} & {q for q, m in heldout}


def test_recall_tasks_hold_their_fact_among_others_on_other_subjects():
    tasks = generate_tasks(60, seed=9, weights={"recall": 1.0})
    assert len(tasks) > 20
    for task in tasks:
        [fact] = [m for m in task.memories if m.endswith(f" {task.expected}.")]
        subject = task.plan[0].args["query"].removeprefix("the user's ")
        assert fact.startswith(f"The user's {subject} ") and task.final.endswith(f"{task.expected}.")
        assert 2 <= len(task.memories) <= 4
        assert len({m.split(" is ")[0] for m in task.memories}) == len(task.memories)  # one fact per subject


def test_generation_is_deterministic_and_covers_every_category():
    first, second = generate_tasks(200, seed=7), generate_tasks(200, seed=7)
    assert first == second
    assert {t.category for t in first} == set(CATEGORIES)  # memory tasks only when asked for
    assert generate_tasks(200, seed=8) != first
    assert {t.category for t in generate_tasks(200, seed=7, weights=EVERY)} == set(EVERY)


def test_weights_select_categories_and_bad_arguments_are_refused():
    only = generate_tasks(20, weights={"arithmetic-2": 1.0})
    assert {t.category for t in only} == {"arithmetic-2"}
    with pytest.raises(ValueError, match="Unknown task categories"):
        generate_tasks(5, weights={"poetry": 1.0})
    with pytest.raises(ValueError, match="split"):
        generate_tasks(5, split="test")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="distinct"):
        generate_tasks(10_000, weights={"chat": 1.0})


def test_arithmetic_checker_reads_the_last_number():
    task = Task("t", "arithmetic-2", "q", "39")
    assert task.check(_result("39 shells are left."))
    assert task.check(_result("After buying 6 boxes, 39.0 shells are left."))
    assert not task.check(_result("39 shells, minus 9 is 30."))
    assert not task.check(_result("No idea."))
    assert not task.check(_result("39", status="max_steps"))


def test_time_checker_needs_the_right_zone_and_the_returned_time():
    task = Task("t", "time", "What time is it in Tokyo?", "Asia/Tokyo")
    call = Action(1, "current_time", {"timezone": "Asia/Tokyo"}, "c1")
    seen = Observation(1, "current_time", "c1", "2026-11-23T19:55:26+09:00 (Monday, Asia/Tokyo)", "ok", 0.0)
    assert task.check(_result("In Tokyo it is 2026-11-23T19:55.", call, seen))
    assert not task.check(_result("In Tokyo it is 2026-11-23T18:55.", call, seen))
    wrong_zone = Action(1, "current_time", {"timezone": "Europe/Paris"}, "c1")
    assert not task.check(_result("In Tokyo it is 2026-11-23T19:55.", wrong_zone, seen))


def test_file_and_chat_checkers():
    assert Task("t", "file", "q", "Buy milk today.").check(_result("notes.txt says: Buy milk today."))
    assert not Task("t", "file", "q", "Buy milk today.").check(_result("notes.txt says: Buy rice today."))
    chat = Task("t", "chat", "Hi, I am Anna.", "Anna")
    assert chat.check(_result("Hello Anna! How can I help you today?"))
    assert not chat.check(_result("Hello! How can I help you today?"))
    called = Action(1, "calculator", {"expression": "1+1"}, "c1")
    assert not chat.check(_result("Hello Anna!", called))


def test_remember_checker_needs_a_stored_text_with_the_subject_and_the_value():
    task = Task("t", "remember", "Remember that my sister is called Lena.", "The user's sister is called Lena.")

    def stored(text: str, status: str = "ok") -> list[object]:
        return [Action(1, "remember", {"text": text}, "c1"), Observation(1, "remember", "c1", "Remembered.", status)]  # type: ignore[arg-type]

    assert task.check(_result("Noted.", *stored("The user's sister is called Lena.")))
    assert task.check(_result("Noted.", *stored("My sister's name: lena")))  # any wording
    assert not task.check(_result("Noted.", *stored("The user's brother is called Lena.")))
    assert not task.check(_result("Noted.", *stored("The user's sister is called Emma.")))
    assert not task.check(_result("Noted.", *stored("The user's sister is called Lena.", status="error")))
    assert not task.check(_result("I will remember that your sister is called Lena."))  # said, never stored


def test_recall_checker_reads_the_answer():
    task = Task("t", "recall", "What is my dog called?", "Hugo", memories=("The user's dog is called Hugo.",))
    assert task.check(_result("Your dog is called Hugo."))
    assert not task.check(_result("Your dog is called Lena."))


def test_tasks_round_trip_through_jsonl(tmp_path: Path):
    tasks = generate_tasks(30, seed=3)
    save_tasks(tasks, str(tmp_path / "tasks.jsonl"))
    assert load_tasks(str(tmp_path / "tasks.jsonl")) == tasks
    (tmp_path / "bad.jsonl").write_text('{"id": "x"}\n')
    with pytest.raises(ValueError, match=r"bad.jsonl:1"):
        load_tasks(str(tmp_path / "bad.jsonl"))


def test_gold_plans_run_through_the_real_agent_and_learn_only_model_turns(tiny_dir: Path):
    tokenizer = AutoTokenizer.from_pretrained(tiny_dir)
    tasks = [next(t for t in generate_tasks(200, seed=4, weights=EVERY) if t.category == c) for c in EVERY]
    demos = demonstrate(tasks, tokenizer)
    for demo in demos:
        assert len(demo.learned) == len(demo.task.plan) + 1  # one turn per tool call, then the answer
        for start, end in demo.learned:
            turn = demo.text[start:end]
            assert turn.endswith(END_OF_TURN)
            assert "<|im_start|>" not in turn and "<tool_response>" not in turn
        assert demo.text.count("<tool_response>") == len(demo.task.plan)
    arithmetic = next(d for d in demos if d.task.category == "arithmetic-3")
    assert arithmetic.text[arithmetic.learned[-1][0] :].startswith(arithmetic.task.final.split("{")[0])
    # Memory episodes ran against a real memory: recall shows every stored fact, remember reports the id it stored.
    # Only they were offered the memory tools.
    assert all(('"name": "recall"' in d.text) == (d.task.category in MEMORY_CATEGORIES) for d in demos)
    recall = next(d for d in demos if d.task.category == "recall")
    shown = recall.text.split("<tool_response>\n")[1].split("</tool_response>")[0]
    assert all(f"- [fact] {fact} (score " in shown for fact in recall.task.memories)
    remember = next(d for d in demos if d.task.category == "remember")
    assert "Remembered (id " in remember.text.split("<tool_response>\n")[1]


def test_with_memory_every_task_is_played_with_the_memory_tools_and_its_plan_unchanged(tiny_dir: Path):
    tokenizer = AutoTokenizer.from_pretrained(tiny_dir)
    tasks = [next(t for t in generate_tasks(200, seed=4) if t.category == c) for c in ("arithmetic-2", "file")]
    plain, listed = demonstrate(tasks, tokenizer), demonstrate(tasks, tokenizer, memory=True)
    for before, after in zip(plain, listed, strict=True):
        assert '"name": "recall"' in after.text and '"name": "recall"' not in before.text
        # The same turns after a longer prompt: the model learns them with the memory tools listed too.
        turns = [before.text[a:b] for a, b in before.learned]
        assert [after.text[a:b] for a, b in after.learned] == turns


def test_time_demonstrations_each_read_a_clock_of_their_own(tiny_dir: Path):
    tokenizer = AutoTokenizer.from_pretrained(tiny_dir)
    tasks = [t for t in generate_tasks(300, seed=5) if t.category == "time"][:6]
    minutes = set()
    for demo in demonstrate(tasks, tokenizer):
        observed = demo.text.split("<tool_response>\n")[1].split("\n")[0]
        minutes.add(observed[:16])
        assert observed[:16] in demo.text[demo.learned[-1][0] :]  # the gold answer repeats that time
    assert len(minutes) == len(tasks)  # the system clock would give them all the same minute
    assert demonstrate(tasks[:1], tokenizer)[0].text == demonstrate(tasks[:1], tokenizer)[0].text


def test_demonstrations_played_in_several_processes_are_the_same_and_in_order(tiny_dir: Path):
    tokenizer = AutoTokenizer.from_pretrained(tiny_dir)
    tasks = generate_tasks(30, seed=6)
    alone = demonstrate(tasks, tokenizer)
    shared = demonstrate(tasks, tokenizer, processes=4)
    assert [d.task for d in shared] == tasks
    assert [(d.text, d.learned) for d in shared] == [(d.text, d.learned) for d in alone]


def test_the_gold_plan_model_solves_every_kind_of_task_through_evaluate() -> None:
    from agentkit.demonstrations import gold_plan_model
    from agentkit.evaluate import evaluate

    tasks = generate_tasks(32, seed=3, weights={c: 1.0 for c in (*CATEGORIES, *MEMORY_CATEGORIES)})
    report = evaluate(gold_plan_model(tasks), tasks, concurrency=4)
    assert report.overall.success == 1.0 and set(report.categories) == {*CATEGORIES, *MEMORY_CATEGORIES}
    # A question it has no plan for fails that episode, as any model fault does, and no other.
    other = evaluate(gold_plan_model(tasks[:1]), tasks[:2], concurrency=1)
    assert [o.success for o in other.outcomes] == [True, False] and other.outcomes[1].status != "finished"

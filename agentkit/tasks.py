"""Generated tasks for the built-in tools: what the default model is trained on and evaluated with.

Every task has a question, the files its workspace and the facts its long-term memory need, a gold plan (the tool
calls a good agent makes, one per step, each able to use the results before it) and a checker. Categories:

* ``arithmetic-1``, ``arithmetic-2``, ``arithmetic-3``: word problems of one to three calculator steps;
* ``time``: the current time, date or weekday somewhere (`current_time`);
* ``file``: what a file in the workspace says (`read_file`);
* ``remember``: the user states a fact about themselves, which the agent stores (`remember`);
* ``recall``: the user asks for such a fact, which long-term memory holds among others (`recall`);
* ``chat``: greetings and questions about the agent, which need no tool.

The memory categories (`MEMORY_CATEGORIES`) are drawn only when named in ``weights``: the shipped default model is
not trained on them (see the README's default-model section for why), but an agent on a real model can be evaluated
on them, with the real memory tools.

Training and held-out tasks never share a task: one is held out when a hash of its question (for recall,
with the memories it is asked of) says so, and `generate_tasks` draws each split from its own side of that line,
whatever the seeds.
"""

from __future__ import annotations

import hashlib
import json
import random
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from agentkit.steps import Action, AgentResult, Observation

__all__ = [
    "CATEGORIES",
    "MEMORY_CATEGORIES",
    "MULTI_STEP",
    "PlannedCall",
    "Split",
    "Task",
    "generate_tasks",
    "load_tasks",
    "save_tasks",
]

Split = Literal["train", "heldout"]

CATEGORIES: tuple[str, ...] = ("arithmetic-1", "arithmetic-2", "arithmetic-3", "time", "file", "chat")
"""What `generate_tasks` draws by default: the tasks of the built-in tools the shipped default model was trained on."""
MEMORY_CATEGORIES: tuple[str, ...] = ("remember", "recall")
"""Tasks for the `remember` and `recall` tools, drawn only when asked for by name (see `generate_tasks`)."""
MULTI_STEP: tuple[str, ...] = ("arithmetic-2", "arithmetic-3")
_HELDOUT_EVERY = 5  # one question in five is held out
_NUMBER = re.compile(r"-?\d+(?:\.\d+)?")
_FACT = re.compile(r"The user's (?P<subject>.+?) is (?:called )?(?P<value>.+)\.")


@dataclass(frozen=True, slots=True)
class PlannedCall:
    """One gold tool call; ``{r0}``, ``{r1}``, ... in argument values stand for the results of earlier calls."""

    tool: str
    args: Mapping[str, str]


@dataclass(frozen=True, slots=True)
class Task:
    """One task with its gold plan and checker.

    Attributes:
        id: A stable id derived from the question (for recall, with its memories).
        category: One of `CATEGORIES` or `MEMORY_CATEGORIES`.
        question: What the user asks.
        expected: The expected answer: a number for arithmetic, the time zone for time, the file's text for file,
            the fact to store for remember (``"The user's sister is called Lena."``), the fact's value for recall,
            and the user's name (or nothing) for chat.
        plan: The gold tool calls, in order.
        final: The gold answer, with ``{r0}``, ``{r1}``, ... for the results.
        files: Files the workspace must hold, path to text.
        memories: Facts long-term memory must hold before the episode.
    """

    id: str
    category: str
    question: str
    expected: str
    plan: tuple[PlannedCall, ...] = ()
    final: str = ""
    files: Mapping[str, str] = field(default_factory=dict)
    memories: tuple[str, ...] = ()

    def check(self, result: AgentResult) -> bool:
        """Whether an episode solved this task.

        Arithmetic: the last number in the answer equals the expected value. Time: `current_time` was called for
        the expected zone and the answer repeats the time it returned, to the minute. File: the answer contains the
        file's text. Remember: `remember` stored a text naming the fact's subject and value (any wording). Recall:
        the answer contains the fact's value. Chat: an answer without any tool call, naming the person the user named.
        """
        answer = result.answer or ""
        if result.status != "finished" or not answer.strip():
            return False
        if self.category.startswith("arithmetic"):
            numbers = _NUMBER.findall(answer.replace(",", ""))
            return bool(numbers) and abs(float(numbers[-1]) - float(self.expected)) <= 1e-6 * max(
                1.0, abs(float(self.expected))
            )
        if self.category == "time":
            return any(
                step.content[:16] in answer and _zone_asked(result, step) == self.expected
                for step in result.observations
            )
        if self.category in ("file", "recall"):
            return self.expected in answer
        if self.category == "remember":
            return _stored(result, self.expected)
        return self.expected in answer and not any(isinstance(step, Action) for step in result.steps)

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict (see `load_tasks`)."""
        return {
            "id": self.id,
            "category": self.category,
            "question": self.question,
            "expected": self.expected,
            "plan": [{"tool": c.tool, "args": dict(c.args)} for c in self.plan],
            "final": self.final,
            "files": dict(self.files),
            "memories": list(self.memories),
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Task:
        """The task `to_json` wrote."""
        return cls(
            id=str(data["id"]),
            category=str(data["category"]),
            question=str(data["question"]),
            expected=str(data["expected"]),
            plan=tuple(PlannedCall(c["tool"], dict(c["args"])) for c in data.get("plan", ())),
            final=str(data.get("final", "")),
            files=dict(data.get("files", {})),
            memories=tuple(str(m) for m in data.get("memories", ())),
        )


def _zone_asked(result: AgentResult, observation: Observation) -> str | None:
    for step in result.steps:
        if isinstance(step, Action) and step.call_id == observation.call_id and step.tool == "current_time":
            return str(step.args.get("timezone", "UTC"))
    return None


def _stored(result: AgentResult, fact: str) -> bool:
    """Whether a `remember` call that succeeded stored a text naming the fact's subject and value."""
    parts = _FACT.fullmatch(fact)
    if parts is None:
        raise ValueError(f'Not a fact of the form "The user\'s X is Y.": {fact!r}.')
    stored = {o.call_id for o in result.observations if o.ok}
    return any(
        isinstance(step, Action)
        and step.tool == "remember"
        and step.call_id in stored
        and all(part.lower() in str(step.args.get("text", "")).lower() for part in parts.group("subject", "value"))
        for step in result.steps
    )


# -- generators -------------------------------------------------------------------------------------------------------

_NAMES = ("Anna", "Ben", "Carla", "David", "Emma", "Farid", "Grace", "Hugo", "Ines", "Jonas", "Kemal", "Lena", "Maya")
_ITEMS = ("pen", "notebook", "apple", "ticket", "book", "mug", "candle", "shirt", "lamp", "plant", "cookie", "card")
_THINGS = ("apple", "marble", "sticker", "coin", "egg", "stamp", "shell", "cookie", "pencil", "balloon")
_PRICES = tuple(x / 4 for x in range(2, 61))  # 0.5 to 15 in quarters
_CITIES = {
    "Paris": "Europe/Paris",
    "London": "Europe/London",
    "Berlin": "Europe/Berlin",
    "Madrid": "Europe/Madrid",
    "Rome": "Europe/Rome",
    "Tokyo": "Asia/Tokyo",
    "Seoul": "Asia/Seoul",
    "Singapore": "Asia/Singapore",
    "Dubai": "Asia/Dubai",
    "New York": "America/New_York",
    "Chicago": "America/Chicago",
    "Los Angeles": "America/Los_Angeles",
    "Toronto": "America/Toronto",
    "Sydney": "Australia/Sydney",
    "Cairo": "Africa/Cairo",
    "Mumbai": "Asia/Kolkata",
    "Beijing": "Asia/Shanghai",
    "Mexico City": "America/Mexico_City",
    "Lisbon": "Europe/Lisbon",
    "Moscow": "Europe/Moscow",
    "Nairobi": "Africa/Nairobi",
    "UTC": "UTC",
}
_FILE_FOLDERS = ("", "notes/", "docs/", "work/", "home/")
_FILE_STEMS = ("notes", "todo", "plan", "reminder", "shopping", "meeting", "readme", "ideas", "list", "diary", "tasks")
_FILE_EXTENSIONS = (".txt", ".md")
_FILE_TEXTS = (
    ("Buy", ("milk", "bread", "eggs", "coffee", "rice", "tea")),
    ("Call", ("Anna", "the bank", "the dentist", "Ben", "the office", "mom")),
    ("Meeting at", ("9 am", "noon", "3 pm", "4:30 pm", "10 am", "5 pm")),
    ("Pay", ("the rent", "the gas bill", "the phone bill", "Grace back")),
)
_DAYS = ("on Monday", "on Tuesday", "on Friday", "tomorrow", "today", "next week")


def _num(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else str(value)


Generator = Callable[[random.Random], tuple[str, str, tuple[PlannedCall, ...], str]]


def _calc(*expressions: str) -> tuple[PlannedCall, ...]:
    return tuple(PlannedCall("calculator", {"expression": e}) for e in expressions)


def _arith1(rng: random.Random) -> tuple[str, str, tuple[PlannedCall, ...], str]:  # noqa: PLR0911 (one per kind)
    kind = rng.randrange(7)
    name, thing, item = rng.choice(_NAMES), rng.choice(_THINGS), rng.choice(_ITEMS)
    a, b = rng.randint(2, 99), rng.randint(2, 99)
    price, n = rng.choice(_PRICES), rng.randint(2, 20)
    if kind == 0:
        return f"What is {a} times {b}?", str(a * b), _calc(f"{a} * {b}"), f"{a} times {b} is {{r0}}."
    if kind == 1:
        p = _num(price)
        q = f"A shop sells {item}s at {p} each. How much do {n} {item}s cost?"
        return q, _num(n * price), _calc(f"{n} * {p}"), f"{n} {item}s cost {{r0}}."
    if kind == 2:
        q = f"{name} had {a} {thing}s and got {b} more. How many {thing}s does {name} have now?"
        return q, str(a + b), _calc(f"{a} + {b}"), f"{name} has {{r0}} {thing}s now."
    if kind == 3:
        a, b = max(a, b) + 1, min(a, b)
        q = f"{name} had {a} {thing}s and gave away {b}. How many {thing}s are left?"
        return q, str(a - b), _calc(f"{a} - {b}"), f"{{r0}} {thing}s are left."
    if kind == 4:
        k, each = rng.randint(2, 9), rng.randint(2, 30)
        q = f"{name} shares {k * each} {thing}s equally among {k} friends. How many does each friend get?"
        return q, str(each), _calc(f"{k * each} / {k}"), f"Each friend gets {{r0}} {thing}s."
    if kind == 5:
        item2, extra = rng.choice([i for i in _ITEMS if i != item]), rng.choice(_PRICES)
        p, x = _num(price), _num(extra)
        q = f"A shop sells {item}s at {p} each. How much do {n} {item}s and a {x} {item2} cost?"
        answer = _num(n * price + extra)
        return q, answer, _calc(f"{n} * {p} + {x}"), f"{n} {item}s and a {item2} cost {{r0}}."
    op, sym = rng.choice((("plus", "+"), ("minus", "-"), ("times", "*")))
    value = {"+": a + b, "-": a - b, "*": a * b}[sym]
    return f"Calculate {a} {op} {b}.", str(value), _calc(f"{a} {sym} {b}"), f"{a} {op} {b} is {{r0}}."


def _arith2(rng: random.Random) -> tuple[str, str, tuple[PlannedCall, ...], str]:
    kind = rng.randrange(5)
    name, thing, item = rng.choice(_NAMES), rng.choice(_THINGS), rng.choice(_ITEMS)
    n, price = rng.randint(2, 12), rng.choice(_PRICES)
    if kind == 0:
        bill = next(b for b in (10, 20, 50, 100, 200) if b > n * price)
        p = _num(price)
        q = f"{name} buys {n} {item}s at {p} each and pays with a {bill} note. How much change does {name} get?"
        return q, _num(bill - n * price), _calc(f"{n} * {p}", f"{bill} - {{r0}}"), f"{name} gets {{r1}} back."
    if kind == 1:
        size, lost = rng.randint(4, 24), rng.randint(1, 9)
        q = f"A box holds {size} {thing}s. {name} buys {n} boxes and loses {lost} {thing}s. How many {thing}s are left?"
        return q, str(n * size - lost), _calc(f"{n} * {size}", f"{{r0}} - {lost}"), f"{{r1}} {thing}s are left."
    if kind == 2:
        wage, hours, days = rng.randint(8, 40), rng.randint(2, 9), rng.randint(2, 7)
        q = f"{name} earns {wage} per hour and works {hours} hours a day. How much does {name} earn in {days} days?"
        plan = _calc(f"{wage} * {hours}", f"{{r0}} * {days}")
        return q, str(wage * hours * days), plan, f"In {days} days {name} earns {{r1}}."
    if kind == 3:
        k, each = rng.randint(2, 9), rng.randint(3, 20)
        red = rng.randint(1, k * each - 1)
        q = (
            f"There are {red} red and {k * each - red} blue {thing}s, shared equally by {k} children. "
            f"How many {thing}s does each child get?"
        )
        plan = _calc(f"{red} + {k * each - red}", f"{{r0}} / {k}")
        return q, str(each), plan, f"Each child gets {{r1}} {thing}s."
    off = rng.choice([x for x in _PRICES if x < price] or [0.25])
    p, d = _num(price), _num(off)
    q = f"A {item} costs {p}, with a discount of {d} off each. How much do {n} {item}s cost?"
    return q, _num((price - off) * n), _calc(f"{p} - {d}", f"{{r0}} * {n}"), f"{n} {item}s cost {{r1}}."


def _arith3(rng: random.Random) -> tuple[str, str, tuple[PlannedCall, ...], str]:
    kind = rng.randrange(3)
    name = rng.choice(_NAMES)
    if kind == 0:
        item, item2 = rng.sample(_ITEMS, 2)
        n1, n2 = rng.randint(2, 9), rng.randint(2, 9)
        p1, p2 = rng.choice(_PRICES), rng.choice(_PRICES)
        q = (
            f"{name} buys {n1} {item}s at {_num(p1)} each and {n2} {item2}s at {_num(p2)} each. "
            f"How much does {name} spend?"
        )
        plan = _calc(f"{n1} * {_num(p1)}", f"{n2} * {_num(p2)}", "{r0} + {r1}")
        return q, _num(n1 * p1 + n2 * p2), plan, f"{name} spends {{r2}}."
    if kind == 1:
        hens, eggs, days = rng.randint(3, 30), rng.randint(2, 6), rng.randint(2, 9)
        sold = rng.randint(1, hens * eggs * days - 1)
        q = (
            f"A farm has {hens} hens that each lay {eggs} eggs a day. After {days} days the farmer sells "
            f"{sold} eggs. How many eggs are left?"
        )
        plan = _calc(f"{hens} * {eggs}", f"{{r0}} * {days}", f"{{r1}} - {sold}")
        return q, str(hens * eggs * days - sold), plan, "{r2} eggs are left."
    weekly, weeks, k = rng.randint(5, 50), rng.randint(2, 12), rng.randint(2, 6)
    total = weekly * weeks
    spent = rng.choice([s for s in range(1, total) if (total - s) % k == 0] or [total - k])
    q = (
        f"{name} saves {weekly} a week for {weeks} weeks, spends {spent}, and shares the rest equally among {k} "
        f"friends. How much does each friend get?"
    )
    plan = _calc(f"{weekly} * {weeks}", f"{{r0}} - {spent}", f"{{r1}} / {k}")
    return q, _num((total - spent) / k), plan, "Each friend gets {r2}."


def _time(rng: random.Random) -> tuple[str, str, tuple[PlannedCall, ...], str]:
    city = rng.choice(sorted(_CITIES))
    zone = _CITIES[city]
    question = rng.choice(
        (
            f"What time is it in {city}?",
            f"What is the date in {city} right now?",
            f"What day of the week is it in {city}?",
            f"Tell me the current time in {city}.",
            f"Is it morning or evening in {city} now? Tell me the time.",
            f"What's the time in {city}?",
            f"Which day is it today in {city}?",
            f"I need the current date and time in {city}.",
        )
    )
    return question, zone, (PlannedCall("current_time", {"timezone": zone}),), "In " + city + " it is {r0}."


def _file(rng: random.Random) -> tuple[str, str, tuple[PlannedCall, ...], str]:
    path = rng.choice(_FILE_FOLDERS) + rng.choice(_FILE_STEMS) + rng.choice(_FILE_EXTENSIONS)
    verb, objects = rng.choice(_FILE_TEXTS)
    text = f"{verb} {rng.choice(objects)} {rng.choice(_DAYS)}."
    question = rng.choice(
        (
            f"What does {path} say?",
            f"Read {path} and tell me what it says.",
            f"What is written in {path}?",
            f"Open {path} and tell me its content.",
        )
    )
    return question, text, (PlannedCall("read_file", {"path": path}),), f"{path} says: {{r0}}"


_RELATIONS = ("sister", "brother", "dog", "cat", "boss", "neighbour", "best friend", "son", "daughter", "teacher")
_FAVOURITES = {
    "colour": ("red", "green", "blue", "yellow", "purple", "orange"),
    "city": ("Paris", "Tokyo", "Lisbon", "Cairo", "Seoul", "Toronto"),
    "food": ("pizza", "sushi", "pasta", "curry", "soup", "tacos"),
    "sport": ("tennis", "football", "chess", "swimming", "cycling", "golf"),
}


def _said(subject: str, value: str) -> str:
    """A fact as the user says it after "my": ``"sister is called Lena"``, ``"favourite city is Paris"``."""
    return f"{subject} is {'called ' if subject in _RELATIONS else ''}{value}"


def _sentence(subject: str, value: str) -> str:
    """How a fact is stored: ``"The user's sister is called Lena."``, ``"The user's favourite city is Paris."``."""
    return f"The user's {_said(subject, value)}."


def _fact(rng: random.Random, avoid: set[str]) -> tuple[str, str, str]:
    """A fact about the user on a subject not in `avoid`: ``(subject, value, "The user's <subject> is ...")``."""
    while True:
        if rng.random() < 0.5:
            subject, value = rng.choice(_RELATIONS), rng.choice(_NAMES)
        else:
            topic = rng.choice(sorted(_FAVOURITES))
            subject, value = f"favourite {topic}", rng.choice(_FAVOURITES[topic])
        if subject not in avoid:
            return subject, value, _sentence(subject, value)


def _remember(rng: random.Random) -> tuple[str, str, tuple[PlannedCall, ...], str]:
    subject, value, sentence = _fact(rng, set())
    said = _said(subject, value)
    question = rng.choice(
        (
            "Remember that my {}.",
            "Please remember: my {}.",
            "Note that my {}.",
            "Keep in mind that my {}.",
            "I want you to remember that my {}.",
        )
    ).format(said)
    return question, sentence, (PlannedCall("remember", {"text": sentence}),), f"I will remember that your {said}."


def _recall(rng: random.Random) -> tuple[str, str, tuple[PlannedCall, ...], str]:
    """A fact to recall; `generate_tasks` stores it with one to three others (`_recall_memories`)."""
    subject, value, _ = _fact(rng, set())
    question = rng.choice(
        ("What is my {} called?", "What's my {}'s name?", "Do you remember my {}'s name?")
        if subject in _RELATIONS
        else ("What is my {}?", "Do you remember my {}?", "Tell me my {}.")
    ).format(subject)
    plan = (PlannedCall("recall", {"query": f"the user's {subject}"}),)
    return question, value, plan, f"Your {_said(subject, value)}."


def _recall_memories(rng: random.Random, subject: str, value: str) -> tuple[str, ...]:
    """What memory holds for a recall task: its fact, among one to three facts on other subjects."""
    facts = [_sentence(subject, value)]
    avoid = {subject}
    for _ in range(rng.randint(1, 3)):
        other, _, sentence = _fact(rng, avoid)
        avoid.add(other)
        facts.append(sentence)
    rng.shuffle(facts)
    return tuple(facts)


_CHAT = (
    ("Hi!", "Hello! How can I help you today?"),
    ("Hello", "Hello! How can I help you today?"),
    ("Good morning!", "Good morning! How can I help you today?"),
    ("Thanks!", "You are welcome!"),
    ("Thank you, that helps.", "You are welcome!"),
    ("Who are you?", "I am agentkit's small default model. I can calculate, tell the time and read files."),
    ("What can you do?", "I can calculate, tell the time and read files in the workspace."),
)


def _chat(rng: random.Random) -> tuple[str, str, tuple[PlannedCall, ...], str]:
    name = rng.choice(_NAMES)
    kind = rng.randrange(3)
    if kind == 0:
        question, reply = rng.choice(_CHAT)
        return question, "", (), reply
    if kind == 1:
        greeting = rng.choice(("Hi, I am {}.", "Hello, my name is {}.", "Good morning, I'm {}.", "Hey, {} here."))
        return greeting.format(name), name, (), f"Hello {name}! How can I help you today?"
    thanks = rng.choice(("Thanks, {} says hello.", "{} says thank you!", "Greetings from {}!"))
    return thanks.format(name), name, (), f"Say hello to {name} from me!"


_GENERATORS: dict[str, Generator] = {
    "arithmetic-1": _arith1,
    "arithmetic-2": _arith2,
    "arithmetic-3": _arith3,
    "time": _time,
    "file": _file,
    "remember": _remember,
    "recall": _recall,
    "chat": _chat,
}


def _split_of(question: str) -> Split:
    digest = int.from_bytes(hashlib.sha256(question.encode()).digest()[:4], "big")
    return "heldout" if digest % _HELDOUT_EVERY == 0 else "train"


def generate_tasks(
    n: int, *, split: Split = "train", seed: int = 0, weights: Mapping[str, float] | None = None
) -> list[Task]:
    """Draw `n` distinct tasks of one split, deterministically.

    Args:
        n: How many tasks.
        split: ``"train"`` or ``"heldout"``; no question is ever in both.
        seed: The random seed.
        weights: Relative frequency of each category, from `CATEGORIES` and `MEMORY_CATEGORIES` (default: those
            of `CATEGORIES`, equally). Categories left out are not drawn.

    Returns:
        The tasks, in the order drawn.

    Raises:
        ValueError: On an unknown category or split, or when `n` distinct tasks cannot be drawn.
    """
    if split not in ("train", "heldout"):
        raise ValueError(f"split must be 'train' or 'heldout', got {split!r}.")
    chosen = dict(weights) if weights is not None else dict.fromkeys(CATEGORIES, 1.0)
    known = (*CATEGORIES, *MEMORY_CATEGORIES)
    unknown = sorted(set(chosen) - set(known))
    if unknown:
        raise ValueError(f"Unknown task categories {unknown}; expected some of {list(known)}.")
    rng = random.Random(f"{seed}-{split}")
    names, shares = zip(*sorted(chosen.items()), strict=True)
    tasks: list[Task] = []
    seen: set[str] = set()
    tries = 0
    while len(tasks) < n:
        tries += 1
        if tries > 50 * n + 1000:
            raise ValueError(f"Could not draw {n} distinct {split} tasks; ask for fewer.")
        category = rng.choices(names, shares)[0]
        question, expected, plan, final = _GENERATORS[category](rng)
        subject = plan[0].args["query"].removeprefix("the user's ") if category == "recall" else ""
        memories = _recall_memories(rng, subject, expected) if category == "recall" else ()
        # A recall question is asked of many memories: the task is the question with what memory holds.
        told = "\n".join((question, *memories))
        key = f"{category}:{told}"
        if key in seen or _split_of(told) != split:
            continue
        seen.add(key)
        files = {plan[0].args["path"]: expected} if category == "file" else {}
        task_id = hashlib.sha256(key.encode()).hexdigest()[:12]
        tasks.append(Task(task_id, category, question, expected, plan, final, files, memories))
    return tasks


def save_tasks(tasks: Sequence[Task], path: str) -> None:
    """Write tasks as JSON lines."""
    with open(path, "w", encoding="utf-8") as handle:
        for task in tasks:
            handle.write(json.dumps(task.to_json(), ensure_ascii=False) + "\n")


def load_tasks(path: str) -> list[Task]:
    """Read tasks that `save_tasks` wrote.

    Raises:
        ValueError: When a line is not a task, with its line number.
    """
    tasks = []
    with open(path, encoding="utf-8") as handle:
        for number, line in enumerate(handle, 1):
            if not line.strip():
                continue
            try:
                tasks.append(Task.from_json(json.loads(line)))
            except (KeyError, TypeError, ValueError) as exc:
                raise ValueError(f"{path}:{number}: not a task ({exc}).") from exc
    return tasks

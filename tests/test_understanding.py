"""Language understanding without a model: slots, language, intents, tool retrieval and its cache, the agent."""

from __future__ import annotations

import time
from collections.abc import Sequence

import numpy as np
import pytest

from agentkit import Agent, ConfigError, ReActPlanner, Recollection, Toolbox
from agentkit.embeddings import Embedder
from agentkit.protocols import Intent, Slot, TurnContext, Understanding, Understood
from agentkit.steps import AgentResult
from agentkit.testing import ScriptedChatModel, react_final
from agentkit.understanding import (
    DEFAULT_INTENTS,
    EmbeddingUnderstanding,
    detect_language,
    extract_slots,
    tool_text,
)


def get_weather(city: str) -> str:
    """Current weather in a city.

    Args:
        city: The city's name.
    """
    return "sunny"


def calculator(expression: str) -> str:
    """Evaluate an arithmetic expression.

    Args:
        expression: The expression, e.g. 2*(3+4).
    """
    return "1"


def send_email(to: str, body: str) -> str:
    """Send an email.

    Args:
        to: The recipient's address.
        body: The message.
    """
    return "sent"


def read_file(path: str) -> str:
    """Read a text file.

    Args:
        path: The file's path.
    """
    return ""


TOOLS = [get_weather, calculator, send_email, read_file]


class CountingEmbedder(Embedder):
    """The real default embedder, counting the texts it embeds."""

    def __init__(self) -> None:
        super().__init__()
        self.embedded: list[str] = []

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        self.embedded.extend(texts)
        return super().encode(texts)


@pytest.fixture(scope="module")
def embedder() -> CountingEmbedder:
    return CountingEmbedder()


@pytest.fixture
def reader(embedder: CountingEmbedder) -> EmbeddingUnderstanding:
    return EmbeddingUnderstanding(embedder, top_k=2)


# -- slots ------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("mail bob.smith+x@example.co.uk now", Slot("email", "bob.smith+x@example.co.uk", "bob.smith+x@example.co.uk")),
        (
            "see https://example.com/a?b=1, thanks",
            Slot("url", "https://example.com/a?b=1", "https://example.com/a?b=1"),
        ),
        ("open www.python.org.", Slot("url", "www.python.org", "www.python.org")),
        ("read /tmp/notes.txt please", Slot("path", "/tmp/notes.txt", "/tmp/notes.txt")),
        ("summarise src/main.py", Slot("path", "src/main.py", "src/main.py")),
        (r"open C:\Users\bob\file.txt", Slot("path", r"C:\Users\bob\file.txt", r"C:\Users\bob\file.txt")),
        (
            'search for "large language models" today',
            Slot("quoted", '"large language models"', "large language models"),
        ),
        ("name it 'agents' and don't stop", Slot("quoted", "'agents'", "agents")),
        ("it costs $1,200", Slot("money", "$1,200", 1200.0, "$")),
        ("pay 1.234,50 € now", Slot("money", "1.234,50 €", 1234.5, "€")),
        ("send 20 EUR", Slot("money", "20 EUR", 20.0, "EUR")),
        ("convert 5 kg to pounds", Slot("number", "5 kg", 5.0, "kilogram")),
        ("drive at 3.5 km/h", Slot("number", "3.5 km/h", 3.5, "kilometer / hour")),
        ("it is 25 °C", Slot("number", "25 °C", 25.0, "degree_Celsius")),
        ("50% done", Slot("number", "50%", 50.0, "percent")),
        ("buy 20 apples", Slot("number", "20", 20.0)),
        ("about 1,000,000 people", Slot("number", "1,000,000", 1_000_000.0)),
    ],
)
def test_each_slot_kind_is_read_and_normalised(text: str, expected: Slot) -> None:
    slots = extract_slots(text, language="en")
    found = [s for s in slots if s.kind == expected.kind]
    assert len(found) == 1, slots
    assert (found[0].text, found[0].value, found[0].unit) == (expected.text, expected.value, expected.unit)
    assert text[found[0].start :].startswith(found[0].text)


def test_dates_and_times_are_read_by_dateparser_in_the_turns_language() -> None:
    slots = extract_slots("Book a flight for $1,200 tomorrow at 5pm, and remind me on March 3rd 2025 at 10:30")
    dates = [s for s in slots if s.kind == "date"]
    assert [d.text for d in dates] == ["tomorrow at 5pm", "on March 3rd 2025 at 10:30"]
    assert str(dates[0].value).endswith("T17:00:00") and dates[1].value == "2025-03-03T10:30:00"
    assert [s.kind for s in slots] == ["money", "date", "date"]  # the amount is not part of the date
    german = extract_slots("Wie spät ist es morgen um 9 Uhr?", language="de")
    assert [s.kind for s in german] == ["date"]


@pytest.mark.parametrize("text", ["what is 12 + 7?", "a second opinion may help", "1/2 cup", "Can you go to it?"])
def test_words_and_sums_that_dateparser_reads_as_dates_are_not_dates(text: str) -> None:
    assert all(s.kind != "date" for s in extract_slots(text, language="en"))


def test_opaque_spans_are_claimed_before_numbers() -> None:
    slots = extract_slots("copy /data/run2/v3.json to bob@x42.org in 2 days")
    assert [s.kind for s in slots] == ["path", "email", "date"]


# -- language ---------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "language"),
    [
        ("What is the weather like in Paris tomorrow?", "en"),
        ("Wie spät ist es in Berlin?", "de"),
        ("東京の天気はどうですか？", "ja"),  # noqa: RUF001
        ("Привет, как дела?", "ru"),
        ("😀😀🎉", None),
        ("12345", None),
        ("", None),
    ],
)
def test_language_is_told_or_none(text: str, language: str | None) -> None:
    assert detect_language(text)[0] == language


# -- intents and tools ------------------------------------------------------------------------------------------------


def test_intent_by_nearest_example_and_users_add_their_own(embedder: CountingEmbedder) -> None:
    context = TurnContext(Toolbox(TOOLS))
    default = EmbeddingUnderstanding(embedder)
    greeting = default.understand("hello there, good morning!", context)
    assert greeting.intent.label == "greeting" and greeting.intent.confidence > 0.5
    assert greeting.needs_tool is False  # a greeting needs no tool, whatever the tools
    flights = {"book_flight": ["book me a flight to Rome", "I need a plane ticket to Berlin"]}
    extended = EmbeddingUnderstanding(embedder, intents={**DEFAULT_INTENTS, **flights})
    flight = extended.understand("get me a plane ticket to Lisbon next Friday", context)
    assert flight.intent.label == "book_flight"
    assert [s.kind for s in flight.slots] == ["date"]


def test_bad_configuration_raises_config_errors(embedder: CountingEmbedder) -> None:
    with pytest.raises(ConfigError, match="top_k"):
        EmbeddingUnderstanding(embedder, top_k=0)
    with pytest.raises(ConfigError, match="list of example sentences"):
        EmbeddingUnderstanding(embedder, intents={"book": "book a flight"})
    with pytest.raises(ConfigError, match="non-empty string"):
        EmbeddingUnderstanding(embedder, intents={"book": ["book a flight", ""]})


def test_tools_are_ranked_and_only_the_top_k_offered(reader: EmbeddingUnderstanding) -> None:
    understood = reader.understand("What's the weather in Tokyo right now?", TurnContext(Toolbox(TOOLS)))
    assert isinstance(reader, Understanding)
    assert understood.tools is not None and understood.tools[0] == "get_weather" and len(understood.tools) == 2
    assert [r.name for r in understood.ranked][:1] == ["get_weather"] and len(understood.ranked) == 4
    assert understood.ranked[0].score > understood.ranked[1].score
    assert understood.needs_tool is True and understood.language == "en"
    few = reader.understand("What's the weather in Tokyo?", TurnContext(Toolbox(TOOLS[:2])))
    assert few.tools is None  # no more tools than top_k: offer them all, in their own order


def test_tool_embeddings_are_cached_and_refreshed_when_the_tools_change(embedder: CountingEmbedder) -> None:
    reader = EmbeddingUnderstanding(embedder, top_k=1)
    reader.understand("warm up", TurnContext(Toolbox([])))  # embeds the intent examples once
    embedder.embedded.clear()
    toolbox = Toolbox(TOOLS)
    reader.understand("is it raining in Oslo?", TurnContext(toolbox))
    assert sorted(embedder.embedded[1:]) == sorted(tool_text(toolbox, n) for n in toolbox.names)
    embedder.embedded.clear()
    reader.understand("is it raining in Oslo?", TurnContext(Toolbox(TOOLS)))  # an equal toolbox: no tool embedded
    assert len(embedder.embedded) == 1  # the question only

    def translate(text: str) -> str:
        """Translate a text into French.

        Args:
            text: The text to translate.
        """
        return text

    embedder.embedded.clear()
    grown = Toolbox([*TOOLS, translate])
    assert reader.understand("say hello in French", TurnContext(grown)).tools == ["translate"]
    assert embedder.embedded[1:] == [tool_text(grown, "translate")]  # only the new tool

    get_weather_tool = Toolbox([get_weather]).tools[0]
    renamed = get_weather_tool.model_copy(update={"description": "Translate a text into Italian."})
    embedder.embedded.clear()
    edited = Toolbox([renamed, *TOOLS[1:], translate])
    assert reader.rank("say hello in Italian", edited)[0].name == "get_weather"  # the new description counts
    assert embedder.embedded[1:] == [tool_text(edited, "get_weather")]


@pytest.mark.parametrize(
    "text",
    [
        "",
        "   \n\t",
        "x" * 100_000,
        "The weather, again. " * 5000,
        "東京の明日の天気は？",  # noqa: RUF001
        "Погода в Москве",
        "😀😀🎉🙈",
    ],
    ids=["empty", "blank", "100kB-one-word", "100kB-sentences", "japanese", "russian", "emoji"],
)
def test_any_input_gives_a_typed_result_quickly(reader: EmbeddingUnderstanding, text: str) -> None:
    started = time.perf_counter()
    understood = reader.understand(text, TurnContext(Toolbox(TOOLS)))
    assert time.perf_counter() - started < 5
    assert isinstance(understood, Understood) and isinstance(understood.intent, Intent)
    assert understood.language is None or isinstance(understood.language, str)
    assert all(isinstance(s, Slot) for s in understood.slots)
    if not text.strip():
        assert understood.needs_tool is False and understood.tools is None and understood.ranked == ()
    else:
        assert len(understood.ranked) == len(TOOLS)


# -- memories and the agent -------------------------------------------------------------------------------------------


class Notes:
    def recall(self, query: str) -> list[Recollection]:
        return [Recollection("n1", "Bob's address is bob@example.com."), Recollection("m1", "duplicate")]

    def commit(self, result: AgentResult) -> None:
        pass


def test_memories_from_the_agent_and_the_understandings_own_memory(embedder: CountingEmbedder) -> None:
    reader = EmbeddingUnderstanding(embedder, memory=Notes())
    recalled = [Recollection("m1", "The user lives in Oslo.")]
    understood = reader.understand("weather at home?", TurnContext(Toolbox(TOOLS), memories=recalled))
    assert [m.id for m in understood.memories] == ["m1", "n1"]


@pytest.mark.parametrize("planner", [None, ReActPlanner()], ids=["tool-calling", "react"])
def test_the_agent_offers_the_top_tools_and_puts_slots_and_memories_in_the_prompt(
    reader: EmbeddingUnderstanding, planner: ReActPlanner | None
) -> None:
    reply = react_final("Sent.") if planner else "Sent."
    llm = ScriptedChatModel(responses=[reply])
    agent = Agent(llm, tools=TOOLS, understanding=reader, memory=Notes(), planner=planner)
    result = agent.invoke("Email bob@example.com that the 5 kg parcel costs $30 and arrives tomorrow")
    assert result.answer == "Sent." and result.memory_ids == ["n1", "m1"]
    system = str(llm.calls[0].messages[0].content)
    assert "- email: bob@example.com" in system and "- money: $30 = 30.0 ($)" in system
    assert "- number: 5 kg = 5.0 (kilogram)" in system and "- date: tomorrow" in system
    assert "Bob's address" in system
    names = [f.__name__ for f in TOOLS]
    offered = llm.calls[0].tools if planner is None else [n for n in names if f"\n{n}: " in system]
    assert "send_email" in offered and len(offered) == 2

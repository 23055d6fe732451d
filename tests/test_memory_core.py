"""ChromaMemory on a real in-process chroma with the real offline embedder: records, dedup, scoring, the agent."""

from __future__ import annotations

from typing import Any

import pytest

from agentkit import Agent
from agentkit.embeddings import Embedder
from agentkit.errors import ConfigError
from agentkit.memory import ChromaMemory, LongTermMemory, NewMemory, Scoring, remember_nothing
from agentkit.testing import ScriptedChatModel, tool_call, tool_reply
from agentkit.tools import memory_tools

HOUR = 3600.0


class Clock:
    def __init__(self) -> None:
        self.now = 1_700_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture(scope="module")
def embedder() -> Embedder:
    return Embedder()


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def memory(embedder: Embedder, clock: Clock) -> ChromaMemory:
    return ChromaMemory.ephemeral(embeddings=embedder, clock=clock)


def test_is_a_long_term_memory_with_cosine_space(memory: ChromaMemory):
    assert isinstance(memory, LongTermMemory)
    assert memory._space(memory.namespace).configuration_json["hnsw"]["space"] == "cosine"


def test_records_keep_their_fields(memory: ChromaMemory, clock: Clock):
    memory_id = memory.add(
        "Ada prefers metric units.", kind="preference", importance=0.8, metadata={"topic": "units"}, episode_id="ep1"
    )
    (record,) = memory.get([memory_id])
    assert (record.text, record.kind, record.importance, record.episode_id) == (
        "Ada prefers metric units.",
        "preference",
        0.8,
        "ep1",
    )
    assert record.namespace == "default"
    assert record.created_at == record.accessed_at == clock.now
    assert record.metadata == {"topic": "units"}
    assert record.expires_at is None


def test_same_text_in_a_namespace_is_stored_once(memory: ChromaMemory):
    first = memory.add("Ada lives in Lisbon.")
    assert memory.add("  Ada lives in Lisbon.\n") == first
    ids = memory.add_many(["Ada lives in Lisbon.", "Ada has a cat.", "Ada has a cat."])
    assert ids[0] == first
    assert ids[1] == ids[2]
    assert memory.count() == 2
    other = memory.add("Ada lives in Lisbon.", namespace="user:bob")
    assert other != first
    assert memory.count("user:bob") == 1


class _WritesInBetween:
    """A real chroma collection where another client adds texts right after this client's first lookup by hash."""

    def __init__(self, collection: Any, other: ChromaMemory, texts: list[str]) -> None:
        self.collection, self.other, self.texts = collection, other, texts

    def __getattr__(self, name: str) -> Any:
        return getattr(self.collection, name)

    def get(self, **query: Any) -> Any:
        found = self.collection.get(**query)
        if "where" in query and self.texts:
            self.other.add_many(self.texts)
            self.texts = []
        return found


def test_the_same_text_written_by_another_client_meanwhile_is_stored_once(embedder: Embedder):
    mine = ChromaMemory.ephemeral(embeddings=embedder)
    other = ChromaMemory.ephemeral(embeddings=embedder, collection=mine.collection)
    texts = [f"Both clients write this, number {i}." for i in range(3)]
    mine._spaces[mine.namespace] = _WritesInBetween(mine._space(mine.namespace), other, texts)
    ids = mine.add_many([*texts, "Only mine."])
    assert mine.count() == 4
    assert ids[:3] == other.add_many(texts)
    assert [r.text for r in mine.get(ids)] == [*texts, "Only mine."]


def test_update_changes_text_and_vector_and_keeps_the_id(memory: ChromaMemory):
    memory_id = memory.add("Ada lives in Lisbon.", metadata={"source": "chat", "old": 1})
    updated = memory.update(memory_id, text="Ada moved to Tokyo.", importance=0.9, metadata={"source": "profile"})
    assert updated.id == memory_id
    (record,) = memory.get([memory_id])
    assert (record.text, record.importance, record.metadata) == ("Ada moved to Tokyo.", 0.9, {"source": "profile"})
    assert memory.search("Which city is in Japan?", k=1)[0].record.id == memory_id
    # The old text is free again: adding it makes a new record instead of overwriting the updated one.
    again = memory.add("Ada lives in Lisbon.")
    assert again != memory_id
    assert memory.get([memory_id])[0].text == "Ada moved to Tokyo."
    with pytest.raises(ConfigError, match="No memory"):
        memory.update("missing", text="x")


def test_forget_by_id_filter_namespace_and_expiry(memory: ChromaMemory, clock: Clock):
    keep = memory.add("Ada likes tea.", kind="preference")
    drop = memory.add("Ada had toast today.", kind="episode")
    memory.add("Ada's meeting is at noon.", kind="fact", ttl=HOUR, metadata={"topic": "calendar"})
    memory.add("Bob likes coffee.", namespace="user:bob")
    assert memory.forget([drop]) == 1
    assert memory.forget(["no-such-id"]) == 0
    clock.now += 2 * HOUR
    assert [h.record.text for h in memory.search("When is the meeting?")] == ["Ada likes tea."]  # expired: hidden
    assert memory.forget(expired=True) == 1
    assert memory.forget(kinds=["preference"], where={"topic": "none"}) == 0
    assert memory.forget(kinds=["preference"]) == 1
    assert memory.get([keep]) == []
    assert memory.count("user:bob") == 1
    with pytest.raises(ConfigError, match="forget"):
        memory.forget()
    assert memory.forget(namespace="user:bob") == 1


def test_ranking_changes_with_the_weights(memory: ChromaMemory, clock: Clock):
    old = memory.add("Ada's favourite city is Lisbon.", importance=0.1)
    clock.now += 30 * 24 * HOUR
    new = memory.add("Ada booked a train to Porto for next week.", importance=0.9)
    query = "What is Ada's favourite city?"

    by_relevance = memory.search(query, scoring=Scoring(relevance=1, recency=0, importance=0, keywords=0))
    assert [h.record.id for h in by_relevance] == [old, new]
    balanced = memory.search(query, scoring=Scoring(keywords=0))  # Generative Agents: all weights 1
    assert [h.record.id for h in balanced] == [new, old]
    top = balanced[0]
    assert top.recency == pytest.approx(1.0)
    assert balanced[1].recency == pytest.approx(0.995 ** (30 * 24))
    assert top.score == pytest.approx((top.relevance + top.recency + top.importance) / 3)


def test_keywords_make_the_search_hybrid(memory: ChromaMemory):
    memory.add_many(["My A1C was 6.9% at the last check-up.", "My blood sugar is a bit higher than I'd like."])
    (hit,) = memory.search("What was my A1C?", k=1, kinds=["fact"])
    assert hit.keywords == 1.0  # the only content word of the question, "a1c", is in the memory
    parts = hit.relevance + hit.recency + hit.importance + 0.2 * hit.keywords
    assert hit.score == pytest.approx(parts / 3.2)


def test_recall_marks_memories_accessed_which_restores_recency(memory: ChromaMemory, clock: Clock):
    memory_id = memory.add("Ada's favourite city is Lisbon.")
    clock.now += 100 * HOUR
    assert memory.search("favourite city")[0].recency == pytest.approx(0.995**100)
    recalled = memory.recall("favourite city")
    assert [r.id for r in recalled] == [memory_id]
    assert memory.get([memory_id])[0].accessed_at == clock.now
    assert memory.search("favourite city")[0].recency == pytest.approx(1.0)


def test_filters_by_namespace_kind_and_metadata(memory: ChromaMemory):
    memory.add_many(
        [
            NewMemory("Ada eats oats for breakfast.", kind="fact", metadata={"topic": "diet"}),
            NewMemory("Ada sleeps at eleven.", kind="fact", metadata={"topic": "sleep"}),
            NewMemory("Ada dislikes sugar.", kind="preference", metadata={"topic": "diet"}),
        ]
    )
    memory.add("Bob eats eggs for breakfast.", namespace="user:bob", metadata={"topic": "diet"})
    texts = lambda hits: sorted(h.record.text for h in hits)  # noqa: E731
    assert texts(memory.search("food", where={"topic": "diet"})) == [
        "Ada dislikes sugar.",
        "Ada eats oats for breakfast.",
    ]
    assert texts(memory.search("food", kinds=["preference"])) == ["Ada dislikes sugar."]
    assert len(memory.search("breakfast", namespaces=["default", "user:bob"])) == 4
    with pytest.raises(ConfigError, match="filter"):
        memory.search("food", where={"topic": {"$bogus": 1}})


def test_recall_stays_within_the_token_budget(embedder: Embedder):
    memory = ChromaMemory.ephemeral(embeddings=embedder, max_tokens=20, k=5)
    memory.add_many(["Ada likes tea. " * 10, "Ada likes green tea.", "Ada drinks tea at four."])
    recalled = memory.recall("What does Ada drink?")
    assert sum(memory.count_tokens(r.text) for r in recalled) <= 20
    assert {r.text for r in recalled} == {"Ada likes green tea.", "Ada drinks tea at four."}
    assert memory.recall("   ") == []


def test_the_agent_recalls_before_planning_and_commits_after(memory: ChromaMemory):
    fact = memory.add("The user's name is Ada.", kind="fact", importance=0.9)
    llm = ScriptedChatModel(responses=["Hello Ada!", "Your name is Ada."])
    agent = Agent(llm, memory=memory)

    first = agent.invoke("Hi, do you know my name?")
    assert fact in first.memory_ids
    assert "The user's name is Ada." in str(llm.calls[0].messages[0].content)
    episodes = memory.search("Hi, do you know my name?", kinds=["episode"])
    assert [h.record.episode_id for h in episodes] == [first.episode_id]
    assert episodes[0].record.text == "Q: Hi, do you know my name?\nA: Hello Ada!"

    second = agent.invoke("What is my name?")
    assert set(second.memory_ids) >= {fact, episodes[0].record.id}


def test_write_policy_is_configurable(embedder: Embedder):
    memory = ChromaMemory.ephemeral(embeddings=embedder, write_policy=remember_nothing)
    Agent(ScriptedChatModel(responses=["Hello."]), memory=memory).invoke("Hi")
    assert memory.count() == 0


def test_remember_and_recall_tools_inside_an_agent(memory: ChromaMemory):
    llm = ScriptedChatModel(
        responses=[
            tool_reply(tool_call("remember", text="The user is allergic to peanuts.", kind="fact", importance=1.0)),
            tool_reply(tool_call("recall", query="allergies"), tool_call("recall", query="x", k=99)),
            "Noted: no peanuts.",
        ]
    )
    result = Agent(llm, tools=memory_tools(memory), memory=memory).invoke("Remember that I am allergic to peanuts.")
    remembered, recalled, refused = result.observations
    assert remembered.ok and "Remembered" in remembered.content
    assert recalled.ok and "[fact] The user is allergic to peanuts." in recalled.content
    assert refused.status == "error" and "between 1 and 20" in refused.content
    (hit,) = memory.search("peanuts", kinds=["fact"])
    assert (hit.record.episode_id, hit.record.importance) == (result.episode_id, 1.0)


def test_the_remember_tool_reports_bad_input_to_the_model(memory: ChromaMemory):
    remember, _ = memory_tools(memory)
    llm = ScriptedChatModel(responses=[tool_reply(tool_call("remember", text="   ")), "ok"])
    result = Agent(llm, tools=[remember]).invoke("remember nothing")
    assert result.observations[0].status == "error"
    assert "empty" in result.observations[0].content


def test_bad_settings_raise_at_construction(embedder: Embedder):
    for settings in ({"k": 0}, {"max_tokens": -1}, {"collection": "a"}, {"namespace": ""}, {"embeddings": "x"}):
        with pytest.raises(ConfigError):
            ChromaMemory.ephemeral(**{"embeddings": embedder, **settings})
    for weights in ({"relevance": -1}, {"relevance": 0, "recency": 0, "importance": 0, "keywords": 0}, {"decay": 0}):
        with pytest.raises(ConfigError):
            Scoring(**weights)

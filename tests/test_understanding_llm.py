"""LLMUnderstanding through a real tiny transformers model trained to make the structured call."""

from __future__ import annotations

from pathlib import Path

import pytest
from langchain_core.utils.function_calling import convert_to_openai_tool

from agentkit import ConfigError, Toolbox
from agentkit.protocols import TurnContext, Understanding
from agentkit.testing import ScriptedChatModel
from agentkit.understanding import LLMUnderstanding, UserTurn

QUESTION = "weather in Paris today?"
READING = (
    '<tool_call>\n{"name": "UserTurn", "arguments": {"intent": "lookup", "language": "en", '
    '"tools": ["get_weather"], "slots": [{"kind": "date", "text": "today"}]}}\n</tool_call>'
)


def get_weather(city: str) -> str:
    """Current weather in a city."""
    return "sunny"


def calculator(expression: str) -> str:
    """Evaluate arithmetic."""
    return "1"


CONTEXT = TurnContext(Toolbox([get_weather, calculator]))
INTENTS = ["lookup", "calculate"]


@pytest.fixture(scope="module")
def reader_dir(tiny_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny model trained to answer the understanding prompt for QUESTION with READING.

    Its tokenizer is trained on that prompt too, which halves the tokens the training step must go through.
    """
    from transformers import AutoTokenizer

    from agentkit.llm.prompt import render_prompt
    from agentkit.llm.tiny import build_tiny_model, train_to_say

    messages = LLMUnderstanding(ScriptedChatModel(), top_k=1, intents=INTENTS).messages(QUESTION, CONTEXT)
    tools = [convert_to_openai_tool(UserTurn)]
    prompt = render_prompt(AutoTokenizer.from_pretrained(tiny_dir), messages, tools)
    out = build_tiny_model(tmp_path_factory.mktemp("reader") / "model", corpus=[prompt, READING], vocab_size=1024)
    train_to_say(out, [(prompt, READING)], steps=400, lr=1e-2)
    return out


@pytest.mark.slow
def test_a_local_model_fills_the_result_through_with_structured_output(reader_dir: Path) -> None:
    from agentkit.llm import LocalChatModel

    reader = LLMUnderstanding(
        LocalChatModel.from_pretrained(str(reader_dir), max_new_tokens=96), top_k=1, intents=INTENTS
    )
    assert isinstance(reader, Understanding)
    understood = reader.understand(QUESTION, CONTEXT)
    assert understood.tools == ["get_weather"] and understood.needs_tool is True
    assert understood.intent.label == "lookup" and understood.language == "en"
    assert [(s.kind, s.text, s.start) for s in understood.slots] == [("date", "today", QUESTION.index("today"))]
    # Any other question is beyond what the model learned: its reply is no call, and every tool stays offered.
    confused = reader.understand("something else entirely", CONTEXT)
    assert confused.tools is None and confused.intent.label == "unknown"


def test_made_up_names_and_labels_are_dropped_and_failures_offer_every_tool() -> None:
    call = {"name": "UserTurn", "args": {"intent": "dance", "tools": ["nope", "Calculator"]}, "id": "1"}
    from langchain_core.messages import AIMessage

    reader = LLMUnderstanding(ScriptedChatModel(responses=[AIMessage("", tool_calls=[call])]), top_k=1)
    understood = reader.understand("what is 2+2?", CONTEXT)
    assert understood.tools == ["calculator"] and understood.intent.label == "unknown"

    def broken(messages: object) -> str:
        raise RuntimeError("the model fell over")

    for llm in (ScriptedChatModel(responses=["not a call"]), ScriptedChatModel(responses=[broken])):
        fallback = LLMUnderstanding(llm, top_k=1).understand("what is 2+2?", CONTEXT)
        assert fallback.tools is None and fallback.needs_tool is None
    empty = LLMUnderstanding(ScriptedChatModel(), top_k=1).understand("  ", CONTEXT)  # no call for empty text
    assert empty.needs_tool is False


def test_a_model_without_tool_calling_is_a_config_error() -> None:
    from langchain_core.language_models.fake_chat_models import FakeListChatModel

    with pytest.raises(ConfigError, match="EmbeddingUnderstanding"):
        LLMUnderstanding(FakeListChatModel(responses=["x"]))
    with pytest.raises(ConfigError, match="top_k"):
        LLMUnderstanding(ScriptedChatModel(), top_k=0)

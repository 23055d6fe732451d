"""LocalChatModel's context window: its profile, exact token counts, the overflow error, replies cut at the window."""

from __future__ import annotations

from pathlib import Path

import pytest
from langchain_core.exceptions import ContextOverflowError
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, SystemMessage, ToolMessage
from tinymodels import weather_schema

from agentkit.llm import LocalChatModel
from agentkit.llm.tiny import build_tiny_model

WINDOW = 256


@pytest.fixture(scope="module")
def gpt2_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny GPT-2: a position table of WINDOW rows; a position past it raises IndexError."""
    return build_tiny_model(
        tmp_path_factory.mktemp("gpt2") / "model", arch="gpt2", context=WINDOW, hidden_size=32, layers=1, heads=2
    )


@pytest.fixture(scope="module")
def llama_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny rotary model, which runs past its window on untrained positions unless stopped."""
    return build_tiny_model(tmp_path_factory.mktemp("llama") / "model", context=WINDOW, hidden_size=32, layers=1)


def _words(count: int) -> str:
    return " ".join(f"w{i % 7}" for i in range(count))


def test_the_profile_holds_the_window_before_the_model_loads(gpt2_dir: Path) -> None:
    chat = LocalChatModel(model_id=str(gpt2_dir))
    assert chat._loaded is None  # read from config.json alone
    assert chat.profile is not None
    assert chat.profile["max_input_tokens"] == WINDOW  # GPT-2's n_positions, under transformers' common name
    assert chat.profile["tool_calling"] is True
    assert chat.profile["image_inputs"] is False  # media in a message is refused (prompt.to_chat)


def test_a_profile_the_user_gives_is_kept(gpt2_dir: Path) -> None:
    chat = LocalChatModel.from_pretrained(gpt2_dir, profile={"max_input_tokens": 100})
    assert chat.profile == {"max_input_tokens": 100}


@pytest.mark.parametrize("model", ["gpt2_dir", "llama_dir"])
def test_a_prompt_that_fills_the_window_raises_context_overflow_and_queues_nothing(
    model: str, request: pytest.FixtureRequest
) -> None:
    chat = LocalChatModel.from_pretrained(request.getfixturevalue(model), max_new_tokens=4)
    long = [HumanMessage(_words(300))]
    tokens = chat.get_num_tokens_from_messages(long)
    assert tokens > WINDOW
    with pytest.raises(ContextOverflowError, match=rf"The prompt is {tokens:,} tokens, .* takes {WINDOW:,} in all"):
        chat.invoke(long)
    assert chat.stats.calls == 0  # refused before the queue: the worker never saw it
    reply = chat.invoke("hello")  # and the model goes on serving
    assert reply.usage_metadata is not None and reply.usage_metadata["output_tokens"] > 0


@pytest.mark.parametrize("model", ["gpt2_dir", "llama_dir"])
def test_a_reply_stops_where_the_window_ends(model: str, request: pytest.FixtureRequest) -> None:
    # Before, the GPT-2 indexed past its position table (an IndexError; on a GPU, a device-side assert) and the
    # rotary model ran on past its window.
    chat = LocalChatModel.from_pretrained(request.getfixturevalue(model), max_new_tokens=200)
    question = [HumanMessage(_words(70))]
    reply = chat.invoke(question)
    assert reply.usage_metadata is not None
    assert reply.usage_metadata["input_tokens"] > WINDOW - 200  # the budget reaches past the window
    assert reply.response_metadata["stop_reason"] == "length"
    assert reply.usage_metadata["total_tokens"] == WINDOW


def test_an_agent_whose_prompt_overflows_ends_with_an_error_that_says_so(gpt2_dir: Path) -> None:
    from agentkit import Agent
    from agentkit.tools import calculator

    agent = Agent(llm=LocalChatModel.from_pretrained(gpt2_dir, max_new_tokens=4), tools=[calculator], max_steps=2)
    question = f"Add these up: {_words(200)}"
    result = agent.invoke(question)
    assert result.status == "error"
    assert result.error is not None
    assert result.error.startswith("The model call failed: ContextOverflowError: The prompt is")
    assert question in str(result.messages[-1].content)  # what was sent is kept on the result


def test_token_counts_are_those_of_the_prompt_a_call_sends(tiny_dir: Path) -> None:
    chat = LocalChatModel.from_pretrained(tiny_dir, max_new_tokens=2)
    conversation: list[BaseMessage] = [
        SystemMessage("Be brief."),
        HumanMessage("weather in Paris?"),
        AIMessage("", tool_calls=[{"name": "get_weather", "args": {"city": "Paris"}, "id": "1"}]),
        ToolMessage("sunny", tool_call_id="1"),
    ]
    counted = chat.get_num_tokens_from_messages(conversation, tools=[weather_schema()])
    reply = chat.bind_tools([weather_schema()]).invoke(conversation)
    assert reply.usage_metadata is not None
    assert counted == reply.usage_metadata["input_tokens"]
    assert chat.get_num_tokens_from_messages(conversation) < counted  # the tool schemas are in the prompt
    assert chat.get_num_tokens_from_messages([]) == 0
    # The model's own tokenizer, not LangChain's fallback, which downloads GPT-2's.
    assert chat.get_token_ids("w1 w2") == chat.tokenizer("w1 w2", add_special_tokens=False)["input_ids"]
    assert chat.get_num_tokens("w1 w2") == len(chat.get_token_ids("w1 w2"))


def test_counting_keeps_the_running_episodes_prompts(tiny_dir: Path) -> None:
    chat = LocalChatModel.from_pretrained(tiny_dir, max_new_tokens=2, prefix_cache_size=1)
    step = [HumanMessage("hello")]
    chat.invoke(step)
    chat.get_num_tokens_from_messages([HumanMessage("something else entirely")])
    kept = chat._load().prompt_ids._kept
    assert len(kept) == 1
    assert "hello" in kept[0].text  # the one prompt kept is still the episode's, not the counted one


def test_summarization_middleware_keeps_a_long_conversation_in_the_window(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """LangChain's own middleware, on the window and counts the model reports, and on its overflow error."""
    from langchain.agents import create_agent
    from langchain.agents.middleware import SummarizationMiddleware

    # Room for LangChain's summary prompt (about 1,600 of this tokenizer's tokens) and the 40 % of the window its
    # overflow retry keeps of the history.
    folder = build_tiny_model(tmp_path / "model", context=4096, hidden_size=32, layers=1)
    chat = LocalChatModel.from_pretrained(folder, max_new_tokens=8)
    history: list[BaseMessage] = []
    for turn in range(10):
        history += [HumanMessage(f"turn {turn}: {_words(200)}"), AIMessage(f"noted {turn}")]
    history.append(HumanMessage("What did I say first?"))
    assert chat.get_num_tokens_from_messages(history) > 4096

    with pytest.raises(ContextOverflowError):
        create_agent(chat).invoke({"messages": history})

    overflows: list[int] = []
    call = LocalChatModel._call

    def spy(self: LocalChatModel, messages: list[BaseMessage], *args: object) -> object:
        try:
            return call(self, messages, *args)
        except ContextOverflowError:
            overflows.append(len(messages))
            raise

    monkeypatch.setattr(LocalChatModel, "_call", spy)
    summarizing = SummarizationMiddleware(
        model=chat,
        trigger=("fraction", 0.5),  # of profile["max_input_tokens"]
        keep=("messages", 2),
        token_counter=chat.get_num_tokens_from_messages,
    )
    state = create_agent(chat, middleware=[summarizing]).invoke({"messages": history})
    messages = state["messages"]
    # The summary prompt overflowed the window at first; LangChain caught the error and cut the history's middle.
    assert overflows == [1]
    assert str(messages[0].content).startswith("Here is a summary of the conversation")
    assert [m.content for m in messages[1:3]] == ["noted 9", "What did I say first?"]  # the two messages kept
    assert isinstance(messages[-1], AIMessage)
    assert chat.stats.calls == 2  # the summary, on the shorter prompt, and the answer

"""What the tiny test models are trained to say, shared by the fixtures and the tests."""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, SystemMessage

if TYPE_CHECKING:
    import pytest

    from agentkit.llm import LocalChatModel

STOP = ["\nObservation:"]
EPISODE_QUESTIONS = ["What is 3 plus 4?", "Tell me about Paris", "x y z"]
"""The ReAct observation marker, which the trained replies run on past."""
GREETING = "Hello! How can I help you today?"
RUNAWAY = "\nObservation: 42\nThought: I now know the final answer."
WEATHER_CALLS = (
    '<tool_call>\n{"name": "get_weather", "arguments": {"city": "Paris"}}\n</tool_call>\n'
    '<tool_call>\n{"name": "get_weather", "arguments": {"city": "Tokyo"}}\n</tool_call>'
)
THOUGHTFUL = "<think>\nThe user asked about the capital.\n</think>\nThe capital of France is Paris."


def weather_schema() -> dict[str, Any]:
    """The OpenAI schema of the `get_weather` tool the trained model calls."""
    return {
        "type": "function",
        "function": {
            "name": "get_weather",
            "description": "Current weather in a city.",
            "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
        },
    }


def episode(chat: LocalChatModel, question: str, steps: int) -> list[AIMessage]:
    """A multi-step conversation where each step feeds the model's own reply back with an observation."""
    messages: list[BaseMessage] = [SystemMessage("Answer step by step."), HumanMessage(question)]
    replies = []
    for step in range(steps):
        reply = chat.invoke(messages, stop=STOP)
        replies.append(reply)
        messages += [AIMessage(reply.content), HumanMessage(f"Observation: result {step}")]
    return replies


def concurrent_episodes(chat: LocalChatModel, questions: list[str], steps: int) -> list[list[AIMessage]]:
    """`episode` for each question on threads started together, so that their steps are batched."""
    gate = threading.Barrier(len(questions))

    def run(question: str) -> list[AIMessage]:
        gate.wait()
        return episode(chat, question, steps)

    with ThreadPoolExecutor(len(questions)) as pool:
        return list(pool.map(run, questions))


def episode_token_ids(chat: LocalChatModel, concurrent: bool) -> list[list[list[int]]]:
    """Three 3-step episodes' generated ids (needs `return_logprobs`), run one after another or at once (batched)."""
    if concurrent:
        episodes = concurrent_episodes(chat, EPISODE_QUESTIONS, 3)
    else:
        episodes = [episode(chat, question, 3) for question in EPISODE_QUESTIONS]
    return [[reply.response_metadata["token_ids"] for reply in replies] for replies in episodes]


def check_reuse_and_batching_keep_tokens(load: Callable[..., LocalChatModel]) -> None:
    """Greedy ids with the prefix cache, and batched, equal those of full prefills one at a time.

    Args:
        load: Builds the chat model under test from extra settings (``prefix_cache_size=0`` for the reference).
    """
    cold = episode_token_ids(load(prefix_cache_size=0), concurrent=False)
    cached = load()
    assert episode_token_ids(cached, concurrent=False) == cold
    assert cached.stats.prefilled_tokens < cached.stats.prompt_tokens  # the cache served later steps
    batched = load()
    assert episode_token_ids(batched, concurrent=True) == cold
    assert batched.stats.batches < batched.stats.calls


def compiled_calls(model: Any, monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Count the `generate` calls that took transformers' compiled decoding path."""
    calls: list[int] = []
    real = model.get_compiled_call
    monkeypatch.setattr(model, "get_compiled_call", lambda config: calls.append(1) or real(config))
    return calls


def common_length(a: list[int], b: list[int]) -> int:
    """How many first tokens two token lists share (written apart from the engine's own, as the tests' reference)."""
    return next((i for i, (x, y) in enumerate(zip(a, b, strict=False)) if x != y), min(len(a), len(b)))

"""Test configuration: every test runs offline, and a network attempt fails loudly."""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from tinymodels import GREETING, RUNAWAY, THOUGHTFUL, WEATHER_CALLS, weather_schema

from agentkit.testing import OFFLINE_ENV, block_network

# Set before any test imports huggingface_hub or transformers, which read these at import time.
os.environ.update(OFFLINE_ENV)
# A default model retrained on this machine (~/.cache/agentkit) would take the shipped one's place in the tests.
os.environ["AGENTKIT_HOME"] = tempfile.mkdtemp(prefix="agentkit-home-")
# It holds the embedder's ONNX export (~90 MB): gone with the session, or every run leaves one in the temp folder.
atexit.register(shutil.rmtree, os.environ["AGENTKIT_HOME"], ignore_errors=True)


@pytest.fixture(autouse=True)
def _offline() -> Iterator[None]:
    with block_network():
        yield


@pytest.fixture
def fresh_compiler() -> Iterator[None]:
    """Each test compiles its own models: torch's compiled code is cached per function, with a limit on variants."""
    import torch

    torch._dynamo.reset()
    yield
    torch._dynamo.reset()


# ----------------------------------------------------------------------------------------------------------------------
# Tiny real transformers models, built and trained locally once per test session (see agentkit.llm.tiny)
# ----------------------------------------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def tiny_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A randomly initialised tiny Llama with a Hermes (Qwen-style) chat template, saved like a Hub checkpoint."""
    from agentkit.llm.tiny import build_tiny_model

    return build_tiny_model(tmp_path_factory.mktemp("tiny") / "model")


def _trained_copy(
    base: Path, out: Path, replies: list[tuple[list[Any], list[dict[str, Any]] | None, str]], steps: int
) -> Path:
    """Copy the tiny model to `out` and train it to answer each (conversation, tools) with its reply."""
    from transformers import AutoTokenizer

    from agentkit.llm.prompt import render_prompt
    from agentkit.llm.tiny import train_to_say

    shutil.copytree(base, out)
    tokenizer = AutoTokenizer.from_pretrained(out)
    train_to_say(out, [(render_prompt(tokenizer, c, tools), reply) for c, tools, reply in replies], steps=steps)
    return out


@pytest.fixture(scope="session")
def chat_dir(tiny_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny model trained to answer a few prompts exactly (greedy decoding reproduces the replies).

    * "hi" -> the greeting, followed by a runaway ReAct observation that a stop string must cut;
    * "weather in Paris and Tokyo?" with `get_weather` bound -> two Hermes tool calls in one turn;
    * "capital of France?" -> a <think> block, then the answer.
    """
    from langchain_core.messages import HumanMessage

    replies = [
        ([HumanMessage("hi")], None, GREETING + RUNAWAY),
        ([HumanMessage("weather in Paris and Tokyo?")], [weather_schema()], WEATHER_CALLS),
        ([HumanMessage("capital of France?")], None, THOUGHTFUL),
    ]
    return _trained_copy(tiny_dir, tmp_path_factory.mktemp("chat") / "model", replies, steps=400)


@pytest.fixture(scope="session")
def talker_dir(tiny_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny model trained to greet after a user turn, whatever it says: a model that always writes some text."""
    from langchain_core.messages import AIMessage, HumanMessage, SystemMessage

    conversations = [
        [HumanMessage("Hello")],
        [HumanMessage("What is 1 + 1?")],
        [SystemMessage("Be brief."), HumanMessage("hi")],
        [HumanMessage("hello"), AIMessage("Hello!"), HumanMessage("how are you?")],
        [HumanMessage("Write a very long story about a fox.")],
    ]
    replies = [(c, None, GREETING) for c in conversations]
    return _trained_copy(tiny_dir, tmp_path_factory.mktemp("talker") / "model", replies, steps=300)

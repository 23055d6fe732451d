"""Prompt lookup decoding in LocalChatModel: drafted tokens save forward passes and change no generated token."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

import pytest
from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage, HumanMessage
from tinymodels import GREETING, RUNAWAY, STOP, episode

from agentkit.llm import LocalChatModel

REPEATED: list[BaseMessage] = [HumanMessage("hi"), AIMessage(GREETING + RUNAWAY), HumanMessage("hi")]
"""A conversation whose next reply repeats an earlier one: the context holds every token the model will write."""
EXACT = "float32"
"""The dtype of the tests that compare tokens and log-probabilities, also on a GPU (where "auto" is bfloat16).

Drafting must change no token and no log-probability. In bfloat16 a pass over several drafted tokens runs other kernels
than one pass per token, and rounding alone can flip a near-tied greedy token.
"""


@pytest.fixture(scope="module")
def echo_dir(tiny_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny model trained to say the greeting and run on past an invented observation, also when asked again."""
    from transformers import AutoTokenizer

    from agentkit.llm.prompt import render_prompt
    from agentkit.llm.tiny import train_to_say

    out = tmp_path_factory.mktemp("echo") / "model"
    shutil.copytree(tiny_dir, out)
    tokenizer = AutoTokenizer.from_pretrained(out)
    conversations = [[HumanMessage("hi")], REPEATED]
    train_to_say(out, [(render_prompt(tokenizer, c, None), GREETING + RUNAWAY) for c in conversations], steps=400)
    return out


@contextmanager
def _forward_passes(chat: LocalChatModel) -> Iterator[list[int]]:
    """Count the model's forward passes inside the block."""
    count = [0]
    handle = chat.model.register_forward_hook(lambda *_: count.__setitem__(0, count[0] + 1))
    try:
        yield count
    finally:
        handle.remove()


def test_drafted_tokens_save_forward_passes_and_change_no_token(echo_dir: Path) -> None:
    plain = LocalChatModel.from_pretrained(
        echo_dir, draft_tokens=0, return_logprobs=True, prefix_cache_size=0, dtype=EXACT
    )
    drafting = LocalChatModel.from_pretrained(
        echo_dir, draft_tokens=10, return_logprobs=True, prefix_cache_size=0, dtype=EXACT
    )
    with _forward_passes(plain) as without:
        expected = plain.invoke(REPEATED)
    with _forward_passes(drafting) as with_:
        reply = drafting.invoke(REPEATED)
    assert reply.content == expected.content == (GREETING + RUNAWAY).strip()
    assert reply.response_metadata["token_ids"] == expected.response_metadata["token_ids"]
    assert reply.response_metadata["logprobs"] == pytest.approx(expected.response_metadata["logprobs"], abs=1e-4)
    tokens = len(reply.response_metadata["token_ids"])
    assert without[0] == tokens  # one pass per token (the first one's is the prefill)
    assert with_[0] <= tokens / 3  # the reply is in the context: most tokens come ten to a pass


def test_a_stop_string_inside_an_accepted_draft_still_ends_the_reply(echo_dir: Path) -> None:
    plain = LocalChatModel.from_pretrained(echo_dir, draft_tokens=0, return_logprobs=True, dtype=EXACT)
    # No prefix reuse: both calls below then run the same passes up to the marker.
    drafting = LocalChatModel.from_pretrained(
        echo_dir, draft_tokens=10, return_logprobs=True, prefix_cache_size=0, dtype=EXACT
    )
    expected = plain.invoke(REPEATED, stop=STOP)
    with _forward_passes(drafting) as to_the_end:
        drafting.invoke(REPEATED)
    with _forward_passes(drafting) as to_the_stop:
        reply = drafting.invoke(REPEATED, stop=STOP)
    # The draft that ends the greeting runs on into the invented observation; the reply still ends at the marker,
    # with the same tokens and log-probabilities as without drafting (through the one that completes the marker),
    # and generation ends there rather than at the end of the invented text.
    assert reply.content == GREETING
    assert reply.response_metadata["stop_reason"] == "stop"
    assert reply.response_metadata["token_ids"] == expected.response_metadata["token_ids"]
    assert reply.response_metadata["logprobs"] == pytest.approx(expected.response_metadata["logprobs"], abs=1e-4)
    assert to_the_stop[0] < to_the_end[0]


def test_a_streamed_drafted_reply_delivers_every_token(echo_dir: Path) -> None:
    chat = LocalChatModel.from_pretrained(echo_dir, draft_tokens=10)
    chunks = list(chat.stream(REPEATED))
    whole: AIMessageChunk = chunks[0]
    for chunk in chunks[1:]:
        whole += chunk
    assert whole.content == chat.invoke(REPEATED).content == (GREETING + RUNAWAY).strip()
    # The tokens were streamed as they came, several from one pass, not held back for the final chunk (which only
    # completes text that could still have turned into markup).
    streamed = "".join(str(c.content) for c in chunks[:-1])
    assert whole.content.startswith(streamed) and streamed.startswith(GREETING + "\nObservation: 42")


def test_an_episode_with_prefix_reuse_writes_the_same_tokens_with_and_without_drafting(tiny_dir: Path) -> None:
    # The untrained model writes long arbitrary text, so drafts are often rejected and the cache cut back: a strict
    # check of the cut, on top of cached prefixes.
    plain = LocalChatModel.from_pretrained(
        tiny_dir, max_new_tokens=24, draft_tokens=0, return_logprobs=True, dtype=EXACT
    )
    drafting = LocalChatModel.from_pretrained(
        tiny_dir, max_new_tokens=24, draft_tokens=10, return_logprobs=True, dtype=EXACT
    )
    without, with_ = episode(plain, "What is 3 plus 4?", 4), episode(drafting, "What is 3 plus 4?", 4)
    assert [r.response_metadata["token_ids"] for r in with_] == [r.response_metadata["token_ids"] for r in without]
    for a, b in zip(with_, without, strict=True):
        assert a.response_metadata["logprobs"] == pytest.approx(b.response_metadata["logprobs"], abs=1e-4)
    assert all(r.response_metadata["prefilled_tokens"] < r.response_metadata["prompt_tokens"] for r in with_[1:])


def test_concurrent_calls_batch_without_drafting_and_match_drafted_calls_one_by_one(tiny_dir: Path) -> None:
    # transformers drafts for one row only: a batch of several runs plain decoding, with the same tokens.
    chat = LocalChatModel.from_pretrained(
        tiny_dir, max_new_tokens=16, draft_tokens=10, return_logprobs=True, dtype=EXACT
    )
    prompts = ["hi", "What is 3 plus 4?", "The quick brown fox", "hello there"]
    alone = [chat.invoke(p).response_metadata["token_ids"] for p in prompts]
    chat.stats.reset()
    with ThreadPoolExecutor(len(prompts)) as pool:
        together = list(pool.map(lambda p: chat.invoke(p).response_metadata["token_ids"], prompts))
    assert together == alone
    assert chat.stats.batches < len(prompts)  # some calls did share a batch

"""PromptIds: a prompt's ids from its new end only, always equal to encoding the whole prompt."""

from __future__ import annotations

import random
import threading
from pathlib import Path
from typing import Any

import pytest
from langchain_core.messages import AIMessage, HumanMessage, SystemMessage, ToolMessage

from agentkit.llm import LocalChatModel
from agentkit.llm.prompt import render_prompt
from agentkit.llm.prompt_ids import PromptIds, boundary_tokens

SPECIAL = ["<|im_start|>", "<|im_end|>", "<|endoftext|>"]
CORPUS = "Thought: I should use the calculator.\nAction: calculator\nObservation: 42 héllo 東京 the café, 12 + 3\n" * 3
# Pieces of prompts, chosen to sit on every edge: added tokens cut in two, whitespace on either side of them, text
# that only a normalizer turns into an added token, characters outside the vocabulary.
PIECES = [
    *SPECIAL,
    "<|im_",
    "end|>",
    "\n",
    " ",
    "  ",
    "Observation:",
    " hello",
    "héllo 東京",
    "12 + 3",
    "<tool_call>",
    " <tool_call> ",
    "<|im_end|>!",
    "=",
    "!",
    "<w>",
    "OBS",
    "obs ",
    "<x>",
    " <x>",
    "\t",
    "▁a",
]


def _sentencepiece_style(*, normalizer: bool = False, scheme: str = "first", extra: tuple[Any, ...] = ()) -> Any:
    """A Llama-2/Mistral-style BPE: '▁' for spaces, by a Metaspace pre-tokenizer or by normalizers (legacy Llama)."""
    from tokenizers import AddedToken, Tokenizer, models, normalizers, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    raw = Tokenizer(models.BPE(unk_token="<unk>", byte_fallback=True))
    if normalizer:
        raw.normalizer = normalizers.Sequence([normalizers.Prepend("▁"), normalizers.Replace(" ", "▁")])
    else:
        raw.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme=scheme)
    trainer = trainers.BpeTrainer(vocab_size=400, special_tokens=["<unk>", *(f"<0x{b:02X}>" for b in range(256))])
    raw.train_from_iterator([CORPUS], trainer)
    raw.add_special_tokens([AddedToken(token, normalized=False) for token in SPECIAL])
    raw.add_tokens(list(extra))
    return PreTrainedTokenizerFast(tokenizer_object=raw, unk_token="<unk>")


def _awkward_added_tokens() -> Any:
    """Added tokens at every edge of the rule: some are boundaries, some must not be."""
    from tokenizers import AddedToken

    return _sentencepiece_style(
        normalizer=True,  # `Prepend` rewrites the start of every piece
        extra=(
            AddedToken("<tool_call>", rstrip=True, normalized=False),  # takes in whitespace on its right: a boundary
            AddedToken("<x>", lstrip=True, normalized=False),  # on its left: also one
            AddedToken("<|im_end|>!", normalized=False),  # starts with <|im_end|>: both are boundaries
            AddedToken("=<|endoftext|>!", normalized=False),  # holds <|endoftext|> past its start: that is none
            AddedToken("obs", normalized=True),  # found after the normalizer ran: none
            AddedToken("<w>", single_word=True, normalized=False),  # depends on what surrounds it: none
        ),
    )


TOKENIZERS = {
    "byte-level BPE (Qwen-style)": None,  # the tests' tiny model
    "Metaspace, prepend first (Llama 2, Mistral)": _sentencepiece_style,
    "Metaspace, prepend always": lambda: _sentencepiece_style(scheme="always"),
    "Prepend + Replace normalizers (legacy Llama)": lambda: _sentencepiece_style(normalizer=True),
    "awkward added tokens": _awkward_added_tokens,
}


@pytest.fixture(params=list(TOKENIZERS))
def tokenizer(request: pytest.FixtureRequest, tiny_dir: Path) -> Any:
    build = TOKENIZERS[request.param]
    if build is not None:
        return build()
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(tiny_dir)


def _spy(monkeypatch: pytest.MonkeyPatch, tokenizer: Any) -> list[str]:
    """Record every text the tokenizer encodes (the instance's method; `boundary_tokens` checks the class's)."""
    encoded: list[str] = []
    encode = tokenizer._encode_plus

    def spy(text: str, *args: Any, **kwargs: Any) -> Any:
        encoded.append(text)
        return encode(text, *args, **kwargs)

    monkeypatch.setattr(tokenizer, "_encode_plus", spy)
    return encoded


def _whole(tokenizer: Any, text: str) -> list[int]:
    return list(tokenizer(text, add_special_tokens=False)["input_ids"])


def test_ids_equal_the_whole_encoding_over_random_episodes(tokenizer: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    prompt_ids = PromptIds(tokenizer, capacity=8)
    rng = random.Random(0)
    expected: list[list[int]] = []
    texts: list[str] = []
    for _ in range(40):
        text = "".join(rng.choice(PIECES) for _ in range(5))
        for _ in range(8):
            roll = rng.random()
            if roll < 0.7:  # the next step: the prompt grows
                text += "".join(rng.choice(PIECES) for _ in range(rng.randint(1, 6)))
            elif roll < 0.85:  # another branch from an earlier point
                text = text[: rng.randint(0, len(text))] + "".join(rng.choice(PIECES) for _ in range(3))
            else:  # an earlier turn rendered differently
                cut = rng.randint(0, len(text))
                text = text[:cut] + rng.choice(PIECES) + text[cut:]
            texts.append(text)
            expected.append(_whole(tokenizer, text))
    encoded = _spy(monkeypatch, tokenizer)
    assert [prompt_ids(text) for text in texts] == expected
    # The point of it: much of the text was not encoded again (these prompts are short, and a third of the changes
    # land early in them; an agent's episode saves far more, as the next test shows).
    assert sum(map(len, encoded)) < 0.7 * sum(map(len, texts))


def test_an_episode_encodes_only_each_step_s_new_end(tiny_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_dir)
    messages: list[Any] = [SystemMessage("You answer with tools. " * 20), HumanMessage("What is 17 + 25?")]
    prompts = []
    for step in range(4):
        prompts.append(render_prompt(tokenizer, messages, None))
        messages += [AIMessage(f"Action: calculator {step}"), ToolMessage(f"{step * 7}", tool_call_id=str(step))]
    prompt_ids = PromptIds(tokenizer)
    encoded = _spy(monkeypatch, tokenizer)
    for before, prompt in zip(["", *prompts], prompts, strict=False):
        assert prompt_ids(prompt) == _whole(tokenizer, prompt)
        if before:
            # From the assistant turn's opening, the last added token the two prompts share.
            new_end = prompt[before.rindex("<|im_start|>") :]
            assert encoded[-2] == new_end
    prompt_ids.clear()
    prompt_ids(prompts[-1])
    assert encoded[-1] == prompts[-1]


def test_which_added_tokens_are_boundaries() -> None:
    boundaries = set(boundary_tokens(_awkward_added_tokens()).values())
    assert {"<|im_start|>", "<|im_end|>", "<|im_end|>!", "<tool_call>", "<x>", "=<|endoftext|>!"} <= boundaries
    assert not {"<|endoftext|>", "obs", "<w>"} & boundaries


def test_a_vocabulary_of_reserved_tokens() -> None:
    """Thousands of added tokens (Gemma, Llama 3 reserve many), one of them inside another."""
    from tokenizers import AddedToken, Tokenizer, models
    from transformers import PreTrainedTokenizerFast

    raw = Tokenizer(models.WordLevel({"[UNK]": 0}, unk_token="[UNK]"))
    raw.add_special_tokens([AddedToken(f"<unused{i}>", normalized=False) for i in range(3000)])
    raw.add_tokens([AddedToken("[<unused7>]", normalized=False)])
    boundaries = set(boundary_tokens(PreTrainedTokenizerFast(tokenizer_object=raw)).values())
    assert len(boundaries) == 3000
    assert "<unused7>" not in boundaries and {"<unused1>", "<unused17>", "[<unused7>]"} <= boundaries


@pytest.mark.parametrize(
    ("before", "after"),
    [
        ("a=<|endoftext|>", "!b"),  # a longer token matches from before the split onto the new text
        ("x <w>", "y"),  # a whole-word token is no longer one
        ("x <|im_end|>", "!y"),  # a longer token starts at the split
        ("x   <x>", "  y"),  # whitespace taken in on the left
        ("x <tool_call>", "  y"),  # on the right
    ],
)
def test_prompts_that_would_split_wrongly_at_an_unsafe_token(before: str, after: str) -> None:
    tokenizer = _awkward_added_tokens()
    prompt_ids = PromptIds(tokenizer)
    start = "<|im_start|>user\n"
    for text in (start + before, start + before + after):
        assert prompt_ids(text) == _whole(tokenizer, text)


def test_tokenizers_that_may_rewrite_the_text_are_encoded_whole(
    tokenizer: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert boundary_tokens(tokenizer)

    class Rewriting(type(tokenizer)):  # type: ignore[misc]
        def _encode_plus(self, text: Any, *args: Any, **kwargs: Any) -> Any:
            return super()._encode_plus(text, *args, **kwargs)

    monkeypatch.setattr(tokenizer, "__class__", Rewriting)
    assert boundary_tokens(tokenizer) == {}
    monkeypatch.setattr(tokenizer, "__class__", Rewriting.__mro__[1])
    monkeypatch.setattr(tokenizer, "split_special_tokens", True)
    assert boundary_tokens(tokenizer) == {}
    prompt_ids = PromptIds(tokenizer)
    encoded = _spy(monkeypatch, tokenizer)
    for text in ["<|im_start|>user\nhi<|im_end|>\n", "<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n"]:
        assert prompt_ids(text) == _whole(tokenizer, text)
        assert encoded[-2] == text


def test_concurrent_callers_get_their_own_ids(tiny_dir: Path) -> None:
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_dir)
    prompt_ids = PromptIds(tokenizer, capacity=4)  # fewer than the episodes: kept prompts are evicted mid-run
    system = "<|im_start|>system\nYou are helpful.<|im_end|>\n"
    results: dict[int, list[bool]] = {}

    def episode(number: int) -> None:
        text, same = system, []
        for step in range(6):
            text += f"<|im_start|>user\nepisode {number} step {step}<|im_end|>\n<|im_start|>assistant\n"
            same.append(prompt_ids(text) == _whole(tokenizer, text))
            text += f"reply {number}.{step}<|im_end|>\n"
        results[number] = same

    threads = [threading.Thread(target=episode, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert results == {n: [True] * 6 for n in range(8)}


def test_local_chat_model_tokenizes_only_the_new_end(tiny_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    chat = LocalChatModel.from_pretrained(tiny_dir, max_new_tokens=4)
    encoded = _spy(monkeypatch, chat.tokenizer)
    messages: list[Any] = [SystemMessage("You answer with tools. " * 20), HumanMessage("What is 17 + 25?")]
    for step in range(3):
        reply = chat.invoke(messages)
        prompt = render_prompt(chat.tokenizer, messages, None)
        assert reply.response_metadata["prompt_tokens"] == len(_whole(chat.tokenizer, prompt))
        messages += [reply, HumanMessage(f"Observation: {step}")]
    assert len(encoded) == 3 + 3  # each call's prompt, and the check's
    assert all(len(encoded[i]) < len(encoded[i + 1]) / 2 for i in (2, 4))  # steps 2 and 3: only their new ends
    chat.clear_cache()
    chat.invoke(messages[:2])
    assert encoded[-1] == render_prompt(chat.tokenizer, messages[:2], None)

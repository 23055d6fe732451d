"""VisibleText: what a streamed reply shows, token by token, on byte-level BPE and SentencePiece-style tokenizers."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from agentkit.llm.streaming import VisibleText

TEXT = "The café said héllo 😀 to 12 people.\nThen: 3 more, ünd 東京 too — fine.  Done"


def _metaspace_tokenizer() -> Any:
    """A SentencePiece-style tokenizer (Llama 2, Mistral): '▁' marks spaces, and decoding drops the first one."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    raw = Tokenizer(models.BPE(unk_token="<unk>", byte_fallback=True))
    raw.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="first")
    raw.decoder = decoders.Sequence(
        [decoders.Replace("▁", " "), decoders.ByteFallback(), decoders.Fuse(), decoders.Strip(" ", 1, 0)]
    )
    bytes_ = [f"<0x{b:02X}>" for b in range(256)]
    trainer = trainers.BpeTrainer(vocab_size=400, special_tokens=["<unk>", "</s>", *bytes_])
    raw.train_from_iterator([TEXT.replace("😀", "").replace("東京", "")] * 20, trainer)
    return PreTrainedTokenizerFast(tokenizer_object=raw, unk_token="<unk>", eos_token="</s>")


@pytest.fixture(params=["byte-level BPE", "SentencePiece-style"])
def tokenizer(request: pytest.FixtureRequest, tiny_dir: Path) -> Any:
    if request.param == "SentencePiece-style":
        return _metaspace_tokenizer()
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(tiny_dir)


def test_shown_text_is_always_a_prefix_of_the_whole_decode(tokenizer: Any) -> None:
    ids = tokenizer(TEXT, add_special_tokens=False)["input_ids"]
    whole = tokenizer.decode(ids, skip_special_tokens=False)
    assert "😀" in whole and "ünd" in whole  # the tokenizer round-trips the text, so the comparison means something
    visible = VisibleText(tokenizer, [], {tokenizer.eos_token_id})
    pieces = []
    for token in ids:
        pieces.append(visible.push(token))
        assert whole.startswith(visible.shown), visible.shown
        assert "\ufffd" not in visible.shown  # half a character is never shown
    assert "".join(pieces) == visible.shown
    # Only the tail that could still be a stop string or tool-call markup is held back; the last chunk releases it.
    assert len(whole) - len(visible.shown) <= len("<|python_tag|>")


def test_a_stop_string_ends_the_text_where_it_begins(tokenizer: Any) -> None:
    ids = tokenizer(TEXT, add_special_tokens=False)["input_ids"]
    visible = VisibleText(tokenizer, ["\nThen"], {tokenizer.eos_token_id})
    shown = "".join(visible.push(token) for token in ids)
    assert shown == "The café said héllo 😀 to 12 people."
    assert visible.push(ids[0]) == ""  # closed


def test_each_token_decodes_a_few_tokens_not_the_whole_reply(tiny_dir: Path) -> None:
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_dir)
    decoded: list[int] = []
    original = tokenizer.decode

    def counting(ids: list[int], **kwargs: Any) -> str:
        decoded.append(len(ids))
        return str(original(ids, **kwargs))

    tokenizer.decode = counting
    ids = tokenizer((TEXT + " ") * 40, add_special_tokens=False)["input_ids"]
    visible = VisibleText(tokenizer, ["\nObservation:"], {tokenizer.eos_token_id})
    for token in ids:
        visible.push(token)
    assert len(ids) > 1000
    # Decoding the whole reply at each token would decode about n²/2 ids; incremental decoding decodes a few per token.
    assert sum(decoded) < 6 * len(ids), (sum(decoded), len(ids))
    assert visible.shown == original(ids)[: len(visible.shown)]

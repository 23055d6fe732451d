"""Intents by nearest labelled examples: a few sentences per label, extended in a line or two.

    intents = {**DEFAULT_INTENTS, "book_flight": ["book me a flight to Rome", "I need a plane ticket"]}
    understanding = EmbeddingUnderstanding(intents=intents)

A turn gets the label of its most similar example, with that cosine similarity as the confidence, or ``"unknown"``
when no example is similar enough (the rule semantic routers use: no training, and a new label works at once).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import numpy as np

from agentkit.errors import ConfigError
from agentkit.protocols import UNKNOWN_INTENT, Intent

__all__ = ["DEFAULT_INTENTS", "NO_TOOL_INTENTS", "IntentExamples"]

DEFAULT_INTENTS: Mapping[str, Sequence[str]] = {
    "greeting": ["hi", "hello there", "good morning", "hey, how are you?"],
    "farewell": ["bye", "goodbye, see you later", "that's all for today", "good night"],
    "thanks": ["thank you", "thanks a lot, that helped", "great, thanks!", "much appreciated"],
    "chitchat": ["who are you?", "what can you do?", "tell me a joke", "are you a robot?"],
    "calculate": [
        "what is 12 times 7?",
        "calculate the square root of 144",
        "how much is 15% of 80?",
        "convert 5 kilograms to pounds",
    ],
    "lookup": [
        "what is the capital of France?",
        "search the web for the latest news",
        "find information about the Eiffel Tower",
        "what's the weather in Tokyo?",
    ],
    "time": ["what time is it?", "what's the date today?", "what day is it in Tokyo?", "how many days until Friday?"],
    "files": [
        "read the file notes.txt",
        "write this summary to report.md",
        "list the files in the folder",
        "what does config.yaml contain?",
    ],
    "task": [
        "send an email to Bob",
        "book a table for two tomorrow at 7pm",
        "create a reminder for my meeting",
        "schedule a call with the team next week",
    ],
}
"""Labels with a few examples each; extend or replace them with your own."""

NO_TOOL_INTENTS: frozenset[str] = frozenset({"greeting", "farewell", "thanks", "chitchat"})
"""Labels whose turns a model answers without a tool."""

Encode = Callable[[Sequence[str]], np.ndarray]


class IntentExamples:
    """Labelled examples, embedded once, that name the intent of a turn.

    Args:
        examples: Label -> example sentences.
        min_confidence: The similarity below which a turn's intent is ``"unknown"``.

    Raises:
        ConfigError: When a label has no example, or an example is not a non-empty string.
    """

    def __init__(self, examples: Mapping[str, Sequence[str]], *, min_confidence: float = 0.45) -> None:
        for label, sentences in examples.items():
            if isinstance(sentences, str) or not sentences:
                raise ConfigError(
                    f"Intent {label!r} needs a list of example sentences, e.g. {{{label!r}: ['first', 'second']}}."
                )
            if not all(isinstance(s, str) and s.strip() for s in sentences):
                raise ConfigError(f"Intent {label!r} has an example that is not a non-empty string.")
        self.labels = [label for label, sentences in examples.items() for _ in sentences]
        self.sentences = [s for sentences in examples.values() for s in sentences]
        self.min_confidence = min_confidence
        self._vectors: np.ndarray | None = None

    def classify(self, query: np.ndarray, encode: Encode) -> Intent:
        """The intent of a turn.

        Args:
            query: The turn's unit-length embedding.
            encode: Embeds the examples (on the first call only) with the same model as `query`.

        Returns:
            The label of the most similar example and that similarity, or `UNKNOWN_INTENT` when below the minimum.
        """
        if not self.sentences:
            return UNKNOWN_INTENT
        if self._vectors is None:
            self._vectors = encode(self.sentences)
        similarities = self._vectors @ query
        best = int(np.argmax(similarities))
        confidence = float(np.clip(similarities[best], 0.0, 1.0))
        if confidence < self.min_confidence:
            return UNKNOWN_INTENT
        return Intent(self.labels[best], confidence)

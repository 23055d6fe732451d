"""How recalled memories are ranked: Generative Agents' weighted sum of relevance, recency and importance.

Each part is scaled to [0, 1] on its own, without looking at the other candidates, so a memory's score does not
depend on what else was found: relevance is the cosine similarity clipped at 0, recency decays exponentially with
the hours since the memory was last accessed (0.995 per hour in the paper), importance is stored in [0, 1].

A fourth, lighter part makes the search hybrid: the share of the query's content words found in the memory. Small
embedding models blur names, numbers and rare words ("A1C", "Miso"); on BFCL's memory questions this part lifts
hit@5 from 0.90 to 0.95 (see benchmarks/README.md).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

from agentkit.errors import ConfigError
from agentkit.memory.records import MemoryRecord, ScoredMemory

__all__ = ["Scoring", "content_words"]

_HOUR = 3600.0
_WORD = re.compile(r"\w+")
# Words that say nothing about which memory is meant; other languages simply keep all their words.
_STOPWORDS = frozenset(
    [
        "a",
        "an",
        "and",
        "are",
        "as",
        "at",
        "be",
        "been",
        "by",
        "can",
        "could",
        "did",
        "do",
        "does",
        "for",
        "from",
        "had",
        "has",
        "have",
        "how",
        "i",
        "in",
        "is",
        "it",
        "its",
        "me",
        "my",
        "of",
        "on",
        "or",
        "our",
        "should",
        "so",
        "that",
        "the",
        "their",
        "them",
        "they",
        "this",
        "to",
        "was",
        "we",
        "were",
        "what",
        "when",
        "where",
        "which",
        "who",
        "why",
        "will",
        "with",
        "would",
        "you",
        "your",
    ]
)


def content_words(text: str) -> frozenset[str]:
    """The lower-cased words of `text` that can tell memories apart (no stopwords, no single letters)."""
    return frozenset(w for w in _WORD.findall(text.lower()) if len(w) > 1 and w not in _STOPWORDS)


@dataclass(frozen=True, slots=True)
class Scoring:
    """The weights of a memory's score, and how fast recency fades.

    The score is the weighted mean of the three parts, so it stays in [0, 1] whatever the weights.

    Attributes:
        relevance: Weight of the cosine similarity to the query.
        recency: Weight of how recently the memory was accessed.
        importance: Weight of the memory's importance.
        keywords: Weight of the share of the query's content words the memory contains (0 turns it off).
        decay: Recency left after one hour without access (0 < decay <= 1).

    Raises:
        ConfigError: When a weight is negative or not finite, all weights are 0, or `decay` is outside (0, 1].
    """

    relevance: float = 1.0
    recency: float = 1.0
    importance: float = 1.0
    keywords: float = 0.2
    decay: float = 0.995

    def __post_init__(self) -> None:
        weights = (self.relevance, self.recency, self.importance, self.keywords)
        if any(not math.isfinite(w) or w < 0 for w in weights) or sum(weights) == 0:
            raise ConfigError(f"Scoring weights must be finite, non-negative and not all zero, got {weights}.")
        if not 0 < self.decay <= 1:
            raise ConfigError(f"Scoring decay must be in (0, 1] (recency left per hour), got {self.decay!r}.")

    def score(self, record: MemoryRecord, distance: float, now: float, query: frozenset[str]) -> ScoredMemory:
        """Score one memory found at cosine `distance` from the query, at time `now`.

        Args:
            record: The memory.
            distance: Its cosine distance from the query.
            now: The time of the search.
            query: The query's `content_words`.
        """
        relevance = min(1.0, max(0.0, 1.0 - distance))
        recency = self.decay ** (max(0.0, now - record.accessed_at) / _HOUR)
        keywords = len(query & content_words(record.text)) / len(query) if query and self.keywords else 0.0
        parts = (
            (self.relevance, relevance),
            (self.recency, recency),
            (self.importance, record.importance),
            (self.keywords, keywords),
        )
        return ScoredMemory(
            record=record,
            score=sum(w * v for w, v in parts) / sum(w for w, _ in parts),
            relevance=relevance,
            recency=recency,
            importance=record.importance,
            keywords=keywords,
        )

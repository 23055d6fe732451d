"""The default understanding: sentence embeddings and parsers, no language model.

One embedding of the user's words serves two questions: which labelled example it is nearest (the intent) and which
tools it is nearest (by their name, description and argument docs). Tool embeddings are cached by the text they
were computed from, so a toolbox that changes (a tool added, a description edited) re-embeds only what changed,
and a question against a known toolbox costs one short forward pass and a matrix product.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Collection, Mapping, Sequence

import numpy as np
from langchain_core.embeddings import Embeddings

from agentkit.embeddings import Embedder
from agentkit.errors import ConfigError
from agentkit.protocols import LongTermMemory, RankedTool, TurnContext, Understood
from agentkit.toolbox import Toolbox
from agentkit.understanding.intents import DEFAULT_INTENTS, NO_TOOL_INTENTS, IntentExamples
from agentkit.understanding.language import detect_language
from agentkit.understanding.recall import gather_memories
from agentkit.understanding.slots import extract_slots

__all__ = ["EmbeddingUnderstanding", "tool_text"]

_QUERY_CHARS = 1000  # all-MiniLM-L6-v2 reads 256 tokens; tokenizing a pasted 100 kB document would cost more
_CACHE_LIMIT = 50_000  # tool texts kept; past it the cache starts over rather than growing without end


def tool_text(toolbox: Toolbox, name: str) -> str:
    """The text a tool is embedded from: its name as words, its description and its arguments' docs.

    Args:
        toolbox: The toolbox holding the tool.
        name: The tool's exact name.

    Returns:
        For example ``"get weather: Current weather in a city. Arguments: city: The city's name."``.
    """
    tool = toolbox.get(name)
    description = tool.description.strip() if tool is not None else ""
    args = "; ".join(
        f"{arg}: {spec['description']}" if spec.get("description") else arg
        for arg, spec in toolbox.parameters(name).items()
    )
    words = re.sub(r"[_.\-]+", " ", name).strip()
    return f"{words}: {description}" + (f" Arguments: {args}" if args else "")


class EmbeddingUnderstanding:
    """Intent, slots, language, relevant tools and memories, without a language model.

    Args:
        embedder: The sentence embeddings; by default the shared packaged all-MiniLM-L6-v2 (`agentkit.Embedder`).
            Any LangChain `Embeddings` works.
        top_k: How many tools to offer the model; a toolbox with no more than this offers all its tools.
        intents: Label -> example sentences (see `agentkit.understanding.intents`).
        no_tool_intents: Labels answered without a tool.
        min_intent_confidence: The similarity below which the intent is ``"unknown"``.
        min_tool_score: The best tool's similarity below which no tool seems needed.
        memory: A long-term memory to recall from, besides what the agent recalled.

    Raises:
        ConfigError: When `top_k` is not positive, an intent has no examples, or the default embedding model is
            missing.
    """

    def __init__(
        self,
        embedder: Embeddings | None = None,
        *,
        top_k: int = 5,
        intents: Mapping[str, Sequence[str]] = DEFAULT_INTENTS,
        no_tool_intents: Collection[str] = NO_TOOL_INTENTS,
        min_intent_confidence: float = 0.45,
        min_tool_score: float = 0.15,
        memory: LongTermMemory | None = None,
    ) -> None:
        if not isinstance(top_k, int) or top_k < 1:
            raise ConfigError(f"top_k must be a positive integer (tools offered per question), got {top_k!r}.")
        self.embedder = embedder if embedder is not None else Embedder()
        self.top_k = top_k
        self.intents = IntentExamples(intents, min_confidence=min_intent_confidence)
        self.no_tool_intents = frozenset(no_tool_intents)
        self.min_tool_score = min_tool_score
        self.memory = memory
        self._vectors: dict[str, np.ndarray] = {}
        self._matrix: tuple[tuple[str, ...], np.ndarray] = ((), np.zeros((0, 0), dtype=np.float32))
        self._lock = threading.Lock()

    def understand(self, text: str, context: TurnContext) -> Understood:
        """Read one user turn; see `agentkit.Understanding`.

        Empty or blank text gives an ``"unknown"`` intent, no slots, no language and all tools.
        """
        memories = gather_memories(text, context.memories, self.memory)
        if not text.strip():
            return Understood(memories=memories, needs_tool=False)
        language, _ = detect_language(text)
        query = self._encode([text[:_QUERY_CHARS]])[0]
        intent = self.intents.classify(query, self._encode)
        ranked = self._rank(query, context.toolbox)
        needs_tool = (
            bool(ranked) and ranked[0].score >= self.min_tool_score and intent.label not in self.no_tool_intents
        )
        offered = [r.name for r in ranked[: self.top_k]] if len(ranked) > self.top_k else None
        return Understood(
            tools=offered,
            memories=memories,
            intent=intent,
            slots=extract_slots(text, language=language),
            language=language,
            needs_tool=needs_tool,
            ranked=ranked,
        )

    def rank(self, text: str, toolbox: Toolbox) -> list[RankedTool]:
        """Every tool of a toolbox, most relevant to the text first.

        Args:
            text: The user's words.
            toolbox: The tools.

        Returns:
            One entry per tool, with its cosine similarity to the text.
        """
        return self._rank(self._encode([text[:_QUERY_CHARS]])[0], toolbox)

    def _rank(self, query: np.ndarray, toolbox: Toolbox) -> list[RankedTool]:
        names, matrix = self._tool_matrix(toolbox)
        if not names:
            return []
        scores = matrix @ query
        order = np.argsort(-scores, kind="stable")
        return [RankedTool(names[i], float(scores[i])) for i in order]

    def _tool_matrix(self, toolbox: Toolbox) -> tuple[tuple[str, ...], np.ndarray]:
        names = tuple(toolbox.names)
        texts = [tool_text(toolbox, name) for name in names]
        key = (*names, *texts)
        with self._lock:  # the async agent reads on worker threads
            if self._matrix[0] == key:
                return names, self._matrix[1]
            missing = [t for t in dict.fromkeys(texts) if t not in self._vectors]
            if len(self._vectors) + len(missing) > _CACHE_LIMIT:
                self._vectors.clear()
                missing = list(dict.fromkeys(texts))
            for text, vector in zip(missing, self._encode(missing), strict=True):
                self._vectors[text] = vector
            matrix = np.stack([self._vectors[t] for t in texts]) if texts else np.zeros((0, 0), dtype=np.float32)
            self._matrix = (key, matrix)
            return names, matrix

    def _encode(self, texts: Sequence[str]) -> np.ndarray:
        if isinstance(self.embedder, Embedder):
            return self.embedder.encode(texts)
        vectors = np.asarray(self.embedder.embed_documents(list(texts)), dtype=np.float32).reshape(len(texts), -1)
        norms = np.linalg.norm(vectors, axis=1, keepdims=True)
        return vectors / np.where(norms == 0, 1.0, norms)

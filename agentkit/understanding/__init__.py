"""Language understanding: what a user turn wants, what it names, and which tools and memories matter.

Two readers fill the same `agentkit.protocols.Understood`:

* `EmbeddingUnderstanding`, the default: sentence embeddings for the intent (nearest labelled example) and the
  relevant tools, parsers for the slots, fastText for the language; no language model;
* `LLMUnderstanding`: the agent's chat model reads the turn through `with_structured_output`.

    agent = Agent(llm, tools=many_tools, understanding=EmbeddingUnderstanding(top_k=5))
"""

from agentkit.protocols import Intent, RankedTool, Slot, SlotKind, TurnContext, Understanding, Understood
from agentkit.understanding.embedding import EmbeddingUnderstanding, tool_text
from agentkit.understanding.intents import DEFAULT_INTENTS, NO_TOOL_INTENTS, IntentExamples
from agentkit.understanding.language import detect_language
from agentkit.understanding.slots import MAX_SLOT_CHARS, extract_slots
from agentkit.understanding.structured import LLMUnderstanding, UserTurn

__all__ = [
    "DEFAULT_INTENTS",
    "MAX_SLOT_CHARS",
    "NO_TOOL_INTENTS",
    "EmbeddingUnderstanding",
    "Intent",
    "IntentExamples",
    "LLMUnderstanding",
    "RankedTool",
    "Slot",
    "SlotKind",
    "TurnContext",
    "Understanding",
    "Understood",
    "UserTurn",
    "detect_language",
    "extract_slots",
    "tool_text",
]

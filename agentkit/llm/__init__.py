"""agentkit's local chat model over transformers.

`LocalChatModel` is a LangChain `BaseChatModel` that runs a Hugging Face causal LM in this process: tools bound with
`bind_tools` reach the chat template, tool calls in the output become `AIMessage.tool_calls`, and `stop` really stops
generation (transformers' `stop_strings`). torch and transformers are imported when a model is loaded, not before.
"""

from agentkit.llm.local import LocalChatModel

__all__ = ["LocalChatModel"]

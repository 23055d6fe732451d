"""The peers that `engine.py` compares `agentkit.llm.LocalChatModel` against, built on the same local model folder.

Two peers, each set up the way its own documentation sets it up, on the same checkpoint, the same device and with
greedy decoding, so that they see the same prompts and produce comparable text:

* **LangChain's local path**: `HuggingFacePipeline.from_model_id(..., task="text-generation")` wrapped in
  `ChatHuggingFace`. It renders the conversation with the tokenizer's chat template and calls a `transformers`
  text-generation pipeline. It does not use stop strings at all (see `langchain_pipeline_chat`), it reports no
  token usage, and it only accepts system, human and AI messages with a human message last.
* **smolagents' `TransformersModel`**: the local model class behind `CodeAgent` and `ToolCallingAgent`. It stops
  generation on stop strings with a per-token `StoppingCriteria`, cuts the text at the first stop string, and
  reports the prompt length in `token_usage`.

`messages_to_smolagents` maps a LangChain conversation onto smolagents' message dicts the way smolagents' own memory
writes them (tool calls as ``"Calling tools:\\n[...]"`` text, tool results as ``"Observation:\\n..."`` text sent with
the user role), and `messages_to_chat_huggingface` maps the same conversation onto the messages `ChatHuggingFace`
accepts, merged the same way, so both peers render exactly the same prompt string.

Everything works offline from a local folder: `transformers` never contacts the Hub for a local path, and
`ChatHuggingFace` is handed the pipeline's tokenizer so that it does not load a second one. `langchain_huggingface`,
`smolagents` and `transformers` are imported inside the functions, so importing this module stays cheap and one peer
still works when the other's package is missing.

Run ``python benchmarks/peers.py`` for a self-check on a tiny model trained in a temporary folder.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from langchain_core.messages import (
    AIMessage,
    BaseMessage,
    ChatMessage,
    FunctionMessage,
    HumanMessage,
    SystemMessage,
    ToolMessage,
)

if TYPE_CHECKING:
    from langchain_core.language_models import BaseChatModel
    from smolagents import TransformersModel  # type: ignore[import-untyped]

__all__ = [
    "OBSERVATION_PREFIX",
    "SMOLAGENTS_STOP",
    "langchain_pipeline_chat",
    "langchain_prompt_tokens",
    "langchain_step",
    "messages_to_chat_huggingface",
    "messages_to_smolagents",
    "smolagents_model",
    "smolagents_step",
]

SMOLAGENTS_STOP: tuple[str, ...] = ("Observation:", "Calling tools:")
"""The stop sequences `ToolCallingAgent` and `CodeAgent` pass to `Model.generate`; CodeAgent adds its code end tag."""

OBSERVATION_PREFIX = "Observation:\n"
"""What smolagents' `ActionStep.to_messages` puts before a tool's output in the tool-response message."""

# smolagents' `tool_role_conversions`: what its models turn these roles into before applying the chat template.
_ROLE_CONVERSIONS = {"tool-call": "assistant", "tool-response": "user"}


def _device_index(device: str) -> int | None:
    """Turn a device string into the `device` argument of `HuggingFacePipeline.from_model_id`.

    Args:
        device: ``"cpu"``, ``"cuda"`` or ``"cuda:N"``.

    Returns:
        None for the CPU (the documented default, which leaves the model where `from_pretrained` put it), else the
        accelerator's index.
    """
    if device == "cpu":
        return None
    _, _, index = device.partition(":")
    return int(index) if index else 0


def langchain_pipeline_chat(
    model_dir: str,
    max_new_tokens: int = 256,
    *,
    return_full_text: bool = False,
    device: str = "cpu",
    dtype: str | None = None,
) -> BaseChatModel:
    """Build LangChain's documented local chat model: `ChatHuggingFace` over `HuggingFacePipeline.from_model_id`.

    This is the setup of LangChain's Hugging Face integration docs (``HuggingFacePipeline.from_model_id(model_id=...,
    task="text-generation", pipeline_kwargs={"max_new_tokens": ..., "do_sample": False})`` then
    ``ChatHuggingFace(llm=llm)``), with two additions that do not change how it generates:

    * ``return_full_text=False`` in `pipeline_kwargs` (a standard argument of the `transformers` text-generation
      pipeline). Without it `HuggingFacePipeline._generate` returns the pipeline's ``generated_text`` as is, which
      starts with the whole rendered prompt, so the `AIMessage` content is prompt plus completion.
    * ``tokenizer=`` the pipeline's own tokenizer. Otherwise `ChatHuggingFace._resolve_model_id` loads a second copy
      with ``AutoTokenizer.from_pretrained(model_id)``. That is harmless offline for a local folder, but it takes
      time and memory.

    Stop strings are ignored. `ChatHuggingFace._generate` passes ``stop`` on to `HuggingFacePipeline._generate`, and
    that method never reads it: generation runs to end-of-sequence or `max_new_tokens`, and the returned text is not
    cut at the stop string either (langchain-huggingface 1.2.3 source; `python benchmarks/peers.py` shows it on a
    trained tiny model). Upstream, langchain PR #22601 tried to add stop support to this class and was closed
    unmerged; langchain#27915 is also cited for it (not checked here, offline). Only `_stream` (``.stream()``) reads
    ``stop``, and it passes the strings through ``tokenizer.convert_tokens_to_ids``, so only a stop string that is one
    whole vocabulary token can stop generation.
    Other limits of this path: no token usage is reported; `ChatHuggingFace._to_chatml_format` rejects `ToolMessage`
    (and any message type but system, human and AI); and `_to_chat_prompt` requires a `HumanMessage` last. Feed it
    conversations converted with `messages_to_chat_huggingface`.

    Args:
        model_dir: A local model folder (config, weights, tokenizer with a chat template).
        max_new_tokens: The most tokens to generate per call.
        return_full_text: Whether to keep the pipeline's default of returning the prompt followed by the completion.
        device: ``"cpu"`` or ``"cuda[:N]"``. The CPU is LangChain's default (no ``device`` argument).
        dtype: A `torch` dtype name for `from_pretrained` (through `model_kwargs`). None keeps its default,
            ``"auto"`` in transformers 5, the same default `smolagents_model` gets.

    Returns:
        The `ChatHuggingFace` chat model.
    """
    from langchain_huggingface import ChatHuggingFace, HuggingFacePipeline

    llm = HuggingFacePipeline.from_model_id(
        model_id=model_dir,
        task="text-generation",
        device=_device_index(device),
        model_kwargs={"dtype": dtype} if dtype is not None else None,
        pipeline_kwargs={"max_new_tokens": max_new_tokens, "do_sample": False, "return_full_text": return_full_text},
    )
    return ChatHuggingFace(llm=llm, tokenizer=llm.pipeline.tokenizer, model_id=model_dir)


def langchain_prompt_tokens(chat: BaseChatModel, messages: Sequence[BaseMessage]) -> int:
    """Count the prompt tokens `ChatHuggingFace` makes from these messages, as its pipeline tokenizes them.

    The pipeline tokenizes the rendered prompt with ``add_special_tokens=False`` (the chat template already writes
    any beginning-of-sequence token), and so does this function.

    Args:
        chat: A model from `langchain_pipeline_chat`.
        messages: The conversation, as accepted by `ChatHuggingFace` (a `HumanMessage` last).

    Returns:
        The number of prompt tokens.
    """
    prompt: str = chat._to_chat_prompt(list(messages))  # type: ignore[attr-defined]
    ids = chat.tokenizer(prompt, add_special_tokens=False)["input_ids"]  # type: ignore[attr-defined]
    return len(ids)


def langchain_step(chat: BaseChatModel, messages: Sequence[BaseMessage], stop: list[str]) -> tuple[str, int]:
    """Make one chat call the way a LangChain agent does, and count the prompt tokens it processed.

    Args:
        chat: A model from `langchain_pipeline_chat`.
        messages: The conversation, as accepted by `ChatHuggingFace` (see `messages_to_chat_huggingface`).
        stop: Stop strings, passed as ``invoke(..., stop=stop)``. This path ignores them (see
            `langchain_pipeline_chat`), so the text is returned as generated, not cut.

    Returns:
        The generated text and the number of prompt tokens (this path reports none, so they are counted with
        `langchain_prompt_tokens`, outside the call).
    """
    reply = chat.invoke(list(messages), stop=stop)
    return str(reply.text), langchain_prompt_tokens(chat, messages)


def smolagents_model(
    model_dir: str,
    max_new_tokens: int = 256,
    *,
    device: str = "cpu",
    dtype: str | None = None,
) -> TransformersModel:
    """Build smolagents' `TransformersModel` on a local model folder, decoding greedily.

    `TransformersModel` first tries `AutoModelForImageTextToText`. For a text-only config that raises "Unrecognized
    configuration class", and it falls back to `AutoModelForCausalLM` plus `AutoTokenizer`, all from the local
    folder. Extra keyword arguments are stored in ``model.kwargs`` and passed to every ``model.generate``, which is
    how ``do_sample=False`` gets there. It always passes ``torch_dtype=`` to `from_pretrained`, so transformers 5
    logs "`torch_dtype` is deprecated! Use `dtype` instead!" once even when `dtype` is None. That is harmless.

    Args:
        model_dir: A local model folder (config, weights, tokenizer with a chat template).
        max_new_tokens: The most tokens to generate per call.
        device: The `device_map` to load on. smolagents' own default is ``"cuda"`` when available, else ``"cpu"``;
            here it is explicit so that both peers run on the same device.
        dtype: A `torch` dtype name, or None for `from_pretrained`'s default (``"auto"`` in transformers 5).

    Returns:
        The model.
    """
    from smolagents import TransformersModel

    return TransformersModel(
        model_id=model_dir,
        device_map=device,
        torch_dtype=dtype,
        max_new_tokens=max_new_tokens,
        do_sample=False,
    )


def smolagents_step(model: TransformersModel, messages: list[dict[str, Any]], stop: list[str]) -> tuple[str, int]:
    """Make one model call the way smolagents' agents make it, and return the text and the prompt tokens.

    `ToolCallingAgent` and `CodeAgent` call ``model.generate(input_messages, stop_sequences=[...])`` with the
    messages their memory writes (`SMOLAGENTS_STOP`, plus the code-closing tag for `CodeAgent`; `ToolCallingAgent`
    also passes `tools_to_call_from`, which puts the tools in the chat template; that is left out here). The model
    turns the messages into plain strings (``flatten_messages_as_text``), maps tool-call/tool-response roles to
    assistant/user, merges consecutive messages of one role with a newline, and applies the chat template. It stops
    generating once the decoded text ends with a stop string, checked after each token, then cuts the text before
    the first stop string. A stop string that ends in the middle of a token cannot stop generation. It is only cut
    off afterwards.

    Args:
        model: A model from `smolagents_model`.
        messages: smolagents message dicts, each ``{"role": ..., "content": [{"type": "text", "text": ...}]}`` (see
            `messages_to_smolagents`); plain-string content is not accepted by the text-only path.
        stop: The stop sequences.

    Returns:
        The generated text (cut before the first stop string) and the number of prompt tokens the call processed
        (``token_usage.input_tokens``; `TransformersModel` keeps no cache between calls, so this is the whole prompt).
    """
    reply = model.generate(messages, stop_sequences=stop)
    text = reply.content if isinstance(reply.content, str) else str(reply.content or "")
    if reply.token_usage is not None:
        return text, int(reply.token_usage.input_tokens)
    from smolagents.models import get_clean_message_list, tool_role_conversions  # type: ignore[import-untyped]

    flat = get_clean_message_list(messages, role_conversions=tool_role_conversions, flatten_messages_as_text=True)
    ids = model.tokenizer.apply_chat_template(flat, add_generation_prompt=True, tokenize=True, return_dict=True)
    return text, len(ids["input_ids"])


def _text_part(text: str) -> list[dict[str, Any]]:
    """Wrap text as smolagents message content: a list holding one text part.

    Args:
        text: The text.

    Returns:
        ``[{"type": "text", "text": text}]``.
    """
    return [{"type": "text", "text": text}]


def messages_to_smolagents(
    messages: Sequence[BaseMessage], *, observation_prefix: str = OBSERVATION_PREFIX
) -> list[dict[str, Any]]:
    """Map a LangChain conversation onto smolagents' message dicts, as smolagents' own memory writes them.

    * `SystemMessage` becomes ``system`` and `HumanMessage` becomes ``user``.
    * `AIMessage` becomes ``assistant`` with its text. If it has tool calls, it is followed by a ``tool-call``
      message ``"Calling tools:\\n" + str([{"id", "type": "function", "function": {"name", "arguments"}}, ...])``,
      as `ActionStep.to_messages` writes it (the empty assistant text of a pure tool-call message is left out).
    * `ToolMessage` and `FunctionMessage` become ``tool-response`` with ``observation_prefix + content``. smolagents
      sends ``tool-response`` with the user role (its `tool_role_conversions`), and the chat template does not see
      it as a tool message.
    * A generic `ChatMessage` keeps its role when smolagents knows it (``tool`` becomes ``tool-response``), else
      it becomes ``user``.

    Content is always one text part, the message's text (`BaseMessage.text`, which joins text blocks), because
    `TransformersModel` flattens content by reading ``content[0]["text"]``. Consecutive messages of one role are left
    separate here; smolagents merges them itself when it prepares the prompt.

    Args:
        messages: The LangChain conversation.
        observation_prefix: What goes before a tool's output. smolagents writes ``"Observation:\\n"``; pass ``""``
            to send the output alone.

    Returns:
        The messages, with plain-string roles (``system``, ``user``, ``assistant``, ``tool-call``, ``tool-response``)
        that `smolagents.ChatMessage.from_dict` accepts.

    Raises:
        TypeError: For a message of another type.
    """
    out: list[dict[str, Any]] = []
    for message in messages:
        text = str(message.text)
        if isinstance(message, SystemMessage):
            out.append({"role": "system", "content": _text_part(text)})
        elif isinstance(message, HumanMessage):
            out.append({"role": "user", "content": _text_part(text)})
        elif isinstance(message, AIMessage):
            if text or not message.tool_calls:
                out.append({"role": "assistant", "content": _text_part(text)})
            if message.tool_calls:
                calls = [
                    {
                        "id": call["id"],
                        "type": "function",
                        "function": {"name": call["name"], "arguments": call["args"]},
                    }
                    for call in message.tool_calls
                ]
                out.append({"role": "tool-call", "content": _text_part("Calling tools:\n" + str(calls))})
        elif isinstance(message, (ToolMessage, FunctionMessage)):
            out.append({"role": "tool-response", "content": _text_part(observation_prefix + text)})
        elif isinstance(message, ChatMessage):
            role = {"tool": "tool-response"}.get(message.role, message.role)
            if role not in ("system", "user", "assistant", "tool-call", "tool-response"):
                role = "user"
            prefix = observation_prefix if role == "tool-response" else ""
            out.append({"role": role, "content": _text_part(prefix + text)})
        else:
            raise TypeError(f"Cannot map a {type(message).__name__} to a smolagents message.")
    return out


def messages_to_chat_huggingface(
    messages: Sequence[BaseMessage], *, observation_prefix: str = OBSERVATION_PREFIX
) -> list[BaseMessage]:
    """Map a LangChain conversation onto messages `ChatHuggingFace` accepts, rendering as smolagents renders it.

    `ChatHuggingFace` over a pipeline accepts only system, human and AI messages. This converts the conversation with
    `messages_to_smolagents`, maps roles as smolagents does (tool-call to assistant, tool-response to user) and merges
    consecutive messages of one role with a newline. The result is the message list `TransformersModel` hands to the
    chat template, so both peers render exactly the same prompt.

    Args:
        messages: The LangChain conversation.
        observation_prefix: What goes before a tool's output (see `messages_to_smolagents`).

    Returns:
        `SystemMessage`, `HumanMessage` and `AIMessage` objects with string content.
    """
    merged: list[tuple[str, str]] = []
    for item in messages_to_smolagents(messages, observation_prefix=observation_prefix):
        role = _ROLE_CONVERSIONS.get(item["role"], item["role"])
        text = item["content"][0]["text"]
        if merged and merged[-1][0] == role:
            merged[-1] = (role, merged[-1][1] + "\n" + text)
        else:
            merged.append((role, text))
    classes: dict[str, type[BaseMessage]] = {"system": SystemMessage, "user": HumanMessage, "assistant": AIMessage}
    return [classes[role](content=text) for role, text in merged]


def _self_check() -> None:  # pragma: no cover - run by hand
    """Train a tiny model to produce ReAct text and show how each peer handles a stop string."""
    import os
    import tempfile

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    from smolagents.models import get_clean_message_list, tool_role_conversions
    from transformers import AutoTokenizer

    from agentkit.llm.tiny import build_tiny_model, train_to_say

    stop = ["\nObservation:"]
    first = [SystemMessage("You are a helpful assistant."), HumanMessage("What is 3 plus 11?")]
    first_reply = (
        'Thought: I should use the calculator tool.\nAction: calculator\nAction Input: {"expression": "3+11"}\n'
        "Observation: 14\nThought: I now know the final answer.\nFinal Answer: 14"
    )
    second = [
        SystemMessage("You are a helpful assistant."),
        HumanMessage("What is 10 plus 16?"),
        AIMessage("", tool_calls=[{"name": "calculator", "args": {"expression": "10+16"}, "id": "call_0"}]),
        ToolMessage("26", tool_call_id="call_0"),
    ]
    second_reply = "Thought: I now know the final answer.\nFinal Answer: 26\nObservation: done"
    cases = [("single turn", first, first_reply), ("after a tool call", second, second_reply)]

    with tempfile.TemporaryDirectory() as tmp:
        # One model per case: `train_to_say` trains every token of every text, and two chat transcripts always share
        # the template's opening, so a tiny model cannot learn two of them at once.
        for index, (name, conversation, reply) in enumerate(cases):
            model_dir = str(build_tiny_model(os.path.join(tmp, f"case{index}")))
            tokenizer = AutoTokenizer.from_pretrained(model_dir)
            lc_messages = messages_to_chat_huggingface(conversation)
            sm_messages = messages_to_smolagents(conversation)
            sm_flat = get_clean_message_list(
                sm_messages, role_conversions=tool_role_conversions, flatten_messages_as_text=True
            )
            sm_prompt = str(tokenizer.apply_chat_template(sm_flat, tokenize=False, add_generation_prompt=True))
            train_to_say(model_dir, [sm_prompt + reply], steps=600)
            full_tokens = len(tokenizer(reply, add_special_tokens=False)["input_ids"]) + 1  # + end-of-sequence

            started = time.perf_counter()
            chat = langchain_pipeline_chat(model_dir, max_new_tokens=64)
            lc_built = time.perf_counter() - started
            started = time.perf_counter()
            smol = smolagents_model(model_dir, max_new_tokens=64)
            sm_built = time.perf_counter() - started
            lc_prompt = chat._to_chat_prompt(lc_messages)  # type: ignore[attr-defined]
            print(f"\n=== {name}: stop={stop!r}; the trained reply is {full_tokens} tokens with end-of-sequence")
            print(f"prompt: {sm_prompt!r}")
            print(f"both peers render the same prompt: {lc_prompt == sm_prompt}")

            langchain_step(chat, lc_messages, stop)  # warm-up
            started = time.perf_counter()
            text, prompt_tokens = langchain_step(chat, lc_messages, stop)
            elapsed = time.perf_counter() - started
            generated = len(tokenizer(text, add_special_tokens=False)["input_ids"])
            print(
                f"[langchain ChatHuggingFace(HuggingFacePipeline)] built in {lc_built:.2f}s; call {elapsed * 1000:.1f}"
                f" ms, prompt {prompt_tokens} tokens, generated ~{generated} tokens (re-tokenized)"
            )
            print(f"  output: {text!r}")
            print(f"  stop string in output: {stop[0] in text}; generation halted early: {generated < full_tokens - 1}")

            smolagents_step(smol, sm_messages, stop)  # warm-up
            started = time.perf_counter()
            text, prompt_tokens = smolagents_step(smol, sm_messages, stop)
            elapsed = time.perf_counter() - started
            usage = smol.generate(sm_messages, stop_sequences=stop).token_usage
            generated = usage.output_tokens if usage is not None else -1
            print(
                f"[smolagents TransformersModel] built in {sm_built:.2f}s; call {elapsed * 1000:.1f} ms,"
                f" prompt {prompt_tokens} tokens, generated {generated} tokens (token_usage)"
            )
            print(f"  output: {text!r}")
            print(f"  stop string in output: {stop[0] in text}; generation halted early: {generated < full_tokens - 1}")


if __name__ == "__main__":
    _self_check()

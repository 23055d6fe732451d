"""`LocalChatModel`: a LangChain chat model over a transformers causal LM, built for agents.

What it does that LangChain's `ChatHuggingFace` + `HuggingFacePipeline` do not (langchain#29033, #30453, #27915):

* tools bound with `bind_tools` reach the chat template, and tool calls in the output are parsed into
  `AIMessage.tool_calls` (Hermes/Qwen, Llama 3.1 JSON and Mistral formats, several per turn);
* every call honours `stop` with transformers' `stop_strings` (multi-token safe); the stop string is trimmed and the
  stop reason (``stop``, ``eos``, ``length``) and token usage are in the response metadata;
* the prompt is never echoed, ``<think>`` blocks are kept out of the answer;
* each step of an episode prefills only its new tokens: the keys and values of the prompt's longest cached prefix
  are reused (greedy output is token-for-token the same as without);
* every call, sync or async, goes through one worker queue per model that batches concurrent calls into one
  left-padded `generate` (``agent.batch`` of N episodes), and a cancelled call stops generating at its next token;
* tokens stream (``stream``/``astream``) without ever showing what the final message leaves out;
* generated token ids and log-probabilities are in the metadata on request (the reward log needs them);
* ``bind_tools(tool_choice="any" | name)`` forces a tool call (Hermes format): the prompt opens the call and the
  model can only complete a valid one, so ``with_structured_output`` works on small local models too;
* it knows its context window: ``profile["max_input_tokens"]`` (which LangChain's `SummarizationMiddleware` reads for
  its fractional triggers), token counts of the exact prompt (`get_num_tokens_from_messages`, with the model's own
  tokenizer where LangChain's default downloads GPT-2's), a prompt that does not fit raises LangChain's
  `ContextOverflowError` before it is queued, and a reply stops (``"length"``) where the window ends.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import os
import queue
import threading
import warnings
import weakref
from collections.abc import AsyncIterator, Iterator, Sequence
from concurrent import futures
from typing import Annotated, Any

from langchain_core.callbacks import AsyncCallbackManagerForLLMRun, CallbackManagerForLLMRun
from langchain_core.exceptions import ContextOverflowError
from langchain_core.language_models import BaseChatModel, LanguageModelInput, ModelProfile
from langchain_core.language_models.base import LangSmithParams
from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage
from langchain_core.messages.tool import tool_call_chunk
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult
from langchain_core.runnables import Runnable
from langchain_core.utils.function_calling import convert_to_openai_tool
from pydantic import ConfigDict, Field, PrivateAttr, TypeAdapter, ValidationError, field_validator

from agentkit.llm.constrained import ToolCallConstraint
from agentkit.llm.engine import Engine, EngineStats, Request
from agentkit.llm.generate import Generated, GenerationSettings, Row, end_ids, pad_id
from agentkit.llm.loading import Quantize, context_window, load_model
from agentkit.llm.prompt import render_prompt
from agentkit.llm.response_parser import parse_with_tokenizer
from agentkit.llm.streaming import VisibleText
from agentkit.llm.toolcalls import HERMES_OPEN, ToolCallFormat, detect_format, parse_reply

__all__ = ["LocalChatModel"]

# What a call reads of the options LangChain hands it (``invoke(..., max_tokens=32)``, ``bind(...)``, a middleware's
# ``model_settings``): the generation settings it may override, by field, and the options `_call` reads itself.
_OVERRIDES = {
    "max_tokens": "max_new_tokens",
    "max_new_tokens": "max_new_tokens",
    "temperature": "temperature",
    "top_p": "top_p",
}
_OPTIONS = {*_OVERRIDES, "tools", "tool_choice", "model"}

# The generation settings' ranges, for the model's fields and a call's values alike.
_Budget = Annotated[int, Field(ge=1)]
_Temperature = Annotated[float, Field(ge=0)]
_TopP = Annotated[float, Field(gt=0, le=1)]
_CHECKS: dict[str, TypeAdapter[Any]] = {
    "max_new_tokens": TypeAdapter(_Budget),
    "temperature": TypeAdapter(_Temperature),
    "top_p": TypeAdapter(_TopP),
}


class _Loaded:
    """A loaded engine, held by a chat model and its copies (pydantic's `model_copy` shares private attributes).

    When the last of them is collected, the engine closes: its worker thread ends, and the weights are freed.
    """

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        weakref.finalize(self, engine.close)


class LocalChatModel(BaseChatModel):
    """A chat model that runs a Hugging Face causal LM in this process. Build it with `from_pretrained`.

    The weights load on first use when the model is built with ``LocalChatModel(model_id=...)``, or at once with
    `from_pretrained`. A call may set its own ``max_tokens``, ``temperature`` and ``top_p``
    (``invoke(..., max_tokens=32)``, ``bind(temperature=0.7)``, a LangChain middleware's model settings), checked as
    the fields are; other call options are ignored with a warning.

    Attributes:
        model_id: A local directory or a hub id available in the local cache.
        device: ``"auto"`` (a GPU when present), ``"cpu"``, ``"cuda"``, ...
        dtype: ``"auto"`` or a torch dtype name such as ``"bfloat16"``.
        adapter: A PEFT adapter directory to apply.
        quantize: ``"4bit"`` or ``"8bit"`` weights with bitsandbytes, on CUDA or the CPU (bitsandbytes 0.47 on;
            without it the CPU loads full-precision weights, with a warning). Adapters then stay unmerged.
        max_new_tokens: Generation budget per call (also accepted as LangChain's standard ``max_tokens``); a reply
            also stops where the model's context window ends (``profile["max_input_tokens"]``), and a prompt that
            fills the window raises LangChain's `ContextOverflowError`.
        temperature: 0 for greedy decoding; above 0 samples.
        top_p: Nucleus sampling mass when sampling.
        stop: Stop strings for every call, on top of those a call passes.
        tool_format: How tool calls are written by this model; ``"auto"`` detects it from the chat template.
        return_logprobs: Put generated token ids and their log-probabilities in the response metadata.
        constrain_tool_calls: Inside ``<tool_call>`` tags, let the model write only a call to a bound tool whose
            arguments match the tool's JSON schema (`agentkit.llm.constrained`); Hermes/Qwen format only.
        max_batch_size: The most concurrent calls batched into one `generate`.
        prefix_cache_size: Cached prompt prefixes kept for reuse (two per concurrent episode is plenty); 0 turns
            prefix reuse off. Each holds the keys and values of one conversation, in the device's memory. As many
            rendered prompts are kept with their token ids, so that a step tokenizes only its prompt's new end
            (`agentkit.llm.prompt_ids`).
        draft_tokens: Prompt lookup decoding, off at 0 (the default): when a call runs alone and greedy, without
            constrained tool calls, on a model whose cache can be cut back (full-attention layers), up to this many
            tokens are drafted from the context (those that followed an earlier occurrence of the last few) and
            checked in one forward pass. The greedy tokens stay the same; the forward passes drop by about 40 %
            on agent episodes. It saves time where a pass over a few tokens costs about what one does (a GPU); on
            a small CPU such a pass costs more and it saves nothing (`benchmarks/drafting.py`).
        compile_decoding: Decode from static caches that transformers compiles, off by default
            (`agentkit.llm.static_cache`). On a GPU a decoding step then replays as CUDA graphs instead of launching
            its few hundred kernels one by one, which bounds eager decoding there. The first call compiles (12-28 s
            on the CPU for the benchmarks' small models), and a new batch size or cache length bucket may
            compile or record again. Up to four static caches are kept, each of batch size x a power-of-two length
            x the model's key/value bytes per token, in the device's memory. Batches that draft tokens decode as
            usual. On the CPU it is allowed, for checking, but gains nothing: reading the weights bounds decoding.
        tune_cpu_matmuls: On the CPU, have each linear layer multiply one row and a few rows (decoding) as `linear`
            or as a batched product over blocks of its weight's rows, whichever this CPU runs faster, measured once
            per weight shape at load (`agentkit.llm.cpu_matmul`). Greedy text can differ from other runtimes' in the
            last bits of the logits, as between two BLAS libraries.
    """

    model_config = ConfigDict(arbitrary_types_allowed=True, populate_by_name=True)

    model_id: str
    device: str = "auto"
    dtype: str = "auto"
    adapter: str | None = None
    quantize: Quantize | None = None
    max_new_tokens: _Budget = Field(default=256, alias="max_tokens")
    temperature: _Temperature = 0.0
    top_p: _TopP = 1.0
    stop: list[str] | None = None
    tool_format: ToolCallFormat = "auto"
    return_logprobs: bool = False
    constrain_tool_calls: bool = False
    max_batch_size: int = Field(default=8, ge=1)
    prefix_cache_size: int = Field(default=16, ge=0)
    draft_tokens: int = Field(default=0, ge=0)
    compile_decoding: bool = False
    tune_cpu_matmuls: bool = True

    _loaded: _Loaded | None = PrivateAttr(default=None)
    _lock: threading.Lock = PrivateAttr(default_factory=threading.Lock)

    @field_validator("stop")
    @classmethod
    def _check_stop(cls, stop: list[str] | None) -> list[str] | None:
        _check_stops(stop)
        return stop

    @classmethod
    def from_pretrained(
        cls,
        id_or_path: str | os.PathLike[str],
        *,
        device: str = "auto",
        dtype: str = "auto",
        adapter: str | os.PathLike[str] | None = None,
        quantize: Quantize | None = None,
        **settings: Any,
    ) -> LocalChatModel:
        """Load a model through transformers' `from_pretrained`, offline-first.

        Args:
            id_or_path: A local directory or a hub id available in the local cache.
            device: ``"auto"`` (a GPU when present), ``"cpu"``, ``"cuda"``, ...
            dtype: ``"auto"`` or a torch dtype name such as ``"bfloat16"``.
            adapter: A PEFT adapter directory to apply.
            quantize: ``"4bit"`` or ``"8bit"`` weights with bitsandbytes, on CUDA or the CPU (bitsandbytes 0.47
                on; without it the CPU loads full-precision weights, with a warning).
            **settings: Model fields: `max_new_tokens`, `temperature`, `top_p`, `tool_format`, `return_logprobs`,
                `constrain_tool_calls`, `max_batch_size`, `prefix_cache_size`, `draft_tokens`, `compile_decoding`,
                `tune_cpu_matmuls`.

        Returns:
            The chat model.

        Raises:
            ConfigError: When the model is not available offline or a needed package is missing.
        """
        chat = cls(
            model_id=str(id_or_path),
            device=device,
            dtype=dtype,
            adapter=None if adapter is None else str(adapter),
            quantize=quantize,
            **settings,
        )
        chat._load()
        return chat

    def _load(self) -> Engine:
        with self._lock:
            if self._loaded is None:
                engine = Engine.on_own_thread(
                    functools.partial(
                        load_model,
                        self.model_id,
                        device=self.device,
                        dtype=self.dtype,
                        adapter=self.adapter,
                        quantize=self.quantize,
                        tune_cpu_matmuls=self.tune_cpu_matmuls,
                    ),
                    max_batch_size=self.max_batch_size,
                    prefix_cache_size=self.prefix_cache_size,
                    compile_decoding=self.compile_decoding,
                )
                if self.tool_format == "auto":
                    self.tool_format = detect_format(getattr(engine.tokenizer, "chat_template", None))
                if self.profile is None:  # its config was not on this machine when this model was built
                    self.profile = _profile(engine.model.config)
                self._loaded = _Loaded(engine)
            return self._loaded.engine

    def _resolve_model_profile(self) -> ModelProfile | None:
        # From the config alone, so that a model built to load on first use has its profile at once (LangChain's
        # SummarizationMiddleware reads it when it is built). LangChain drops an error here: `_load` tries again.
        from transformers import AutoConfig

        return _profile(AutoConfig.from_pretrained(self.model_id, local_files_only=True))

    @property
    def _llm_type(self) -> str:
        return "agentkit-local"

    def _get_ls_params(self, stop: list[str] | None = None, **kwargs: Any) -> LangSmithParams:
        params = LangSmithParams(
            ls_provider="huggingface",
            ls_model_name=str(kwargs.get("model", self.model_id)),  # a call naming another model raises
            ls_model_type="chat",
            ls_temperature=kwargs.get("temperature", self.temperature),
        )
        params["ls_max_tokens"] = kwargs.get("max_tokens", kwargs.get("max_new_tokens", self.max_new_tokens))
        if stops := [*(self.stop or []), *(stop or [])]:
            params["ls_stop"] = stops
        return params

    @property
    def _identifying_params(self) -> dict[str, Any]:
        return {"model_id": self.model_id, "max_new_tokens": self.max_new_tokens, "temperature": self.temperature}

    @property
    def tokenizer(self) -> Any:
        """The model's tokenizer (loading the model if needed)."""
        return self._load().tokenizer

    @property
    def model(self) -> Any:
        """The transformers model (loading it if needed)."""
        return self._load().model

    @property
    def stats(self) -> EngineStats:
        """Token and time counters of this model's engine: prompt vs prefilled tokens, batches, generate time."""
        return self._load().stats

    def clear_cache(self) -> None:
        """Forget every cached prompt prefix (the next call prefills and tokenizes its whole prompt) and its memory."""
        engine = self._load()
        engine.prefixes.clear()
        engine.prompt_ids.clear()

    def get_token_ids(self, text: str) -> list[int]:
        """The model's own token ids for `text`, without special tokens (LangChain's default is GPT-2's, downloaded).

        Args:
            text: Any text.

        Returns:
            Its token ids.
        """
        return list(self.tokenizer(text, add_special_tokens=False)["input_ids"])

    def get_num_tokens_from_messages(self, messages: list[BaseMessage], tools: Sequence[Any] | None = None) -> int:
        """The tokens of the prompt a call with these messages (and tools) sends: chat template and tools included.

        A token counter for LangChain's `trim_messages` and `SummarizationMiddleware`, exact where theirs estimate.

        Args:
            messages: The conversation.
            tools: Tools as `bind_tools` takes them, or None.

        Returns:
            The prompt's length in tokens; 0 for no messages.
        """
        if not messages:
            return 0
        engine = self._load()
        schemas = [convert_to_openai_tool(t) for t in tools] if tools else None
        return len(_encode(engine, render_prompt(engine.tokenizer, messages, schemas), keep=False))

    def bind_tools(
        self, tools: Sequence[Any], *, tool_choice: str | dict[str, Any] | bool | None = None, **kwargs: Any
    ) -> Runnable[LanguageModelInput, AIMessage]:
        """Bind tools: their schemas reach the chat template, and their calls come back as `tool_calls`.

        Args:
            tools: LangChain tools, functions, pydantic models or OpenAI tool schemas.
            tool_choice: ``None``, ``"auto"`` or False: the model decides. ``"none"``: no tools are rendered.
                ``"any"``, ``"required"`` or True: the reply must call a tool; a bound tool's name (or
                ``{"type": "function", "function": {"name": ...}}``): it must call that one. A forced call is
                decoded under the tool-call constraint (whatever `constrain_tool_calls` says): the prompt opens the
                ``<tool_call>`` tag and the model can only complete a valid call. Only Hermes-format models can be
                forced; with other formats the model decides (the reply parser still reads its calls).
            **kwargs: Other call options to bind.

        Returns:
            The model with the tools bound.

        Raises:
            ValueError: When `tool_choice` is none of the above, or names a tool that is not bound.
        """
        if tool_choice == "none":
            return self.bind(**kwargs)
        schemas = [convert_to_openai_tool(t) for t in tools]
        forced = _forced_tool(tool_choice, [schema["function"]["name"] for schema in schemas])
        if forced is not None:
            kwargs["tool_choice"] = forced
        return self.bind(tools=schemas, **kwargs)

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        call = self._call(messages, stop, kwargs)
        return _result(self._message(_wait(call.future, call.cancelled), call))

    async def _agenerate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        await asyncio.to_thread(self._load)
        call = self._call(messages, stop, kwargs)
        try:
            generated = await asyncio.wrap_future(call.future)
        except asyncio.CancelledError:
            call.cancelled.set()  # a running generation stops at its next token
            raise
        return _result(self._message(generated, call))

    def _stream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> Iterator[ChatGenerationChunk]:
        tokens: queue.SimpleQueue[int | None] = queue.SimpleQueue()
        call = self._call(messages, stop, kwargs, on_token=tokens.put)
        call.future.add_done_callback(lambda _: tokens.put(None))
        try:
            while (token := _next_token(tokens)) is not None:
                if delta := call.visible.push(token):
                    if run_manager is not None:
                        run_manager.on_llm_new_token(delta)
                    yield ChatGenerationChunk(message=AIMessageChunk(content=delta))
        except BaseException:
            call.cancelled.set()
            raise
        yield _last_chunk(self._message(call.future.result(), call), call.visible.shown)

    async def _astream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> AsyncIterator[ChatGenerationChunk]:
        await asyncio.to_thread(self._load)
        loop = asyncio.get_running_loop()
        tokens: asyncio.Queue[int | None] = asyncio.Queue()

        def on_token(token: int | None) -> None:  # on the engine's worker thread
            # A closed loop means the consumer left, and cancelled the call as it did: nothing to deliver.
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(tokens.put_nowait, token)

        call = self._call(messages, stop, kwargs, on_token=on_token)
        call.future.add_done_callback(lambda _: on_token(None))
        try:
            while (token := await tokens.get()) is not None:
                if delta := call.visible.push(token):
                    if run_manager is not None:
                        await run_manager.on_llm_new_token(delta)
                    yield ChatGenerationChunk(message=AIMessageChunk(content=delta))
            generated = await asyncio.wrap_future(call.future)
        except BaseException:
            call.cancelled.set()
            raise
        yield _last_chunk(self._message(generated, call), call.visible.shown)

    def _call(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None,
        options: dict[str, Any],
        on_token: Any = None,
    ) -> _Call:
        """Render, tokenize and queue one call."""
        if options.get("model", self.model_id) != self.model_id:
            raise ValueError(
                f"This LocalChatModel runs {self.model_id!r} and cannot switch to {options['model']!r} per call; "
                "build another LocalChatModel for that model."
            )
        _check_stops(stop)
        budget, temperature, top_p = self._generation(options)
        tools: list[dict[str, Any]] | None = options.get("tools")
        engine = self._load()
        # Until the request is queued, the worker waits for this caller to join a batch forming concurrently.
        with engine.arriving():
            tokenizer = engine.tokenizer
            prompt = render_prompt(tokenizer, messages, tools)
            forced: str | None = options.get("tool_choice") if tools and self.tool_format == "hermes" else None
            # A forced call is opened by the prompt, so the reply starts inside it (and is read with the tag in front).
            opening = HERMES_OPEN if forced else ""
            ids = _encode(engine, prompt + opening)
            if not ids:
                raise ValueError("The rendered prompt is empty; pass at least one message with text.")
            window = engine.context_window
            if window is not None and len(ids) >= window:
                raise ContextOverflowError(
                    f"The prompt is {len(ids):,} tokens, and {self.model_id!r} takes {window:,} in all, prompt and "
                    "reply (max_position_embeddings in its config). Shorten the conversation: LangChain's "
                    "SummarizationMiddleware(model, trigger=('fraction', 0.8)) reads the window from this model's "
                    "profile, and get_num_tokens_from_messages counts a prompt exactly."
                )
            cancelled = threading.Event()
            ends = end_ids(engine.model, tokenizer)
            row = Row(
                ids,
                logprobs=self.return_logprobs,
                cancelled=cancelled,
                on_token=on_token,
                constraint=self._constraint(tokenizer, tools, forced, ends),
            )
            stops = tuple(dict.fromkeys([*(self.stop or []), *(stop or [])]))
            # The reply stops where the window ends, as at max_new_tokens: past it, positions go beyond the model's.
            budget = budget if window is None else min(budget, window - len(ids))
            settings = GenerationSettings(stops, budget, temperature, top_p, self.draft_tokens)
            names = [t["function"]["name"] for t in tools or []]
            visible = VisibleText(
                tokenizer,
                settings.stop,
                # Padding follows a row's end while others in its batch go on.
                {*ends, pad_id(tokenizer)},
                thinking=prompt.rstrip().endswith("<think>"),
                json_calls=bool(names) and self.tool_format in ("llama3", "auto"),
                opening=opening,
            )
        future = engine.submit(Request(row, settings))
        return _Call(future, cancelled, names, visible, prompt=prompt, tools=tools, opening=opening)

    def _generation(self, options: dict[str, Any]) -> tuple[int, float, float]:
        """This call's budget, temperature and top_p: the model's, or the call's own, checked as the fields are."""
        if unknown := sorted(set(options) - _OPTIONS):
            # Not an error: a middleware may pass settings meant for another provider's models.
            warnings.warn(
                f"LocalChatModel ignores the call option(s) {', '.join(unknown)}; a call may set max_tokens, "
                "temperature, top_p, stop, tools and tool_choice.",
                stacklevel=2,
            )
        values: dict[str, Any] = {
            "max_new_tokens": self.max_new_tokens,
            "temperature": self.temperature,
            "top_p": self.top_p,
        }
        for key, field in _OVERRIDES.items():
            if key in options:
                values[field] = _checked(field, key, options[key])
        return values["max_new_tokens"], values["temperature"], values["top_p"]

    def _constraint(
        self, tokenizer: Any, tools: list[dict[str, Any]] | None, forced: str | None, ends: set[int]
    ) -> ToolCallConstraint | None:
        if tools and forced is not None:
            allowed = tools if forced == "any" else [t for t in tools if t["function"]["name"] == forced]
            return ToolCallConstraint(tokenizer, allowed, ends, opened=True)
        if not (self.constrain_tool_calls and tools):
            return None
        if self.tool_format != "hermes":
            raise ValueError(
                f"constrain_tool_calls supports the Hermes <tool_call> format only, and this model writes "
                f"{self.tool_format!r} tool calls; pass constrain_tool_calls=False."
            )
        return ToolCallConstraint(tokenizer, tools, ends)

    def _message(self, generated: Generated, call: _Call) -> AIMessage:
        # The tokenizer's own response parser, where the model ships one, knows the model's format best.
        text = call.opening + generated.text
        parsed = parse_with_tokenizer(self.tokenizer, text, prompt=call.prompt, tools=call.tools)
        if parsed is None:
            parsed = parse_reply(
                text,
                format=self.tool_format,
                # Without bound tools there is nothing to call: the text, think block aside, is the answer.
                tool_names=call.tool_names,
            )
        if not call.tool_names:
            content, tool_calls, invalid = parsed.content, [], []
            if parsed.tool_calls or parsed.invalid_tool_calls:  # markup without tools bound stays visible text
                content = parse_reply(generated.text, format="llama3", tool_names=[]).content
        else:
            content, tool_calls, invalid = parsed.content, parsed.tool_calls, parsed.invalid_tool_calls
        metadata: dict[str, Any] = {
            "model_name": self.model_id,
            "stop_reason": generated.stop_reason,
            "stop_string": generated.stop_string,
            "prompt_tokens": generated.prompt_tokens,
            "prefilled_tokens": generated.prefilled_tokens,
        }
        if self.return_logprobs:
            metadata["token_ids"] = generated.token_ids
            metadata["logprobs"] = generated.logprobs
        if parsed.reasoning:
            metadata["reasoning"] = parsed.reasoning
        return AIMessage(
            content=content,
            tool_calls=tool_calls,
            invalid_tool_calls=invalid,
            response_metadata=metadata,
            usage_metadata={
                "input_tokens": generated.prompt_tokens,
                "output_tokens": len(generated.token_ids),
                "total_tokens": generated.prompt_tokens + len(generated.token_ids),
            },
        )


class _Call:
    """One queued call and what reading its reply needs."""

    __slots__ = ("cancelled", "future", "opening", "prompt", "tool_names", "tools", "visible")

    def __init__(
        self,
        future: futures.Future[Generated],
        cancelled: threading.Event,
        tool_names: list[str],
        visible: VisibleText,
        *,
        prompt: str,
        tools: list[dict[str, Any]] | None,
        opening: str = "",
    ) -> None:
        self.future = future
        self.cancelled = cancelled
        self.tool_names = tool_names
        self.visible = visible
        self.prompt = prompt  # the rendered prompt and the tool schemas: the tokenizer's response parser reads them
        self.tools = tools
        self.opening = opening  # what the prompt wrote of the reply: a forced call's opening tag


def _encode(engine: Engine, text: str, *, keep: bool = True) -> list[int]:
    """A prompt's token ids; a templated prompt's from where it leaves a recent one (`prompt_ids`, which `keep`s it).

    Chat templates write their own begin-of-sequence token; a plain transcript needs the tokenizer's.
    """
    if getattr(engine.tokenizer, "chat_template", None):
        return engine.prompt_ids(text, keep=keep)
    return list(engine.tokenizer(text)["input_ids"])


def _checked(field: str, key: str, value: Any) -> Any:
    """A call's value for a field, validated as the field is (`ValueError` otherwise)."""
    try:
        return _CHECKS[field].validate_python(value)
    except ValidationError as exc:
        raise ValueError(f"{key}={value!r}: {exc.errors()[0]['msg']}.") from exc


def _check_stops(stops: Sequence[str] | None) -> None:
    if stops and "" in stops:
        raise ValueError("A stop string is empty; it would end every reply at its first token. Drop it from `stop`.")


def _profile(config: Any) -> ModelProfile:
    """What LangChain can read of the model (`BaseChatModel.profile`): text only, tools always, the window if known."""
    profile = ModelProfile(
        text_inputs=True,
        image_inputs=False,
        audio_inputs=False,
        video_inputs=False,
        pdf_inputs=False,
        text_outputs=True,
        tool_calling=True,
        open_weights=True,
    )
    if (window := context_window(config)) is not None:
        profile["max_input_tokens"] = window
    return profile


def _forced_tool(choice: str | dict[str, Any] | bool | None, names: list[str]) -> str | None:
    """``"any"``, the name of the tool a reply must call, or None when the model decides."""
    if choice in (None, "auto", False):
        return None
    if choice in ("any", "required", True):
        return "any"
    name = choice["function"]["name"] if isinstance(choice, dict) else choice
    if name not in names:
        raise ValueError(
            f"tool_choice={choice!r} is not a bound tool; use 'auto', 'none', 'any', 'required' or one of {names}."
        )
    return str(name)


def _wait(future: futures.Future[Generated], cancelled: threading.Event) -> Generated:
    """Wait for a result in short slices, so an exception raised into this thread (a timeout) is not held up."""
    try:
        while not future.done():
            futures.wait([future], timeout=0.05)
    except BaseException:
        cancelled.set()  # the worker stops this row at its next token
        future.cancel()
        raise
    return future.result()


def _next_token(tokens: queue.SimpleQueue[int | None]) -> int | None:
    while True:  # short slices, as in _wait
        try:
            return tokens.get(timeout=0.05)
        except queue.Empty:
            continue


def _result(message: AIMessage) -> ChatResult:
    return ChatResult(generations=[ChatGeneration(message=message)])


def _last_chunk(message: AIMessage, shown: str) -> ChatGenerationChunk:
    """The final chunk: the rest of the content, the tool calls and the metadata, so the chunks add up to `message`."""
    content = str(message.content)
    rest = content[len(shown) :] if content.startswith(shown) else ""
    calls = [
        tool_call_chunk(name=c["name"], args=json.dumps(c["args"], ensure_ascii=False), id=c["id"], index=i)
        for i, c in enumerate(message.tool_calls)
    ]
    offset = len(calls)
    calls += [
        tool_call_chunk(name=c.get("name"), args=c.get("args"), id=c.get("id"), index=offset + i)
        for i, c in enumerate(message.invalid_tool_calls)
    ]
    chunk = AIMessageChunk(
        content=rest,
        tool_call_chunks=calls,
        response_metadata=message.response_metadata,
        usage_metadata=message.usage_metadata,
        chunk_position="last",
    )
    return ChatGenerationChunk(message=chunk)

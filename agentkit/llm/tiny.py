"""Tiny, real Hugging Face causal language models built locally, for tests and examples.

`build_tiny_model` trains a byte-level BPE tokenizer on a small built-in corpus and saves it, with a randomly
initialised Llama (or GPT-2) model a few hundred kilobytes in size, to a folder that the ordinary
`AutoTokenizer.from_pretrained` / `AutoModelForCausalLM.from_pretrained` path loads offline. `train_to_say` then
overfits that model on a few texts so that greedy decoding deterministically reproduces them, which lets tests check
stop strings, tool-call parsing and the like against a real `generate` call.

torch, tokenizers and transformers are imported inside the functions, so importing this module stays cheap.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    import torch

__all__ = [
    "ADDED_TOKENS",
    "HERMES_TEMPLATE",
    "PLAIN_TEMPLATE",
    "SPECIAL_TOKENS",
    "build_tiny_model",
    "train_to_say",
]

# Control tokens, as in Qwen2.5: `skip_special_tokens=True` drops them when decoding.
SPECIAL_TOKENS: tuple[str, ...] = ("<|endoftext|>", "<|im_start|>", "<|im_end|>")
# Markup tokens, single ids but not "special" (as in Qwen2.5/Qwen3), so decoding keeps them even when skipping specials.
ADDED_TOKENS: tuple[str, ...] = (
    "<tool_call>",
    "</tool_call>",
    "<tool_response>",
    "</tool_response>",
    "<think>",
    "</think>",
)

_DEFAULT_SYSTEM = "You are a helpful assistant."

# Qwen2.5's chat template, shortened: same layout of system prompt, tools section, tool calls and tool responses.
# Unlike Qwen2.5 it does not JSON-encode `arguments` a second time when they already are a JSON string.
HERMES_TEMPLATE = (
    "{%- if messages and messages[0].role == 'system' %}"
    "{%- set system_message = messages[0].content or '' %}"
    "{%- set loop_messages = messages[1:] %}"
    "{%- else %}"
    "{%- set system_message = '" + _DEFAULT_SYSTEM + "' %}"
    "{%- set loop_messages = messages %}"
    "{%- endif %}"
    "{{- '<|im_start|>system\\n' + system_message }}"
    "{%- if tools %}"
    "{{- '\\n\\n# Tools\\n\\nYou may call one or more functions to assist with the user query.\\n\\n"
    "You are provided with function signatures within <tools></tools> XML tags:\\n<tools>' }}"
    "{%- for tool in tools %}{{- '\\n' + (tool | tojson) }}{%- endfor %}"
    "{{- '\\n</tools>\\n\\nFor each function call, return a json object with function name and arguments "
    'within <tool_call></tool_call> XML tags:\\n<tool_call>\\n{"name": <function-name>, '
    '"arguments": <args-json-object>}\\n</tool_call>\' }}'
    "{%- endif %}"
    "{{- '<|im_end|>\\n' }}"
    "{%- for message in loop_messages %}"
    "{%- if message.role == 'tool' %}"
    "{%- if loop.first or loop.previtem.role != 'tool' %}{{- '<|im_start|>user' }}{%- endif %}"
    "{{- '\\n<tool_response>\\n' + (message.content or '') + '\\n</tool_response>' }}"
    "{%- if loop.last or loop.nextitem.role != 'tool' %}{{- '<|im_end|>\\n' }}{%- endif %}"
    "{%- elif message.role == 'assistant' and message.tool_calls %}"
    "{{- '<|im_start|>assistant' }}"
    "{%- if message.content %}{{- '\\n' + message.content }}{%- endif %}"
    "{%- for tool_call in message.tool_calls %}"
    "{%- if tool_call.function is defined %}{%- set tool_call = tool_call.function %}{%- endif %}"
    "{{- '\\n<tool_call>\\n{\"name\": ' + (tool_call.name | tojson) + ', \"arguments\": ' }}"
    "{%- if tool_call.arguments is string %}{{- tool_call.arguments }}"
    "{%- else %}{{- tool_call.arguments | tojson }}{%- endif %}"
    "{{- '}\\n</tool_call>' }}"
    "{%- endfor %}"
    "{{- '<|im_end|>\\n' }}"
    "{%- else %}"
    "{{- '<|im_start|>' + message.role + '\\n' + (message.content or '') + '<|im_end|>\\n' }}"
    "{%- endif %}"
    "{%- endfor %}"
    "{%- if add_generation_prompt %}{{- '<|im_start|>assistant\\n' }}{%- endif %}"
)

# ChatML without any function calling: ignores `tools` and refuses any role but system, user and assistant.
PLAIN_TEMPLATE = (
    "{%- for message in messages %}"
    "{%- if message.role not in ['system', 'user', 'assistant'] %}"
    "{{- raise_exception('This template does not support the role ' + message.role) }}"
    "{%- endif %}"
    "{{- '<|im_start|>' + message.role + '\\n' + (message.content or '') + '<|im_end|>\\n' }}"
    "{%- endfor %}"
    "{%- if add_generation_prompt %}{{- '<|im_start|>assistant\\n' }}{%- endif %}"
)

_SENTENCES = (
    "The quick brown fox jumps over the lazy dog.",
    "I need to use a tool to answer this question.",
    "I now know the final answer.",
    "Let me think about the problem step by step.",
    "The user wants to know the result of the calculation.",
    "The weather today is sunny with a light breeze in the afternoon.",
    "Please read the file and tell me what it contains.",
    "The capital of France is Paris, and the capital of Japan is Tokyo.",
    "You are a helpful assistant that answers questions using the available tools.",
    "Search the web for the latest news about the project.",
    "The current time is needed to schedule the meeting.",
    "Write the summary to a file called notes.txt in the working directory.",
    "Answer the following questions as best you can. You have access to the following tools:",
    "Use the following format: Question, Thought, Action, Action Input, Observation, Final Answer.",
    "The tool returned an error, so I should try a different input.",
    "There is no need to call a tool for a simple greeting.",
    "Hello! How can I help you today?",
    "Thank you, that is exactly what I was looking for.",
    "The result of the expression is the number shown in the observation.",
    "Begin! Remember to always use the exact format.",
)

_TOOLS = (
    ("calculator", "expression", "Evaluate an arithmetic expression."),
    ("search", "query", "Search the web for a query."),
    ("read_file", "path", "Read a text file from the working directory."),
    ("write_file", "path", "Write text to a file in the working directory."),
    ("current_time", "timezone", "Return the current date and time."),
    ("python", "code", "Run a short Python program."),
)


def _builtin_corpus() -> Iterator[str]:
    """Yield the built-in training text: agent transcripts, tool-call JSON, arithmetic and plain English.

    Yields:
        Lines of text, the same ones in the same order on every call.
    """
    yield from _SENTENCES
    for index, (name, arg, description) in enumerate(_TOOLS):
        a, b = 3 + 7 * index, 11 + 5 * index
        value = f"{a}+{b}" if name == "calculator" else f"example {index}"
        yield f"{name}: {description}"
        yield (
            '{"type": "function", "function": {"name": "' + name + '", "description": "' + description + '", '
            '"parameters": {"type": "object", "properties": {"' + arg + '": {"type": "string"}}, '
            '"required": ["' + arg + '"]}}}'
        )
        yield (
            f"Question: What is {a} plus {b}?\nThought: I should use the {name} tool.\nAction: {name}\n"
            f'Action Input: {{"{arg}": "{value}"}}\nObservation: {a + b}\nThought: I now know the final answer.\n'
            f"Final Answer: {a + b}"
        )
        yield (
            f'<|im_start|>assistant\n<tool_call>\n{{"name": "{name}", "arguments": {{"{arg}": "{value}"}}}}\n'
            f"</tool_call><|im_end|>\n<|im_start|>user\n<tool_response>\n{a + b}\n</tool_response><|im_end|>\n"
        )
        yield f"<think>\nThe user asked about {name}. I will call it with the {arg}.\n</think>\n"
    for a in range(2, 40, 3):
        b = (a * 7) % 23 + 1
        yield f"{a} + {b} = {a + b}, {a} * {b} = {a * b}, {a} - {b} = {a - b}"


def _train_tokenizer(corpus: Iterable[str] | None, vocab_size: int) -> object:
    """Train a byte-level BPE `tokenizers.Tokenizer` with single-digit pre-tokenization.

    Args:
        corpus: Extra training text, after the built-in corpus.
        vocab_size: The size of the whole vocabulary, added tokens included.

    Returns:
        The trained `tokenizers.Tokenizer`.
    """
    from tokenizers import AddedToken, Tokenizer, decoders, models, pre_tokenizers, processors, trainers

    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.Sequence(
        [pre_tokenizers.Digits(individual_digits=True), pre_tokenizers.ByteLevel(add_prefix_space=False)]
    )
    tokenizer.decoder = decoders.ByteLevel()
    tokenizer.post_processor = processors.ByteLevel(trim_offsets=False)
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size - len(ADDED_TOKENS),
        min_frequency=1,
        special_tokens=list(SPECIAL_TOKENS),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    texts = list(_builtin_corpus())
    if corpus is not None:
        texts.extend(corpus)
    tokenizer.train_from_iterator(texts, trainer=trainer)
    tokenizer.add_tokens([AddedToken(token, special=False, normalized=False) for token in ADDED_TOKENS])
    return tokenizer


def build_tiny_model(
    out_dir: str | os.PathLike[str],
    *,
    chat_template: str | None = HERMES_TEMPLATE,
    corpus: Iterable[str] | None = None,
    vocab_size: int = 512,
    hidden_size: int = 64,
    layers: int = 2,
    heads: int = 4,
    kv_heads: int | None = None,
    seed: int = 0,
    arch: Literal["llama", "gpt2"] = "llama",
    context: int = 1024,
) -> Path:
    """Build and save a tiny, randomly initialised causal LM with its own tokenizer.

    The folder holds what a Hub checkpoint holds (`config.json`, `generation_config.json`, `model.safetensors`,
    `tokenizer.json`, `tokenizer_config.json`, the chat template), so `AutoTokenizer.from_pretrained(out_dir)` and
    `AutoModelForCausalLM.from_pretrained(out_dir)` load it offline. The tokenizer is Qwen-like: `<|im_end|>` is the
    end-of-sequence token, `<|endoftext|>` pads, there is no beginning-of-sequence token, padding is on the left, and
    every digit is its own token. Everything is deterministic given `seed` and the arguments.

    Args:
        out_dir: The folder to write; created if missing, files in it overwritten.
        chat_template: The tokenizer's chat template, or None for a tokenizer without one.
        corpus: Extra text to train the tokenizer on, after the built-in agent-style corpus.
        vocab_size: The most tokens the vocabulary holds, the special and added tokens included. The model's
            embedding has exactly as many rows as the tokenizer has tokens, which can be fewer when the corpus
            runs out of merges.
        hidden_size: The model's hidden size.
        layers: The number of transformer layers.
        heads: The number of attention heads; must divide `hidden_size`.
        kv_heads: Key/value heads for grouped-query attention (Llama only); must divide `heads`. Default: `heads`.
        seed: The seed for the model's random initialisation.
        arch: `"llama"` for a `LlamaForCausalLM`, `"gpt2"` for a `GPT2LMHeadModel`.
        context: The longest sequence the model and tokenizer are declared for, in tokens.

    Returns:
        The folder, as a `Path`.

    Raises:
        ValueError: If the sizes are impossible.
    """
    import torch
    from transformers import GenerationConfig, PreTrainedTokenizerFast

    min_vocab = 256 + len(SPECIAL_TOKENS) + len(ADDED_TOKENS)
    if vocab_size < min_vocab:
        raise ValueError(f"vocab_size must be at least {min_vocab} (256 bytes plus the special tokens).")
    if hidden_size % heads:
        raise ValueError(f"heads ({heads}) must divide hidden_size ({hidden_size}).")
    kv_heads = heads if kv_heads is None else kv_heads
    if kv_heads <= 0 or heads % kv_heads or (arch != "llama" and kv_heads != heads):
        raise ValueError(f"kv_heads ({kv_heads}) must divide heads ({heads}), and needs arch='llama' to differ.")
    path = Path(out_dir)
    path.mkdir(parents=True, exist_ok=True)

    tokenizer = PreTrainedTokenizerFast(  # type: ignore[no-untyped-call]
        tokenizer_object=_train_tokenizer(corpus, vocab_size),
        eos_token="<|im_end|>",
        pad_token="<|endoftext|>",
        bos_token=None,
        unk_token=None,
        padding_side="left",
        model_max_length=context,
        clean_up_tokenization_spaces=False,
    )
    if chat_template is not None:
        tokenizer.chat_template = chat_template
    tokenizer.save_pretrained(path)

    ids: dict[str, Any] = {
        "bos_token_id": tokenizer.convert_tokens_to_ids("<|endoftext|>"),
        "eos_token_id": tokenizer.convert_tokens_to_ids("<|im_end|>"),
        "pad_token_id": tokenizer.convert_tokens_to_ids("<|endoftext|>"),
    }
    torch.manual_seed(seed)
    model: torch.nn.Module
    if arch == "llama":
        from transformers import LlamaConfig, LlamaForCausalLM

        llama_config = LlamaConfig(
            vocab_size=len(tokenizer),
            hidden_size=hidden_size,
            intermediate_size=4 * hidden_size,
            num_hidden_layers=layers,
            num_attention_heads=heads,
            num_key_value_heads=kv_heads,
            max_position_embeddings=context,
            tie_word_embeddings=True,
            **ids,
        )
        model = LlamaForCausalLM(llama_config)
    elif arch == "gpt2":
        from transformers import GPT2Config, GPT2LMHeadModel

        gpt2_config = GPT2Config(
            vocab_size=len(tokenizer),
            n_positions=context,
            n_embd=hidden_size,
            n_layer=layers,
            n_head=heads,
            resid_pdrop=0.0,
            embd_pdrop=0.0,
            attn_pdrop=0.0,
            **ids,
        )
        model = GPT2LMHeadModel(gpt2_config)
    else:
        raise ValueError(f"Unknown arch {arch!r}; expected 'llama' or 'gpt2'.")
    model.generation_config = GenerationConfig(**ids)  # type: ignore[no-untyped-call]
    model.save_pretrained(path)
    return path


def _batch(
    tokenizer: object, texts: Sequence[str | tuple[str, str]], *, end: bool = True
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Tokenize texts as-is, each followed by the end-of-sequence token, padded on the right.

    A ``(prompt, reply)`` pair is tokenized in two parts, as generation sees it (the prompt alone, then the reply's
    tokens), and only the reply and the end token are learned. Right padding keeps every text at the positions it
    has when generated alone; the causal mask keeps the padding out of sight of the real tokens, and the labels
    ignore it.

    Args:
        tokenizer: The model's tokenizer.
        texts: The texts, or (prompt, reply) pairs.
        end: Follow each text with the end-of-sequence token.

    Returns:
        Input ids, attention mask and labels, each of shape (len(texts), longest).
    """
    import torch

    def encode(text: str) -> list[int]:
        return list(tokenizer(text, add_special_tokens=False)["input_ids"])  # type: ignore[operator]

    eos: int = tokenizer.eos_token_id  # type: ignore[attr-defined]
    rows, learned = [], []
    for text in texts:
        prompt, reply = text if isinstance(text, tuple) else ("", text)
        head, tail = encode(prompt) if prompt else [], [*encode(reply), *([eos] if end else [])]
        rows.append(head + tail)
        learned.append([False] * len(head) + [True] * len(tail))
    width = max(len(row) for row in rows)
    pad: int = tokenizer.pad_token_id  # type: ignore[attr-defined]
    input_ids = torch.tensor([row + [pad] * (width - len(row)) for row in rows])
    mask = torch.tensor([[1] * len(row) + [0] * (width - len(row)) for row in rows])
    keep = torch.tensor([flags + [False] * (width - len(flags)) for flags in learned])
    labels = input_ids.masked_fill(~keep, -100)
    return input_ids, mask, labels


def train_to_say(
    model_dir: str | os.PathLike[str],
    texts: Sequence[str | tuple[str, str]],
    *,
    steps: int = 300,
    lr: float = 3e-3,
    seed: int = 0,
    end: bool = True,
) -> None:
    """Overfit the model in `model_dir` on `texts` so that greedy decoding reproduces them, and save it in place.

    Each text is tokenized as-is (special tokens in it, such as `<|im_start|>`, become their single ids) and followed
    by the end-of-sequence token, so greedy generation from a prefix of a text continues with the rest of it and then
    stops. Training stops early once every learned token is the model's top choice with probability at
    least 0.9, which leaves a margin against the small numeric differences of cached generation.

    Args:
        model_dir: A folder written by `build_tiny_model`.
        texts: The full texts to learn, or ``(prompt, reply)`` pairs of which only the reply is learned (the
            prompt is tokenized on its own, as generation sees it). Keep them short and not contradicting each
            other (two texts that share a prefix but continue differently cannot both be reproduced).
        steps: The most optimisation steps.
        lr: AdamW's learning rate.
        seed: The seed for the optimisation.
        end: Teach the end-of-sequence token after each text; without it the model runs on past the text with
            text of its own (a model that never stops, as small models often do).

    Raises:
        ValueError: If `texts` is empty.
        RuntimeError: If `steps` steps did not make the model reproduce every text.
    """
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    if not texts:
        raise ValueError("texts must not be empty.")
    torch.manual_seed(seed)
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32)
    input_ids, mask, labels = _batch(tokenizer, texts, end=end)
    targets = labels[:, 1:]
    scored = targets != -100
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.0)
    model.train()
    learned = False
    for _ in range(steps):
        logits = model(input_ids=input_ids, attention_mask=mask).logits[:, :-1].float()
        logprobs = torch.log_softmax(logits, dim=-1)
        picked = logprobs.gather(-1, targets.clamp(min=0).unsqueeze(-1)).squeeze(-1)
        with torch.no_grad():
            correct = logprobs.argmax(dim=-1) == targets
            if bool((correct | ~scored).all()) and float(picked[scored].min()) > -0.1:
                learned = True
                break
        loss = -picked[scored].mean()
        optimizer.zero_grad()
        loss.backward()  # type: ignore[no-untyped-call]
        optimizer.step()
    if not learned:
        raise RuntimeError(f"The model did not learn the texts in {steps} steps; raise steps or lr, or shorten them.")
    model.eval()  # type: ignore[no-untyped-call]
    model.save_pretrained(model_dir)

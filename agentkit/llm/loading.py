"""Load a causal LM and its tokenizer through transformers' own `from_pretrained`, offline-first.

A model is looked up locally first (a directory, or the Hugging Face cache). Only when that fails and the hub is not
switched off (``HF_HUB_OFFLINE``) is a download tried, so an offline machine gets one clear error at once instead
of a stack of retries.
"""

from __future__ import annotations

import importlib.metadata
import logging
import os
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from packaging.version import Version

from agentkit.errors import ConfigError
from agentkit.llm.cpu_matmul import tune_cpu_matmuls as _tune_cpu_matmuls

if TYPE_CHECKING:
    from transformers import PreTrainedModel, PreTrainedTokenizerBase

__all__ = ["Quantize", "context_window", "load_model", "pick_device"]

Quantize = Literal["4bit", "8bit"]


def pick_device(device: str) -> str:
    """``"auto"`` becomes ``"cuda"`` when a GPU is present, else ``"cpu"``; other values are checked and pass through.

    Raises:
        ConfigError: When `device` is no torch device, or names a CUDA GPU this torch cannot see. Caught here, or a
            CPU-only torch fails deep inside the load with "Torch not compiled with CUDA enabled".
    """
    import torch

    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    try:
        parsed = torch.device(device)
    except (RuntimeError, TypeError) as exc:
        raise ConfigError(f"device={device!r} is not a torch device; use 'auto', 'cpu', 'cuda' or 'cuda:N'.") from exc
    if parsed.type == "cuda":
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if count == 0:
            raise ConfigError(
                f"device={device!r}, but this torch ({torch.__version__}) sees no CUDA GPU. Pass device='auto' "
                "(a GPU when present, else the CPU) or 'cpu', or install a CUDA build of torch."
            )
        if parsed.index is not None and parsed.index >= count:
            raise ConfigError(
                f"device={device!r}, but this machine has {count} CUDA GPU(s), cuda:0 to cuda:{count - 1}."
            )
    return device


def context_window(config: Any) -> int | None:
    """The most positions a model takes, prompt and reply together: ``max_position_embeddings`` in its text config.

    transformers maps each architecture's own name onto it (GPT-2's ``n_positions``, say). Past it, a model with a
    position table indexes outside it (an IndexError, or on a GPU a device-side assert that ends the process's use of
    CUDA), and a rotary one runs on untrained positions.

    Args:
        config: A transformers model config, or None.

    Returns:
        The window, or None when there is no config or it sets none.
    """
    text = config.get_text_config() if hasattr(config, "get_text_config") else config
    value = getattr(text, "max_position_embeddings", None)
    return value if isinstance(value, int) and value > 0 else None


def load_model(
    id_or_path: str | os.PathLike[str],
    *,
    device: str = "auto",
    dtype: str = "auto",
    adapter: str | os.PathLike[str] | None = None,
    quantize: Quantize | None = None,
    tune_cpu_matmuls: bool = True,
) -> tuple[PreTrainedModel, PreTrainedTokenizerBase, str]:
    """Load a model, its tokenizer and optionally a PEFT adapter, on the chosen device.

    Args:
        id_or_path: A local directory or a hub id (found in the local cache when offline).
        device: ``"auto"``, ``"cpu"``, ``"cuda"``, ``"cuda:1"``, ...
        dtype: ``"auto"`` (bfloat16 on a GPU that supports it, float32 on the CPU) or a torch dtype name.
        adapter: A PEFT adapter directory to apply (e.g. the output of ``agentkit dpo``); merged into the weights
            unless they are quantised.
        quantize: 4- or 8-bit weights via bitsandbytes, on CUDA or the CPU (bitsandbytes>=0.47 there; without it
            the CPU loads full precision, with a warning).
        tune_cpu_matmuls: On the CPU, have each linear layer multiply one row and a few rows (decoding) in the
            form this CPU runs fastest, measured per weight shape (`agentkit.llm.cpu_matmul`).

    Returns:
        The model in eval mode, its tokenizer, and the device it is on.

    Raises:
        ConfigError: When the model or adapter is not available, or a needed package is missing.
    """
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    if adapter is not None:  # before the model: a wrong adapter path should not cost a whole load first
        _check_adapter(adapter)
    where = pick_device(device)
    name = str(id_or_path)
    options: dict[str, Any] = {"dtype": _dtype(dtype, where, torch)}
    if quantize is not None:
        options.update(_quantisation(quantize, where, options["dtype"]))
    tokenizer = _from_pretrained(AutoTokenizer, name, {})
    model = _from_pretrained(AutoModelForCausalLM, name, options)
    if "device_map" not in options:
        model = model.to(where)
    if adapter is not None:
        model = _apply_adapter(model, adapter, merge="quantization_config" not in options)
    model.eval()
    if where == "cpu" and tune_cpu_matmuls:
        _tune_cpu_matmuls(model)
    return model, tokenizer, where


def _from_pretrained(factory: Any, name: str, options: dict[str, Any]) -> Any:
    try:
        return factory.from_pretrained(name, local_files_only=True, **options)
    except OSError as local_error:
        if os.environ.get("HF_HUB_OFFLINE", "0") not in ("0", "", "false", "False") or Path(name).exists():
            raise ConfigError(_unavailable(name, local_error)) from local_error
    try:
        return factory.from_pretrained(name, **options)
    except OSError as error:
        raise ConfigError(_unavailable(name, error)) from error


def _unavailable(name: str, error: BaseException) -> str:
    first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
    return (
        f"Model {name!r} is not available on this machine ({first}). Pass a local directory saved with "
        "save_pretrained, or download it where there is network (`hf download <id>`) and copy the cache here."
    )


def _dtype(dtype: str, device: str, torch: Any) -> Any:
    if dtype != "auto":
        value = getattr(torch, dtype, None)
        if not isinstance(value, torch.dtype):
            raise ConfigError(f"dtype={dtype!r} is not a torch dtype; use 'auto', 'float32', 'bfloat16' or 'float16'.")
        return value
    if device.startswith("cuda") and torch.cuda.is_bf16_supported():
        return torch.bfloat16
    # float32 on the CPU: half precision there is slower, not faster, and less exact.
    return torch.float32


# The first bitsandbytes release that runs 4- and 8-bit weights on the CPU.
_CPU_BITSANDBYTES = "0.47"


def _quantisation(quantize: Quantize, device: str, dtype: Any) -> dict[str, Any]:
    """The `from_pretrained` options that load bitsandbytes weights on `device`; none, with a warning, where not.

    bitsandbytes runs 4- and 8-bit weights on CUDA, and on the CPU since 0.47, where decoding, bound by reading the
    weights, gets faster too. Without it the CPU skips quantisation with a warning (the model still loads in full
    precision); a GPU, where quantisation is what makes a model fit, raises.

    Raises:
        ConfigError: On CUDA when bitsandbytes is missing.
    """
    from transformers import BitsAndBytesConfig

    kind = device.split(":", maxsplit=1)[0]
    found = _bitsandbytes_version()
    if kind == "cuda" and found is None:
        raise ConfigError(
            f"quantize={quantize!r} needs the bitsandbytes package: pip install 'bitsandbytes>={_CPU_BITSANDBYTES}'"
        )
    if kind != "cuda" and (kind != "cpu" or found is None or found < Version(_CPU_BITSANDBYTES)):
        have = "no bitsandbytes" if found is None else f"bitsandbytes {found}"
        warnings.warn(
            f"quantize={quantize!r} on {device} needs CUDA, or the CPU with bitsandbytes>={_CPU_BITSANDBYTES} "
            f"(here: {have}; pip install 'bitsandbytes>={_CPU_BITSANDBYTES}'); loading full-precision weights.",
            stacklevel=3,
        )
        return {}
    _quiet_bitsandbytes_notes()
    config = BitsAndBytesConfig(  # type: ignore[no-untyped-call]
        load_in_4bit=quantize == "4bit", load_in_8bit=quantize == "8bit", bnb_4bit_compute_dtype=dtype
    )
    return {"quantization_config": config, "device_map": device}


def _bitsandbytes_version() -> Version | None:
    try:
        return Version(importlib.metadata.version("bitsandbytes"))
    except importlib.metadata.PackageNotFoundError:
        return None


class _DropNotes(logging.Filter):
    """Drops bitsandbytes' notes that ask nothing of an agentkit user."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not record.getMessage().startswith(_NOTES)


# On a CPU with bfloat16 instructions, at import: its faster 4-bit kernel comes from the Hub through the `kernels`
# package, which an offline machine does not reach, so it uses its own. At every 8-bit product of float32 or
# bfloat16 inputs, one line per layer and step: they are cast to float16, as bitsandbytes' int8 products always do.
_NOTES = ("Failed to load CPU gemm_4bit_forward from kernels-community", "MatMul8bitLt: inputs will be cast")
_NOTE_LOGGERS = ("bitsandbytes.backends.cpu.ops", "bitsandbytes.autograd._functions")


def _quiet_bitsandbytes_notes() -> None:
    for name in _NOTE_LOGGERS:
        logger = logging.getLogger(name)
        if not any(isinstance(existing, _DropNotes) for existing in logger.filters):
            logger.addFilter(_DropNotes())


def _check_adapter(adapter: str | os.PathLike[str]) -> None:
    """Raise a `ConfigError` that says what to do unless `adapter` is a PEFT adapter folder and peft is installed."""
    try:
        import peft  # noqa: F401
    except ImportError as exc:
        raise ConfigError("Loading an adapter needs the peft package: pip install peft") from exc
    if not Path(adapter).is_dir():
        raise ConfigError(f"Adapter directory {str(adapter)!r} does not exist.")
    if not Path(adapter, "adapter_config.json").is_file():
        hint = (
            " It holds a whole model (`agentkit dpo --full_finetune` writes one): load it as the model instead."
            if Path(adapter, "config.json").is_file()
            else ""
        )
        raise ConfigError(f"{str(adapter)!r} is not a PEFT adapter (no adapter_config.json).{hint}")


def _apply_adapter(model: Any, adapter: str | os.PathLike[str], *, merge: bool) -> Any:
    """Apply a PEFT adapter; merged into the weights when they are not quantised, so decoding costs nothing extra."""
    from peft import PeftModel

    adapted = PeftModel.from_pretrained(model, str(adapter))
    return adapted.merge_and_unload() if merge else adapted

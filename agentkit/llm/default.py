"""agentkit's own small tool-using model, shipped inside the package so the main job needs no download.

It was trained by ``agentkit train-default`` (see `agentkit.train_default`) on generated episodes with the built-in
tools, and is loaded through the ordinary `LocalChatModel.from_pretrained` path.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from agentkit.errors import ConfigError
from agentkit.llm.local import LocalChatModel

__all__ = ["DEFAULT_MODEL", "default_model_path", "load_default_model"]

DEFAULT_MODEL = "agentkit-default"
"""The name that selects the shipped model wherever a model id is taken (``--model``)."""


def default_model_path() -> Path:
    """The folder of the shipped checkpoint.

    Raises:
        ConfigError: When the package was installed without it.
    """
    path = Path(__file__).resolve().parent.parent / "assets" / "default-model"
    if not (path / "config.json").is_file():
        raise ConfigError(
            f"agentkit's default model is missing from {path}; reinstall agentkit, or rebuild it with "
            f"`agentkit train-default --output_dir {path}`."
        )
    return path


def load_default_model(model: str | None = None, **kwargs: Any) -> LocalChatModel:
    """Load a chat model: the shipped default unless `model` names another.

    Args:
        model: None or `DEFAULT_MODEL` for the shipped model; else any local path or cached hub id.
        **kwargs: Passed to `LocalChatModel.from_pretrained` (device, dtype, adapter, max_new_tokens, ...).

    Raises:
        ConfigError: When the model is not available offline.
    """
    if model is None or model == DEFAULT_MODEL:
        return LocalChatModel.from_pretrained(default_model_path(), **kwargs)
    return LocalChatModel.from_pretrained(model, **kwargs)

"""agentkit's own small tool-using model, loaded when no model is named.

The wheel carries a checkpoint that ``agentkit train-default`` produced (``agentkit/default_model``, a few MB), so
the main job runs on a fresh machine without a download. ``agentkit train-default`` retrains it into
``$AGENTKIT_HOME/default-model`` (by default ``~/.cache/agentkit/default-model``), which then takes precedence.
Either loads through the ordinary `LocalChatModel.from_pretrained` path.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from agentkit.errors import ConfigError
from agentkit.home import agentkit_home
from agentkit.llm.local import LocalChatModel

__all__ = ["DEFAULT_MODEL", "SHIPPED_MODEL", "default_model_path", "load_default_model", "trained_model_home"]

DEFAULT_MODEL = "agentkit-default"
"""The name that selects the default model wherever a model id is taken (``--model``)."""


def trained_model_home() -> Path:
    """Where ``agentkit train-default`` saves the default model: ``$AGENTKIT_HOME/default-model``."""
    return agentkit_home() / "default-model"


SHIPPED_MODEL = Path(__file__).resolve().parent.parent / "default_model"
"""The checkpoint inside the package: ``agentkit train-default``'s output with its default settings."""


def default_model_path() -> Path:
    """The folder of the default model: one retrained on this machine, else the shipped one.

    Raises:
        ConfigError: When neither is there (an install without its package data), saying what to do.
    """
    for path in (trained_model_home(), SHIPPED_MODEL):
        if (path / "config.json").is_file():
            return path
    raise ConfigError(
        f"agentkit's default model is missing from {SHIPPED_MODEL} (an incomplete install): reinstall agentkit, "
        f"run `agentkit train-default` (it trains one into {trained_model_home()}), or pass --model with a local "
        f"model directory."
    )


def load_default_model(model: str | None = None, **kwargs: Any) -> LocalChatModel:
    """Load a chat model: the default unless `model` names another.

    Args:
        model: None or `DEFAULT_MODEL` for the default model; else any local path or cached hub id.
        **kwargs: Passed to `LocalChatModel.from_pretrained` (device, dtype, adapter, max_new_tokens, ...).

    Raises:
        ConfigError: When the model is not available offline.
    """
    if model is None or model == DEFAULT_MODEL:
        return LocalChatModel.from_pretrained(default_model_path(), **kwargs)
    return LocalChatModel.from_pretrained(model, **kwargs)

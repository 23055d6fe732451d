"""agentkit's folder for what it makes on a machine: a retrained default model, exported embedding graphs."""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["agentkit_home"]


def agentkit_home() -> Path:
    """``$AGENTKIT_HOME``, by default ``~/.cache/agentkit``; not created here."""
    return Path(os.environ.get("AGENTKIT_HOME") or Path.home() / ".cache" / "agentkit")

"""Human-in-the-loop approval of tool calls: approve, deny, or edit the arguments before a tool runs."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from agentkit.planner import ToolRequest

__all__ = ["Approval", "ApprovalCallback", "Approve", "Deny", "Edit"]


@dataclass(frozen=True, slots=True)
class Approve:
    """Run the call as the model wrote it."""


@dataclass(frozen=True, slots=True)
class Deny:
    """Do not run the call; the model is told the reason.

    Attributes:
        reason: Shown to the model in the observation.
    """

    reason: str = "the user did not approve this call"


@dataclass(frozen=True, slots=True)
class Edit:
    """Run the call with other arguments (validated again against the tool's schema).

    Attributes:
        args: The arguments to use instead.
    """

    args: dict[str, Any] = field(default_factory=dict)


Approval = Approve | Deny | Edit | bool
"""A callback's verdict; ``True`` and ``False`` are short for `Approve()` and `Deny()`."""

ApprovalCallback = Callable[[ToolRequest], Approval | Awaitable[Approval]]
"""Called with each tool call before it runs; may be async when the agent runs async."""

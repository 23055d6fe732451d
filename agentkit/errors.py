"""Errors that a developer must act on.

Model-facing faults (unparsable output, bad tool arguments, tool failures, timeouts) never raise: they become
observations the model sees. Only mistakes in how the agent is put together raise, at once, with a message that
says what to do.
"""

from __future__ import annotations

__all__ = ["AgentkitError", "ConfigError"]


class AgentkitError(Exception):
    """Base class of every error agentkit raises on purpose."""


class ConfigError(AgentkitError, ValueError):
    """The agent, a tool or a part was configured wrongly; the message says how to fix it."""

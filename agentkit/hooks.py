"""Hooks: code that watches every episode (reward logging, metrics, custom traces) without changing it."""

from __future__ import annotations

from agentkit.steps import AgentResult, Step

__all__ = ["Hook"]


class Hook:
    """Override any of these; the defaults do nothing.

    Hooks run in the agent's thread, in the order they were given. An exception in a hook is a bug in the hook
    and propagates: a reward logger that silently stopped logging would be worse than a loud failure.
    """

    def on_episode_start(self, episode_id: str, question: str) -> None:
        """Called before the first model call of an episode."""

    def on_step(self, episode_id: str, step: Step) -> None:
        """Called for every step, as it happens."""

    def on_episode_end(self, result: AgentResult) -> None:
        """Called with the finished episode, whatever its status."""

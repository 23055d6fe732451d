"""Drive a generator that asks questions: iterate what it yields, answer each, collect what it returns.

The episode and the executor's approval gate are written once as generators; a sync and an async driver each
answer their questions in their own way (a call, or an await) through this adapter.
"""

from __future__ import annotations

from collections.abc import Generator
from typing import Generic, TypeVar

__all__ = ["Drive"]

Y = TypeVar("Y")
S = TypeVar("S")
R = TypeVar("R")


class Drive(Generic[Y, S, R]):
    """Iterate a generator's questions; set `answer` before the next step (it resets to `default` each time).

    Args:
        generator: The generator to drive.
        default: What a question left unanswered receives.
    """

    def __init__(self, generator: Generator[Y, S, R], default: S) -> None:
        self._generator = generator
        self._default = default
        self._started = False
        self.answer: S = default
        self.result: R

    def __iter__(self) -> Drive[Y, S, R]:
        return self

    def __next__(self) -> Y:
        answer, self.answer = self.answer, self._default
        try:
            if not self._started:
                self._started = True
                return next(self._generator)
            return self._generator.send(answer)
        except StopIteration as stop:
            self.result = stop.value
            raise StopIteration from None

"""Run a framework in a process of its own, one call at a time, timed inside that process.

Frameworks compared in one process share torch's OpenMP runtime. torch runs its parallel CPU kernels on one team of
threads per calling thread, and libgomp lets a team's threads spin between parallel regions (ready at once) only
while it manages no more threads than there are CPUs. A second framework calling torch from another thread (agentkit
runs its model on a worker thread) creates a second team, and from then on every framework's parallel products wait
for their threads to wake up: on a 2-vCPU VM that slowed decoding by 1.3-1.5x, for whichever framework ran. A user
runs one framework in a process, so each one runs here in a process of its own: the parent sends a call, the child
makes it and answers with its result and the seconds the call took there (no pickling or pipe time), and the parent
interleaves the frameworks' calls as before, so the VM's drift still hits them alike.
"""

from __future__ import annotations

import functools
import multiprocessing
import time
import traceback
from collections.abc import Callable
from typing import Any

__all__ = ["Isolated", "alone"]


class Isolated:
    """A callable built by ``factory(*args)`` in a child process (spawned: a fresh interpreter, no threads inherited).

    Calling the instance calls the child's callable with the same arguments and returns ``(result, seconds)``.
    Arguments, results and `factory` must pickle; `factory` must be importable (a module-level function).
    """

    def __init__(self, factory: Callable[..., Callable[..., Any]], *args: Any) -> None:
        context = multiprocessing.get_context("spawn")
        self._conn, child = context.Pipe()
        self._process = context.Process(target=_serve, args=(child, factory, args), daemon=True)
        self._process.start()
        self._answer()  # the factory ran (the model is loaded) or raised

    def __call__(self, *args: Any) -> tuple[Any, float]:
        self._conn.send(args)
        answer: tuple[Any, float] = self._answer()
        return answer

    def close(self) -> None:
        """Stop the child process."""
        self._conn.send(None)
        self._process.join(timeout=30)

    def __enter__(self) -> Isolated:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _answer(self) -> Any:
        kind, value = self._conn.recv()
        if kind == "error":
            raise RuntimeError(f"in the isolated process:\n{value}")
        return value


def alone(function: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """``function(*args, **kwargs)`` in a process of its own (as in a user's process, one OpenMP team there)."""
    with Isolated(_here) as child:
        result, _ = child(functools.partial(function, *args, **kwargs))
    return result


def _here() -> Callable[[Callable[[], Any]], Any]:
    return lambda function: function()


def _serve(conn: Any, factory: Callable[..., Callable[..., Any]], args: tuple[Any, ...]) -> None:
    try:
        call = factory(*args)
    except BaseException:
        conn.send(("error", traceback.format_exc()))
        return
    conn.send(("ok", None))
    while (request := conn.recv()) is not None:
        try:
            started = time.perf_counter()
            result = call(*request)
            conn.send(("ok", (result, time.perf_counter() - started)))
        except BaseException:
            conn.send(("error", traceback.format_exc()))

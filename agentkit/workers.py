"""Run a blocking callable with a deadline, on a thread or in a child process.

Python cannot kill a thread, so the two runners make different promises:

* `run_in_thread` returns at the deadline, always. The worker is a daemon thread (a hung tool never blocks the
  interpreter from exiting, unlike `ThreadPoolExecutor` workers, which are joined at exit), and at the deadline it is
  sent an asynchronous `WorkerTimeout` exception: a tool busy in Python code stops at its next bytecode, one blocked
  in a C call (``time.sleep``, a socket read) stops when that call returns. Side effects stay in this process.
* `run_in_process` forks a child and SIGKILLs it at the deadline: anything stops, at once, including C code and
  sleeps. The price: a fork per call, and side effects other than files and network stay in the child.
* `Alarm.call` runs on the calling thread, saving the thread hand-off (a few hundred microseconds, most of an
  agent's own per-step cost); at the deadline one shared watchdog thread raises `WorkerTimeout` in the caller. Python
  code stops at its next bytecode (a local model between two tokens); a call blocked in C returns first, and its
  result is then discarded as late.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import ctypes
import heapq
import itertools
import multiprocessing
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

__all__ = ["Alarm", "Outcome", "WorkerTimeout", "arun_in_thread", "run_in_process", "run_in_thread"]

T = TypeVar("T")


class WorkerTimeout(BaseException):
    """Raised inside a call whose deadline has passed.

    A `BaseException`, like `asyncio.CancelledError`: it is a cancellation, and code that catches `Exception` to
    retry or to log (LangChain's callback handlers do) must not swallow it.
    """


@dataclass(frozen=True, slots=True)
class Outcome(Generic[T]):
    """What became of a call: a value, an error, or a timeout.

    Attributes:
        value: The return value (when it returned).
        error: The exception it raised, or a description of how the worker died.
        timed_out: True when the deadline passed first.
    """

    value: T | None = None
    error: BaseException | None = None
    timed_out: bool = False


class _ThreadJob(Generic[T]):
    def __init__(self, fn: Callable[[], T], on_done: Callable[[Outcome[T]], None] | None = None) -> None:
        self._fn = fn
        self._on_done = on_done
        self.done = threading.Event()
        self.outcome: Outcome[T] = Outcome(timed_out=True)
        # The worker sees the caller's context variables (LangChain's run tree and callbacks live there).
        context = contextvars.copy_context()
        self._thread = threading.Thread(target=context.run, args=(self._work,), daemon=True, name="agentkit-tool")
        self._thread.start()

    def _work(self) -> None:
        try:
            self.outcome = Outcome(value=self._fn())
        except BaseException as exc:
            self.outcome = Outcome(error=exc)
        self.done.set()
        if self._on_done is not None:
            self._on_done(self.outcome)

    def cancel(self) -> None:
        ident = self._thread.ident
        if ident is not None and not self.done.is_set():
            _raise_in(ident, WorkerTimeout)


def run_in_thread(fn: Callable[[], T], timeout: float | None) -> Outcome[T]:
    """Run `fn` on a daemon thread and wait at most `timeout` seconds.

    Args:
        fn: The work.
        timeout: Seconds to wait; None waits forever.

    Returns:
        The outcome; on timeout the worker is asked to stop and abandoned.
    """
    job = _ThreadJob(fn)
    try:
        finished = job.done.wait(timeout)
    except BaseException:  # Ctrl-C while waiting: stop the worker too
        job.cancel()
        raise
    if finished:
        return job.outcome
    job.cancel()
    return Outcome(timed_out=True)


async def arun_in_thread(fn: Callable[[], T], timeout: float | None) -> Outcome[T]:
    """Like `run_in_thread`, awaited without blocking the event loop.

    The thread is not the loop's default executor: `asyncio.run` joins those at shutdown, so one hung tool would
    hang the program's exit.
    """
    loop = asyncio.get_running_loop()
    future: asyncio.Future[Outcome[T]] = loop.create_future()

    def deliver(outcome: Outcome[T]) -> None:
        def settle() -> None:
            if not future.done():
                future.set_result(outcome)

        # The loop may have closed while an abandoned worker was still running.
        with contextlib.suppress(RuntimeError):
            loop.call_soon_threadsafe(settle)

    job = _ThreadJob(fn, on_done=deliver)
    try:
        return await asyncio.wait_for(future, timeout)
    except asyncio.TimeoutError:
        job.cancel()
        return Outcome(timed_out=True)


def run_in_process(fn: Callable[[], Any], timeout: float | None) -> Outcome[Any]:
    """Run `fn` in a forked child process, killed with SIGKILL if it overruns `timeout`.

    Args:
        fn: The work; it runs in the child, so its return value must be picklable.
        timeout: Seconds to wait; None waits forever.

    Returns:
        The outcome. A child that dies without answering gives an error naming its exit code.

    Raises:
        RuntimeError: On platforms without ``fork``.
    """
    if "fork" not in multiprocessing.get_all_start_methods():
        raise RuntimeError("Process isolation needs the 'fork' start method (Linux); use isolation='thread'.")
    context = multiprocessing.get_context("fork")
    receiver, sender = context.Pipe(duplex=False)
    child = context.Process(target=_child_main, args=(fn, sender), daemon=True)
    child.start()
    sender.close()
    try:
        if not receiver.poll(timeout):
            child.kill()
            return Outcome(timed_out=True)
        try:
            kind, payload = receiver.recv()
        except EOFError:
            child.join()
            return Outcome(error=RuntimeError(f"the tool's worker process died (exit code {child.exitcode})"))
        return Outcome(value=payload) if kind == "ok" else Outcome(error=payload)
    finally:
        child.join()
        receiver.close()


def _child_main(fn: Callable[[], Any], sender: Any) -> None:
    try:
        sender.send(("ok", fn()))
    except BaseException as exc:
        try:
            sender.send(("error", exc))
        except Exception:
            sender.send(("error", RuntimeError(f"{type(exc).__name__}: {exc}")))


class Alarm:
    """A deadline for calls made on the calling thread; see the module docs.

    Args:
        deadline: A `time.monotonic()` instant.
    """

    def __init__(self, deadline: float) -> None:
        self.deadline = deadline
        self.rang = False
        self._lock = threading.Lock()
        self._inside: int | None = None  # the thread ident while a call runs
        self._cancelled = False
        _watchdog.schedule(self)

    def call(self, fn: Callable[[], T]) -> Outcome[T]:
        """Run `fn` here; stop it with `WorkerTimeout` if the deadline passes while it runs.

        Returns:
            Its outcome; `timed_out` when the deadline passed before or during the call.
        """
        try:
            try:
                with self._lock:
                    if self.rang:
                        return Outcome(timed_out=True)
                    self._inside = threading.get_ident()
                value = fn()
            finally:
                with self._lock:
                    if self.rang and self._inside is not None:
                        _raise_in(self._inside, None)  # drop the exception if it is still pending
                    self._inside = None
        except WorkerTimeout:
            return Outcome(timed_out=True)
        except Exception as exc:
            return Outcome(timed_out=True) if self.rang else Outcome(error=exc)
        return Outcome(timed_out=True) if self.rang else Outcome(value=value)

    def cancel(self) -> None:
        """Never ring (the episode is over)."""
        self._cancelled = True

    def _ring(self) -> None:
        with self._lock:
            if self._cancelled:
                return
            self.rang = True
            if self._inside is not None:
                _raise_in(self._inside, WorkerTimeout)


class _Watchdog:
    """One daemon thread that rings every alarm at its deadline."""

    def __init__(self) -> None:
        self._wake = threading.Condition()
        self._alarms: list[tuple[float, int, Alarm]] = []
        self._order = itertools.count()
        self._thread: threading.Thread | None = None

    def schedule(self, alarm: Alarm) -> None:
        with self._wake:
            heapq.heappush(self._alarms, (alarm.deadline, next(self._order), alarm))
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, daemon=True, name="agentkit-watchdog")
                self._thread.start()
            elif self._alarms[0][2] is alarm:  # only an earlier deadline needs the sleeper woken
                self._wake.notify()

    def _run(self) -> None:
        with self._wake:
            while True:
                if not self._alarms:
                    self._wake.wait()
                    continue
                delay = self._alarms[0][0] - time.monotonic()
                if delay > 0:
                    self._wake.wait(delay)
                    continue
                heapq.heappop(self._alarms)[2]._ring()


_watchdog = _Watchdog()


def _new_watchdog_in_child() -> None:
    # A forked child has no watchdog thread, only the parent's record of one.
    global _watchdog  # noqa: PLW0603 - the module's one watchdog is replaced, never shared
    _watchdog = _Watchdog()


os.register_at_fork(after_in_child=_new_watchdog_in_child)


def _raise_in(ident: int, exception: type[BaseException] | None) -> None:
    """Raise `exception` in thread `ident` at its next bytecode; None clears one still pending."""
    # None must reach C as NULL (clear), not as Py_None.
    target = None if exception is None else ctypes.py_object(exception)
    ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(ident), target)

"""Where a benchmark runs: the dtype every framework gets on a device, and how runs that should agree are checked."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import Any


def dtype_for(device: str) -> str:
    """bfloat16 on a GPU (what `LocalChatModel` picks there), float32 on the CPU; every framework gets the same."""
    return "float32" if device == "cpu" else "bfloat16"


def check_same(device: str, differing: int, what: str) -> None:
    """On the CPU, runs that should write the same greedy text must; on a GPU, differences are counted and printed.

    In float32 on the CPU the runs agree token for token. In bfloat16 on a GPU, a cached prefix, a batch or a drafted
    pass runs other kernels than a full prefill of one row, and where a model's two best tokens are nearly tied, its
    greedy choice can flip; the figures then compare runs that differ in text.

    Args:
        device: Where the runs ran.
        differing: How many of them differ.
        what: The rest of the sentence after the count, e.g. ``"of 18 replies differ between the frameworks"``.

    Raises:
        AssertionError: On the CPU, when any differ.
    """
    if device == "cpu" and differing:
        raise AssertionError(f"{differing} {what}")
    if differing:
        print(f"note: {differing} {what} (bfloat16 on {device})", file=sys.stderr)


def synchronize(device: str) -> None:
    """Wait for the device's queued work, so that a wall-clock time covers it (nothing to wait for on the CPU)."""
    import torch

    if device.startswith("cuda"):
        torch.cuda.synchronize()


def seconds(device: str, function: Callable[..., Any], *args: Any, **kwargs: Any) -> float:
    """Wall-clock seconds of ``function(*args, **kwargs)``, the device's queued work waited for before and after."""
    synchronize(device)
    started = time.perf_counter()
    function(*args, **kwargs)
    synchronize(device)
    return time.perf_counter() - started

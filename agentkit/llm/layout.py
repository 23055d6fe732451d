"""Weight layouts for decoding on a CPU: store each linear layer's weight the way this CPU multiplies it fastest.

Decoding one sequence multiplies each weight matrix by a single row, and reading the weights bounds it. How fast the
CPU's BLAS does that depends on how the matrix is stored, and not the same way for every shape: on the 2-vCPU AMD EPYC
of the benchmarks (torch's MKL), a 2048 x 512 up-projection stored transposed (column-major) runs a one-row product
in half the time (181 vs 381 us, weights read from memory) while a 512 x 2048 down-projection runs slower that way
(370 vs 228 us). So the layout is measured, once per weight shape, when a model is loaded; a matrix keeps its shape
and values, and only its strides change, so every caller, PEFT and `generate` included, sees the same module.
"""

from __future__ import annotations

import time
from typing import Any

# A shape is only measured when the model holds at least this many bytes of it: below that its weights stay in the
# CPU's caches while decoding, the layout matters little and the timings are noise.
_MIN_BYTES = 8 << 20
# Column-major copies made to time the products (freed after): as many of a shape's matrices as fit in this many
# bytes, and one when a single matrix is larger.
_MAX_COPY_BYTES = 64 << 20
# Switch for a clear gain on one row (decoding one sequence, an agent's usual case) unless eight rows (a batch of
# sequences) lose much more: there the two layouts are often within the timing noise of each other.
_ONE_ROW_GAIN = 0.8
_BATCH_LOSS = 1.25


def tune_cpu_layouts(model: Any) -> dict[tuple[int, int], bool]:
    """Store the weights of `model`'s linear layers column-major where that makes decoding faster on this CPU.

    Args:
        model: A torch module on the CPU, in place.

    Returns:
        Per measured weight shape (out, in), whether its weights were switched to column-major.
    """
    import torch

    groups: dict[tuple[int, int], list[Any]] = {}
    for weight in _linear_weights(model, torch):
        groups.setdefault((int(weight.shape[0]), int(weight.shape[1])), []).append(weight)
    chosen: dict[tuple[int, int], bool] = {}
    with torch.inference_mode():
        for shape, weights in groups.items():
            if sum(w.numel() * w.element_size() for w in weights) >= _MIN_BYTES:
                chosen[shape] = _column_major_is_faster([w.data for w in weights], torch)
    with torch.no_grad():
        for shape, weights in groups.items():
            if chosen.get(shape):
                for weight in weights:
                    weight.data = weight.data.t().contiguous().t()
    return chosen


def _linear_weights(model: Any, torch: Any) -> list[Any]:
    """The row-major floating-point weights of plain linear layers but those another module shares (tied)."""
    shared = {
        id(parameter)
        for module in model.modules()
        if type(module) is not torch.nn.Linear
        for parameter in module.parameters(recurse=False)
    }
    return [
        module.weight
        for module in model.modules()
        if type(module) is torch.nn.Linear
        and module.weight.is_floating_point()
        and module.weight.is_contiguous()
        and id(module.weight) not in shared
    ]


def _column_major_is_faster(weights: list[Any], torch: Any) -> bool:
    """Time one- and eight-row products over the model's own weights and over column-major copies of them."""
    size = weights[0].numel() * weights[0].element_size()
    rows = weights[: max(1, _MAX_COPY_BYTES // size)]
    columns = [w.t().contiguous().t() for w in rows]
    one, eight = (torch.ones(n, rows[0].shape[1], dtype=rows[0].dtype) for n in (1, 8))
    times = {(layout, n): float("inf") for layout in ("rows", "columns") for n in (1, 8)}
    for _ in range(5):  # interleaved, best of five: a busy machine slows a sweep, never speeds one up
        for layout, matrices in (("rows", rows), ("columns", columns)):
            for n, x in ((1, one), (8, eight)):
                times[layout, n] = min(times[layout, n], _sweep(matrices, x, torch))
    return (
        times["columns", 1] <= _ONE_ROW_GAIN * times["rows", 1]
        and times["columns", 8] <= _BATCH_LOSS * times["rows", 8]
    )


def _sweep(matrices: list[Any], x: Any, torch: Any) -> float:
    started = time.perf_counter()
    for matrix in matrices:
        torch.nn.functional.linear(x, matrix)
    return time.perf_counter() - started

"""Matrix products for decoding on a CPU: each linear layer multiplies a few rows the way this CPU does it fastest.

Decoding multiplies every weight matrix by one row (one sequence) or a few (a batch of sequences), and reading the
weights bounds it. torch's `linear` hands such a product to the BLAS, and on the 2-vCPU AMD EPYC of the benchmarks
(torch's MKL) that reads a matrix at about 10 GB/s, on one core. The same product written as a batched product over
blocks of the matrix's rows (`bmm` over views of the weight, no copy) runs on both cores: one row times a
2048 x 512 matrix takes 118 instead of 388 us in a loop over a model's weights, and a whole decoding step, where the
weights come from memory, reads them at about 30 instead of 16 GB/s. Which form wins depends on the CPU, its BLAS,
the shape and the number of rows, so it is measured when a model is loaded: each weight shape the model holds 8 MB
or more of is timed over its own weights, for one row and for eight, as `linear` and as products over 1, 2, 4, ...
row blocks. Its layers then become `nn.Linear`s with that choice: the same parameters, state dict and module tree,
so PEFT, `generate` and `save_pretrained` see the same model; products with more rows (prefill) stay with `linear`.
"""

from __future__ import annotations

import functools
import time
from typing import Any

# A shape is only measured when the model holds at least this many bytes of it: below that its weights stay in the
# CPU's caches while decoding, the form matters little and the timings are noise.
_MIN_BYTES = 8 << 20
# The weights of a shape timed per sweep: enough to come from memory as they do while decoding, and a bounded cost.
_MAX_TIMED_BYTES = 64 << 20
# Products with more rows than this (prefill) are left to the BLAS's matrix-matrix kernels, which are good at them.
_FEW_ROWS = 16
# A blocked form must beat `linear` by this much to be used: timings of a few milliseconds are noisy.
_MARGIN = 0.9


def tune_cpu_matmuls(model: Any) -> dict[tuple[int, int], tuple[int, int]]:
    """Make `model`'s linear layers multiply one row and a few rows in the form this CPU runs fastest.

    Args:
        model: A torch module on the CPU, changed in place.

    Returns:
        Per measured weight shape (out, in): the row blocks used for one row and for a few rows, 0 for `linear`.
    """
    import torch

    groups: dict[tuple[int, int], list[Any]] = {}
    for module in model.modules():
        weight = getattr(module, "weight", None)
        if type(module) is torch.nn.Linear and weight is not None and weight.is_floating_point():
            groups.setdefault((module.out_features, module.in_features), []).append(module)
    tuned = _tuned_linear_class()
    chosen: dict[tuple[int, int], tuple[int, int]] = {}
    with torch.inference_mode():
        for shape, modules in groups.items():
            weights = [m.weight for m in modules if m.weight.is_contiguous()]
            if weights and sum(w.numel() * w.element_size() for w in weights) >= _MIN_BYTES:
                chosen[shape] = (_fastest(weights, 1, torch), _fastest(weights, 8, torch))
    for shape, (one, few) in chosen.items():
        if one or few:
            for module in groups[shape]:
                module.__class__ = tuned
                module.one_row_blocks, module.few_rows_blocks = one, few
    return chosen


def _fastest(weights: list[Any], rows: int, torch: Any) -> int:
    """The row blocks that multiply `rows` rows fastest over these weights, 0 when `linear` does."""
    out, size = weights[0].shape[0], weights[0].numel() * weights[0].element_size()
    timed = weights[: max(1, _MAX_TIMED_BYTES // size)]
    x = torch.ones(rows, weights[0].shape[1], dtype=weights[0].dtype)
    # Up to twice as many blocks as threads: on 2 vCPUs, 4 blocks sometimes beat 2 (2048 x 512: 126 vs 148 us).
    most = 2 * max(1, torch.get_num_threads())
    candidates = [0] + [b for b in (1, 2, 4, 8, 16, 32, 64) if b <= most and out % b == 0]
    times = dict.fromkeys(candidates, float("inf"))
    for _ in range(5):  # interleaved, best of five: a busy machine slows a sweep, never speeds one up
        for blocks in candidates:
            started = time.perf_counter()
            for weight in timed:
                _product(x, weight, blocks, torch)
            times[blocks] = min(times[blocks], time.perf_counter() - started)
    best = min(times, key=lambda b: times[b])
    return best if times[best] <= _MARGIN * times[0] else 0


def _product(x: Any, weight: Any, blocks: int, torch: Any) -> Any:
    """``x @ weight.T`` for a (rows, in) `x`: by `linear` (0 blocks), or as a batched product over row blocks."""
    if not blocks:
        return torch.nn.functional.linear(x, weight)
    out, width = weight.shape
    rows = x.shape[0]
    # (blocks, out / blocks, in) @ (blocks, in, rows): each block of the weight's rows times the same rows of x.
    y = torch.bmm(weight.view(blocks, out // blocks, width), x.t().unsqueeze(0).expand(blocks, -1, -1))
    return y.view(out, rows).t()


@functools.cache
def _tuned_linear_class() -> type:
    """An `nn.Linear` that multiplies one row and a few rows over row blocks of its weight, as measured."""
    import torch

    class TunedLinear(torch.nn.Linear):
        one_row_blocks: int
        few_rows_blocks: int

        def forward(self, x: Any) -> Any:
            rows = x.numel() // self.in_features
            blocks = self.one_row_blocks if rows == 1 else self.few_rows_blocks if 1 < rows <= _FEW_ROWS else 0
            # The views need the row-major weight tuning measured; anything else goes the usual way.
            if not blocks or x.device.type != "cpu" or not self.weight.is_contiguous():
                return torch.nn.functional.linear(x, self.weight, self.bias)
            y = _product(x.reshape(rows, self.in_features), self.weight, blocks, torch)
            y = y + self.bias if self.bias is not None else y.contiguous()
            return y.view(*x.shape[:-1], self.out_features)

        def extra_repr(self) -> str:
            return (
                f"{super().extra_repr()}, one_row_blocks={self.one_row_blocks}, few_rows_blocks={self.few_rows_blocks}"
            )

    # Pickled by this name, and found again through the module's `__getattr__`.
    TunedLinear.__module__, TunedLinear.__qualname__ = __name__, "TunedLinear"
    return TunedLinear


def __getattr__(name: str) -> Any:
    # The class needs torch, which importing agentkit does not load; it is built on first use, by name too.
    if name == "TunedLinear":
        return _tuned_linear_class()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

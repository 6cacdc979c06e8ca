"""The int8 Linear layer with full-range activations (its own module: it imports torch, and cached
int8 models name it when they are unpickled)."""

from __future__ import annotations

import torch
from torch.ao.nn.quantized.dynamic import Linear as DynamicLinear

__all__: list = []  # not re-exported: importing xdanalysis.model must not import torch


class FullRangeLinear(DynamicLinear):
    """PyTorch's dynamically quantised Linear with 8-bit activations instead of its fixed 7, for
    CPUs with VNNI (int32 accumulation); without VNNI, pairs of 8-bit products saturate int16
    (``tests/test_compress.py`` shows the error it costs), which is why PyTorch keeps 7 bits there."""

    def forward(self, x):
        return torch.ops.quantized.linear_dynamic(x, self._packed_params._packed_params,
                                                  reduce_range=False).to(x.dtype)

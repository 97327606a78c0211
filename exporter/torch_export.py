"""Pass 0: the full modular model from PyTorch to ONNX, with every gate as a named graph output.

The named gate outputs are how later passes find each gated layer in the graph: no pattern
matching of mask-generator subgraphs, and no per-architecture code.
"""

from __future__ import annotations

import io
import warnings

import onnx
import torch
from torch import nn

from mwt.models import gated_layers
from mwt.core.metadata import INPUT, LOGITS

OPSET = 17
GATE_PREFIX = "gate:"


class _WithGates(nn.Module):
    """Returns (logits, gate_1, ..., gate_L) as separate outputs so ONNX can name each."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        logits, gates = self.model(x)
        return (logits, *gates)


def export_with_gates(model: nn.Module, input_shape: tuple[int, ...]) -> onnx.ModelProto:
    """Export `model` (eval mode, on CPU) with a dynamic batch; outputs `logits` and `gate:<layer>`.

    Uses the TorchScript-based exporter: it is deterministic, fast, and folds eval-mode BatchNorm
    into the preceding conv.
    """
    model = model.eval().cpu()
    names = [LOGITS] + [GATE_PREFIX + n for n, _ in gated_layers(model)]
    buffer = io.BytesIO()
    example = torch.zeros(1, *input_shape)
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            _WithGates(model), (example,), buffer, input_names=[INPUT], output_names=names,
            dynamic_axes={n: {0: "batch"} for n in [INPUT, *names]}, opset_version=OPSET, dynamo=False,
            do_constant_folding=True,
        )
    return onnx.load_from_string(buffer.getvalue())

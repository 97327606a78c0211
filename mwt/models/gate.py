"""The gated convolution: the one building block that makes a CNN modular."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class _ReopenableGate(torch.autograd.Function):
    """ReLU(tanh(z)) forward. Backward, a closed gate (z <= 0), to which ReLU gives no gradient, passes `leak` x
    its gradient to z where the losses together would open it (a negative gradient), so the task's loss can
    open a kernel again (training only; mwt train --gate-leak). Only that way: passing the FLOPs term's push
    on closed gates too drove their pre-activations down without end, and a tiny run diverged (stop 61)."""

    @staticmethod
    def forward(ctx, z: torch.Tensor, leak: float) -> torch.Tensor:  # type: ignore[override]
        t = torch.tanh(z)
        ctx.save_for_backward(t)
        ctx.leak = leak
        return F.relu(t)

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> tuple[torch.Tensor, None]:  # type: ignore[override]
        (t,) = ctx.saved_tensors
        return torch.where(t > 0, grad * (1 - t * t), ctx.leak * grad.clamp(max=0)), None


class MaskGenerator(nn.Module):
    """Per-sample kernel gates from a layer's input, as in MwT.

    global average pool -> Linear(in, h, no bias) -> ReLU -> Linear(h, out) -> tanh -> ReLU,
    h = out if out < 128 else out // 2. Gates lie in [0, 1); a gate of 0 switches a kernel off.
    """

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        hidden = out_channels if out_channels < 128 else out_channels // 2
        self.fc1 = nn.Linear(in_channels, hidden, bias=False)
        self.fc2 = nn.Linear(hidden, out_channels)
        nn.init.kaiming_normal_(self.fc1.weight)
        nn.init.kaiming_normal_(self.fc2.weight)
        # Bias 1 starts every kernel switched on; the losses then teach the gates to close.
        nn.init.constant_(self.fc2.bias, 1.0)
        # > 0 while training: closed gates pass this share of an opening gradient (_ReopenableGate); set by the
        # training run (TrainConfig.gate_leak), not part of the weights
        self.leak = 0.0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s = x.mean(dim=(2, 3))  # (B, C_in)
        z = self.fc2(F.relu(self.fc1(s)))
        if self.leak and self.training and torch.is_grad_enabled():
            return _ReopenableGate.apply(z, self.leak)  # type: ignore[no-any-return]
        return F.relu(torch.tanh(z))  # (B, C_out)

    def detached(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(pre-activation, gates) for input `x` as `forward` computes them, but with `x` detached:
        a loss on them trains this generator's weights only, never the layers that made `x`.
        Computed without calling the submodules, so hooks on them (mwt.losses.gate_preactivations,
        a sub-task route) see only the real forward."""
        s = x.detach().mean(dim=(2, 3))
        z = F.linear(F.relu(F.linear(s, self.fc1.weight)), self.fc2.weight, self.fc2.bias)
        return z, F.relu(torch.tanh(z))


class GatedConv(nn.Module):
    """conv -> BN -> gate (no activation: callers apply ReLU, or add a residual first).

    With `gated=False` it is a plain conv -> BN, so one architecture definition serves both the
    modular model and the standard baseline. `forward` returns (output, gate or None).
    """

    def __init__(
        self, in_channels: int, out_channels: int, kernel_size: int = 3, stride: int = 1, *, gated: bool
    ) -> None:
        super().__init__()
        self.conv = nn.Conv2d(
            in_channels, out_channels, kernel_size, stride=stride, padding=kernel_size // 2, bias=False
        )
        self.bn = nn.BatchNorm2d(out_channels)
        self.gate = MaskGenerator(in_channels, out_channels) if gated else None

    @classmethod
    def wrap(cls, conv: nn.Conv2d, bn: nn.BatchNorm2d, *, gated: bool) -> GatedConv:
        """A block around an existing conv and batch norm (any kernel, stride, padding or groups),
        with a fresh mask generator when `gated`: how gates are inserted into a given network."""
        block = cls.__new__(cls)
        nn.Module.__init__(block)
        block.conv = conv
        block.bn = bn
        block.gate = MaskGenerator(conv.in_channels, conv.out_channels) if gated else None
        return block

    @property
    def out_channels(self) -> int:
        return self.conv.out_channels

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        y = self.bn(self.conv(x))  # (B, C_out, H, W)
        if self.gate is None:
            return y, None
        g = self.gate(x)  # (B, C_out)
        return y * g[:, :, None, None], g

    def rectified(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """ReLU(forward(x)) as ReLU(conv -> BN) x gate: the same values (a gate is never negative), but a closed
        gate's gradient is what opening it would do, where after the product ReLU gives it none. For
        training with reopenable gates (MaskGenerator.leak); callers that apply ReLU right after use it."""
        y = F.relu(self.bn(self.conv(x)))
        if self.gate is None:
            return y, None
        g = self.gate(x)
        return y * g[:, :, None, None], g


class Preprocess(nn.Module):
    """Zero-pad in pixel space, then normalize: the model takes images in [0, 1] as the dataset holds them.

    Keeping this inside the model puts it inside every exported ONNX file too, so a module's input
    spec is just the dataset's image shape and value range.
    """

    def __init__(self, mean: tuple[float, ...], std: tuple[float, ...], pad: int) -> None:
        super().__init__()
        self.pad = pad
        self.register_buffer("mean", torch.tensor(mean).view(1, -1, 1, 1))
        self.register_buffer("std", torch.tensor(std).view(1, -1, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.pad:
            x = F.pad(x, (self.pad,) * 4)
        return (x - self.mean) / self.std


class PassThroughConv(nn.Module):
    """A depthwise (or channel-preserving grouped) conv -> BN, times the gates of the layer feeding it.

    Such a conv computes each output channel from its own input channel (or group), so instead of a
    mask generator of its own it passes its input's gates through per channel: a kernel its input
    switched off stays off here, and the compiler can remove the channel on both sides of the conv.
    `forward` returns the feature map only; the gates it uses belong to the feeding layer.
    """

    def __init__(self, conv: nn.Conv2d, bn: nn.BatchNorm2d) -> None:
        super().__init__()
        self.conv = conv
        self.bn = bn

    @property
    def out_channels(self) -> int:
        return self.conv.out_channels

    def forward(self, x: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
        return self.bn(self.conv(x)) * g[:, :, None, None]  # g: (B, C) of the feeding layer

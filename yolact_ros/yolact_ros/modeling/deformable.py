"""Modulated deformable convolution (DCNv2) on ``torchvision.ops.deform_conv2d``: no build step.

YOLACT++ replaces the 3x3 ``conv2`` of selected ResNet bottlenecks with DCNv2. Upstream needs the
DCNv2 CUDA extension; torchvision computes the same thing on CPU and GPU. The module keeps
upstream's state-dict names (``weight``, ``bias``, ``conv_offset_mask.weight``/``.bias``) so the
official checkpoints load as they are.
"""

import math

import torch
from torch import nn, Tensor
from torchvision.ops import deform_conv2d


class DeformableConv2d(nn.Module):
    """Square-kernel DCNv2 with one offset group: offsets and modulation from a plain conv.

    ``conv_offset_mask`` predicts ``3 * k * k`` channels: the first ``2 * k * k`` are the
    (dy, dx) offsets of each tap, interleaved per tap as DCNv2 lays them out; the last ``k * k``
    pass through a sigmoid and scale each tap. It starts at zero, as upstream: no offsets and
    every tap scaled by 0.5.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int = 3, *,
                 stride: int = 1, padding: int = 1, dilation: int = 1) -> None:
        super().__init__()
        self.stride = stride
        self.padding = padding
        self.dilation = dilation
        self.weight = nn.Parameter(
            torch.empty(out_channels, in_channels, kernel_size, kernel_size))
        self.bias = nn.Parameter(torch.zeros(out_channels))
        self.conv_offset_mask = nn.Conv2d(
            in_channels, 3 * kernel_size * kernel_size, kernel_size, stride=stride,
            padding=padding, dilation=dilation)
        # DCNv2's initialisation: uniform weight in +-1/sqrt(fan_in), zero bias and offsets.
        bound = 1.0 / math.sqrt(in_channels * kernel_size * kernel_size)
        nn.init.uniform_(self.weight, -bound, bound)
        nn.init.zeros_(self.conv_offset_mask.weight)
        nn.init.zeros_(self.conv_offset_mask.bias)

    @classmethod
    def from_conv(cls, conv: nn.Conv2d) -> 'DeformableConv2d':
        """Replace a plain square conv: same geometry, its weight copied, a zero bias added."""
        if conv.groups != 1 or conv.kernel_size[0] != conv.kernel_size[1]:
            raise ValueError(f'only square, ungrouped convs can become deformable, got {conv}')
        deformable = cls(conv.in_channels, conv.out_channels, conv.kernel_size[0],
                         stride=conv.stride[0], padding=conv.padding[0],
                         dilation=conv.dilation[0])
        with torch.no_grad():
            deformable.weight.copy_(conv.weight)
            if conv.bias is not None:
                deformable.bias.copy_(conv.bias)
        return deformable

    def forward(self, features: Tensor) -> Tensor:
        """Convolve ``Tensor[N, C, H, W]``; returns ``Tensor[N, C', H', W']``."""
        taps = self.weight.shape[2] * self.weight.shape[3]
        offset_mask = self.conv_offset_mask(features)  # (N, 3*k*k, H', W')
        offsets = offset_mask[:, :2 * taps]  # (N, 2*k*k, H', W'): (dy, dx) per tap
        modulation = torch.sigmoid(offset_mask[:, 2 * taps:])  # (N, k*k, H', W')
        return deform_conv2d(features, offsets, self.weight, self.bias,
                             stride=self.stride, padding=self.padding,
                             dilation=self.dilation, mask=modulation)

    def extra_repr(self) -> str:
        """Describe the geometry, as ``nn.Conv2d`` does."""
        out_channels, in_channels, height, _ = self.weight.shape
        return (f'{in_channels}, {out_channels}, kernel_size={height}, stride={self.stride}, '
                f'padding={self.padding}, dilation={self.dilation}')

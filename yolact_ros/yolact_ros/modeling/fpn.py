"""Feature pyramid as upstream YOLACT builds it (P3..P7 from C3..C5)."""

from typing import List, Sequence

from torch import nn, Tensor
import torch.nn.functional as F


class FPN(nn.Module):
    """Top-down pyramid with ReLU'd 3x3 smoothing and two strided convs for P6 and P7.

    Layer lists keep upstream's order (``lat_layers[0]`` takes C5) so checkpoint keys match.
    """

    def __init__(self, in_channels: Sequence[int], channels: int = 256,
                 num_downsample: int = 2) -> None:
        super().__init__()
        self.lat_layers = nn.ModuleList(
            nn.Conv2d(c, channels, kernel_size=1) for c in reversed(in_channels))
        self.pred_layers = nn.ModuleList(
            nn.Conv2d(channels, channels, kernel_size=3, padding=1) for _ in in_channels)
        self.downsample_layers = nn.ModuleList(
            nn.Conv2d(channels, channels, kernel_size=3, padding=1, stride=2)
            for _ in range(num_downsample))

    def forward(self, features: List[Tensor]) -> List[Tensor]:
        """Map ``[C3, C4, C5]`` to ``[P3, P4, P5, P6, P7]``, each ``Tensor[N, 256, H, W]``."""
        outputs: List[Tensor] = [features[0]] * len(features)
        top_down = None
        for lateral, index in zip(self.lat_layers, reversed(range(len(features)))):
            lateral_out = lateral(features[index])
            if top_down is not None:
                top_down = F.interpolate(top_down, size=lateral_out.shape[-2:], mode='bilinear',
                                         align_corners=False)
                lateral_out = lateral_out + top_down
            top_down = lateral_out
            outputs[index] = lateral_out
        for smooth, index in zip(self.pred_layers, reversed(range(len(features)))):
            outputs[index] = F.relu(smooth(outputs[index]))
        for downsample in self.downsample_layers:
            outputs.append(downsample(outputs[-1]))
        return outputs

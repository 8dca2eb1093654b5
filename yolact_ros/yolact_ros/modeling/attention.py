"""Channel attention applied after each ResNet stage (the seed's modification of YOLACT)."""

from typing import List, Optional, Sequence

import torch
from torch import nn, Tensor

from yolact_ros.config import AttentionConfig


def _mlp(channels: int, hidden: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(channels, hidden, 1), nn.ReLU(inplace=True),
                         nn.Conv2d(hidden, channels, 1))


class ChannelAttention(nn.Module):
    """Rescale channels by a gate computed from global average and max pooling.

    ``gate = 2 * sigmoid(mlp_avg(avgpool(x)) + mlp_max(maxpool(x)))``. The output layers of the
    MLPs start at zero, so the gate starts at exactly 1 and a network that gains attention (e.g.
    an official checkpoint being fine-tuned) computes the same outputs until training moves it.
    With ``shared_mlp`` one MLP serves both branches, as in CBAM.
    """

    def __init__(self, channels: int, reduction: int = 16, *, shared_mlp: bool = False) -> None:
        super().__init__()
        hidden = max(channels // reduction, 1)
        self.avg_mlp = _mlp(channels, hidden)
        self.max_mlp = None if shared_mlp else _mlp(channels, hidden)
        for mlp in filter(None, (self.avg_mlp, self.max_mlp)):
            nn.init.zeros_(mlp[2].weight)
            nn.init.zeros_(mlp[2].bias)

    def forward(self, features: Tensor) -> Tensor:
        """Gate ``Tensor[N, C, H, W]`` features channel-wise; returns the same shape."""
        avg_pooled = features.mean(dim=(2, 3), keepdim=True)  # (N, C, 1, 1)
        max_pooled = features.amax(dim=(2, 3), keepdim=True)  # (N, C, 1, 1)
        max_mlp = self.max_mlp if self.max_mlp is not None else self.avg_mlp
        logits = self.avg_mlp(avg_pooled) + max_mlp(max_pooled)
        return features * (2.0 * torch.sigmoid(logits))


def build_stage_attention(out_channels: Sequence[int],
                          attention: AttentionConfig) -> Optional[nn.ModuleList]:
    """Return one :class:`ChannelAttention` per backbone stage output, or None when disabled."""
    if not attention.enabled:
        return None
    return nn.ModuleList(
        ChannelAttention(channels, attention.reduction, shared_mlp=attention.shared_mlp)
        for channels in out_channels)


def run_stages(stages: Sequence[nn.Module], stage_attention: Optional[nn.ModuleList],
               images: Tensor) -> List[Tensor]:
    """Run the backbone stages in turn, each followed by its attention; return every output."""
    x, outputs = images, []
    for index, stage in enumerate(stages):
        x = stage(x)
        if stage_attention is not None:
            x = stage_attention[index](x)
        outputs.append(x)
    return outputs

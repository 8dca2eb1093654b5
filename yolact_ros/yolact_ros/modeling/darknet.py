"""DarkNet-53 backbone as upstream YOLACT builds it (``yolact_darknet53``)."""

from typing import List, Sequence

from torch import nn, Tensor

from yolact_ros.config import AttentionConfig
from yolact_ros.modeling.attention import build_stage_attention, run_stages

# Residual blocks per stage; stage s outputs 64 * 2 ** s channels at stride 2 ** (s + 1).
DARKNET53_BLOCKS = (1, 2, 8, 8, 4)


def conv_bn_leaky(in_channels: int, out_channels: int, kernel_size: int,
                  stride: int = 1) -> nn.Sequential:
    """Conv without bias, BatchNorm, LeakyReLU(0.1): DarkNet's only layer type."""
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, kernel_size, stride=stride,
                  padding=kernel_size // 2, bias=False),
        nn.BatchNorm2d(out_channels),
        nn.LeakyReLU(0.1, inplace=True))


class DarkNetBlock(nn.Module):
    """1x1 conv halving the channels, 3x3 conv restoring them, plus the input (no activation)."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv1 = conv_bn_leaky(channels, channels // 2, kernel_size=1)
        self.conv2 = conv_bn_leaky(channels // 2, channels, kernel_size=3)

    def forward(self, features: Tensor) -> Tensor:
        """Return ``Tensor[N, C, H, W]`` for the same shape."""
        return self.conv2(self.conv1(features)) + features


class DarkNetBackbone(nn.Module):
    """DarkNet-53: a 3x3 stem, then five stages of (stride-2 3x3 conv, residual blocks).

    Stages are named ``layer1``..``layer5`` like the ResNet backbone's, so upstream's
    ``backbone.layers.{0..4}`` keys map the same way. ``forward`` returns all five stage outputs
    (strides 2..32, 64..1024 channels); YOLACT's FPN takes the last three (C3, C4, C5). Channel
    attention, when enabled, follows every one of the five stages.
    """

    def __init__(self, attention: AttentionConfig,
                 blocks: Sequence[int] = DARKNET53_BLOCKS) -> None:
        super().__init__()
        self.stem = conv_bn_leaky(3, 32, kernel_size=3)
        in_channels = 32
        self.out_channels: List[int] = []
        for index, num_blocks in enumerate(blocks):
            channels = 64 * 2 ** index
            stage = nn.Sequential(conv_bn_leaky(in_channels, channels, kernel_size=3, stride=2),
                                  *(DarkNetBlock(channels) for _ in range(num_blocks)))
            self.add_module(f'layer{index + 1}', stage)
            self.out_channels.append(channels)
            in_channels = channels
        self.stage_attention = build_stage_attention(self.out_channels, attention)

    @property
    def stages(self) -> List[nn.Sequential]:
        """The five stages, in order."""
        return [getattr(self, f'layer{index + 1}') for index in range(len(self.out_channels))]

    def forward(self, images: Tensor) -> List[Tensor]:
        """Return the five stage outputs for ``Tensor[N, 3, H, W]``: strides 2, 4, 8, 16, 32."""
        return run_stages(self.stages, self.stage_attention, self.stem(images))
